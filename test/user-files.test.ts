import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { conary, ok, setupRoot, writeTree } from "./helpers.js"

// Files the user names: an output replaces only a regular file (never a
// device, fifo or symlink), an input is read with a cap and parsed safely.

/** One line on stderr, exit 1. */
const refused = (args: string[], pattern: RegExp) => {
  const res = conary(args)
  expect(res.stderr.trim().split("\n")).toHaveLength(1)
  expect(res.stderr).toMatch(pattern)
  expect(res.code).toBe(1)
}

/** The node's type and, for a symlink, where it points: what must survive a refused write. */
const nodeOf = (p: string) => {
  const st = fs.lstatSync(p)
  return { mode: st.mode, rdev: st.rdev, link: st.isSymbolicLink() ? fs.readlinkSync(p) : undefined }
}

describe("output files", () => {
  it("refuse to replace a symlink, fifo, device or directory, writing nothing", () => {
    const { base, r } = setupRoot()
    const dir = path.join(base, "out")
    fs.mkdirSync(dir)
    fs.writeFileSync(path.join(dir, "target"), "keep")
    fs.symlinkSync("target", path.join(dir, "link"))
    execFileSync("mkfifo", [path.join(dir, "fifo")])
    fs.mkdirSync(path.join(dir, "subdir"))
    const specials = ["link", "fifo", "subdir"]
    // A character device like /dev/null, made inside the temp dir (root only).
    if (process.getuid?.() === 0) {
      execFileSync("mknod", [path.join(dir, "null"), "c", "1", "3"])
      specials.push("null")
    }
    const tree = writeTree(path.join(base, "tree"), { "usr/bin/x": "x" })
    const before = Object.fromEntries(specials.map((s) => [s, nodeOf(path.join(dir, s))]))
    const notRegular = /^conary: .*: exists and is not a regular file; /
    for (const s of specials) {
      const out = path.join(dir, s)
      refused(["db", "backup", out, ...r], notRegular)
      refused(["trove", "build", tree, "--name", "x", "--trove-version", "1.0-1-1", "--out", out], notRegular)
      refused(["plan", "--out", out, ...r], notRegular)
    }
    // key generate writes NAME.key and NAME.pub: a refused .pub leaves no .key either.
    fs.symlinkSync("target", path.join(dir, "k.pub"))
    refused(["key", "generate", path.join(dir, "k")], notRegular)
    expect(fs.existsSync(path.join(dir, "k.key"))).toBe(false)
    expect(fs.readlinkSync(path.join(dir, "k.pub"))).toBe("target")

    expect(Object.fromEntries(specials.map((s) => [s, nodeOf(path.join(dir, s))]))).toEqual(before)
    expect(fs.readFileSync(path.join(dir, "target"), "utf8")).toBe("keep")
    expect(fs.readdirSync(dir).sort()).toEqual([...specials, "k.pub", "target"].sort())
    // A regular file is replaced, as before.
    ok(["db", "backup", path.join(dir, "target"), ...r])
    expect(fs.statSync(path.join(dir, "target")).size).toBeGreaterThan(4)
  })

  it("in a directory that does not exist is one line, not an internal error", () => {
    const { base, r } = setupRoot()
    const file = path.join(base, "nonexist", "dir", "b.db")
    const res = conary(["db", "backup", file, ...r])
    expect(res.stderr.trim()).toBe(`conary: cannot write ${file}: its directory does not exist`)
    expect(res.code).toBe(1)
  })
})

describe("input files", () => {
  it("refuse a file beyond the size limit without reading it", () => {
    const { base, r } = setupRoot()
    const big = path.join(base, "big.json")
    fs.closeSync(fs.openSync(big, "w"))
    fs.truncateSync(big, 257 * 1024 * 1024) // sparse: no disk used
    refused(["apply", big, ...r], /^conary: saved plan .*big\.json refused: larger than 256 MiB, the most conary reads$/m)
    refused(["desired", "set", "--file", big, ...r], /^conary: .*big\.json: larger than 256 MiB, the most conary reads$/m)
    refused(["source", "add", "signed", base, "--trust", big, ...r], /^conary: trust key .*big\.json: larger than 4096 bytes, the most conary reads$/m)
  })

  it("say a deeply nested JSON document is nested too deeply", () => {
    const { base, r } = setupRoot()
    const deep = path.join(base, "deep.json")
    fs.writeFileSync(deep, "[".repeat(100_000) + "]".repeat(100_000))
    refused(["apply", deep, ...r], /refused: not valid JSON \(nested too deeply\)$/m)
    refused(["desired", "set", "--file", deep, ...r], /deep\.json: not valid JSON \(nested too deeply\)$/m)
    const stdin = conary(["desired", "set", "--file", "-", ...r], { input: "{\"a\":".repeat(100_000) + "1" + "}".repeat(100_000) })
    expect(stdin.stderr.trim()).toBe("conary: standard input: not valid JSON (nested too deeply)")
    expect(ok(["desired", "list", ...r]).trim()).toBe("Nothing is desired.")
  })
})
