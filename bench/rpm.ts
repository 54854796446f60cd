// Installing the same .rpm packages, in one run, three ways:
//   rpm --root R --dbpath R/var/lib/rpm --nodeps --noscripts -i (a scratch rpmdb),
//   rpm2cpio X | cpio -idm of each package (the floor: unpacking alone), and
//   conary (source sync, then apply) into a fresh root.
// The packages are built here with rpmbuild (BENCH_RPMS packages of
// BENCH_RPM_FILES files each, 0-64 KiB, most small; zstd payloads as Fedora's).
//
//   npx tsx bench/rpm.ts
//   BENCH_RPMS=40 BENCH_RPM_FILES=500 npx tsx bench/rpm.ts
import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { rpm2cpio, rpmbuild } from "../test/rpm-helpers.js"
import { cliFor, time } from "./lib.js"

const PACKAGES = Number(process.env.BENCH_RPMS ?? 20)
const FILES = Number(process.env.BENCH_RPM_FILES ?? 300)

// A fixed-seed generator so runs are comparable.
let seed = 42
const rand = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed / 0x7fffffff
}

/** The package's files, written here; its spec copies them in. */
const tree = (dir: string, n: number) => {
  for (let i = 0; i < FILES; i++) {
    const d = path.join(dir, `usr/share/benchrpm${n}/d${i % 12}`)
    fs.mkdirSync(d, { recursive: true })
    // 0-64 KiB, log-uniform (most small), different in every file
    fs.writeFileSync(path.join(d, `f${i}`), randomBytes(Math.floor(Math.pow(65537, rand())) - 1))
  }
  return dir
}

const spec = (n: number, from: string) => `
Name: benchrpm${n}
Version: 1.0
Release: 1
Summary: b
License: MIT
BuildArch: noarch
AutoReqProv: no
%description
b
%install
cp -a ${from}/. %{buildroot}/
%files
/usr/share/benchrpm${n}
`

const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-rpm-bench-"))
try {
  const top = path.join(base, "build")
  const built = time(() => Array.from({ length: PACKAGES }, (_, n) => rpmbuild(top, `benchrpm${n}`, spec(n, tree(path.join(base, "trees", String(n)), n)), "w19.zstdio")[0]!))
  const rpms = built.value
  const packed = rpms.reduce((s, r) => s + fs.statSync(r).size, 0)
  const installedBytes = rpms.reduce((s, r) => s + Number(execFileSync("rpm", ["-qp", "--qf", "%{SIZE}", r], { encoding: "utf8" })), 0)
  const mib = installedBytes / 2 ** 20
  console.log(`${rpms.length} packages of ${FILES} files (built in ${built.seconds.toFixed(1)} s): ${(packed / 2 ** 20).toFixed(1)} MiB packed, ${mib.toFixed(1)} MiB installed`)

  // 1. rpm with a scratch database.
  const r1 = path.join(base, "rpm")
  fs.mkdirSync(r1)
  const rpm = time(() => spawnSync("rpm", ["--root", r1, "--dbpath", path.join(r1, "var/lib/rpm"), "--nodeps", "--noscripts", "-i", ...rpms], { encoding: "utf8" }))
  if (rpm.value.status !== 0) throw new Error(`rpm -i failed: ${rpm.value.stderr.slice(-500)}`)

  // 2. rpm2cpio | cpio -idm of each.
  const r2 = path.join(base, "cpio")
  const cpio = time(() => rpm2cpio(rpms, r2))

  // 3. conary into a fresh root.
  const repo = path.join(base, "repo")
  fs.mkdirSync(repo)
  for (const r of rpms) fs.copyFileSync(r, path.join(repo, path.basename(r)))
  const r3 = path.join(base, "conary")
  fs.mkdirSync(r3)
  const conary = cliFor(r3)
  conary("init")
  conary("source", "add", "rpms", repo)
  const sync = time(() => conary("source", "sync"))
  conary("desired", "add", ...rpms.map((_, n) => `benchrpm${n}`))
  const apply = time(() => conary("apply"))

  const row = (label: string, s: number) =>
    console.log(`${label.padEnd(44)} ${s.toFixed(2).padStart(7)} s  ${(mib / s).toFixed(1).padStart(6)} MiB/s  ${(s / cpio.seconds).toFixed(2)}x rpm2cpio|cpio  ${(s / rpm.seconds).toFixed(2)}x rpm -i`)
  row("rpm -i --nodeps --noscripts (scratch rpmdb)", rpm.seconds)
  row("rpm2cpio | cpio -idm, each package", cpio.seconds)
  row("conary source sync (read and hash all)", sync.seconds)
  row("conary apply (fetch, stage, commit)", apply.seconds)
  row("conary sync + apply", sync.seconds + apply.seconds)
} finally {
  fs.rmSync(base, { recursive: true, force: true })
}
