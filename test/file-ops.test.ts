import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import { jsonPieces } from "../src/cli/format.js"
import { FileOps, FileOpsBuilder } from "../src/model/file-ops.js"
import { type FileOp, Plan } from "../src/model/plan-schema.js"

// A plan's file operations are kept in columns (src/model/file-ops.ts): every
// operation must come back exactly as it went in, field for field and in the
// same key order (plan --json and saved plans print them), whatever it holds.

const base = (i: number): FileOp => ({
  op: "add",
  path: `/usr/share/t/f${i}`,
  kind: "file",
  troveId: 7,
  trove: "t=1-1-1",
  sha256: i.toString(16).padStart(64, "0"),
  size: 1000 + i,
  mode: 0o644,
  owner: "root",
  group: "root",
  target: null,
  config: false,
})

const odd: FileOp[] = [
  { ...base(1), op: "merge", config: true, note: "changed locally and by the package", baseSha256: "ab".repeat(32) },
  { ...base(2), kind: "dir", sha256: null, size: 0, mode: 0o755, kept: true },
  { ...base(3), kind: "symlink", sha256: null, size: 0, mode: 0o777, target: "../lib/x" },
  // digests a hostile saved plan may carry: kept as they are, not packed
  { ...base(4), sha256: "ABCDEF".repeat(10) + "ABCD" },
  { ...base(5), sha256: "not hex at all" },
  { ...base(6), op: "restore", owner: "1000", group: "www-data", troveId: 2 ** 40, size: 2 ** 45, note: "was there before the trove" },
  {
    ...base(7),
    op: "replace",
    unowned: true,
    saved: { kind: "file", sha256: "cd".repeat(32), size: 3, mode: 0o600, uid: 5, gid: 6, target: null },
    takesOver: [{ troveId: 3, path: "/usr/share/t/f7" }],
    note: "replaces unowned",
  },
  { ...base(8), op: "remove", path: "/usr/share/t/é ünïcödé\u2028" },
  // paths UTF-8 cannot carry as they are (a lone surrogate, from a hostile saved plan) or only as another pair of code units
  { ...base(9), path: "/usr/share/t/\ud800 lone" },
  { ...base(10), path: "/usr/share/t/\u{1F600} astral" },
  { ...base(11), path: "" },
  // numbers at and past 32 bits, and the one 32-bit value the columns use as a mark
  { ...base(12), troveId: 2 ** 31, mode: -(2 ** 31), size: 2 ** 53 - 1 },
  { ...base(13), troveId: -1, mode: 2 ** 32 + 5 },
]

/** A digest's 32 bytes as 8 words (what is not hex digits, zeros). */
const words = (hex: string) => {
  const bytes = new Uint8Array(32)
  Buffer.from(bytes.buffer).write(hex, "hex")
  return new Int32Array(bytes.buffer)
}

describe("file operations in columns", () => {
  it("gives every operation back as it went in: each field, the key order, the rare fields", () => {
    const ops = [...odd, ...Array.from({ length: 3000 }, (_, i) => base(100 + i))]
    const list = FileOps.from(ops)
    expect(list.length).toBe(ops.length)
    for (let i = 0; i < ops.length; i++) {
      const got = list.at(i)
      expect(got).toStrictEqual(ops[i])
      expect(Object.keys(got)).toEqual(Object.keys(ops[i]!))
      expect(list.path(i)).toBe(ops[i]!.path)
      // a packed digest is found by its words; one kept as given (not 64 lowercase hex digits), or none, never
      const packed = /^[0-9a-f]{64}$/.test(ops[i]!.sha256 ?? "")
      expect(list.hasDigest(i, words(ops[i]!.sha256 ?? "00".repeat(32)))).toBe(packed)
      expect(list.hasDigest(i, words("ff".repeat(32)))).toBe(false)
    }
    expect(JSON.stringify(list)).toBe(JSON.stringify(ops))
    expect([...list]).toStrictEqual(ops)
  })

  it("filters and sorts by path as arrays do, without copying the rows", () => {
    const ops = Array.from({ length: 500 }, (_, i) => ({ ...base(i), path: `/p/${(i * 7919) % 500}`, op: i % 3 === 0 ? ("remove" as const) : ("add" as const) }))
    const list = FileOps.from(ops)
    const byPath = (a: FileOp, b: FileOp) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    expect(list.sortedByPath().toArray()).toStrictEqual([...ops].sort(byPath))
    expect(list.filter((op) => op.op === "remove").toArray()).toStrictEqual(ops.filter((op) => op.op === "remove"))
    expect(list.filter((op) => op.op === "remove").sortedByPath().toArray()).toStrictEqual(ops.filter((op) => op.op === "remove").sort(byPath))
    expect(list.filter(() => false).length).toBe(0)
    expect(list.map((op) => op.size)).toEqual(ops.map((op) => op.size))
    expect(list.findIndex((op) => op.path === "/p/3")).toBe(ops.findIndex((op) => op.path === "/p/3"))
  })

  it("keeps more than 65,536 different troves, owners and groups", () => {
    const ops = Array.from({ length: 70_000 }, (_, i) => ({ ...base(i), trove: `t${i}=1-1-1`, owner: `u${i % 3}`, group: `g${i}` }))
    const list = FileOps.from(ops)
    // every row: the one that interns the 65,537th string above all
    const wrong = ops.findIndex((op, i) => list.at(i).trove !== op.trove || list.at(i).owner !== op.owner || list.at(i).group !== op.group)
    expect(wrong).toBe(-1)
  })

  it("sorts paths as their strings sort with <, whatever characters they hold, and finds them by path", () => {
    const names = ["a", "ab", "", "b", "é", "\u00ff", "\u0100", "\ue000", "\uffff", "\u{1F600}", "\u{10000}", "\ud800", "\udfff", "\ud800\ud800", "a\u{1F600}b", "a\uffffb", "z", "/"]
    const ops = names.flatMap((n, i) => [{ ...base(i), path: `/d/${n}` }, { ...base(i + 100), path: `/d/${n}/x` }, { ...base(i + 200), path: n }])
    const byPath = (a: FileOp, b: FileOp) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    for (const list of [ops, ops.filter((op) => !/[\ud800-\udfff]/.test(op.path)), ops.filter((op) => /^[\x00-\x7f]*$/.test(op.path))]) {
      const sorted = FileOps.from([...list].reverse()).sortedByPath()
      expect(sorted.toArray().map((op) => op.path)).toEqual([...list].reverse().sort(byPath).map((op) => op.path))
      for (let i = 0; i < sorted.length; i++) expect(sorted.path(i)).toBe(sorted.at(i).path)
      // and find each by its path, and none for a path not there
      for (let i = 0; i < sorted.length; i++) expect(sorted.indexOfPath(sorted.path(i))).toBe(i)
      for (const absent of ["/d/a/y", "/d/\u{1F600}/y", "/d/\ud800/y", "/e", "\uffff\uffff"]) expect(sorted.indexOfPath(absent)).toBe(-1)
    }
  })

  it("makes rows operations as a planner chooses them; a row chosen twice gives a second operation without the first one's fields", () => {
    const b = new FileOpsBuilder()
    const a = b.add(base(1))
    const c = b.add(base(2))
    b.add(base(3)) // never chosen: no operation
    b.choose(c, "add", { kept: true })
    b.choose(a, "replace")
    b.choose(c, "repair", { note: "missing" })
    b.push({ ...base(4), op: "restore", note: "was there before the trove" })
    expect(b.build().toArray()).toStrictEqual([
      { ...base(2), kept: true },
      { ...base(1), op: "replace" },
      { ...base(2), op: "repair", note: "missing" },
      { ...base(4), op: "restore", note: "was there before the trove" },
    ])
    expect([...b.chosenPaths()].sort()).toEqual(["/usr/share/t/f1", "/usr/share/t/f2", "/usr/share/t/f4"])
  })

  it("decodes a plan's JSON into columns and encodes it back to the same JSON", () => {
    const json = {
      formatVersion: 1,
      troves: [],
      files: odd,
      target: [],
      blocked: [],
      overrides: [],
      summary: { install: 0, update: 0, erase: 0, repair: 0, files: odd.length, bytes: 0 },
    }
    const decoded = Schema.decodeUnknownEither(Plan)(json)
    if (Either.isLeft(decoded)) throw new Error(String(decoded.left))
    expect(decoded.right.files).toBeInstanceOf(FileOps)
    expect(decoded.right.files.toArray()).toStrictEqual(odd)
    expect(JSON.parse(JSON.stringify(decoded.right))).toStrictEqual(json)
    expect(Schema.encodeSync(Plan)(decoded.right).files).toStrictEqual(odd)
  })

  it("prints JSON exactly as JSON.stringify(value, null, 2) lays it out, walking FileOps one operation at a time", () => {
    const plan = { formatVersion: 1, nested: { files: FileOps.from(odd), empty: FileOps.from([]), none: [], obj: {} }, skipped: undefined, list: [1, undefined, "x\ny"] }
    expect([...jsonPieces(plan)].join("")).toBe(JSON.stringify(plan, null, 2))
  })
})
