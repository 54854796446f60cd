import * as fs from "node:fs"
import { strictUtf8 } from "./utf8.js"

// An rpm header: a tag/type/offset/count index and the data store it points
// into (rpm's lib/header.c). Every entry is checked against the store before
// anything is decoded, so a hostile index can neither read outside the store
// nor make us allocate more than the store's size.

export const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01])

const TYPE_SIZE = [0, 1, 1, 2, 4, 8, 1, 1, 1, 1] as const
const CHAR = 1
const INT64 = 5
const STRING = 6
const BIN = 7
const STRING_ARRAY = 8
const I18NSTRING = 9

interface Entry {
  readonly type: number
  readonly offset: number
  readonly count: number
  /** bytes from offset the entry's data spans */
  readonly length: number
}

export interface HeaderLimits {
  readonly entries: number
  readonly data: number
}

export class RpmHeader {
  private constructor(
    /** the header as stored (intro, index and store): what its digest covers */
    readonly bytes: Buffer,
    private readonly store: Buffer,
    private readonly entries: ReadonlyMap<number, Entry>,
    private readonly fail: (reason: string) => never,
  ) {}

  /**
   * Reads the header at `offset` of an open file, within limits; `what`
   * names it in errors (`signature header`). Returns it and where it ends.
   */
  static read(fd: number, offset: number, limits: HeaderLimits, what: string, fail: (reason: string) => never): { header: RpmHeader; end: number } {
    const intro = readAt(fd, offset, 16)
    if (intro.length < 16) fail(`truncated ${what}`)
    if (!intro.subarray(0, 4).equals(HEADER_MAGIC)) fail(`bad ${what} magic`)
    const count = intro.readUInt32BE(8)
    const dataLength = intro.readUInt32BE(12)
    if (count === 0 || count > limits.entries) fail(`${what} has ${count} index entries (at most ${limits.entries} are read)`)
    if (dataLength > limits.data) fail(`${what} data store of ${dataLength} bytes is larger than ${limits.data}`)
    const size = 16 + count * 16 + dataLength
    if (offset + size > fs.fstatSync(fd).size) fail(`truncated ${what}`)
    const rest = readAt(fd, offset + 16, size - 16)
    if (rest.length < size - 16) fail(`truncated ${what}`)
    const bytes = Buffer.concat([intro, rest])
    const store = bytes.subarray(16 + count * 16)
    const entries = new Map<number, Entry>()
    for (let i = 0; i < count; i++) {
      const at = 16 + i * 16
      const tag = bytes.readUInt32BE(at)
      const type = bytes.readUInt32BE(at + 4)
      const off = bytes.readUInt32BE(at + 8)
      const n = bytes.readUInt32BE(at + 12)
      const where = `${what} entry ${i} (tag ${tag})`
      if (type === 0 || type >= TYPE_SIZE.length) fail(`${where} has unknown type ${type}`)
      if (n === 0) fail(`${where} has a count of 0`)
      if (off >= dataLength) fail(`${where} points outside the data store (offset ${off} of ${dataLength})`)
      if (type === STRING && n !== 1) fail(`${where} is a string with a count of ${n}`)
      let length: number
      if (type === STRING || type === STRING_ARRAY || type === I18NSTRING) {
        // n NUL-terminated strings, all inside the store; each takes a byte at least.
        if (n > dataLength - off) fail(`${where} counts ${n} strings, more than its data store holds`)
        let end = off
        for (let s = 0; s < n; s++) {
          const nul = store.indexOf(0, end)
          if (nul < 0) fail(`${where} runs past the end of the data store`)
          end = nul + 1
        }
        length = end - off
      } else {
        length = n * TYPE_SIZE[type]!
        if (length > dataLength - off) fail(`${where} counts ${n} items, which would run past the end of the data store (${dataLength} bytes)`)
      }
      if (entries.has(tag)) fail(`${what} has tag ${tag} twice`)
      entries.set(tag, { type, offset: off, count: n, length })
    }
    return { header: new RpmHeader(bytes, store, entries, fail), end: offset + size }
  }

  has(tag: number): boolean {
    return this.entries.has(tag)
  }

  /** How many items a tag has (0 when absent). */
  count(tag: number): number {
    return this.entries.get(tag)?.count ?? 0
  }

  private entry(tag: number, types: ReadonlyArray<number>, name: string): Entry | undefined {
    const e = this.entries.get(tag)
    if (e && !types.includes(e.type)) this.fail(`header tag ${name} has type ${e.type}, not a ${types.includes(STRING) ? "string" : "number"}`)
    return e
  }

  /** A string tag's raw items (STRING, STRING_ARRAY, I18NSTRING: the first translation only is meant). */
  raw(tag: number, name: string): Buffer[] | undefined {
    const e = this.entry(tag, [STRING, STRING_ARRAY, I18NSTRING], name)
    if (!e) return undefined
    const out: Buffer[] = []
    let at = e.offset
    for (let i = 0; i < e.count; i++) {
      const nul = this.store.indexOf(0, at)
      out.push(this.store.subarray(at, nul))
      at = nul + 1
    }
    return out
  }

  /** A string tag's items as text; text that is not UTF-8 is refused unless `lenient` (then it is decoded with replacements). */
  strings(tag: number, name: string, lenient = false): string[] | undefined {
    return this.raw(tag, name)?.map((b) => {
      if (lenient) return b.toString("utf8")
      try {
        return strictUtf8.decode(b)
      } catch {
        return this.fail(`header tag ${name} is not UTF-8`)
      }
    })
  }

  string(tag: number, name: string, lenient = false): string | undefined {
    return this.strings(tag, name, lenient)?.[0]
  }

  /** A number tag's items (CHAR, INT8/16/32 unsigned, INT64 up to 2^53). */
  numbers(tag: number, name: string): number[] | undefined {
    const e = this.entry(tag, [CHAR, 2, 3, 4, INT64], name)
    if (!e) return undefined
    const size = TYPE_SIZE[e.type]!
    const out = new Array<number>(e.count)
    for (let i = 0, at = e.offset; i < e.count; i++, at += size) {
      if (size === 1) out[i] = this.store[at]!
      else if (size === 2) out[i] = this.store.readUInt16BE(at)
      else if (size === 4) out[i] = this.store.readUInt32BE(at)
      else {
        const v = this.store.readBigUInt64BE(at)
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`header tag ${name} holds ${v}, too large`)
        out[i] = Number(v)
      }
    }
    return out
  }

  number(tag: number, name: string): number | undefined {
    return this.numbers(tag, name)?.[0]
  }

  binary(tag: number, name: string): Buffer | undefined {
    const e = this.entry(tag, [BIN], name)
    return e && this.store.subarray(e.offset, e.offset + e.length)
  }
}

/** Up to `length` bytes of a file at `offset` (fewer at its end). */
export const readAt = (fd: number, offset: number, length: number): Buffer => {
  const buf = Buffer.alloc(length)
  let got = 0
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, offset + got)
    if (n === 0) break
    got += n
  }
  return buf.subarray(0, got)
}
