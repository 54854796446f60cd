import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { conary, listTree, ok, setupRoot, sha256, writeRawArchive } from "./helpers.js"

// apply writes each new content once, to its stage paths, as it reads it from
// the archive, and keeps the store's copy from the same bytes: what it writes must still be
// verified before anything is committed, and undone like any staged file.

/** A content of `size` bytes, different for each seed. */
const content = (seed: number, size: number): Buffer => {
  const b = Buffer.alloc(size)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

/**
 * Native archives of troves t0..t3, each with a 1 MiB file (read in several
 * chunks), small files, and a dozen empty ones (one content shared by more
 * paths than are written as it is read); `tampered` troves carry other
 * bytes under the name of their big file's digest.
 */
const writeTroves = async (repo: string, tampered: ReadonlySet<number>, troves = [0, 1, 2, 3], bigSize = (_t: number) => 1 << 20) => {
  for (const t of troves) {
    const files: Array<[string, Buffer]> = [[`usr/share/t${t}/big`, content(t, bigSize(t))]]
    for (let f = 0; f < 20; f++) files.push([`usr/share/t${t}/small${f}`, content(100 * t + f, 1 + 97 * f)])
    for (let f = 0; f < 12; f++) files.push([`usr/share/t${t}/empty${f}`, Buffer.alloc(0)])
    const manifest = {
      formatVersion: 1,
      name: `t${t}`,
      version: "1.0-1-1",
      flavor: "",
      requires: [],
      provides: [],
      files: [
        { path: "usr", kind: "dir", mode: 0o755, owner: "root", group: "root", size: 0, config: false, component: "runtime" },
        { path: "usr/share", kind: "dir", mode: 0o755, owner: "root", group: "root", size: 0, config: false, component: "runtime" },
        { path: `usr/share/t${t}`, kind: "dir", mode: 0o755, owner: "root", group: "root", size: 0, config: false, component: "runtime" },
        ...files.map(([p, data]) => ({ path: p, kind: "file", mode: 0o644, owner: "root", group: "root", sha256: sha256(data), size: data.length, config: false, component: "runtime" })),
      ],
    }
    const objects: Record<string, Buffer> = {}
    for (const [, data] of files) objects[`objects/${sha256(data)}`] = data
    if (tampered.has(t)) objects[`objects/${sha256(files[0]![1])}`] = content(1000 + t, bigSize(t))
    await writeRawArchive(path.join(repo, `t${t}.ctrv`), manifest, objects)
  }
}

const stagedLeft = (root: string) => Object.keys(listTree(root)).filter((p) => path.basename(p).startsWith(".conary-new."))

describe("apply writes each new content once, as it reads it", () => {
  it("refuses archive bytes that do not match their digest: nothing installed, nothing staged left, nothing stored under that name", async () => {
    const { root, repo, r } = setupRoot()
    // Every trove tampered, read four at a time: whichever fails first, none is installed.
    await writeTroves(repo, new Set([0, 1, 2, 3]))
    ok(["source", "sync", ...r])
    for (let t = 0; t < 4; t++) ok(["desired", "add", `t${t}`, ...r])
    const before = listTree(root)
    const run = conary(["apply", ...r])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^conary: archive .*t\d\.ctrv: content of [0-9a-f]{16} does not match its sha256\n$/)
    expect(listTree(root)).toEqual(before)
    expect(JSON.parse(ok(["history", "--json", ...r])).generations).toEqual([])
    const store = path.join(root, "var/lib/conary/store/objects")
    for (let t = 0; t < 4; t++) {
      const big = sha256(content(t, 1 << 20))
      expect(fs.existsSync(path.join(store, big.slice(0, 2), big.slice(2)))).toBe(false)
    }

    // The right bytes: installed, each file as its trove says, and verify (the stat cache) clean.
    await writeTroves(repo, new Set())
    ok(["source", "sync", ...r])
    ok(["apply", ...r])
    for (let t = 0; t < 4; t++) {
      expect(fs.readFileSync(path.join(root, `usr/share/t${t}/big`)).equals(content(t, 1 << 20))).toBe(true)
      expect(fs.readFileSync(path.join(root, `usr/share/t${t}/small7`)).equals(content(100 * t + 7, 1 + 97 * 7))).toBe(true)
      expect(fs.statSync(path.join(root, `usr/share/t${t}/empty11`)).size).toBe(0)
    }
    expect(stagedLeft(root)).toEqual([])
    expect(conary(["verify", ...r]).code).toBe(0)
    // The store kept every content from the same bytes, verified.
    for (let t = 0; t < 4; t++) {
      const big = content(t, 1 << 20)
      const sha = sha256(big)
      expect(fs.readFileSync(path.join(store, sha.slice(0, 2), sha.slice(2))).equals(big)).toBe(true)
    }
    // A same-size edit of a file written as it was read, its mtime put back: verify still sees it.
    const victim = path.join(root, "usr/share/t3/big")
    const st = fs.statSync(victim)
    const fd = fs.openSync(victim, "r+")
    fs.writeSync(fd, Buffer.from([~content(3, 1)[0]! & 0xff]), 0, 1, 0)
    fs.closeSync(fd)
    fs.utimesSync(victim, st.atime, st.mtime)
    const drift = conary(["verify", ...r])
    expect(drift.code).not.toBe(0)
    expect(drift.stdout).toContain("/usr/share/t3/big")
  }, 120_000)

  it("reads a small archive inflated at once and a large one as it inflates alike: cut short or tampered, refused with nothing installed", async () => {
    const { root, repo, r } = setupRoot()
    // t0 inflates at once (a few MiB); t1's 17 MiB content is more than native.ts inflates at once.
    const bigSize = (t: number) => (t === 1 ? 17 << 20 : 1 << 20)
    const archive = (t: number) => path.join(repo, `t${t}.ctrv`)
    for (const t of [0, 1]) {
      await writeTroves(repo, new Set(), [t], bigSize)
      ok(["source", "sync", ...r])
      ok(["desired", "add", `t${t}`, ...r])
      const before = listTree(root)
      const good = fs.readFileSync(archive(t))
      fs.writeFileSync(archive(t), good.subarray(0, good.length >> 1))
      const cut = conary(["apply", ...r])
      expect(cut.stderr).toMatch(new RegExp(`^conary: archive .*t${t}\\.ctrv: truncated archive\n$`))
      expect(cut.code).toBe(1)
      await writeTroves(repo, new Set([t]), [t], bigSize)
      const tampered = conary(["apply", ...r])
      expect(tampered.stderr).toMatch(new RegExp(`^conary: archive .*t${t}\\.ctrv: content of [0-9a-f]{16} does not match its sha256\n$`))
      expect(tampered.code).toBe(1)
      expect(listTree(root)).toEqual(before)
      const big = sha256(content(t, bigSize(t)))
      expect(fs.existsSync(path.join(root, "var/lib/conary/store/objects", big.slice(0, 2), big.slice(2)))).toBe(false)
      fs.writeFileSync(archive(t), good)
      ok(["apply", ...r])
      expect(fs.readFileSync(path.join(root, `usr/share/t${t}/big`)).equals(content(t, bigSize(t)))).toBe(true)
      expect(fs.statSync(path.join(root, `usr/share/t${t}/empty3`)).size).toBe(0)
      expect(stagedLeft(root)).toEqual([])
      expect(conary(["verify", ...r]).code).toBe(0)
    }
  }, 120_000)

  it("undoes an apply killed once contents were written as they were read, and applies cleanly after", async () => {
    const { root, repo, r } = setupRoot()
    await writeTroves(repo, new Set())
    ok(["source", "sync", ...r])
    for (let t = 0; t < 4; t++) ok(["desired", "add", `t${t}`, ...r])
    const before = listTree(root)
    const killed = conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "fetched" } })
    expect(killed.code).toBe(-1) // killed by a signal
    expect(stagedLeft(root).length).toBeGreaterThan(0)
    const list = conary(["list", "--json", ...r])
    expect(list.stderr).toMatch(/recovered an interrupted apply \(pid \d+, started .*\): undone/)
    expect(listTree(root)).toEqual(before)
    ok(["apply", ...r])
    expect(stagedLeft(root)).toEqual([])
    expect(fs.readFileSync(path.join(root, "usr/share/t0/big")).equals(content(0, 1 << 20))).toBe(true)
    expect(conary(["verify", ...r]).code).toBe(0)
  }, 120_000)
})
