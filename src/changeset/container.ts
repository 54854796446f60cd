import * as fs from "node:fs"
import * as Schema from "effect/Schema"
import { Reason } from "../model/plan-schema.js"
import { CorruptError, unzstdChunks } from "../source/decompress.js"
import { Entry, MAX_META, decodeJson, openEnvelope } from "../source/repo-meta.js"
import { Sha256 } from "../source/repo-meta.js"

// A changeset file (.ccs): one file, read with bounded memory and checked
// whole before anything is written.
//
//   0   8 bytes  magic "CONARYCS"
//   8   4 bytes  format version (big-endian) = 1
//   12  8 bytes  header length H (big-endian)
//   20  H bytes  the header: a signed envelope (as a repository's top
//                document: the signed JSON as a string, and signatures)
//   20+H         the objects the header lists, back to back, each a zstd
//                frame of the bytes whose sha256 it is listed under (a
//                repository's object format): trove manifests and contents
//
// The file ends exactly after the last object: anything else is cut or padded.

export const MAGIC = Buffer.from("CONARYCS")
export const CHANGESET_FORMAT_VERSION = 1
const PREAMBLE = 20
/** The most bytes a header may hold (as a repository's top document). */
export const MAX_HEADER = MAX_META

const Count = Schema.Int.pipe(Schema.nonNegative())

/** An object of the file: the sha256 and size of its bytes, and the length of its zstd frame. */
export const ObjectRef = Schema.Struct({ sha256: Sha256, size: Count, length: Count })
export type ObjectRef = typeof ObjectRef.Type

/** A trove of the set the root has after apply (what a generation records). */
export const TargetRef = Schema.Struct({
  digest: Sha256,
  name: Schema.String,
  version: Schema.String,
  flavor: Schema.String,
  components: Schema.Array(Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9-]*$/))),
  reason: Reason,
  group: Schema.optional(Schema.String),
})
export type TargetRef = typeof TargetRef.Type

export const Header = Schema.Struct({
  kind: Schema.Literal("conary-changeset"),
  formatVersion: Schema.Literal(CHANGESET_FORMAT_VERSION),
  createdAt: Schema.String,
  /** the state it was made for (`status --json --installed`); null: absolute, for any root */
  madeFor: Schema.NullOr(Schema.Struct({ rootId: Schema.String, generation: Schema.Int, state: Sha256 })),
  /** the desired document it was made from: the root's desired state once applied */
  desired: Schema.String,
  target: Schema.Array(TargetRef),
  /** troves the state it was made for lacks: metadata as a repository lists it, files in the manifest object */
  troves: Schema.Array(Entry),
  objects: Schema.Array(ObjectRef),
})
export type Header = typeof Header.Type

export const preamble = (headerLength: number): Buffer => {
  const b = Buffer.alloc(PREAMBLE)
  MAGIC.copy(b, 0)
  b.writeUInt32BE(CHANGESET_FORMAT_VERSION, 8)
  b.writeBigUInt64BE(BigInt(headerLength), 12)
  return b
}

/** Whether a file starts as a changeset does (apply tells a changeset from a saved plan so). */
export const looksLikeChangeset = (file: string): boolean => {
  let fd: number | undefined
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    const b = Buffer.alloc(MAGIC.length)
    return fs.readSync(fd, b, 0, b.length, 0) === b.length && b.equals(MAGIC)
  } catch {
    return false
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/** The header as it was read, with its envelope (for signatures) and where each object lies. */
export interface OpenedChangeset {
  readonly file: string
  readonly envelope: ReturnType<typeof openEnvelope>
  readonly header: Header
  readonly at: ReadonlyMap<string, ObjectRef & { readonly offset: number }>
}

/**
 * Reads and checks a changeset's frame and header: magic, version, header
 * size, and that the objects it lists fill the rest of the file exactly.
 * Signatures are the caller's to check (it knows the trusted keys).
 */
export const openChangeset = (file: string, fail: (reason: string) => Error): OpenedChangeset => {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (e) {
    throw fail(`cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw fail("is not a regular file")
    const pre = Buffer.alloc(PREAMBLE)
    const n = fs.readSync(fd, pre, 0, PREAMBLE, 0)
    if (n < MAGIC.length || !pre.subarray(0, MAGIC.length).equals(MAGIC)) throw fail("not a conary changeset")
    if (n < PREAMBLE) throw fail(`truncated (${st.size} bytes)`)
    const version = pre.readUInt32BE(8)
    if (version !== CHANGESET_FORMAT_VERSION) throw fail(`format version ${version}; this conary reads version ${CHANGESET_FORMAT_VERSION}`)
    const length = pre.readBigUInt64BE(12)
    if (length > BigInt(MAX_HEADER)) throw fail(`its header of ${length} bytes is larger than the ${MAX_HEADER} bytes allowed`)
    const headerLength = Number(length)
    if (PREAMBLE + headerLength > st.size) throw fail(`truncated (its header is cut short at ${st.size} bytes)`)
    const bytes = Buffer.alloc(headerLength)
    for (let got = 0, n = 1; got < headerLength && n > 0; got += n) n = fs.readSync(fd, bytes, got, headerLength - got, PREAMBLE + got)
    const envelope = openEnvelope(bytes, (r) => fail(`bad header: ${r}`))
    const header = decodeJson(Header, envelope.signed, (r) => fail(`bad header: ${r}`))
    const at = new Map<string, ObjectRef & { offset: number }>()
    let offset = PREAMBLE + headerLength
    for (const o of header.objects) {
      if (at.has(o.sha256)) throw fail(`bad header: object ${o.sha256.slice(0, 16)} listed twice`)
      at.set(o.sha256, { ...o, offset })
      offset += o.length
    }
    if (offset > st.size) throw fail(`truncated (${st.size} bytes; its objects need ${offset})`)
    if (offset < st.size) throw fail(`${st.size - offset} bytes follow its last object (not a changeset as written)`)
    return { file, envelope, header, at }
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * An object's bytes as a stream, decompressed and never more than its size:
 * the caller hashes them (the store's putStream, or verifyObject).
 */
export const objectStream = (cs: OpenedChangeset, sha256: string): AsyncGenerator<Buffer> => {
  const o = cs.at.get(sha256)!
  const raw = o.length === 0 ? (async function* () {})() : fs.createReadStream(cs.file, { start: o.offset, end: o.offset + o.length - 1 })
  return unzstdChunks(raw, o.size)
}

/** What is wrong with an object's frame, said as a reason, or rethrown. */
export const objectProblem = (e: unknown): string => {
  if (e instanceof CorruptError) return `does not decompress (${e.message})`
  throw e
}
