import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { availableParallelism } from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { FETCH_LANES } from "../src/reconcile/fetch-local.js"
import { buildDeb } from "./deb-helpers.js"
import { REPO, buildTrove, conary, listTree, mustSkip, ok, onSmallDisk, setupRoot, sha256, stagedLeftovers, type TreeSpec, writeTree } from "./helpers.js"
import { rawRpm } from "./rpm-helpers.js"

// apply fetches from local archives on every core when there is enough to
// read (over 2 MiB of archives: src/source/archive-lanes.ts): each trove's
// contents are stored and written to their stage paths by this thread or a
// worker. What the workers write is installed byte for byte and vouched for
// by the stat cache only as written; a bad archive, a source that fails over
// to another, and a full disk end as they do on one thread.

// Incompressible contents (base64 of random bytes), so the archives are as large as their files.
const TROVES = 4
const NAMES = Array.from({ length: TROVES }, (_, t) => `t${t}`)
const treeOf = (t: number, shared: string, files = 4): TreeSpec => ({
  ...Object.fromEntries(Array.from({ length: files }, (_, f) => [`usr/share/t${t}/f${f}`, randomBytes(150_000).toString("base64")])),
  // one content in every trove: its stage paths go with the first trove sent, the rest are copied out of the store
  [`usr/share/t${t}/shared`]: shared,
  [`usr/share/t${t}/empty`]: "",
})

const setup = () => {
  const s = setupRoot()
  const shared = randomBytes(50_000).toString("base64")
  const trees = Array.from({ length: TROVES }, (_, t) => treeOf(t, shared))
  trees.forEach((tree, t) => buildTrove(s.repo, `t${t}`, "1.0-1-1", tree))
  const archives = fs.readdirSync(s.repo).map((f) => path.join(s.repo, f))
  expect(archives.reduce((n, a) => n + fs.statSync(a).size, 0)).toBeGreaterThan(2 * 2 ** 20)
  return { ...s, trees, archives }
}

/** Overwrites the middle of an archive, keeping its size and times (so its index entry stands). */
const corrupt = (archive: string) => {
  const st = fs.statSync(archive)
  const fd = fs.openSync(archive, "r+")
  fs.writeSync(fd, randomBytes(4096), 0, 4096, Math.floor(st.size / 2))
  fs.closeSync(fd)
  fs.utimesSync(archive, st.atime, st.mtime)
}

/** A copy of the repository as source "a" (tried before "local", by name), synced, with every trove desired; its archives. */
const mirrored = (s: ReturnType<typeof setupRoot>, names: string[]): string[] => {
  const mirror = path.join(s.base, "mirror")
  fs.mkdirSync(mirror)
  for (const f of fs.readdirSync(s.repo)) fs.copyFileSync(path.join(s.repo, f), path.join(mirror, f))
  ok(["source", "add", "a", mirror, ...s.r])
  ok(["source", "sync", ...s.r])
  ok(["desired", "add", ...names, ...s.r])
  return fs.readdirSync(mirror).map((f) => path.join(mirror, f))
}

/** Every file of `trees` is in the root byte for byte, and verify --full agrees. */
const expectInstalled = (root: string, r: string[], trees: TreeSpec[]) => {
  for (const tree of trees)
    for (const [rel, content] of Object.entries(tree)) expect(fs.readFileSync(path.join(root, rel), "utf8")).toBe(content as string)
  expect(ok(["verify", "--full", ...r])).toContain("no drift")
}

describe("apply's fetch from local archives on every core", () => {
  it("installs every content byte for byte, stores each, and the stat cache vouches only for what was written", () => {
    const { root, r, trees } = setup()
    ok(["source", "sync", ...r])
    ok(["desired", "add", ...trees.map((_, t) => `t${t}`), ...r])
    ok(["apply", ...r])
    for (const tree of trees)
      for (const [rel, content] of Object.entries(tree)) expect(fs.readFileSync(path.join(root, rel), "utf8")).toBe(content as string)
    expect(stagedLeftovers(root)).toEqual([])
    // Every content is in the store, whichever thread stored it (the empty one needs no object).
    for (const tree of trees)
      for (const content of Object.values(tree)) {
        const sha = sha256(content as string)
        if (content !== "") expect(fs.readFileSync(path.join(root, "var/lib/conary/store/objects", sha.slice(0, 2), sha.slice(2)), "utf8")).toBe(content)
      }
    expect(JSON.parse(ok(["verify", "--json", ...r])).summary.drifted).toBe(0)
    // Same size, same mtime, other bytes: the stat cache must not call it clean.
    const victim = path.join(root, "usr/share/t2/f1")
    const st = fs.statSync(victim)
    const bytes = fs.readFileSync(victim)
    bytes[100] = bytes[100] === 65 ? 66 : 65
    fs.writeFileSync(victim, bytes)
    fs.utimesSync(victim, st.atime, st.mtime)
    const drift = conary(["verify", ...r])
    expect(drift.code).not.toBe(0)
    expect(drift.stdout).toContain("/usr/share/t2/f1")
    ok(["apply", ...r])
    expect(fs.readFileSync(victim, "utf8")).toBe(trees[2]!["usr/share/t2/f1"] as string)
  })

  it("stores a content every trove has once per job sent before it was stored, not once per trove", () => {
    // More troves than jobs can be sent before the first reply: this thread's one, and two for each worker.
    const lanes = Math.min(availableParallelism(), FETCH_LANES)
    const troves = 2 * FETCH_LANES
    const s = setupRoot()
    const shared = randomBytes(50_000).toString("base64")
    const trees = Array.from({ length: troves }, (_, t) => treeOf(t, shared, 2))
    trees.forEach((tree, t) => buildTrove(s.repo, `t${t}`, "1.0-1-1", tree))
    ok(["source", "sync", ...s.r])
    ok(["desired", "add", ...trees.map((_, t) => `t${t}`), ...s.r])
    const log = path.join(s.base, "renames")
    fs.writeFileSync(log, "")
    const preload = path.join(import.meta.dirname, "fixtures/count-store-renames.cjs")
    const run = conary(["apply", ...s.r], { env: { NODE_OPTIONS: `--require ${preload}`, STORE_RENAMES_LOG: log } })
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    const stores = new Map<string, number>()
    for (const line of fs.readFileSync(log, "utf8").split("\n")) if (line !== "") stores.set(line, (stores.get(line) ?? 0) + 1)
    // The contents every trove has (the shared one, and the empty one, stored too); every other content once.
    const inEvery = new Set([shared, ""].map((c) => sha256(c).slice(2)))
    expect(stores.size).toBe(2 * troves + inEvery.size)
    for (const [object, count] of stores)
      if (inEvery.has(path.basename(object))) expect(count).toBeLessThanOrEqual(2 * lanes - 1)
      else expect(count).toBe(1)
    expectInstalled(s.root, s.r, trees)
  })

  it("stops at a trove's only archive that is corrupt, with one line naming it, and leaves the root as it was", () => {
    const { root, r, trees, archives } = setup()
    ok(["source", "sync", ...r])
    ok(["desired", "add", ...trees.map((_, t) => `t${t}`), ...r])
    const bad = archives.find((a) => path.basename(a).startsWith("t1-"))!
    corrupt(bad)
    const before = listTree(root)
    const run = conary(["apply", ...r])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(new RegExp(`^conary: archive ${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: [^\n]+\n$`))
    expect(listTree(root)).toEqual(before)
    expect(stagedLeftovers(root)).toEqual([])
    expect(JSON.parse(ok(["list", "--json", ...r])).troves).toEqual([])
  })

  it("takes a trove from its next source when the first one's archive is corrupt", () => {
    const s = setup()
    // Source "a" holds corrupt copies of every archive; "local" the good ones.
    for (const a of mirrored(s, NAMES)) corrupt(a)
    ok(["apply", ...s.r])
    expectInstalled(s.root, s.r, s.trees)
  })

  it("takes a trove from its next source when the first one's archive cannot be read, and names an unreadable only archive", () => {
    const s = setup()
    const { root, r, trees, archives } = s
    const t1 = mirrored(s, NAMES).find((a) => path.basename(a).startsWith("t1-"))!
    fs.chmodSync(t1, 0o000)
    // Run by root without the capability to read any file: mode 000 keeps the archive from it, not the store.
    const apply = () =>
      spawnSync("setpriv", ["--bounding-set=-dac_override,-dac_read_search", process.execPath, path.join(REPO, "bin/conary.js"), "apply", ...r], {
        encoding: "utf8",
        env: { ...process.env, NODE_EXTRA_CA_CERTS: "" },
      })
    const setpriv = spawnSync("setpriv", ["--bounding-set=-dac_override,-dac_read_search", "true"]).status === 0
    if (mustSkip(process.getuid?.() === 0 && setpriv, "an unreadable archive", "not root, or no setpriv", "run the tests as root, with util-linux")) return
    // The mirror alone: its unreadable archive stops apply, naming it.
    ok(["source", "remove", "local", ...r])
    const refused = apply()
    expect(refused.status).toBe(1)
    expect(refused.stderr).toBe(`conary: archive ${t1}: permission denied (open)\n`)
    ok(["source", "add", "local", path.dirname(archives[0]!), ...r])
    ok(["source", "sync", ...r])
    const applied = apply()
    expect(applied.stderr).toBe("")
    expect(applied.status).toBe(0)
    expectInstalled(root, r, trees)
  })

  it("refuses a fifo put in place of an archive since sync instead of waiting on it forever, taking the trove from its next source", () => {
    const s = setup()
    const { root, r, trees, archives } = s
    const fifo = mirrored(s, NAMES).find((a) => path.basename(a).startsWith("t1-"))!
    fs.rmSync(fifo)
    spawnSync("mkfifo", [fifo])
    // The mirror alone: its fifo stops apply, naming it.
    ok(["source", "remove", "local", ...r])
    const refused = conary(["apply", ...r], { timeout: 20_000 })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toBe(`conary: archive ${fifo}: is not a regular file\n`)
    expect(stagedLeftovers(root)).toEqual([])
    ok(["source", "add", "local", path.dirname(archives[0]!), ...r])
    ok(["source", "sync", "local", ...r])
    const applied = conary(["apply", ...r], { timeout: 20_000 })
    expect(applied.stderr).toBe("")
    expect(applied.code).toBe(0)
    expectInstalled(root, r, trees)
    // sync, too, refuses it rather than wait
    const sync = conary(["source", "sync", "a", ...r], { timeout: 20_000 })
    expect(sync.code).toBe(1)
    expect(sync.stderr).toBe(`conary: archive ${fifo}: is not a regular file\n`)
  })

  it("says the disk is full in one line when the store fills up in a worker, and leaves the root as it was", () => {
    const { base, repo, trees } = setup()
    onSmallDisk("disk full in apply's fetch", path.join(base, "small"), "3m", () => {
      // The root, its database and store on 3 MiB; the archives' contents need more.
      const root = path.join(base, "small", "root")
      fs.mkdirSync(root)
      const r = ["--root", root]
      ok(["init", ...r])
      ok(["source", "add", "local", repo, ...r])
      ok(["source", "sync", ...r])
      ok(["desired", "add", ...trees.map((_, t) => `t${t}`), ...r])
      const before = listTree(root)
      const run = conary(["apply", ...r])
      expect(run.code).toBe(1)
      expect(run.stderr).not.toMatch(/\n\s+at |internal error/)
      expect(run.stderr.split("\n")).toHaveLength(2)
      expect(run.stderr).toMatch(/no space left on device/)
      expect(listTree(root)).toEqual(before)
      expect(stagedLeftovers(root)).toEqual([])
      expect(JSON.parse(ok(["list", "--json", ...r])).troves).toEqual([])
    })
  })
})

describe("apply's fetch from .deb and .rpm archives on every core", () => {
  /** Troves of `format` in `repo` and a mirror of it (source "a", tried first); the store emptied, as sync filled it. */
  const withMirror = (format: "deb" | "rpm") => {
    const s = setupRoot()
    const shared = randomBytes(50_000).toString("base64")
    const trees = Array.from({ length: TROVES }, (_, t) => treeOf(t, shared))
    trees.forEach((tree, t) => {
      const out = path.join(s.repo, format === "deb" ? `t${t}_1.0-1_all.deb` : `t${t}-1.0-1.noarch.rpm`)
      if (format === "deb") buildDeb(s.base, out, { Package: `t${t}`, Version: "1.0-1", Architecture: "all" }, tree, { compression: "gzip" })
      else rawRpm(out, { name: `t${t}`, files: Object.entries(tree).map(([rel, data]) => ({ path: `/${rel}`, mode: 0o100644, data: Buffer.from(data as string) })) })
    })
    const mirror = mirrored(s, NAMES)
    // apply reads these formats' contents from their archives only when the store lacks them
    fs.rmSync(path.join(s.root, "var/lib/conary/store/objects"), { recursive: true })
    return { ...s, trees, mirror }
  }

  for (const format of ["deb", "rpm"] as const)
    it(`takes a trove from its next source when the first one's .${format} is gone or cut short`, () => {
      const { root, r, trees, mirror } = withMirror(format)
      fs.rmSync(mirror[0]!)
      fs.truncateSync(mirror[1]!, Math.floor(fs.statSync(mirror[1]!).size / 2))
      ok(["apply", ...r])
      expectInstalled(root, r, trees)
    })

  for (const format of ["deb", "rpm"] as const)
    it(`says the content store is full, not that the .${format} is bad, and tries no other source`, () => {
      const { root, r, mirror } = withMirror(format)
      // The store, empty, on 1 MiB; the contents need more.
      onSmallDisk(`a full store in apply's fetch from a .${format}`, path.join(root, "var/lib/conary/store"), "1m", () => {
        const run = conary(["apply", ...r])
        expect(run.code).toBe(1)
        expect(run.stderr).toBe("conary: apply failed at content store: no space left on device (disk full)\n")
        expect(run.stderr).not.toContain(mirror[0]!)
      })
    })
})

describe("apply's fetch from an Arch package", () => {
  const hasBsdtar = spawnSync("bsdtar", ["--version"]).status === 0
  it.skipIf(mustSkip(hasBsdtar, "an Arch package gone since sync", "bsdtar is missing", "apt-get install libarchive-tools"))(
    "says in one line that a package gone since sync is gone, with no stack trace, and takes it from the next source",
    () => {
      const s = setupRoot()
      // A package as makepkg packs one: .MTREE, .PKGINFO, then the payload.
      const dir = writeTree(path.join(s.base, "pkg"), { "usr/share/a/f": "arch content\n", ".PKGINFO": "pkgname = a\npkgver = 1.0-1\narch = any\nsize = 13\n" })
      execFileSync("bsdtar", ["-czf", ".MTREE", "--format=mtree", "--options=!all,use-set,type,uid,gid,mode,time,size,sha256,link", ".PKGINFO", "usr"], { cwd: dir })
      execFileSync("bsdtar", ["-czf", path.join(s.repo, "a-1.0-1-any.pkg.tar.gz"), ".MTREE", ".PKGINFO", "usr"], { cwd: dir })
      const [gone] = mirrored(s, ["a"])
      // Its contents went into the store at sync: apply reads the archive only for what the store lacks.
      fs.rmSync(path.join(s.root, "var/lib/conary/store/objects"), { recursive: true })
      fs.rmSync(gone!)
      ok(["source", "remove", "local", ...s.r])
      const refused = conary(["apply", ...s.r])
      expect(refused.stderr).toBe(`conary: archive ${gone}: no such file or directory (stat)\n`)
      expect(refused.code).toBe(1)
      ok(["source", "add", "local", s.repo, ...s.r])
      ok(["source", "sync", ...s.r])
      ok(["apply", ...s.r])
      expectInstalled(s.root, s.r, [{ "usr/share/a/f": "arch content\n" }])
    },
  )
})
