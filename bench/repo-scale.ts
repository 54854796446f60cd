// Repository at distribution scale: a synthetic repository with the shape of
// Debian main (60,000 troves, 3,000,000 files; names, dependencies and sizes
// generated), served by nginx on loopback. Prints the build time, the size of
// the top metadata, the first `source sync` (seconds, bytes), a re-sync after
// 100 troves changed (one patch), a re-sync after a rebuild that only renews
// the expiry and one with nothing new (304), and a `plan` of 50 troves
// (manifests fetched), beside what apt downloads for Debian main
// (Packages.xz, and Contents for the files, from this machine's apt lists
// when present).
//
//   npx tsx bench/repo-scale.ts
//   REPO_TROVES=6000 REPO_FILES=300000 npx tsx bench/repo-scale.ts     (a tenth)
//
// The troves are made one at a time as publish() (the code `repo build` runs
// after reading archives) asks for them, so memory holds one trove's files
// and every trove's metadata line; file contents come from a pool of
// REPO_CONTENTS distinct ones (default 20,000), so the manifests list every
// file but the disk holds a bounded number of contents. Metadata figures do
// not depend on the pool; the build time of real contents would be larger.
// BENCH_DIR puts the repository and the root somewhere other than the temp
// directory (the full shape writes ~1 GB of manifests).
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { NewTrove } from "../src/db/troves.js"
import { type TroveInput, publish } from "../src/source/repo.js"
import { requests, startNginx } from "../test/nginx.js"

const TROVES = Number(process.env.REPO_TROVES ?? 60_000)
const FILES = Number(process.env.REPO_FILES ?? 3_000_000)
const CONTENTS = Number(process.env.REPO_CONTENTS ?? 20_000)
const CHANGED = 100
const PLANNED = 50
const bin = path.resolve(import.meta.dirname, "../bin/conary.js")
const conary = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8", maxBuffer: 1 << 28 })
const MiB = 2 ** 20
const sha = (s: string) => createHash("sha256").update(s).digest("hex")
const content = (i: number) => Buffer.from(`content ${i}\n`.repeat(1 + (i % 40)))
const contentSha = Array.from({ length: CONTENTS }, (_, i) => createHash("sha256").update(content(i)).digest("hex"))
const bySha = new Map(contentSha.map((s, i) => [s, i]))

// Debian-like names: a stem, often with a library or language prefix and a suffix.
const STEMS = ["gtk", "qt", "ssl", "xml", "json", "ruby", "perl", "python3", "node", "boost", "gnome", "kde", "x11", "curl", "z", "png", "sql", "http", "tex", "font"]
const name = (t: number) => {
  const stem = STEMS[t % STEMS.length]!
  const kind = ["lib", "", "python3-", "node-", "r-cran-", "golang-"][t % 6]
  const suffix = ["", "-dev", "-doc", "-data", "-bin", "-common"][(t >> 3) % 6]
  return `${kind}${stem}${t}${suffix}`
}

/** Trove t at a revision: about FILES/TROVES files (a few big, most small), a few dependencies. */
const trove = (t: number, revision: number): NewTrove => {
  const n = Math.max(1, Math.round((FILES / TROVES) * (0.2 + ((t * 7919) % 17) / 10)))
  const files: NewTrove["files"][number][] = [
    { path: "/usr", kind: "dir", mode: 0o755, owner: "root", group: "root", sha256: null, size: 0, target: null, config: false, component: "runtime" },
    { path: `/usr/share/${name(t)}`, kind: "dir", mode: 0o755, owner: "root", group: "root", sha256: null, size: 0, target: null, config: false, component: "runtime" },
  ]
  for (let f = 0; f < n; f++) {
    const c = (t * 31 + f * 7 + revision) % CONTENTS
    files.push({
      path: `/usr/share/${name(t)}/file-${f}.dat`,
      kind: "file",
      mode: 0o644,
      owner: "root",
      group: "root",
      sha256: contentSha[c]!,
      size: content(c).length,
      target: null,
      config: false,
      component: f % 5 === 0 ? "doc" : "runtime",
    })
  }
  const version = `1.${t % 13}.${revision}-${1 + (t % 3)}-1`
  return {
    digest: sha(`${t}/${revision}`),
    name: name(t),
    version,
    scheme: "native",
    flavor: t % 4 === 0 ? "is: x86_64" : "",
    format: "native",
    requires: t > 10 ? [`${name((t * 13) % t)} (>= 1.0)`, name((t * 17) % t)] : [],
    provides: t % 9 === 0 ? [`virtual-${t % 50}`] : [],
    files,
  }
}

function* inputs(ts: Iterable<number>, revision: (t: number) => number): Generator<TroveInput> {
  for (const t of ts) yield { trove: trove(t, revision(t)), contents: (s) => content(bySha.get(s)!) }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const served = (from: number) => requests(nginx).slice(from).filter(([, , s]) => s < 400)
const bytes = (rows: ReturnType<typeof served>) => rows.reduce((n, [, , , b]) => n + b, 0)
const seconds = (f: () => unknown) => {
  const t0 = performance.now()
  f()
  return (performance.now() - t0) / 1000
}

const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-repo-scale-"))
const repo = path.join(base, "www", "repo")
const nginx = await startNginx(path.join(base, "nginx"), path.join(base, "www"))
try {
  console.log(`synthetic repository: ${TROVES} troves, ~${FILES} files, ${CONTENTS} distinct contents`)
  conary("key", "generate", path.join(base, "k"))
  const key = path.join(base, "k.key")
  let t0 = performance.now()
  const built = await publish(repo, inputs(range(TROVES), () => 0), { signKey: key, expires: "7d", now: new Date().toISOString() })
  const buildSeconds = (performance.now() - t0) / 1000
  const topSize = fs.statSync(path.join(repo, "repo.zst")).size
  console.log(`repo build:       ${buildSeconds.toFixed(1)} s, ${built.objects} objects; top metadata (repo.zst) ${(topSize / 1024).toFixed(1)} KiB`)
  const root = path.join(base, "root")
  fs.mkdirSync(root)
  const r = ["--root", root]
  conary("init", ...r)
  conary("source", "add", "deb", `${nginx.url}/repo`, "--trust", path.join(base, "k.pub"), ...r)
  let mark = requests(nginx).length
  const firstSync = seconds(() => conary("source", "sync", ...r))
  const first = served(mark)
  console.log(`first sync:       ${firstSync.toFixed(1)} s, ${(bytes(first) / MiB).toFixed(2)} MiB in ${first.length} requests`)

  // 100 troves get a new revision: a re-sync reads the top document and one patch.
  const changed = new Set(range(CHANGED).map((i) => (i * 7919) % TROVES))
  t0 = performance.now()
  await publish(repo, inputs(changed, () => 1), { signKey: key, expires: "7d", now: new Date().toISOString() })
  const rebuildSeconds = (performance.now() - t0) / 1000
  mark = requests(nginx).length
  const resyncSeconds = seconds(() => conary("source", "sync", ...r))
  const resync = served(mark)
  console.log(
    `re-sync (${CHANGED} changed): ${resyncSeconds.toFixed(1)} s, ${(bytes(resync) / 1024).toFixed(1)} KiB in ${resync.length} requests (rebuild ${rebuildSeconds.toFixed(1)} s)`,
  )

  // The expiry renewed (a rebuild with no inputs): the top document only. Then nothing new: 304.
  await publish(repo, [], { signKey: key, expires: "7d", now: new Date().toISOString() })
  mark = requests(nginx).length
  const renewSeconds = seconds(() => conary("source", "sync", ...r))
  const renewed = served(mark)
  mark = requests(nginx).length
  conary("source", "sync", ...r)
  const same = requests(nginx).slice(mark)
  console.log(
    `re-sync (expiry renewed): ${renewSeconds.toFixed(1)} s, ${(bytes(renewed) / 1024).toFixed(1)} KiB in ${renewed.length} requests; unchanged: ${same.map(([, p, st, b]) => `${p.split("/").pop()} ${st} ${b} B`).join(", ")}`,
  )

  // A plan for 50 troves (with their dependencies): only their manifests are fetched.
  conary("desired", "add", ...range(PLANNED).map((i) => name(TROVES - 1 - i * 3)), ...r)
  mark = requests(nginx).length
  const planSeconds = seconds(() => conary("plan", "--no-refresh", ...r))
  const planned = served(mark).filter(([, p]) => p.includes("/objects/"))
  console.log(`plan (${PLANNED} desired):  ${planSeconds.toFixed(1)} s, ${planned.length} manifests fetched, ${(bytes(planned) / 1024).toFixed(1)} KiB`)

  // apt, for the same job: Packages.xz and Contents of Debian main (from this machine's apt lists, else the known figures).
  const release = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"
  const listed = (file: string) => (fs.existsSync(release) ? new RegExp(` (\\d+) main/${file.replace(/[.]/g, "\\.")}$`, "m").exec(fs.readFileSync(release, "utf8")) : null)
  const xz = listed("binary-amd64/Packages.xz")
  const contents = listed("Contents-amd64.gz")
  const packagesXz = xz ? Number(xz[1]) : 9 * MiB
  const contentsGz = contents ? Number(contents[1]) : 50 * MiB
  const from = xz ? " (bookworm, from apt's InRelease here)" : " (known figures)"
  console.log(`apt:              Packages.xz of Debian main ${(packagesXz / MiB).toFixed(2)} MiB, Contents-amd64.gz ${(contentsGz / MiB).toFixed(2)} MiB${from}; each fetched whole on any change`)
  console.log(
    `ratios:           first sync ${(bytes(first) / packagesXz).toFixed(2)}x Packages.xz (goal <= 1); ` +
      `re-sync ${((100 * bytes(resync)) / packagesXz).toFixed(2)} % of it (goal <= 1 %); ` +
      `50 troves' manifests ${((100 * bytes(planned)) / contentsGz).toFixed(2)} % of Contents`,
  )
  console.log(`peak RSS of this process (generation and publish): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
} finally {
  await nginx.stop()
  fs.rmSync(base, { recursive: true, force: true })
}
