import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Readable } from "node:stream"
import * as zlib from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { compareRpm, rpmvercmp } from "../src/desired/version.js"
import { ArchiveError } from "../src/errors.js"
import { decompressor } from "../src/source/decompress.js"
import { SONAME, richAlternatives, rpmDeps } from "../src/source/rpm-deps.js"
import { readRpm } from "../src/source/rpm.js"
import { type Listing, conary, listTree, ok, setupRoot } from "./helpers.js"
import { cpio, mainHeaderAt, rawRpm, rpm2cpio, rpmbuild } from "./rpm-helpers.js"

// .rpm packages as troves, against rpm's own tools: rpmbuild makes the
// fixtures, `rpm2cpio | cpio -idm` is the reference extraction, rpm's Lua
// rpm.vercmp the reference ordering.

let top: string
const built: Record<string, string> = {}

/** A package with a bit of everything rpm's %files knows. */
const toolSpec = (name: string, version: string, extra = "") => `
Name: ${name}
Version: ${version}
Release: 1
Summary: t
License: MIT AND (GPL-2.0-or-later OR BSD-3-Clause)
AutoReqProv: no
${extra}
%description
t
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/usr/share/doc/${name} %{buildroot}/var/lib/${name}
printf '#!/bin/sh\\necho ${name}\\n' > %{buildroot}/usr/bin/${name}
chmod 4755 %{buildroot}/usr/bin/${name}
ln %{buildroot}/usr/bin/${name} %{buildroot}/usr/bin/${name}-again
ln -s ${name} %{buildroot}/usr/bin/${name}-link
seq 1 30000 > %{buildroot}/usr/share/${name}-data
printf 'setting = 1\\n#\\nother = 1\\n' > %{buildroot}/etc/${name}.conf
echo 'rc = 1' > %{buildroot}/etc/${name}.rc
echo readme > %{buildroot}/usr/share/doc/${name}/README
touch %{buildroot}/var/lib/${name}/state
%files
/usr/bin/${name}
/usr/bin/${name}-again
/usr/bin/${name}-link
%attr(0640,nobody,nogroup) /usr/share/${name}-data
%config(noreplace) /etc/${name}.conf
%config /etc/${name}.rc
%doc /usr/share/doc/${name}/README
%dir %attr(0700,root,root) /var/lib/${name}
%ghost /var/lib/${name}/state
`

const PAYLOADS = { gz: "w9.gzdio", xz: "w6.xzdio", zst: "w19.zstdio", bz2: "w9.bzdio" } as const
const VERSIONS = { gz: ["1.0~rc1", "Epoch: 1"], xz: ["1.0^git5", ""], zst: ["2.0", ""], bz2: ["1.0", ""] } as const

beforeAll(() => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), "conary-rpm-"))
  for (const [z, payload] of Object.entries(PAYLOADS)) {
    const [version, extra] = VERSIONS[z as keyof typeof VERSIONS]
    built[`tool-${z}`] = rpmbuild(top, `tool-${z}`, toolSpec(`tool-${z}`, version, extra), payload)[0]!
  }
  // tool-gz's successor under a new name: Obsoletes it, ships its config file (with a new line).
  built.newtool = rpmbuild(top, "newtool", `
Name: newtool
Version: 2.0
Release: 1
Summary: t
License: MIT
BuildArch: noarch
AutoReqProv: no
Obsoletes: tool-gz < 1:2
Provides: tool-gz = 1:2.0
%description
t
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc
echo new > %{buildroot}/usr/bin/newtool
printf 'setting = 1\\n#\\nother = 2\\n' > %{buildroot}/etc/tool-gz.conf
%files
/usr/bin/newtool
%config(noreplace) /etc/tool-gz.conf
`)[0]!
  // rpmbuild's own dependency generators: an ELF binary (sonames) and a shell script (/bin/sh).
  built.deps = rpmbuild(top, "deps", `
Name: deps
Version: 3.1
Release: 2
Summary: t
License: GPL-2.0-only
Requires: (libfoo or libbar >= 2)
Requires: plain > 1.0, strict < 4
Conflicts: old-deps <= 1.5
Provides: deps-api = 7
%description
t
%install
mkdir -p %{buildroot}/usr/bin
cp /usr/bin/true %{buildroot}/usr/bin/deps-true
printf '#!/bin/sh\\nexit 0\\n' > %{buildroot}/usr/bin/deps-script
chmod 755 %{buildroot}/usr/bin/deps-script
%post
echo configured
%triggerin -- tool-gz
echo triggered
%files
/usr/bin/deps-true
/usr/bin/deps-script
`)[0]!
  built.rich = rpmbuild(top, "rich", `
Name: rich
Version: 1
Release: 1
Summary: t
License: MIT
BuildArch: noarch
Requires: (libfoo and libbar)
%description
t
%files
`)[0]!
  // An unversioned provide and a versioned requirement of it.
  for (const [name, dep] of [["vprov", "Provides: vfoo"], ["vreq", "Requires: vfoo >= 2.0"]] as const)
    built[name] = rpmbuild(top, name, `
Name: ${name}
Version: 1
Release: 1
Summary: t
License: MIT
BuildArch: noarch
${dep}
%description
t
%files
`)[0]!
}, 120_000)

afterAll(() => {
  if (top) fs.rmSync(top, { recursive: true, force: true })
})

/** GNU cpio does not restore a symlink's mtime (rpm and conary do): compare the rest. */
const withoutLinkTimes = (listing: Listing): Listing =>
  Object.fromEntries(Object.entries(listing).map(([p, e]) => [p, e.type === "symlink" ? { ...e, mtime: undefined } : e]))

const asRoot = process.getuid?.() === 0

const owners = (root: string, listing: Listing) =>
  Object.fromEntries(Object.keys(listing).map((p) => {
    const st = fs.lstatSync(path.join(root, p))
    return [p, `${st.uid}:${st.gid}`]
  }))

const copyInto = (repo: string, ...names: string[]) => names.map((n) => {
  const to = path.join(repo, path.basename(built[n]!))
  fs.copyFileSync(built[n]!, to)
  return to
})

describe("rpm packages", () => {
  it("installs every payload compressor as rpm2cpio | cpio -idm extracts it; ghosts listed, never on disk", () => {
    const { base, root, repo, r } = setupRoot()
    const names = Object.keys(PAYLOADS).map((z) => `tool-${z}`)
    const rpms = copyInto(repo, ...names)
    ok(["source", "sync", ...r])
    ok(["desired", "add", ...names, ...r])
    const plan = ok(["plan", ...r])
    expect(plan).toContain("+ tool-gz 1:1.0~rc1-1 [is: x86_64]")
    expect(plan).toContain("+ tool-xz 1.0^git5-1 [is: x86_64]")
    ok(["apply", ...r])
    const mine = listTree(root, undefined, { times: true })
    const reference = rpm2cpio(rpms, path.join(base, "reference"))
    expect(withoutLinkTimes(mine)).toEqual(withoutLinkTimes(listTree(reference, "\0", { times: true })))
    expect(mine["usr/bin/tool-zst-again"]!.linkedTo).toBe("usr/bin/tool-zst")
    expect(mine["usr/bin/tool-bz2"]!.mode).toBe(0o4755)
    expect(mine["var/lib/tool-xz"]!.mode).toBe(0o700)
    expect(mine["var/lib/tool-xz/state"]).toBeUndefined()
    if (asRoot) expect(owners(root, mine)).toEqual(owners(reference, mine))
    else console.log("owners not compared: not running as root")

    const show = JSON.parse(ok(["show", "tool-xz", "--json", "--files", ...r]))
    const file = (p: string) => show.files.find((f: { path: string }) => f.path === p)
    expect(file("/var/lib/tool-xz/state")).toMatchObject({ ghost: true, kind: "file" })
    expect(file("/etc/tool-xz.conf").config).toBe(true)
    expect(file("/etc/tool-xz.rc").config).toBe(true)
    expect(file("/usr/share/doc/tool-xz/README").component).toBe("doc")
    expect(show.provides).toContain("tool-xz (= 1.0^git5-1)")
    expect(ok(["show", "tool-xz", "--files", ...r])).toContain("/var/lib/tool-xz/state (ghost: owned, not installed)")
    // An absent ghost is no drift; one the software made is owned, not stray.
    expect(conary(["verify", ...r]).code).toBe(0)
    fs.writeFileSync(path.join(root, "var/lib/tool-xz/state"), "made at run time")
    fs.writeFileSync(path.join(root, "var/lib/tool-xz/stray"), "x")
    const unowned = conary(["verify", "--unowned", "--json", ...r])
    expect(JSON.parse(unowned.stdout).unowned).toEqual(["/var/lib/tool-xz/stray"])
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
  })

  it("installs a file whose name starts with a byte order mark under that name, as rpm2cpio | cpio -idm does", () => {
    const { base, root, repo, r } = setupRoot()
    // U+FEFF, which a UTF-8 decoder drops at the start of a text unless told not to
    const rpm = rawRpm(path.join(repo, "bom-1.0-1.noarch.rpm"), { name: "bom", files: [{ path: "/usr/share/\uFEFFbom", mode: 0o100644, data: Buffer.from("bom\n") }] })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "bom", ...r])
    ok(["apply", ...r])
    expect(listTree(root)).toEqual(listTree(rpm2cpio([rpm], path.join(base, "reference")), "\0"))
    expect(fs.readFileSync(path.join(root, "usr/share/\uFEFFbom"), "utf8")).toBe("bom\n")
  })

  it("orders versions as rpm does, on 10,000 generated pairs checked by rpm's own rpm.vercmp in one process", () => {
    let seed = 20
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    const ALPHABET = ["0", "1", "2", "9", "10", "007", "a", "b", "rc", "Z", ".", ".", "~", "^", "_", "+", "1.0", "~rc", "^git"]
    const part = () => Array.from({ length: 1 + rand(4) }, () => ALPHABET[rand(ALPHABET.length)]).join("")
    const evr = (release: boolean) => `${rand(4) === 0 ? `${rand(3)}:` : ""}${part()}${release ? `-${part()}` : ""}`
    const pairs: Array<[string, string]> = []
    for (let i = 0; i < 10_000; i++) {
      // rpm.vercmp compares a missing release as empty, rpm's dependency check skips it: only same-shaped pairs here
      const release = rand(2) === 0
      const a = evr(release)
      pairs.push([a, rand(8) === 0 ? a : evr(release)])
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "conary-vercmp-"))
    try {
      fs.writeFileSync(path.join(dir, "pairs"), pairs.map(([a, b]) => `${a} ${b}\n`).join(""))
      fs.writeFileSync(path.join(dir, "cmp.lua"), `local out = {}
for line in io.lines(${JSON.stringify(path.join(dir, "pairs"))}) do
  local a, b = line:match("^(%S+) (%S+)$")
  out[#out + 1] = tostring(rpm.vercmp(a, b))
end
print(table.concat(out, " "))
`)
      const theirs = execFileSync("rpm", ["--eval", `%{lua: dofile(${JSON.stringify(path.join(dir, "cmp.lua"))})}`], { encoding: "utf8" }).trim().split(" ").map(Number)
      expect(theirs).toHaveLength(pairs.length)
      const mismatches = pairs.filter(([a, b], i) => Math.sign(compareRpm(a, b)) !== theirs[i]).map(([a, b], i) => `${a} vs ${b}: rpm ${theirs[i]}`)
      expect(mismatches.slice(0, 10)).toEqual([])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
    // The cases the scheme exists for, spelled out.
    expect(rpmvercmp("1.0~rc1", "1.0")).toBe(-1)
    expect(rpmvercmp("1.0^git1", "1.0")).toBe(1)
    expect(rpmvercmp("1.0^git1", "1.0.1")).toBe(-1)
    expect(compareRpm("1:1.0-1", "2.0-1")).toBe(1)
    // A requirement without a release is met by any release, as rpm's dependency check says.
    expect(compareRpm("1.0-3", "1.0")).toBe(0)
  })

  it("Obsoletes: the successor takes the obsoleted package's place on update, and the admin's config edit with it", () => {
    const { root, repo, r } = setupRoot()
    copyInto(repo, "tool-gz")
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool-gz", ...r])
    ok(["apply", ...r])
    fs.writeFileSync(path.join(root, "etc/tool-gz.conf"), "setting = 2\n#\nother = 1\n")
    copyInto(repo, "newtool")
    ok(["source", "sync", ...r])
    const plan = ok(["plan", ...r])
    expect(plan).toContain("+ newtool 2.0-1")
    expect(plan).toContain("- tool-gz 1:1.0~rc1-1")
    ok(["apply", ...r])
    // changed locally and by the package: merged
    expect(fs.readFileSync(path.join(root, "etc/tool-gz.conf"), "utf8")).toBe("setting = 2\n#\nother = 2\n")
    expect(fs.existsSync(path.join(root, "usr/bin/tool-gz"))).toBe(false)
    expect(JSON.parse(ok(["list", "--json", ...r])).troves).toEqual([expect.objectContaining({ name: "newtool", reason: "explicit" })])
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
    // A row pinning the old version keeps it, and then the two cannot be installed together.
    ok(["desired", "add", "newtool", "tool-gz=1:1.0~rc1", ...r])
    expect(conary(["plan", ...r]).stderr).toContain("newtool=2.0-1 conflicts with tool-gz=1:1.0~rc1-1 (tool-gz (<< 1:2))")
  })

  it("writes rpm's dependencies as conary's: soname and file classes, relations, rich 'or', rpmlib dropped; scripts and triggers shown", async () => {
    const { repo, r } = setupRoot()
    copyInto(repo, "deps")
    ok(["source", "sync", ...r])
    const show = JSON.parse(ok(["show", "deps", "--json", ...r]))
    expect(show.requires).toEqual(expect.arrayContaining(["libfoo | libbar (>= 2)", "plain (>> 1.0)", "strict (<< 4)", "file: /bin/sh"]))
    expect(show.requires.some((d: string) => /^soname: libc\.so\.6\(GLIBC_2\.\d+\)\(64bit\)$/.test(d))).toBe(true)
    expect(show.requires.filter((d: string) => d.includes("rpmlib"))).toEqual([])
    expect(show.provides).toEqual(expect.arrayContaining(["deps (= 3.1-2)", "deps(x86-64) (= 3.1-2)", "deps-api (= 7)"]))
    const scripts = ok(["show", "deps", "--scripts", ...r])
    expect(scripts).toContain("--- postin ---\n#!/bin/sh\necho configured")
    expect(scripts).toContain("--- triggerin -- tool-gz ---\n#!/bin/sh\necho triggered")
    expect(ok(["plan", ...r])).not.toContain("deps")
    // Installed once the base system provides what it needs, by class.
    ok(["desired", "add", "deps", ...r])
    expect(conary(["plan", ...r]).stderr).toContain("deps=3.1-2 needs file: /bin/sh, which no trove owns and no provide gives")
    ok(["provide", "add", "file: /bin/sh", "libbar", "plain", "strict", "rtld(GNU_HASH)", ...show.requires.filter((d: string) => d.startsWith("soname: ")), ...r])
    expect(ok(["plan", ...r])).toContain("+ deps 3.1-2 [is: x86_64] [scripts not run]")
    // The License tag is read (the trove model has no field for it yet).
    expect((await readRpm(built.deps!)).license).toBe("GPL-2.0-only")
  })

  it("an unversioned provide meets a versioned requirement, as rpm itself decides", () => {
    // rpm's own verdict on the same two packages, in a scratch root (--test installs nothing).
    const scratch = fs.mkdtempSync(path.join(top, "rpmroot-"))
    const rpmTest = (...pkgs: string[]) => {
      try {
        execFileSync("rpm", ["--root", scratch, "-i", "--test", "--nosignature", ...pkgs], { stdio: "pipe" })
        return true
      } catch {
        return false
      }
    }
    expect(rpmTest(built.vreq!)).toBe(false)
    expect(rpmTest(built.vreq!, built.vprov!)).toBe(true)
    const { repo, r } = setupRoot()
    copyInto(repo, "vreq")
    ok(["source", "sync", ...r])
    ok(["desired", "add", "vreq", ...r])
    expect(conary(["plan", ...r]).stderr).toContain("vreq=1-1 requires vfoo (>= 2.0): not available")
    copyInto(repo, "vprov")
    ok(["source", "sync", ...r])
    expect(ok(["plan", ...r])).toContain("+ vprov 1-1")
  })

  it("recognises sonames and rich dependencies carefully", () => {
    for (const s of ["libc.so.6", "libc.so.6(GLIBC_2.34)(64bit)", "libfoo.so.1()(64bit)", "ld-linux-x86-64.so.2()(64bit)", "libfoo.so", "libstdc++.so.6(CXXABI_1.3.9)(64bit)"])
      expect(SONAME.test(s), s).toBe(true)
    for (const s of ["perl(foo.so)", "python3.11dist(x)", "foo.socket", "/usr/lib64/libfoo.so.1", "config(libfoo.so)", "libfoo.so.1 ()", "solr"])
      expect(SONAME.test(s), s).toBe(false)
    expect(richAlternatives("(a or (b >= 2 or c < 3))")).toEqual(["a", "b (>= 2)", "c (<< 3)"])
    expect(richAlternatives("(perl(Foo::Bar) or libfoo.so.1()(64bit))")).toEqual(["perl(Foo::Bar)", "soname: libfoo.so.1()(64bit)"])
    for (const s of ["(a and b)", "(a if b)", "(a or b", "(a or b) or c", "(a with b)"]) expect(richAlternatives(s), s).toBeUndefined()
    expect(rpmDeps({ names: ["a", "b", "c", "d"], flags: [2, 4, 10, 12], versions: ["1", "2", "3", "4"] })).toEqual(["a (<< 1)", "b (>> 2)", "c (<= 3)", "d (>= 4)"])
  })

  it("refuses hostile and broken packages with one line each, writing nothing, and indexes the good one beside them", () => {
    const { root, repo, r } = setupRoot()
    const [good] = copyInto(repo, "tool-bz2")
    const real = fs.readFileSync(good!)
    const p = (n: string) => path.join(repo, `${n}.rpm`)
    const expected: Array<[string, RegExp]> = []
    const put = (name: string, bytes: Buffer, pattern: RegExp) => {
      fs.writeFileSync(p(name), bytes)
      expected.push([name, pattern])
    }
    const main = mainHeaderAt(real)
    const patched = (at: number, value: number) => {
      const b = Buffer.from(real)
      b.writeUInt32BE(value, at)
      return b
    }
    put("cut-lead", real.subarray(0, 50), /truncated lead/)
    put("cut-header", real.subarray(0, main.offset + 200), /truncated header/)
    put("cut-payload", real.subarray(0, real.length - 500), /truncated archive/)
    put("not-rpm", Buffer.from("hello, world, this is not a package at all".repeat(4)), /not an rpm package \(bad lead magic\)/)
    // index entry 3 pointing far outside the store; a count that would mean gigabytes; a huge index
    put("offset", patched(main.offset + 16 + 3 * 16 + 8, 0x7fff0000), /header entry 3 \(tag \d+\) points outside the data store/)
    const int32At = (() => {
      for (let i = 0; i < main.entries; i++) if (real.readUInt32BE(main.offset + 16 + i * 16 + 4) === 4) return main.offset + 16 + i * 16 + 12
      throw new Error("no INT32 entry")
    })()
    put("count", patched(int32At, 0x40000000), /counts 1073741824 items, which would run past the end of the data store/)
    put("entries", patched(main.offset + 8, 0x00ffffff), /header has 16777215 index entries \(at most 65535 are read\)/)
    put("store", patched(main.offset + 12, 0x7fffffff), /header data store of 2147483647 bytes is larger than/)
    // a flipped byte in the header's data: its sha256 in the signature header no longer matches
    const flipped = Buffer.from(real)
    flipped[main.offset + 16 + main.entries * 16 + 5] ^= 0xff
    put("altered", flipped, /header does not match its sha256 digest/)

    const file = (path: string, data = "x") => ({ path, mode: 0o100644, data: Buffer.from(data) })
    rawRpm(p("dotdot"), { name: "dotdot", files: [file("/usr/x")], payload: zlib.gzipSync(cpio([{ name: "./usr/../../etc/evil", mode: 0o100644, data: Buffer.from("x") }])) })
    expected.push(["dotdot", /unsafe path '\.\/usr\/\.\.\/\.\.\/etc\/evil' \(absolute or with '\.\.'\)/])
    rawRpm(p("absolute"), { name: "absolute", files: [file("/usr/x")], payload: zlib.gzipSync(cpio([{ name: "/etc/evil", mode: 0o100644, data: Buffer.from("x") }])) })
    expected.push(["absolute", /unsafe path '\/etc\/evil' \(absolute or with '\.\.'\)/])
    rawRpm(p("header-dotdot"), { name: "header-dotdot", files: [file("/usr/../etc/evil")] })
    expected.push(["header-dotdot", /unsafe path '\.\/usr\/\.\.\/etc\/evil'/])
    rawRpm(p("stray"), { name: "stray", files: [file("/usr/x")], payload: zlib.gzipSync(cpio([{ name: "./usr/y", mode: 0o100644, data: Buffer.from("x") }])) })
    expected.push(["stray", /payload holds \/usr\/y, which the header does not list/])
    rawRpm(p("digest"), { name: "digest", files: [file("/usr/x")], payload: zlib.gzipSync(cpio([{ name: "./usr/x", mode: 0o100644, data: Buffer.from("y") }])) })
    expected.push(["digest", /content of \/usr\/x does not match its sha256 digest in the header/])
    rawRpm(p("device"), { name: "device", files: [{ path: "/dev/sda", mode: 0o060644 }] })
    expected.push(["device", /\/dev\/sda is a block device \(device nodes and fifos are not installed\)/])
    rawRpm(p("rpmlib"), { name: "rpmlib", files: [], extraTags: [[1049, { type: 8, values: ["rpmlib(Frobnicate)"] }], [1048, { type: 4, values: [(1 << 24) | 10] }], [1050, { type: 8, values: ["9.9-1"] }]] })
    expected.push(["rpmlib", /rpmlib: needs rpmlib\(Frobnicate\), a feature conary does not know/])
    fs.copyFileSync(built.rich!, p("rich"))
    expected.push(["rich", /rich: rich dependency '\(libfoo and libbar\)' cannot be written as a conary dependency/])
    // A decompression bomb: 600 MiB of zeros for one file, in gzip members of 1 MiB each (a few hundred KiB in all).
    const zeros = zlib.gzipSync(Buffer.alloc(1 << 20))
    const withTrailer = cpio([{ name: "./usr/zeros", mode: 0o100644, size: 600 << 20 }])
    const cpioHead = withTrailer.subarray(0, withTrailer.indexOf("070701", 1))
    rawRpm(p("bomb"), { name: "bomb", files: [{ path: "/usr/zeros", mode: 0o100644, size: 600 << 20 }], payload: Buffer.concat([zlib.gzipSync(cpioHead), ...Array.from({ length: 600 }, () => zeros)]) })
    expect(fs.statSync(p("bomb")).size).toBeLessThan(2 << 20)
    expected.push(["bomb", /unpacks to more than \d+ bytes \(decompression bomb\?\)/])

    const res = conary(["source", "sync", ...r])
    expect(res.code).toBe(1)
    const lines = res.stderr.trim().split("\n")
    expect(lines).toHaveLength(expected.length)
    for (const [name, pattern] of expected) expect(lines.find((l) => l.startsWith(`conary: archive ${p(name)}: `)), name).toMatch(pattern)
    expect(res.stderr).not.toMatch(/internal error|\n\s+at /)
    expect(JSON.parse(ok(["source", "list", "--json", ...r])).sources[0].troves).toBe(1)
    expect(Object.keys(listTree(root))).toEqual([])
  })

  it("zstd payloads are fed to the decoder block by block: several frames, skippable frames, a cut stream", async () => {
    const zstd = (data: Buffer, level: string) => execFileSync("zstd", ["-q", "-c", level], { input: data, maxBuffer: 1 << 28 })
    const a = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i * 7919}\n`).join(""))
    const b = Buffer.alloc(300_000, 7)
    const skippable = Buffer.alloc(8 + 5)
    skippable.writeUInt32LE(0x184d2a5e, 0)
    skippable.writeUInt32LE(5, 4)
    const unpack = async (input: Buffer) => {
      const out: Buffer[] = []
      // fed in odd slices, so no unit arrives whole
      const source = Readable.from(Array.from({ length: Math.ceil(input.length / 777) }, (_, i) => input.subarray(i * 777, i * 777 + 777)))
      for await (const c of source.pipe(decompressor("zstd"))) out.push(c as Buffer)
      return Buffer.concat(out)
    }
    const stream = Buffer.concat([zstd(a, "-19"), skippable, zstd(b, "-1"), zstd(Buffer.alloc(0), "-3")])
    expect((await unpack(stream)).equals(Buffer.concat([a, b]))).toBe(true)
    await expect(unpack(stream.subarray(0, stream.length - 100))).rejects.toThrow()
  })

  it("fuzz: flipped bytes and cuts of real and raw packages give a trove or a clean refusal, never a crash", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "conary-rpm-fuzz-"))
    try {
      // A raw package has no digests, so changes reach the cpio reader and the decompressor too.
      const raw = fs.readFileSync(rawRpm(path.join(dir, "raw.rpm"), { files: [{ path: "/usr/bin/x", mode: 0o100755, data: Buffer.from("#!/bin/sh\n".repeat(50)) }, { path: "/usr/bin/l", mode: 0o120777, link: "x" }] }))
      const sources = [fs.readFileSync(built["tool-zst"]!), fs.readFileSync(built.deps!), raw]
      let seed = 7
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n
      }
      const outcomes = { trove: 0, refused: 0 }
      for (let i = 0; i < 300; i++) {
        const src = sources[i % sources.length]!
        let bytes = Buffer.from(src)
        if (rand(4) === 0) bytes = bytes.subarray(0, rand(bytes.length))
        for (let k = 1 + rand(4); k > 0 && bytes.length > 0; k--) bytes[rand(bytes.length)] = rand(256)
        const f = path.join(dir, `fuzz-${i}.rpm`)
        fs.writeFileSync(f, bytes)
        try {
          const t = await readRpm(f)
          expect(t.name).toMatch(/^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/)
          outcomes.trove++
        } catch (e) {
          if (!(e instanceof ArchiveError)) throw new Error(`iteration ${i}: ${(e as Error).stack}`)
          expect(e.message).not.toContain("\n")
          outcomes.refused++
        }
        fs.rmSync(f)
      }
      expect(outcomes.refused).toBeGreaterThan(0)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
