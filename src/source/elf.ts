import { parseDep } from "../model/trove.js"
import { strictUtf8 } from "./utf8.js"

// The shared-library dependencies of an ELF file, as rpm's elfdeps spells
// them: DT_SONAME (and the versions .gnu.version_d defines) provided,
// DT_NEEDED (and the versions .gnu.version_r needs) required, 64-bit objects
// marked `(64bit)`: `libc.so.6()(64bit)`, `libc.so.6(GLIBC_2.34)(64bit)`,
// `libfoo.so.1` for a 32-bit one. As elfdeps: only a shared object without
// DT_DEBUG (not a PIE program) provides its soname; only a file that can run
// (an execute bit) or be loaded (no interpreter) requires; a name without
// `.so`, or not starting `lib` or `ld`, is left out. Reads only the header,
// the program and section headers, the dynamic and version sections and their
// string table, every offset checked against the file: anything malformed is
// simply not an ELF here.

export interface ElfDeps {
  /** soname texts, without the `soname: ` prefix */
  readonly provides: ReadonlyArray<string>
  readonly requires: ReadonlyArray<string>
}

const ET_EXEC = 2
const ET_DYN = 3
const PT_INTERP = 3
const SHT_DYNAMIC = 6
const SHT_NOBITS = 8
const SHT_GNU_VERDEF = 0x6ffffffd
const SHT_GNU_VERNEED = 0x6ffffffe
const DT_NULL = 0
const DT_NEEDED = 1
const DT_SONAME = 14
const DT_DEBUG = 21
const VER_FLG_BASE = 1
/** Alpha is 64-bit only: rpm gives its objects no marker. */
const EM_ALPHA = [41, 0x9026]

class Malformed extends Error {}

/** A soname elfdeps emits: a library's or the dynamic linker's. */
const plausible = (name: string): boolean => name.includes(".so") && /^(lib|ld[.-]|ld64[.-])/.test(name)

/** Whether the bytes start as an ELF file does (cheap: callers test every file they pack). */
export const looksLikeElf = (data: Uint8Array): boolean =>
  data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46

interface Section {
  readonly type: number
  readonly offset: number
  readonly size: number
  readonly link: number
  readonly info: number
}

/**
 * The soname provides and requires of an ELF file with permission bits
 * `mode`, or undefined when it is not a well-formed ELF program or shared object.
 */
export const elfDeps = (data: Uint8Array, mode: number): ElfDeps | undefined => {
  if (!looksLikeElf(data) || data.length < 64) return undefined
  const cls = data[4]
  const order = data[5]
  if ((cls !== 1 && cls !== 2) || (order !== 1 && order !== 2)) return undefined
  try {
    return read(new DataView(data.buffer, data.byteOffset, data.byteLength), cls === 2, order === 1, (mode & 0o111) !== 0)
  } catch (e) {
    if (e instanceof Malformed || e instanceof RangeError) return undefined
    throw e
  }
}

const read = (view: DataView, is64: boolean, le: boolean, executable: boolean): ElfDeps | undefined => {
  const size = view.byteLength
  const u16 = (at: number) => view.getUint16(at, le)
  const u32 = (at: number) => view.getUint32(at, le)
  /** an address-sized field, as a number no larger than the file (larger cannot point into it) */
  const word = (at: number): number => {
    if (!is64) return u32(at)
    const v = view.getBigUint64(at, le)
    if (v > BigInt(size)) throw new Malformed()
    return Number(v)
  }
  const within = (offset: number, length: number) => {
    if (offset < 0 || length < 0 || offset + length > size) throw new Malformed()
  }

  const type = u16(16)
  if (type !== ET_EXEC && type !== ET_DYN) return undefined
  const marker = is64 && !EM_ALPHA.includes(u16(18)) ? "(64bit)" : ""
  const phoff = word(is64 ? 0x20 : 0x1c)
  const phentsize = u16(is64 ? 0x36 : 0x2a)
  const phnum = u16(is64 ? 0x38 : 0x2c)
  let interp = false
  if (phoff !== 0 && phnum > 0) {
    if (phentsize < 4) throw new Malformed()
    within(phoff, phnum * phentsize)
    for (let i = 0; i < phnum; i++) if (u32(phoff + i * phentsize) === PT_INTERP) interp = true
  }
  // What can neither run nor be loaded needs nothing (rpm's rule).
  const requiring = executable || !interp
  const shoff = word(is64 ? 0x28 : 0x20)
  const shentsize = u16(is64 ? 0x3a : 0x2e)
  let shnum = u16(is64 ? 0x3c : 0x30)
  if (shoff === 0) return { provides: [], requires: [] }
  if (shentsize < (is64 ? 64 : 40)) throw new Malformed()
  const header = (i: number): Section => {
    const at = shoff + i * shentsize
    within(at, shentsize)
    return is64
      ? { type: u32(at + 4), offset: word(at + 24), size: word(at + 32), link: u32(at + 40), info: u32(at + 44) }
      : { type: u32(at + 4), offset: u32(at + 16), size: u32(at + 20), link: u32(at + 24), info: u32(at + 28) }
  }
  // Extended numbering: past 0xff00 sections, the count is section 0's size.
  if (shnum === 0) shnum = header(0).size
  within(shoff, shnum * shentsize)
  const sections = Array.from({ length: shnum }, (_, i) => header(i))
  const contents = (s: Section): Section => {
    if (s.type === SHT_NOBITS) throw new Malformed()
    within(s.offset, s.size)
    return s
  }
  /** The string table a section links to, as a reader of NUL-terminated names in it. */
  const stringsOf = (s: Section): ((at: number) => string) => {
    const table = s.link < sections.length ? contents(sections[s.link]!) : undefined
    if (!table) throw new Malformed()
    return (at) => {
      if (at >= table.size) throw new Malformed()
      const start = table.offset + at
      const bytes = new Uint8Array(view.buffer, view.byteOffset + start, table.size - at)
      const end = bytes.indexOf(0)
      if (end < 0) throw new Malformed()
      try {
        return strictUtf8.decode(bytes.subarray(0, end))
      } catch {
        throw new Malformed()
      }
    }
  }

  let soname: string | undefined
  let debug = false
  const needed: string[] = []
  const dynamic = sections.find((s) => s.type === SHT_DYNAMIC)
  if (dynamic) {
    const str = stringsOf(contents(dynamic))
    const entry = is64 ? 16 : 8
    for (let at = dynamic.offset; at + entry <= dynamic.offset + dynamic.size; at += entry) {
      const tag = is64 ? Number(view.getBigInt64(at, le)) : view.getInt32(at, le)
      if (tag === DT_NULL) break
      if (tag === DT_NEEDED) needed.push(str(word(at + entry / 2)))
      else if (tag === DT_SONAME) soname = str(word(at + entry / 2))
      else if (tag === DT_DEBUG) debug = true
    }
  }
  const provides = new Set<string>()
  const requires = new Set<string>()
  /** rpm's spelling: `name`, `name()(64bit)`, `name(VERSION)`, `name(VERSION)(64bit)`; nothing for what would not read back as one dependency */
  const add = (into: Set<string>, name: string, version = "") => {
    if (!plausible(name)) return
    const text = version === "" && marker === "" ? name : `${name}(${version})${marker}`
    if (parseDep(`soname: ${text}`) !== undefined) into.add(text)
  }
  if (soname !== undefined && type === ET_DYN && !debug) add(provides, soname)
  if (requiring) for (const n of needed) add(requires, n)

  // Version records, each `record` bytes, chained by a `next` offset (0 ends a chain). A real file
  // has fewer records than it has bytes / 8: more visits mean chains that overlap or loop.
  let budget = Math.floor(size / 8)
  const chain = (start: number, end: number, count: number, record: number, next: (at: number) => number, visit: (at: number) => void) => {
    let at = start
    for (let i = 0; i < count; i++) {
      if (at + record > end || --budget < 0) throw new Malformed()
      visit(at)
      const step = next(at)
      if (step === 0) break
      at += step
    }
  }
  for (const s of sections) {
    if (s.type !== SHT_GNU_VERDEF && s.type !== SHT_GNU_VERNEED) continue
    const str = stringsOf(contents(s))
    const end = s.offset + s.size
    if (s.type === SHT_GNU_VERDEF) {
      // Each definition's first auxiliary names it; the base definition names the library the others are versions of.
      let base: string | undefined
      chain(s.offset, end, s.info, 20, (at) => u32(at + 16), (at) => {
        if (u16(at + 6) === 0) return
        const aux = at + u32(at + 12)
        if (aux + 8 > end) throw new Malformed()
        const name = str(u32(aux))
        if ((u16(at + 2) & VER_FLG_BASE) !== 0) base = name
        else if (base !== undefined) add(provides, base, name)
      })
    } else if (requiring) {
      chain(s.offset, end, s.info, 16, (at) => u32(at + 12), (at) => {
        const file = str(u32(at + 4))
        chain(at + u32(at + 8), end, u16(at + 2), 16, (aux) => u32(aux + 12), (aux) => add(requires, file, str(u32(aux + 8))))
      })
    }
  }
  return { provides: [...provides], requires: [...requires] }
}
