import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"

// Building .rpm files for tests: real ones with rpmbuild, and raw ones
// written byte by byte, for packages rpmbuild would never make.

/** Builds the binary packages of a spec with rpmbuild into `top`; returns their paths. */
export const rpmbuild = (top: string, name: string, spec: string, payload = "w9.gzdio"): string[] => {
  const specFile = path.join(top, `${name}.spec`)
  fs.mkdirSync(top, { recursive: true })
  fs.writeFileSync(specFile, spec)
  const out = path.join(top, "out", name)
  execFileSync(
    "rpmbuild",
    ["-bb", "--quiet", "--define", `_topdir ${top}`, "--define", `_rpmdir ${out}`, "--define", `_binary_payload ${payload}`, "--define", "_build_id_links none", "--define", "debug_package %{nil}", specFile],
    { stdio: ["ignore", "ignore", "pipe"] },
  )
  const found: string[] = []
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name))
      else if (e.name.endsWith(".rpm")) found.push(path.join(d, e.name))
    }
  }
  walk(out)
  return found.sort()
}

/** What `rpm2cpio X | cpio -idm` makes of an empty directory. */
export const rpm2cpio = (rpms: ReadonlyArray<string>, into: string): string => {
  fs.mkdirSync(into, { recursive: true })
  for (const r of rpms) execFileSync("sh", ["-c", 'rpm2cpio "$1" | cpio -idm --quiet', "sh", r], { cwd: into })
  return into
}

// ---- raw packages -------------------------------------------------------------

type Value = { type: 3 | 4; values: readonly number[] } | { type: 6; value: string } | { type: 7; value: Buffer } | { type: 8; values: readonly string[] }

/** A header: index entries over a data store, ints aligned as rpm aligns them. */
export const rpmHeader = (tags: ReadonlyArray<readonly [number, Value]>): Buffer => {
  const index: Buffer[] = []
  const store: Buffer[] = []
  let size = 0
  for (const [tag, v] of tags) {
    let data: Buffer
    let count: number
    if (v.type === 3 || v.type === 4) {
      const width = v.type === 3 ? 2 : 4
      const pad = (width - (size % width)) % width
      if (pad) {
        store.push(Buffer.alloc(pad))
        size += pad
      }
      data = Buffer.alloc(width * v.values.length)
      v.values.forEach((n, i) => (width === 2 ? data.writeUInt16BE(n, i * 2) : data.writeUInt32BE(n, i * 4)))
      count = v.values.length
    } else if (v.type === 6) {
      data = Buffer.from(v.value + "\0")
      count = 1
    } else if (v.type === 7) {
      data = v.value
      count = v.value.length
    } else {
      data = Buffer.from(v.values.map((s) => s + "\0").join(""))
      count = v.values.length
    }
    const e = Buffer.alloc(16)
    e.writeUInt32BE(tag, 0)
    e.writeUInt32BE(v.type, 4)
    e.writeUInt32BE(size, 8)
    e.writeUInt32BE(count, 12)
    index.push(e)
    store.push(data)
    size += data.length
  }
  const intro = Buffer.from([0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  intro.writeUInt32BE(index.length, 8)
  intro.writeUInt32BE(size, 12)
  return Buffer.concat([intro, ...index, ...store])
}

export interface CpioMember {
  readonly name: string | Buffer
  readonly mode: number
  readonly data?: Buffer
  readonly size?: number
  readonly ino?: number
  readonly nlink?: number
}

/** A newc cpio archive with a trailer. */
export const cpio = (members: ReadonlyArray<CpioMember>): Buffer => {
  const parts: Buffer[] = []
  const hex = (n: number) => n.toString(16).padStart(8, "0")
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4)
  for (const m of [...members, { name: "TRAILER!!!", mode: 0 }]) {
    const name = Buffer.concat([Buffer.from(m.name), Buffer.from([0])])
    const data = m.data ?? Buffer.alloc(0)
    const fields = [m.ino ?? 1, m.mode, 0, 0, m.nlink ?? 1, 0, m.size ?? data.length, 0, 0, 0, 0, name.length, 0]
    const header = Buffer.from("070701" + fields.map(hex).join(""), "latin1")
    parts.push(header, name, pad(header.length + name.length), data, pad(data.length))
  }
  return Buffer.concat(parts)
}

export interface RawFile {
  readonly path: string
  readonly mode: number
  readonly data?: Buffer
  /** the size the header says (default: the data's) */
  readonly size?: number
  readonly flags?: number
  readonly link?: string
}

/**
 * An .rpm written by hand: lead, a signature header with no digests, a main
 * header listing `files`, and `payload` (default: the files as cpio, gzipped).
 */
export const rawRpm = (out: string, o: { name?: string; version?: string; files: RawFile[]; payload?: Buffer; extraTags?: ReadonlyArray<readonly [number, Value]> }): string => {
  const lead = Buffer.alloc(96)
  Buffer.from([0xed, 0xab, 0xee, 0xdb, 3, 0]).copy(lead)
  lead.write(o.name ?? "raw", 10, "latin1")
  lead.writeUInt16BE(1, 76)
  lead.writeUInt16BE(5, 78)
  const sig = rpmHeader([[1004, { type: 7, value: Buffer.alloc(16) }]])
  const sigPadded = Buffer.concat([sig, Buffer.alloc((8 - (sig.length % 8)) % 8)])
  const dirs = [...new Set(o.files.map((f) => f.path.slice(0, f.path.lastIndexOf("/") + 1)))]
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex")
  const main = rpmHeader([
    [1000, { type: 6, value: o.name ?? "raw" }],
    [1001, { type: 6, value: o.version ?? "1.0" }],
    [1002, { type: 6, value: "1" }],
    [1022, { type: 6, value: "noarch" }],
    [1124, { type: 6, value: "cpio" }],
    [1125, { type: 6, value: "gzip" }],
    ...(o.files.length === 0
      ? []
      : ([
          [1116, { type: 4, values: o.files.map((f) => dirs.indexOf(f.path.slice(0, f.path.lastIndexOf("/") + 1))) }],
          [1117, { type: 8, values: o.files.map((f) => f.path.slice(f.path.lastIndexOf("/") + 1)) }],
          [1118, { type: 8, values: dirs }],
          [1030, { type: 3, values: o.files.map((f) => f.mode) }],
          [1028, { type: 4, values: o.files.map((f) => f.size ?? f.data?.length ?? 0) }],
          [1035, { type: 8, values: o.files.map((f) => (f.data ? sha(f.data) : "")) }],
          [1036, { type: 8, values: o.files.map((f) => f.link ?? "") }],
          [1037, { type: 4, values: o.files.map((f) => f.flags ?? 0) }],
          [5011, { type: 4, values: [8] }],
        ] satisfies Array<readonly [number, Value]>)),
    ...(o.extraTags ?? []),
  ])
  const payload =
    o.payload ??
    zlib.gzipSync(cpio(o.files.filter((f) => !((f.flags ?? 0) & 64)).map((f) => ({ name: `.${f.path}`, mode: f.mode, data: f.link !== undefined ? Buffer.from(f.link) : f.data }))))
  fs.writeFileSync(out, Buffer.concat([lead, sigPadded, main, payload]))
  return out
}

/** Where the main header of an .rpm starts, and its index size (for tests that corrupt it). */
export const mainHeaderAt = (rpm: Buffer): { offset: number; entries: number; data: number } => {
  const sigEntries = rpm.readUInt32BE(96 + 8)
  const sigData = rpm.readUInt32BE(96 + 12)
  const end = 96 + 16 + sigEntries * 16 + sigData
  const offset = end + ((8 - (end % 8)) % 8)
  return { offset, entries: rpm.readUInt32BE(offset + 8), data: rpm.readUInt32BE(offset + 12) }
}
