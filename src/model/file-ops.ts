import { readDigest } from "../sha256.js"
import type { FileOp } from "./plan-schema.js"

// A plan's file operations in columns: typed arrays for the numbers and
// codes, a digest as 32 bytes, the paths as UTF-8 end to end, owner, group
// and trove label interned, and the rare fields (notes, merges' bases, saved
// files) kept only where present. A plan of 200,000 files then costs ~90
// bytes an operation (~30 of them its path) instead of an object and its
// strings (~350); an operation becomes a FileOp object only while it is
// looked at.

const OPS = ["add", "replace", "remove", "chmod", "repair", "merge", "save", "restore"] as const
const KINDS = ["file", "dir", "symlink"] as const
const opCode = new Map<string, number>(OPS.map((o, i) => [o, i]))
const kindCode = new Map<string, number>(KINDS.map((k, i) => [k, i]))

/** The fields every operation has, in the order an operation's JSON lists them. */
const BASE = new Set(["op", "path", "kind", "troveId", "trove", "sha256", "size", "mode", "owner", "group", "target", "config"])

/** The optional fields of an operation (notes, merge bases, kept, unowned, saved, takesOver), as given. */
type Extras = Record<string, unknown>

/** An int column's mark for a value kept in its map: past 32 bits, or this value itself. */
const WIDE = -0x80000000

const NO_SHA = 0
const PACKED_SHA = 1
const OTHER_SHA = 2

/** Code units of UTF-16 surrogates: a path with any is kept as a string (see Table). */
const SURROGATE = /[\uD800-\uDFFF]/

const compareStrings = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** Byte ranges compared as memcmp, then by length. */
const compareBytes = (a: Buffer, i: number, endA: number, b: Buffer, j: number, endB: number): number => {
  for (; i < endA && j < endB; i++, j++) if (a[i] !== b[j]) return a[i]! - b[j]!
  return endA - i - (endB - j)
}

/** Append-only rows, one per operation. */
class Table {
  length = 0
  /**
   * The paths, as UTF-8 end to end (row r's ends at pathEnds[r]): 200,000
   * paths took ~11.5 MB as strings in an array, ~6.5 here. A path with a
   * surrogate (a character past U+FFFF, or a lone one from a hostile saved
   * plan, which UTF-8 cannot carry) is kept aside as given; the rest then
   * compare byte by byte exactly as their strings compare with `<`.
   */
  private pathBytes = Buffer.alloc(0)
  private pathEnds = new Uint32Array(0)
  private pathUsed = 0
  /** every path in pathBytes is ASCII: read back as latin1 (the same, sooner than UTF-8) */
  private ascii = true
  private readonly otherPaths = new Map<number, string>()
  /** a path looked up, as UTF-8 (pathKey) */
  private keyBytes = Buffer.alloc(256)
  private codes = new Uint8Array(0) // op | kind << 3 | config << 5 | sha state << 6
  private sizes = new Float64Array(0)
  private ints = new Int32Array(0) // troveId, mode; WIDE: in wideInts
  /** troveIds and modes past 32 bits (a hostile saved plan's), by their place in `ints` */
  private readonly wideInts = new Map<number, number>()
  private names: Uint16Array | Uint32Array = new Uint16Array(0) // trove label, owner, group (interned); 32 bits past 65,535 strings
  private digests = Buffer.alloc(0)
  /** the digests as 8 words each (Buffer.alloc's own memory, so aligned): compared here without a native call */
  private digestWords = new Int32Array(0)
  private readonly strings: string[] = []
  private readonly stringIndex = new Map<string, number>()
  private readonly targets = new Map<number, string>()
  /** digests that are not 64 lowercase hex digits (a hostile saved plan's): kept as they are */
  private readonly otherShas = new Map<number, string>()
  private readonly extras = new Map<number, Extras>()

  private grow() {
    this.resize(Math.max(1024, 2 * this.codes.length))
  }

  /** Columns no longer than the rows: a plan is made once and then read (a fifth of it was spare room). */
  fit() {
    if (this.codes.length > this.length) this.resize(this.length)
    if (this.pathBytes.length > this.pathUsed) this.pathBytes = Buffer.from(this.pathBytes.subarray(0, this.pathUsed))
  }

  private resize(size: number) {
    const codes = new Uint8Array(size)
    codes.set(this.codes.subarray(0, size))
    const sizes = new Float64Array(size)
    sizes.set(this.sizes.subarray(0, size))
    const ints = new Int32Array(2 * size)
    ints.set(this.ints.subarray(0, 2 * size))
    const names = this.names instanceof Uint16Array ? new Uint16Array(3 * size) : new Uint32Array(3 * size)
    names.set(this.names.subarray(0, 3 * size))
    const digests = Buffer.alloc(32 * size)
    this.digests.copy(digests, 0, 0, 32 * size)
    const pathEnds = new Uint32Array(size)
    pathEnds.set(this.pathEnds.subarray(0, size))
    this.pathEnds = pathEnds
    this.codes = codes
    this.sizes = sizes
    this.ints = ints
    this.names = names
    this.digests = digests
    this.digestWords = new Int32Array(digests.buffer, digests.byteOffset, 8 * size)
  }

  private intern(s: string): number {
    let i = this.stringIndex.get(s)
    if (i === undefined) {
      i = this.strings.push(s) - 1
      this.stringIndex.set(s, i)
      if (i === 0x10000 && this.names instanceof Uint16Array) this.names = Uint32Array.from(this.names)
    }
    return i
  }

  private setInt(at: number, value: number) {
    if ((value | 0) === value && value !== WIDE) this.ints[at] = value
    else {
      this.ints[at] = WIDE
      this.wideInts.set(at, value)
    }
  }

  private int(at: number): number {
    const value = this.ints[at]!
    return value === WIDE ? this.wideInts.get(at)! : value
  }

  add(op: FileOp): number {
    const row = this.length
    if (row === this.codes.length) this.grow()
    const code = opCode.get(op.op)
    const kind = kindCode.get(op.kind)
    if (code === undefined || kind === undefined) throw new Error(`not a file operation: ${op.op} of a ${op.kind}`)
    let sha = NO_SHA
    if (op.sha256 !== null) {
      // A digest is packed into its row's 32 bytes; anything else is kept aside, as given.
      if (readDigest(op.sha256, this.digests, 32 * row)) sha = PACKED_SHA
      else {
        this.otherShas.set(row, op.sha256)
        sha = OTHER_SHA
      }
    }
    this.codes[row] = code | (kind << 3) | (op.config ? 1 << 5 : 0) | (sha << 6)
    this.setInt(2 * row, op.troveId)
    this.sizes[row] = op.size
    this.setInt(2 * row + 1, op.mode)
    // Interned before any is written: interning the 65,537th string replaces `names` (32 bits), and
    // `this.names[...] = this.intern(...)` would write into the array it replaced.
    const trove = this.intern(op.trove)
    const owner = this.intern(op.owner)
    const group = this.intern(op.group)
    this.names[3 * row] = trove
    this.names[3 * row + 1] = owner
    this.names[3 * row + 2] = group
    if (op.target !== null) this.targets.set(row, op.target)
    let extras: Extras | undefined
    for (const key in op) {
      const value = (op as unknown as Record<string, unknown>)[key]
      if (BASE.has(key) || value === undefined) continue
      ;(extras ??= {})[key] = value
    }
    if (extras) this.extras.set(row, extras)
    this.addPath(row, op.path)
    this.length++
    return row
  }

  private addPath(row: number, p: string) {
    const n = Buffer.byteLength(p)
    if (n !== p.length && SURROGATE.test(p)) this.otherPaths.set(row, p)
    else {
      if (n !== p.length) this.ascii = false
      if (this.pathUsed + n > this.pathBytes.length) {
        const grown = Buffer.allocUnsafe(Math.max(64 << 10, 2 * this.pathBytes.length, this.pathUsed + n))
        this.pathBytes.copy(grown, 0, 0, this.pathUsed)
        this.pathBytes = grown
      }
      this.pathUsed += this.pathBytes.write(p, this.pathUsed, "utf8")
    }
    this.pathEnds[row] = this.pathUsed
  }

  path(row: number): string {
    const start = this.start(row)
    const end = this.pathEnds[row]!
    if (start === end && this.otherPaths.size > 0) {
      const other = this.otherPaths.get(row)
      if (other !== undefined) return other
    }
    return this.pathBytes.toString(this.ascii ? "latin1" : "utf8", start, end)
  }

  /** Rows' paths compared as `<` compares their strings (<0, 0, >0), without making the strings where it can. */
  comparePaths(a: number, b: number): number {
    if (this.otherPaths.size > 0 && (this.otherPaths.has(a) || this.otherPaths.has(b))) return compareStrings(this.path(a), this.path(b))
    return compareBytes(this.pathBytes, this.start(a), this.pathEnds[a]!, this.pathBytes, this.start(b), this.pathEnds[b]!)
  }

  /** A row's path compared with `path`, as comparePaths; `key`: the length of `path` in keyBytes (pathKey), or -1. */
  comparePathWith(row: number, path: string, key: number): number {
    if (key < 0 || (this.otherPaths.size > 0 && this.otherPaths.has(row))) return compareStrings(this.path(row), path)
    return compareBytes(this.pathBytes, this.start(row), this.pathEnds[row]!, this.keyBytes, 0, key)
  }

  /** `path` as UTF-8 in keyBytes, for comparePathWith: its length, or -1 for a path kept as a string. */
  pathKey(path: string): number {
    const n = Buffer.byteLength(path)
    if (n !== path.length && SURROGATE.test(path)) return -1
    if (n > this.keyBytes.length) this.keyBytes = Buffer.alloc(Math.max(2 * this.keyBytes.length, n))
    return this.keyBytes.write(path, 0, "utf8")
  }

  private start(row: number): number {
    return row === 0 ? 0 : this.pathEnds[row - 1]!
  }

  /** Makes a row the operation `op`, with these optional fields in place of its own. */
  setOp(row: number, op: FileOp["op"], extras: Extras | undefined) {
    this.codes[row] = (this.codes[row]! & ~7) | opCode.get(op)!
    if (extras) this.extras.set(row, extras)
    else this.extras.delete(row)
  }

  kind(row: number): FileOp["kind"] {
    return KINDS[(this.codes[row]! >> 3) & 3]!
  }

  opName(row: number): FileOp["op"] {
    return OPS[this.codes[row]! & 7]!
  }

  /** The row's digest as its 32 bytes, into `into`; false when it has none packed (none, or not 64 hex digits). */
  digestInto(row: number, into: Buffer): boolean {
    if (this.codes[row]! >> 6 !== PACKED_SHA) return false
    this.digests.copy(into, 0, 32 * row, 32 * row + 32)
    return true
  }

  /** Whether the row's packed digest is the one in `words` (8 of them). */
  hasDigest(row: number, words: Int32Array): boolean {
    if (this.codes[row]! >> 6 !== PACKED_SHA) return false
    const w = this.digestWords
    const at = 8 * row
    return (
      w[at] === words[0] && w[at + 1] === words[1] && w[at + 2] === words[2] && w[at + 3] === words[3] &&
      w[at + 4] === words[4] && w[at + 5] === words[5] && w[at + 6] === words[6] && w[at + 7] === words[7]
    )
  }

  sha256(row: number): string | null {
    const sha = this.codes[row]! >> 6
    return sha === PACKED_SHA ? this.digests.toString("hex", 32 * row, 32 * row + 32) : sha === OTHER_SHA ? this.otherShas.get(row)! : null
  }

  troveId(row: number): number {
    return this.int(2 * row)
  }

  size(row: number): number {
    return this.sizes[row]!
  }

  mode(row: number): number {
    return this.int(2 * row + 1)
  }

  hasExtras(row: number): boolean {
    return this.extras.has(row)
  }

  extra(row: number, field: string): unknown {
    const extras = this.extras.get(row)
    return extras === undefined ? undefined : extras[field]
  }

  op(row: number): FileOp {
    const base = this.base(row)
    const extras = this.extras.get(row)
    return extras ? { ...base, ...extras } : base
  }

  /** A row's operation without its optional fields. */
  base(row: number): FileOp {
    const c = this.codes[row]!
    return {
      op: OPS[c & 7]!,
      path: this.path(row),
      kind: KINDS[(c >> 3) & 3]!,
      troveId: this.int(2 * row),
      trove: this.strings[this.names[3 * row]!]!,
      sha256: this.sha256(row),
      size: this.sizes[row]!,
      mode: this.int(2 * row + 1),
      owner: this.strings[this.names[3 * row + 1]!]!,
      group: this.strings[this.names[3 * row + 2]!]!,
      target: this.targets.get(row) ?? null,
      config: (c & (1 << 5)) !== 0,
    }
  }
}

/**
 * A plan's file operations, in order. Read them with `at(i)` or by
 * iterating (each a fresh FileOp); `filter` and `sortedByPath` share the
 * rows. JSON.stringify writes them as the array of operations.
 */
export class FileOps implements Iterable<FileOp> {
  /** (made by FileOps.from and FileOpsBuilder: the table is this module's) */
  constructor(
    private readonly table: Table,
    /** the table's rows, in this list's order */
    private readonly rows: Uint32Array,
  ) {}

  static from(ops: Iterable<FileOp>): FileOps {
    const b = new FileOpsBuilder()
    for (const op of ops) b.push(op)
    return b.build()
  }

  get length(): number {
    return this.rows.length
  }

  at(i: number): FileOp {
    return this.table.op(this.rows[i]!)
  }

  /** The path of operation i, without making the operation. */
  path(i: number): string {
    return this.table.path(this.rows[i]!)
  }

  /** Fields of operation i, read from their columns without making the operation. */
  op(i: number): FileOp["op"] {
    return this.table.opName(this.rows[i]!)
  }

  kind(i: number): FileOp["kind"] {
    return this.table.kind(this.rows[i]!)
  }

  sha256(i: number): string | null {
    return this.table.sha256(this.rows[i]!)
  }

  /** Operation i's digest as its 32 bytes, into `into`, without making its hex; false when it has none packed. */
  digestInto(i: number, into: Buffer): boolean {
    return this.table.digestInto(this.rows[i]!, into)
  }

  /** Whether operation i's digest is the one in `words` (its 32 bytes as 8 words), without making its hex. */
  hasDigest(i: number, words: Int32Array): boolean {
    return this.table.hasDigest(this.rows[i]!, words)
  }

  size(i: number): number {
    return this.table.size(this.rows[i]!)
  }

  troveId(i: number): number {
    return this.table.troveId(this.rows[i]!)
  }

  mode(i: number): number {
    return this.table.mode(this.rows[i]!)
  }

  *[Symbol.iterator](): Iterator<FileOp> {
    for (let i = 0; i < this.rows.length; i++) yield this.table.op(this.rows[i]!)
  }

  filter(keep: (op: FileOp, i: number) => unknown): FileOps {
    const rows = new Uint32Array(this.rows.length)
    let n = 0
    for (let i = 0; i < this.rows.length; i++) if (keep(this.table.op(this.rows[i]!), i)) rows[n++] = this.rows[i]!
    return new FileOps(this.table, rows.slice(0, n))
  }

  /** The operations for which `keep(i)` holds: it reads their columns (path, op, kind...) here, no operation made. */
  where(keep: (i: number) => unknown): FileOps {
    const rows = new Uint32Array(this.rows.length)
    let n = 0
    for (let i = 0; i < this.rows.length; i++) if (keep(i)) rows[n++] = this.rows[i]!
    return new FileOps(this.table, rows.slice(0, n))
  }

  /** Whether operation i has none of the optional fields (notes, kept, saved, takesOver, ...), without making the operation. */
  plain(i: number): boolean {
    return !this.table.hasExtras(this.rows[i]!)
  }

  /** Whether operation i's optional flag is true, without making the operation. */
  flag(i: number, field: "kept" | "unowned"): boolean {
    return this.table.extra(this.rows[i]!, field) === true
  }

  /** Like Array's: an array of what `f` makes of each operation. */
  map<T>(f: (op: FileOp, i: number) => T): T[] {
    const out = new Array<T>(this.rows.length)
    for (let i = 0; i < this.rows.length; i++) out[i] = f(this.table.op(this.rows[i]!), i)
    return out
  }

  flatMap<T>(f: (op: FileOp) => ReadonlyArray<T>): T[] {
    const out: T[] = []
    for (const op of this) for (const x of f(op)) out.push(x)
    return out
  }

  /** Operations from..to-1, as objects. */
  slice(from: number, to: number): FileOp[] {
    const out: FileOp[] = []
    for (let i = from; i < Math.min(to, this.rows.length); i++) out.push(this.table.op(this.rows[i]!))
    return out
  }

  some(test: (op: FileOp) => unknown): boolean {
    for (const op of this) if (test(op)) return true
    return false
  }

  find(test: (op: FileOp) => unknown): FileOp | undefined {
    for (const op of this) if (test(op)) return op
    return undefined
  }

  findIndex(test: (op: FileOp) => unknown): number {
    for (let i = 0; i < this.rows.length; i++) if (test(this.table.op(this.rows[i]!))) return i
    return -1
  }

  /** The same operations, each as `f` makes it anew (a new list: this one is unchanged). */
  mapOps(f: (op: FileOp) => FileOp): FileOps {
    const b = new FileOpsBuilder()
    for (const op of this) b.push(f(op))
    return b.build()
  }

  /** The index of the operation on `path` in this list sorted by path (as sortedByPath makes it, or filtered from one); -1 when none. */
  indexOfPath(path: string): number {
    const { table, rows } = this
    const key = table.pathKey(path)
    let lo = 0
    let hi = rows.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (table.comparePathWith(rows[mid]!, path, key) < 0) lo = mid + 1
      else hi = mid
    }
    return lo < rows.length && table.comparePathWith(rows[lo]!, path, key) === 0 ? lo : -1
  }

  /** Stably sorted by path (byte order of the UTF-16 code units, as `<` compares). */
  sortedByPath(): FileOps {
    const table = this.table
    const order = Array.from(this.rows)
    order.sort((a, b) => table.comparePaths(a, b))
    return new FileOps(this.table, Uint32Array.from(order))
  }

  toArray(): FileOp[] {
    return [...this]
  }

  toJSON(): FileOp[] {
    return this.toArray()
  }
}

/**
 * Collects operations as a planner makes them: rows first (a trove's file,
 * as the operation on it would carry it), then the rows chosen as
 * operations, in the order chosen. A file no operation touches costs its row
 * only, never an object.
 */
export class FileOpsBuilder {
  private readonly table = new Table()
  private chosen: number[] = []
  private isChosen = new Uint8Array(0)

  /** A row, not (yet) an operation; its `op` is a placeholder. */
  add(row: FileOp): number {
    const i = this.table.add(row)
    if (i >= this.isChosen.length) {
      const grown = new Uint8Array(Math.max(1024, 2 * i))
      grown.set(this.isChosen)
      this.isChosen = grown
    }
    return i
  }

  at(row: number): FileOp {
    return this.table.op(row)
  }

  kind(row: number): FileOp["kind"] {
    return this.table.kind(row)
  }

  /** Makes a row an operation (a second operation on the same row gets a row of its own). */
  choose(row: number, op: FileOp["op"], extras?: Extras): void {
    if (this.isChosen[row] === 1) return this.push({ ...this.table.base(row), op, ...extras })
    this.table.setOp(row, op, extras)
    this.isChosen[row] = 1
    this.chosen.push(row)
  }

  /** An operation made whole. */
  push(op: FileOp): void {
    const row = this.add(op)
    this.isChosen[row] = 1
    this.chosen.push(row)
  }

  /** The paths of the operations chosen so far. */
  chosenPaths(): Set<string> {
    return new Set(this.chosen.map((row) => this.table.path(row)))
  }

  build(): FileOps {
    this.table.fit()
    return new FileOps(this.table, Uint32Array.from(this.chosen))
  }
}
