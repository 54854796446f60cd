import * as fs from "node:fs"
import * as path from "node:path"
import { execFileSync, spawnSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, ok, setupRoot } from "./helpers.js"

// Whatever sits at a stage name (`.conary-new.NAME`) before apply is the
// admin's, not conary's: apply refuses, naming it, before it writes anything,
// and never truncates, renames, opens or removes it (a fifo must not hang apply).

const V1 = { "a/old": "old v1\n", "etc/c.conf": "one\ntwo\nthree\n" }
// Version 2 replaces a/old, adds a file, an empty file and a symlink, and
// changes the config file the admin changed too (a clean 3-way merge).
// And many files in a new directory (checkTargets reads a directory many files are staged in, and asks per name in one with few).
const V2 = {
  "a/old": "old v2\n",
  "a/new": "new\n",
  "a/e": "",
  "a/link": { symlink: "new" },
  "etc/c.conf": "one\ntwo\nthree v2\n",
  ...Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`b/n${i}`, `n${i}\n`])),
}

const setup = () => {
  const s = setupRoot()
  buildTrove(s.repo, "t", "1-1-1", V1)
  buildTrove(s.repo, "t", "2-1-1", V2)
  ok(["source", "sync", ...s.r])
  ok(["desired", "add", "t=1", ...s.r])
  ok(["apply", ...s.r])
  fs.writeFileSync(path.join(s.root, "etc/c.conf"), "one local\ntwo\nthree\n")
  ok(["desired", "add", "t=2", ...s.r])
  return s
}

const line = (target: string, planted: string) =>
  `conary: apply failed at /${target}: ${planted} is in the way: apply writes the new file under that name; move it away, then apply again\n`

describe("apply with something of the admin's at a stage name", () => {
  it("refuses with one line naming it, keeps it and the root byte for byte, then applies once it is moved away", () => {
    const { root, r } = setup()
    const at = (p: string) => path.join(root, p)
    // A stage name of each kind of operation: a new file, a replaced one, an
    // empty one, a symlink, a merged config file and its conflict's.
    const cases: Array<[string, string]> = [
      ["a/new", "a/.conary-new.new"],
      ["a/old", "a/.conary-new.old"],
      ["a/e", "a/.conary-new.e"],
      ["a/link", "a/.conary-new.link"],
      ["etc/c.conf", "etc/.conary-new.c.conf"],
      ["etc/c.conf", "etc/.conary-new.c.conf.conary-new"],
      ["b/n3", "b/.conary-new.n3"],
    ]
    for (const [n, [target, planted]] of cases.entries()) {
      fs.mkdirSync(at(path.dirname(planted)), { recursive: true })
      fs.writeFileSync(at(planted), `the admin's ${n}\n`, { mode: 0o640 })
      const before = listTree(root)
      const run = conary(["apply", ...r])
      expect(run.stderr).toBe(line(target, planted))
      expect(run.code).toBe(1)
      expect(listTree(root)).toEqual(before)
      expect(fs.readFileSync(at(planted), "utf8")).toBe(`the admin's ${n}\n`)
      // Moved away, still the admin's.
      fs.renameSync(at(planted), at(`${path.dirname(planted)}/mine.${n}`))
    }
    // A symlink (to a file outside the root), a directory, a fifo and a device.
    const outside = path.join(path.dirname(root), "precious")
    fs.writeFileSync(outside, "precious\n")
    const specials: Array<[string, () => void]> = [
      ["symlink", () => fs.symlinkSync(outside, at("a/.conary-new.new"))],
      ["directory", () => fs.mkdirSync(at("a/.conary-new.new"))],
      ["fifo", () => execFileSync("mkfifo", [at("a/.conary-new.new")])],
      // where devices can be made: root, outside a restricted container
      ["device", () => spawnSync("mknod", [at("a/.conary-new.new"), "c", "1", "3"])],
    ]
    for (const [kind, plant] of specials) {
      plant()
      const planted = fs.lstatSync(at("a/.conary-new.new"), { throwIfNoEntry: false })
      if (!planted) continue // no device here
      const run = conary(["apply", ...r], { timeout: 30_000 })
      expect(run.stderr, kind).toBe(line("a/new", "a/.conary-new.new"))
      expect(run.code).toBe(1)
      const after = fs.lstatSync(at("a/.conary-new.new"))
      expect([after.ino, after.mode, after.size], kind).toEqual([planted.ino, planted.mode, planted.size])
      // out of the root, which the listings below read
      fs.renameSync(at("a/.conary-new.new"), path.join(path.dirname(root), `mine.${kind}`))
    }
    expect(fs.readFileSync(outside, "utf8")).toBe("precious\n")
    expect(fs.readlinkSync(path.join(path.dirname(root), "mine.symlink"))).toBe(outside)

    // Every plant moved away: the apply goes through, and the admin's files are as they were.
    ok(["apply", ...r])
    expect(fs.readFileSync(at("a/new"), "utf8")).toBe("new\n")
    expect(fs.readFileSync(at("a/old"), "utf8")).toBe("old v2\n")
    expect(fs.readFileSync(at("a/e"), "utf8")).toBe("")
    expect(fs.readlinkSync(at("a/link"))).toBe("new")
    expect(fs.readFileSync(at("etc/c.conf"), "utf8")).toBe("one local\ntwo\nthree v2\n")
    for (const [n, [, planted]] of cases.entries()) expect(fs.readFileSync(at(`${path.dirname(planted)}/mine.${n}`), "utf8")).toBe(`the admin's ${n}\n`)
    expect(Object.keys(listTree(root)).filter((p) => path.basename(p).startsWith(".conary-new."))).toEqual([])
    // The merged config file differs from the package's, as merges do; nothing else.
    const verify = conary(["verify", ...r])
    expect(verify.stdout).toMatch(/^S\.5\.\.\.\.T\. {2}c \/etc\/c\.conf\nVerified 16 files of 1 trove: 1 file drifted/)
  })

  it("is refused before a crashed apply could take it; recovery of a crash mid-staging removes only conary's own stage files", () => {
    const { root, r } = setup()
    const at = (p: string) => path.join(root, p)
    fs.writeFileSync(at("a/.conary-new.new"), "the admin's\n")
    // Beside it, a name like a stage name that this plan does not stage at.
    fs.writeFileSync(at("a/.conary-new.other"), "the admin's too\n")
    const before = listTree(root)
    // Killed once staged, this apply would leave recovery to remove its stage files: it never gets there.
    const refused = conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "staged" } })
    expect(refused.stderr).toBe(line("a/new", "a/.conary-new.new"))
    expect(refused.code).toBe(1)
    expect(ok(["recover", ...r]).trim()).toBe("Nothing to recover: no apply was interrupted.")
    expect(listTree(root)).toEqual(before)

    fs.renameSync(at("a/.conary-new.new"), at("a/mine"))
    const moved = listTree(root)
    const killed = conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "staged" } })
    expect(killed.code).toBe(-1)
    expect(Object.keys(listTree(root)).filter((p) => path.basename(p).startsWith(".conary-new.") && p !== "a/.conary-new.other").sort()).toEqual([
      "a/.conary-new.e",
      "a/.conary-new.link",
      "a/.conary-new.new",
      "a/.conary-new.old",
      ...Array.from({ length: 9 }, (_, i) => `b/.conary-new.n${i}`),
      "etc/.conary-new.c.conf",
    ])
    expect(ok(["recover", ...r])).toMatch(/undone; the root is at generation 1/)
    expect(listTree(root)).toEqual(moved)
    ok(["apply", ...r])
    expect(fs.readFileSync(at("a/new"), "utf8")).toBe("new\n")
    expect(fs.readFileSync(at("a/mine"), "utf8")).toBe("the admin's\n")
    expect(fs.readFileSync(at("a/.conary-new.other"), "utf8")).toBe("the admin's too\n")
  })
})
