import { execFile, execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { compareAlpm } from "../src/desired/version.js"
import { readArMembers } from "../src/source/ar.js"
import { compress, plainTar } from "./deb-helpers.js"
import { conary, listTree, mustSkip, ok, setupRoot } from "./helpers.js"

// Arch packages built by makepkg itself (as an unprivileged user when the
// tests run as root, as makepkg insists), one run per compression.

const asRoot = process.getuid?.() === 0
const hasMakepkg = spawnSync("makepkg", ["--version"]).status === 0 && spawnSync("bsdtar", ["--version"]).status === 0
const NOBODY = 65534

// The packages of each run: every compression makepkg writes, symlinks, a
// setuid file and a hard link to it, a backup (config) file, an epoch, an
// .INSTALL script, file names mtree must escape, soname provides and depends,
// and a package that replaces (and conflicts with) another.
const PKGBUILDS: Record<string, { ext: string; pkgbuild: string }> = {
  suite: {
    ext: ".pkg.tar.zst",
    pkgbuild: `pkgbase=suite
pkgname=(demo libfoo tool-old needs-foo)
epoch=1
pkgver=1.0
pkgrel=1
arch=('x86_64')
license=('MIT')
options=(!strip !debug)
package_demo() {
  depends=('libfoo>=1:1.0' 'libfoo<1:2')
  optdepends=('tool-old: the old tool')
  conflicts=('demo-git')
  backup=('etc/demo.conf')
  install=demo.install
  license=('GPL-2.0-or-later' 'MIT')
  mkdir -p "$pkgdir/usr/bin" "$pkgdir/etc" "$pkgdir/usr/share/demo"
  printf '#!/bin/sh\\necho demo\\n' > "$pkgdir/usr/bin/demo"
  chmod 4755 "$pkgdir/usr/bin/demo"
  ln "$pkgdir/usr/bin/demo" "$pkgdir/usr/bin/demo-hard"
  ln -s demo "$pkgdir/usr/bin/demo-link"
  echo 'setting = 1' > "$pkgdir/etc/demo.conf"
  echo spaced > "$pkgdir/usr/share/demo/read me"
  echo accent > "$pkgdir/usr/share/demo/café"
}
package_libfoo() {
  provides=('libfoo.so=1-64')
  mkdir -p "$pkgdir/usr/lib"
  echo 'not really ELF' > "$pkgdir/usr/lib/libfoo.so.1.2"
  ln -s libfoo.so.1.2 "$pkgdir/usr/lib/libfoo.so.1"
}
package_tool-old() {
  mkdir -p "$pkgdir/usr/bin"
  echo old > "$pkgdir/usr/bin/tool"
}
package_needs-foo() {
  depends=('libfoo.so=1-64')
  mkdir -p "$pkgdir/usr/share/needs-foo"
  echo x > "$pkgdir/usr/share/needs-foo/x"
}
`,
  },
  "tool-new": {
    ext: ".pkg.tar.xz",
    pkgbuild: `pkgname=tool-new
pkgver=2.0
pkgrel=1
arch=('x86_64')
replaces=('tool-old<1:2.0')
conflicts=('tool-old')
provides=('tool-old=1:2.0')
options=(!strip !debug)
package() {
  mkdir -p "$pkgdir/usr/bin" "$pkgdir/usr/share/doc/tool-new"
  echo new > "$pkgdir/usr/bin/tool"
  echo readme > "$pkgdir/usr/share/doc/tool-new/README"
}
`,
  },
  "demo-1.1": {
    ext: ".pkg.tar.gz",
    pkgbuild: `pkgname=demo
epoch=1
pkgver=1.1
pkgrel=1
arch=('x86_64')
depends=('libfoo')
backup=('etc/demo.conf')
options=(!strip !debug)
package() {
  mkdir -p "$pkgdir/usr/bin" "$pkgdir/etc"
  printf '#!/bin/sh\\necho demo 1.1\\n' > "$pkgdir/usr/bin/demo"
  chmod 4755 "$pkgdir/usr/bin/demo"
  ln -s demo "$pkgdir/usr/bin/demo-link"
  echo 'setting = 2' > "$pkgdir/etc/demo.conf"
}
`,
  },
  extra: {
    ext: ".pkg.tar",
    pkgbuild: `pkgname=extra
pkgver=0.9
pkgrel=2
arch=('any')
options=(!strip !debug)
package() {
  mkdir -p "$pkgdir/usr/share/extra"
  echo data > "$pkgdir/usr/share/extra/data"
}
`,
  },
}

let base = ""
/** Every package built, by file name. */
const built = new Map<string, string>()
const pkg = (prefix: string) => [...built.entries()].find(([name]) => name.startsWith(prefix))![1]

const makepkg = (dir: string, ext: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const [cmd, args] = asRoot ? ["setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "makepkg"]] : ["makepkg", []]
    const env = { ...process.env, HOME: dir, PKGDEST: path.join(dir, "out"), SRCDEST: path.join(dir, "src"), BUILDDIR: path.join(dir, "build"), PKGEXT: ext, LC_ALL: "C" }
    execFile(cmd as string, [...(args as string[]), "--nodeps", "--noconfirm"], { cwd: dir, env }, (e, stdout, stderr) =>
      e ? reject(new Error(`makepkg in ${dir} failed: ${stderr}${stdout}`)) : resolve(),
    )
  })

beforeAll(async () => {
  if (!hasMakepkg) return
  base = fs.mkdtempSync(path.join(os.tmpdir(), "conary-arch-"))
  for (const [name, { pkgbuild }] of Object.entries(PKGBUILDS)) {
    const dir = path.join(base, name)
    fs.mkdirSync(path.join(dir, "out"), { recursive: true })
    fs.writeFileSync(path.join(dir, "PKGBUILD"), pkgbuild)
    fs.writeFileSync(path.join(dir, "demo.install"), "post_install() {\n  echo installed\n}\n")
  }
  if (asRoot) execFileSync("chown", ["-R", `${NOBODY}:${NOBODY}`, base])
  await Promise.all(
    Object.entries(PKGBUILDS).map(async ([name, { ext }]) => {
      const dir = path.join(base, name)
      await makepkg(dir, ext)
      for (const f of fs.readdirSync(path.join(dir, "out"))) built.set(f, path.join(dir, "out", f))
    }),
  )
}, 120_000)

afterAll(() => {
  if (base) fs.rmSync(base, { recursive: true, force: true })
})

/** What `bsdtar -xpf` of each package makes of an empty directory, without the metadata dot files. */
const bsdtarExtract = (pkgs: string[], into: string) => {
  fs.mkdirSync(into, { recursive: true })
  for (const p of pkgs) execFileSync("bsdtar", ["-xpf", p, "-C", into])
  for (const name of fs.readdirSync(into)) if (name.startsWith(".")) fs.rmSync(path.join(into, name), { recursive: true })
  return into
}

const owners = (root: string, listing: Record<string, unknown>) =>
  Object.fromEntries(Object.keys(listing).map((p) => {
    const st = fs.lstatSync(path.join(root, p))
    return [p, `${st.uid}:${st.gid}`]
  }))

const copyInto = (repo: string, ...files: string[]) => {
  for (const f of files) fs.copyFileSync(f, path.join(repo, path.basename(f)))
}

describe.skipIf(mustSkip(hasMakepkg, "Arch packages", "makepkg or bsdtar is missing", "apt-get install makepkg libarchive-tools"))("Arch packages", () => {
  it("installs makepkg's packages (every compression) exactly as bsdtar -xpf extracts them; updates, and a replacement takes the old one's place", () => {
    const { base: work, root, repo, r } = setupRoot()
    const first = [pkg("demo-1:1.0"), pkg("libfoo-"), pkg("tool-old-")]
    copyInto(repo, ...first)
    ok(["source", "sync", ...r])
    ok(["desired", "add", "demo", "tool-old", ...r])
    const plan = ok(["plan", ...r])
    expect(plan).toContain("+ demo 1:1.0-1 [is: x86_64] [scripts not run]")
    // demo's `libfoo>=1:1.0` and `libfoo<1:2` pulled libfoo in (`libfoo<2` would not: the epoch outranks)
    expect(plan).toContain("+ libfoo 1:1.0-1 [is: x86_64]")
    ok(["apply", ...r])
    const mine = listTree(root, undefined, { times: true })
    const reference = bsdtarExtract(first, path.join(work, "reference"))
    expect(mine).toEqual(listTree(reference, "\0", { times: true }))
    expect(mine["usr/bin/demo"]!.mode).toBe(0o4755)
    expect(mine["usr/bin/demo-hard"]!.linkedTo).toBe("usr/bin/demo")
    expect(mine["usr/share/demo/read me"]).toBeDefined()
    if (asRoot) expect(owners(root, mine)).toEqual(owners(reference, mine))
    expect(conary(["verify", ...r]).code).toBe(0)

    const demo = JSON.parse(ok(["show", "demo", "--json", "--files", ...r]))
    expect(demo.flavor).toBe("is: x86_64")
    expect(demo.requires).toEqual(["libfoo (>= 1:1.0)", "libfoo (<< 1:2)"])
    expect(demo.optional).toEqual(["tool-old"])
    expect(demo.conflicts).toEqual(["demo-git"])
    expect(demo.files.filter((f: { config: boolean }) => f.config).map((f: { path: string }) => f.path)).toEqual(["/etc/demo.conf"])
    expect(demo.scripts).toEqual({ install: "post_install() {\n  echo installed\n}\n" })
    expect(ok(["show", "demo", "--scripts", ...r])).toContain("--- install ---\npost_install() {")
    const libfoo = JSON.parse(ok(["show", "libfoo", "--json", ...r]))
    expect(libfoo.provides).toEqual(["soname: libfoo.so.1()(64bit)"])

    // An update (gzip), a replacement (xz) and an `any` package (plain tar).
    const second = [pkg("demo-1:1.1"), pkg("libfoo-"), pkg("tool-new-"), pkg("extra-")]
    copyInto(repo, ...second)
    ok(["source", "sync", ...r])
    ok(["desired", "add", "extra", ...r])
    const update = ok(["plan", ...r])
    expect(update).toContain("~ demo 1:1.0-1 [is: x86_64] → 1:1.1-1 [is: x86_64]")
    expect(update).toContain("+ tool-new 2.0-1 [is: x86_64]")
    expect(update).toContain("- tool-old 1:1.0-1 [is: x86_64]")
    expect(update).toContain("+ extra 0.9-2\n")
    ok(["apply", ...r])
    // (without times: a file an update leaves unchanged, demo-link here, is not rewritten and keeps its mtime)
    expect(listTree(root)).toEqual(listTree(bsdtarExtract(second, path.join(work, "reference2")), "\0"))
    expect(conary(["verify", ...r]).code).toBe(0)
    // Stable: the desired row still names tool-old, and nothing is left to do.
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
    expect(JSON.parse(ok(["list", "--json", ...r])).troves.map((t: { name: string; reason: string }) => `${t.name} ${t.reason}`)).toEqual([
      "demo explicit",
      "extra explicit",
      "libfoo dependency",
      "tool-new explicit",
    ])
  })

  it("refuses hostile packages with one line each, naming the bad field or path, and indexes the good ones beside them", async () => {
    const { base: work, root, repo, r } = setupRoot()
    const p = (n: string) => path.join(repo, n)
    /** A makepkg package unpacked, changed, and packed again as makepkg packs it (bsdtar, compression by suffix). */
    const repack = (from: string, out: string, change: (dir: string) => void) => {
      const dir = fs.mkdtempSync(path.join(work, "repack-"))
      execFileSync("bsdtar", ["-xpf", from, "-C", dir])
      change(dir)
      execFileSync("bsdtar", ["-C", dir, "-caf", out, ...fs.readdirSync(dir).sort()])
      return out
    }
    const pkginfo = (dir: string, edit: (text: string) => string) =>
      fs.writeFileSync(path.join(dir, ".PKGINFO"), edit(fs.readFileSync(path.join(dir, ".PKGINFO"), "utf8")))
    const needsFoo = pkg("needs-foo-")
    const expected: Array<[string, RegExp]> = []

    // Good: makepkg's soname dependency and its provider, and a file dependency written by hand (makepkg's lint refuses one).
    copyInto(repo, needsFoo, pkg("libfoo-"))
    repack(needsFoo, p("needs-file-1.0-1-x86_64.pkg.tar.zst"), (d) =>
      pkginfo(d, (t) => t.replace("pkgname = needs-foo", "pkgname = needs-file").replace("depend = libfoo.so=1-64", "depend = /usr/bin/sh")))

    repack(pkg("demo-1:1.0"), p("digest.pkg.tar.zst"), (d) => fs.appendFileSync(path.join(d, "etc/demo.conf"), "evil = 1\n"))
    expected.push(["digest.pkg.tar.zst", /content of \/etc\/demo\.conf does not match its \.MTREE sha256digest$/])
    repack(needsFoo, p("stray.pkg.tar.xz"), (d) => fs.writeFileSync(path.join(d, "usr/share/needs-foo/stray"), "x"))
    expected.push(["stray.pkg.tar.xz", /\/usr\/share\/needs-foo\/stray is not listed in \.MTREE$/])
    repack(needsFoo, p("no-mtree.pkg.tar.zst"), (d) => fs.rmSync(path.join(d, ".MTREE")))
    expected.push(["no-mtree.pkg.tar.zst", /has no \.MTREE/])
    const fields: Array<[string, (t: string) => string, RegExp]> = [
      ["slash", (t) => t.replace("pkgname = needs-foo", "pkgname = ../evil"), /\.PKGINFO field 'pkgname' value '\.\.\/evil' is not a safe package name/],
      ["control", (t) => t.replace("pkgname = needs-foo", "pkgname = ev\x1bil"), /\.PKGINFO field 'pkgname' value 'ev\\x1bil' is not a safe package name/],
      ["empty", (t) => t.replace("pkgname = needs-foo", "pkgname = "), /\.PKGINFO field 'pkgname' value '' is not a safe package name/],
      ["twice", (t) => t + "pkgname = other\n", /\.PKGINFO field 'pkgname' is given twice/],
      ["no-version", (t) => t.replace(/^pkgver = .*\n/m, ""), /\.PKGINFO has no 'pkgver' field/],
      ["no-rel", (t) => t.replace(/^pkgver = .*$/m, "pkgver = 1.0"), /field 'pkgver' value '1\.0': not of the form \[epoch:\]pkgver-pkgrel/],
      ["bad-rel", (t) => t.replace(/^pkgver = .*$/m, "pkgver = 1.0-1a"), /field 'pkgver' value '1\.0-1a': pkgrel must be of the form 'integer\[\.integer\]'/],
      ["bad-epoch", (t) => t.replace(/^pkgver = .*$/m, "pkgver = x:1.0-1"), /field 'pkgver' value 'x:1\.0-1': epoch must be an integer/],
      ["bad-dep", (t) => t + "depend = lib foo\n", /field 'depend' value 'lib foo' is not a dependency/],
    ]
    for (const [name, edit, pattern] of fields) {
      repack(needsFoo, p(`${name}.pkg.tar.gz`), (d) => pkginfo(d, edit))
      expected.push([`${name}.pkg.tar.gz`, pattern])
    }
    // Paths a tar can hold but an Arch package must not (bsdtar would strip them: written raw).
    const pkginfoText = execFileSync("bsdtar", ["-xOf", needsFoo, ".PKGINFO"])
    for (const [name, entry] of [["dotdot", "../etc/evil"], ["absolute", "/etc/evil"], ["deep-dotdot", "usr/../../etc/evil"]] as const) {
      fs.writeFileSync(p(`${name}.pkg.tar.zst`), compress(await plainTar([{ name: ".PKGINFO", data: pkginfoText }, { name: entry, data: Buffer.from("evil") }]), "zstd"))
      expected.push([`${name}.pkg.tar.zst`, new RegExp(`unsafe path '${entry.replace(/\./g, "\\.")}' \\(absolute or with '\\.\\.'\\)`)])
    }
    // Cut short, in two compressions.
    for (const [from, name] of [[pkg("tool-new-"), "cut.pkg.tar.xz"], [pkg("demo-1:1.0"), "cut.pkg.tar.zst"]] as const) {
      const whole = fs.readFileSync(from)
      fs.writeFileSync(p(name), whole.subarray(0, Math.floor(whole.length * 0.6)))
      expected.push([name, /truncated archive \(its compressed data ends early\)/])
    }
    // A decompression bomb: the 600 MiB of zeros of the .deb bomb fixture's data.tar.zst, as an Arch package.
    const bombDeb = path.join(import.meta.dirname, "fixtures/bombs/bomb-zst.deb")
    const data = readArMembers(bombDeb).find((m) => m.name === "data.tar.zst")!
    fs.writeFileSync(p("bomb.pkg.tar.zst"), fs.readFileSync(bombDeb).subarray(data.offset, data.offset + data.size))
    expected.push(["bomb.pkg.tar.zst", /unpacks to more than \d+ bytes \(decompression bomb\?\)/])

    const res = conary(["source", "sync", ...r])
    expect(res.code).toBe(1)
    const lines = res.stderr.trim().split("\n")
    for (const [name, pattern] of expected) {
      const line = lines.find((l) => l.startsWith(`conary: archive ${p(name)}: `))
      expect(line, name).toMatch(pattern)
    }
    expect(lines).toHaveLength(expected.length)
    expect(res.stderr).not.toMatch(/\n\s+at /)
    expect(JSON.parse(ok(["source", "list", "--json", ...r])).sources[0].troves).toBe(3)
    expect(Object.keys(listTree(root))).toEqual([])
    expect(JSON.parse(ok(["show", "needs-foo", "--json", ...r])).requires).toEqual(["soname: libfoo.so.1()(64bit)"])
    expect(JSON.parse(ok(["show", "needs-file", "--json", ...r])).requires).toEqual(["file: /usr/bin/sh"])
    // The soname pulls in the package that provides it; the file dependency names its class until something provides the path.
    ok(["desired", "add", "needs-foo", "needs-file", ...r])
    const unmet = conary(["plan", ...r])
    expect(unmet.code).toBe(1)
    expect(unmet.stderr).toContain("needs-file=1:1.0-1 needs file: /usr/bin/sh, which no trove owns and no provide gives")
    ok(["provide", "add", "file: /usr/bin/sh", ...r])
    expect(ok(["plan", ...r])).toContain("+ libfoo 1:1.0-1 [is: x86_64]")
  }, 120_000)

  it("orders versions as pacman's vercmp does, on 10,000 generated pairs", async () => {
    // A small deterministic generator (xorshift) of versions near each other: epochs, releases,
    // leading zeros, letters, runs of separators, and characters pacman treats as separators.
    let seed = 20_20
    const rand = (n: number) => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % n
    }
    const pick = <T>(xs: readonly T[]) => xs[rand(xs.length)]!
    const segment = () => pick([() => String(rand(12)), () => "0" + rand(10), () => pick(["a", "b", "rc", "alpha", "pre", "z"]), () => String(rand(1000))])()
    const pkgver = () => {
      let v = segment()
      for (let i = rand(4); i > 0; i--) v += pick([".", ".", ".", "_", "+", "~", "..", "", "é"]) + segment()
      return v
    }
    const version = () => `${pick(["", "", "", "1:", "2:", "0:", "01:", ":"])}${pkgver()}${pick(["", "-1", "-2", "-1.1", "-10", "-0"])}`
    const mutate = (v: string) => {
      const i = rand(v.length + 1)
      return pick([() => v.slice(0, i) + segment() + v.slice(i), () => v.slice(0, i) + v.slice(i + 1), () => v + pick([".0", "a", "-1", ".1"]), () => version()])()
    }
    const pairs: Array<[string, string]> = []
    // (not empty, and not starting with '-', which the shell loop or vercmp would take otherwise)
    const usable = (v: string) => v !== "" && !v.startsWith("-")
    while (pairs.length < 10_000) {
      const a = version()
      const b = rand(5) === 0 ? a : mutate(a)
      if (usable(a) && usable(b)) pairs.push([a, b])
    }
    // vercmp takes one pair per process: four shell loops of 2,500 each.
    const chunks = [0, 1, 2, 3].map((k) => pairs.slice(k * 2500, (k + 1) * 2500))
    const outputs = await Promise.all(
      chunks.map(
        (chunk) =>
          new Promise<string>((resolve, reject) => {
            const child = execFile("sh", ["-c", 'while read -r a b; do vercmp "$a" "$b"; done'], { maxBuffer: 1 << 24 }, (e, out) => (e ? reject(e) : resolve(out)))
            child.stdin!.end(chunk.map(([a, b]) => `${a} ${b}\n`).join(""))
          }),
      ),
    )
    const theirs = outputs.join("").trim().split("\n").map(Number)
    expect(theirs).toHaveLength(pairs.length)
    const differ = pairs.filter(([a, b], i) => Math.sign(compareAlpm(a, b)) !== theirs[i]).slice(0, 5)
    expect(differ).toEqual([])
    // The generator reaches every outcome.
    expect(new Set(theirs)).toEqual(new Set([-1, 0, 1]))
  }, 60_000)
})
