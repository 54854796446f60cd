import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, ok, setupRoot, sha256, tempDir, writeRawArchive } from "./helpers.js"

const manifest = (files: unknown[], extra: Record<string, unknown> = {}) => ({
  formatVersion: 1,
  name: "evil",
  version: "1.0-1-1",
  flavor: "",
  requires: [],
  provides: [],
  files,
  ...extra,
})

const file = (p: string, content: string) => ({
  path: p,
  kind: "file",
  mode: 0o644,
  owner: "root",
  group: "root",
  sha256: sha256(content),
  size: content.length,
  config: false,
  component: "runtime",
})

/** The error line, and proof the command changed nothing. */
const refuses = (args: string[], r: string[], pattern: RegExp) => {
  const res = conary([...args, ...r])
  expect(res.code).toBe(1)
  expect(res.stderr.trim().split("\n")).toHaveLength(1)
  expect(res.stderr).toMatch(pattern)
  return res
}

describe("bad input is refused with one clear line and nothing written", () => {
  it("rejects unknown commands and options, and a missing root", () => {
    expect(conary(["frobnicate"]).code).not.toBe(0)
    const opt = conary(["plan", "--bogus"])
    expect(opt.code).toBe(1)
    expect(opt.stderr).toContain("--bogus")
    const missing = conary(["plan", "--root", "/nonexistent/conary-root"])
    expect(missing.code).toBe(1)
    expect(missing.stderr.trim()).toBe("conary: root /nonexistent/conary-root: does not exist")
    const env = conary(["list"], { env: { CONARY_ROOT: "/nonexistent/from-env" } })
    expect(env.stderr.trim()).toBe("conary: root /nonexistent/from-env: does not exist")
    const noDb = conary(["list", "--root", tempDir()])
    expect(noDb.stderr).toMatch(/database .*conary\.db: does not exist \(run `conary init` first\)/)
  })

  it("refuses truncated archives, unsafe paths and bad manifests at sync, leaving the index as it was", async () => {
    const { repo, r } = setupRoot()
    buildTrove(repo, "good", "1.0-1-1", { "usr/bin/good": "good" })
    ok(["source", "sync", ...r])

    const truncated = path.join(repo, "trunc.ctrv")
    const whole = fs.readFileSync(buildTrove(repo, "trunc", "1.0-1-1", { "usr/bin/t": "x".repeat(5000) }))
    fs.writeFileSync(truncated, whole.subarray(0, 40))
    fs.rmSync(path.join(repo, "trunc-1.0-1-1.ctrv"))
    refuses(["source", "sync"], r, /archive .*trunc\.ctrv: truncated archive/)
    fs.rmSync(truncated)

    const cases: Array<[string, unknown, RegExp]> = [
      ["abs.ctrv", manifest([file("/etc/passwd", "x")]), /unsafe path '\/etc\/passwd'/],
      ["dots.ctrv", manifest([file("usr/../../etc/shadow", "x")]), /unsafe path 'usr\/\.\.\/\.\.\/etc\/shadow'/],
      ["mode.ctrv", manifest([{ ...file("usr/x", "x"), mode: "rwx" }]), /bad manifest: files\.0\.mode/],
      ["version.ctrv", manifest([], { version: "not a version" }), /version 'not a version'/],
      ["json.ctrv", "{not json", /manifest is not valid JSON/],
      // Sizes that no bytes of that digest have: apply would write an empty file, or the whole content, under a size it lacks.
      ["empty-sized.ctrv", manifest([{ ...file("usr/liar", ""), size: 5 }]), /\/usr\/liar: size 5 does not fit its sha256 e3b0c44298fc1c14/],
      ["sized-empty.ctrv", manifest([{ ...file("usr/zero", "hi"), size: 0 }]), /\/usr\/zero: size 0 does not fit its sha256 8f434346648f6b96/],
    ]
    for (const [name, m, pattern] of cases) {
      const p = path.join(repo, name)
      await writeRawArchive(p, m, {})
      refuses(["source", "sync"], r, pattern)
      fs.rmSync(p)
    }
    fs.writeFileSync(path.join(repo, "garbage.ctrv"), "this is not gzip")
    refuses(["source", "sync"], r, /archive .*garbage\.ctrv: /)
    fs.rmSync(path.join(repo, "garbage.ctrv"))
    // The good trove is still indexed and nothing else is.
    expect(JSON.parse(ok(["source", "list", "--json", ...r])).sources[0].troves).toBe(1)
  })

  it("refuses a trove that misstates a content's size, keeping the good object in the store", async () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "good", "1.0-1-1", { "usr/hello": "hello\n" })
    const usr = { path: "usr", kind: "dir", mode: 0o755, owner: "root", group: "root", size: 0, config: false, component: "runtime" }
    // Shorter and longer than the object the store holds; and a content read from the archive (written to its stage path as it comes).
    const liars: Array<[string, string, number]> = [
      ["short", "hello\n", 3],
      ["long", "hello\n", 9],
      ["fresh", "fresh content\n", 2],
    ]
    for (const [name, content, size] of liars)
      await writeRawArchive(path.join(repo, `${name}.ctrv`), manifest([usr, { ...file(`usr/${name}`, content), size }], { name }), { [`objects/${sha256(content)}`]: content })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "good", ...r])
    ok(["apply", ...r])
    const object = path.join(root, "var/lib/conary/store/objects", sha256("hello\n").slice(0, 2), sha256("hello\n").slice(2))
    const before = listTree(path.join(root, "usr"))
    for (const [name, content, size] of liars) {
      ok(["desired", "add", name, ...r])
      refuses(["apply"], r, new RegExp(`^conary: apply failed at /usr/${name}: its content ${sha256(content).slice(0, 16)} is ${content.length} bytes, not the ${size} its trove says$`, "m"))
      expect(listTree(path.join(root, "usr"))).toEqual(before)
      ok(["desired", "remove", name, ...r])
    }
    expect(fs.existsSync(object)).toBe(true)
    expect(ok(["verify", ...r])).toMatch(/no drift/)
  })

  it("refuses an archive whose content does not match its sha256, writing nothing to the root", async () => {
    const { root, repo, r } = setupRoot()
    // Its directories too: the root is checked before any content is read.
    const dirs = ["usr", "usr/bin"].map((p) => ({ path: p, kind: "dir", mode: 0o755, owner: "root", group: "root", size: 0, config: false, component: "runtime" }))
    const m = manifest([...dirs, file("usr/bin/evil", "expected")])
    await writeRawArchive(path.join(repo, "evil.ctrv"), m, { [`objects/${sha256("expected")}`]: "tampered" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "evil", ...r])
    const before = listTree(root)
    refuses(["apply"], r, /archive .*evil\.ctrv: content of [0-9a-f]{16} does not match its sha256/)
    expect(listTree(root)).toEqual(before)
    expect(JSON.parse(ok(["history", "--json", ...r])).generations).toEqual([])
    expect(JSON.parse(ok(["list", "--json", ...r])).troves).toEqual([])

    // An archive that lacks a content it lists is refused the same way.
    await writeRawArchive(path.join(repo, "evil.ctrv"), manifest([...dirs, file("usr/bin/evil", "expected")], { version: "1.1-1-1" }), {})
    ok(["source", "sync", ...r])
    refuses(["apply"], r, /archive .*evil\.ctrv: lacks content/)
    expect(listTree(root)).toEqual(before)
  })

  it("names unresolvable rows and dependencies, and both troves of a file conflict", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "app", "1.0-1-1", { "usr/bin/app": "app" }, { requires: ["libmissing (>= 2)", "libc6"] })
    buildTrove(repo, "one", "1.0-1-1", { "usr/bin/same": "one" })
    buildTrove(repo, "two", "1.0-1-1", { "usr/bin/same": "two" })
    ok(["source", "sync", ...r])
    ok(["provide", "add", "libc6", ...r])
    ok(["desired", "add", "app", ...r])
    refuses(["plan"], r, /^conary: unresolvable: app=1\.0-1-1 requires libmissing \(>= 2\): not available$/m)
    ok(["desired", "set", "--file", "-", ...r], { input: JSON.stringify({ formatVersion: 1, troves: [{ name: "one" }, { name: "two" }] }) })
    refuses(["apply"], r, /file conflict: \/usr\/bin\/same differs between one=1\.0-1-1 and two=1\.0-1-1/)
    expect(Object.keys(listTree(root))).toEqual([])
    // A conflict with a trove already installed names that one too.
    ok(["desired", "remove", "two", ...r])
    ok(["apply", ...r])
    ok(["desired", "add", "two", ...r])
    refuses(["plan"], r, /file conflict: \/usr\/bin\/same differs between one=1\.0-1-1 and two=1\.0-1-1/)
    ok(["desired", "add", "nosuch=9", ...r])
    refuses(["plan"], r, /nosuch=9: no source provides it/)
  })

  it("refuses a database that is not conary's, or from a newer conary", () => {
    const dir = tempDir()
    const garbage = path.join(dir, "garbage.db")
    fs.writeFileSync(garbage, "definitely not sqlite ".repeat(100))
    const a = conary(["list", "--root", dir, "--db", garbage])
    expect(a.code).toBe(1)
    expect(a.stderr.trim()).toBe(`conary: database ${garbage}: not a conary database (not SQLite)`)
    expect(fs.readFileSync(garbage, "utf8")).toBe("definitely not sqlite ".repeat(100))

    const foreign = path.join(dir, "foreign.db")
    const db = new Database(foreign)
    db.exec("CREATE TABLE customers (id INTEGER)")
    db.close()
    expect(conary(["init", "--root", dir, "--db", foreign]).stderr.trim()).toBe(`conary: database ${foreign}: not a conary database`)

    const newer = path.join(dir, "newer.db")
    ok(["init", "--root", dir, "--db", newer])
    const n = new Database(newer)
    n.pragma("user_version = 999")
    n.close()
    expect(conary(["list", "--root", dir, "--db", newer]).stderr).toMatch(/schema version 999 is newer than this conary understands/)
  })

  it("rejects bad specs and flavors pointing at the problem", () => {
    const { r } = setupRoot()
    refuses(["desired", "add", "nginx[ssl,,gtk]"], r, /bad flavor 'ssl,,gtk': unexpected ',', expected a flag name at column 5/)
    refuses(["desired", "add", "ngi nx"], r, /invalid name 'ngi nx'/)
    refuses(["desired", "remove", "never-added"], r, /not desired: never-added/)
    refuses(["flavor", "set", "is: x86("], r, /bad flavor 'is: x86\(': unexpected end, expected a flag name at column 9/)
  })
})
