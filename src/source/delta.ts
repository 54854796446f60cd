import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import * as zlib from "node:zlib"
import type * as Zstd from "zstd-napi/binding.js"
import { sha256Of } from "../sha256.js"

// Binary deltas between two versions of a file's content: a zstd frame
// compressed with the old content as a raw-content dictionary (what
// `zstd --patch-from` does), so only what changed costs bytes. Made by
// `repo build`, applied by the client (and by changeset files) within the
// sizes the metadata names, and always checked against the new content's
// sha256: a delta is a way to get a content, never a source of truth.
//
// A gzip'd file (man pages, changelogs) differs almost everywhere after a
// small change, so a delta of it is useless. When the new file is exactly
// what Node's zlib, or the gzip command (`gzip -9n`, as Debian's dh_compress
// runs it; zlib's deflate differs from it), makes of its inner bytes, the
// delta is made between the inner forms and the client compresses the
// result again the same way (see innerForm).

/** The native binding, loaded on first use (commands that apply no delta never load it). */
let binding: typeof Zstd | undefined
const zstd = (): typeof Zstd => (binding ??= createRequire(import.meta.url)("zstd-napi/binding") as typeof Zstd)

/** Largest content (old or new) a delta is made for or applied to: both sides are held in memory. */
export const MAX_DELTA_CONTENT = 128 * 1024 * 1024

/** Level of delta frames: deltas are made once and fetched by every client. */
const LEVEL = 19

/** How a delta is listed in a trove's manifest: from one content to another. */
export interface DeltaRef {
  /** sha256 of the content the client must hold */
  readonly from: string
  /** sha256 of the content it makes */
  readonly to: string
  /** sha256 of the delta object's bytes (checked before it is used) */
  readonly sha256: string
  /** bytes of the delta object */
  readonly size: number
  /** made between gunzipped forms: the result is gzipped again by `tool` at `level`; sizes bound the inner forms */
  readonly gzip?: Regzip & { readonly fromSize: number; readonly toSize: number }
}

export class DeltaError extends Error {}


const ceilLog2 = (n: number) => Math.max(10, Math.ceil(Math.log2(Math.max(1, n))))

/** A zstd frame of `target` that uses `base` as reference (raw content). */
export const compressWithBase = (base: Uint8Array, target: Uint8Array, level = LEVEL): Buffer => {
  const z = zstd()
  const cctx = new z.CCtx()
  cctx.setParameter(z.CParameter.compressionLevel, level)
  // The window covers the reference and the new content, as --patch-from's does, and long-distance matching finds far moves.
  cctx.setParameter(z.CParameter.windowLog, Math.min(30, ceilLog2(base.length + target.length)))
  cctx.setParameter(z.CParameter.enableLongDistanceMatching, 1)
  cctx.setParameter(z.CParameter.checksumFlag, 0)
  cctx.loadDictionary(base)
  const out = Buffer.allocUnsafe(z.compressBound(target.length) + 64)
  const n = cctx.compress2(out, target)
  return out.subarray(0, n)
}

/**
 * Decompresses a delta frame against `base` into exactly `size` bytes: a
 * frame that says another size, makes more, or is corrupt is refused. The
 * window is bounded by the output size, so a hostile frame cannot make the
 * decoder allocate more than the content it claims.
 */
export const decompressWithBase = (base: Uint8Array, delta: Uint8Array, size: number): Buffer => {
  if (size > MAX_DELTA_CONTENT || base.length > MAX_DELTA_CONTENT) throw new DeltaError(`contents over ${MAX_DELTA_CONTENT} bytes are not patched`)
  const z = zstd()
  let declared: number | null
  try {
    declared = z.getFrameContentSize(delta)
  } catch {
    throw new DeltaError("not a zstd frame")
  }
  if (declared !== size) throw new DeltaError(`the delta makes ${declared ?? "an unknown number of"} bytes, not ${size}`)
  const dctx = new z.DCtx()
  // Window beyond the content is never needed: references into the base are not bounded by it.
  dctx.setParameter(z.DParameter.windowLogMax, Math.min(31, Math.max(10, ceilLog2(size + base.length))))
  const out = Buffer.allocUnsafe(size)
  let n: number
  try {
    dctx.loadDictionary(base)
    n = dctx.decompress(out, delta)
  } catch (e) {
    throw new DeltaError(`corrupt delta (${(e as Error).message})`)
  }
  if (n !== size) throw new DeltaError(`the delta made ${n} bytes, not ${size}`)
  return out
}

// ---- gzip'd contents ------------------------------------------------------------

const isGzip = (b: Uint8Array) => b.length >= 18 && b[0] === 0x1f && b[1] === 0x8b && b[2] === 8

/** How a gzip stream is made again: by Node's zlib, or by the gzip command with -n (no name, no time). */
export interface Regzip {
  readonly tool: "zlib" | "gzip"
  readonly level: number
}

/** What is tried to recreate a gzip stream: gzip -9 (Debian's dh_compress), then the default level. */
const REGZIPS: ReadonlyArray<Regzip> = [
  { tool: "zlib", level: 9 },
  { tool: "zlib", level: 6 },
  { tool: "gzip", level: 9 },
  { tool: "gzip", level: 6 },
]

const gunzip = (data: Uint8Array, max: number): Buffer | undefined => {
  try {
    return zlib.gunzipSync(data, { maxOutputLength: max })
  } catch {
    return undefined
  }
}

/** The gzip stream of `inner`; undefined when the tool is not there or fails (the caller then fetches the full content). */
const regzip = (inner: Uint8Array, how: Regzip): Buffer | undefined => {
  if (how.tool === "zlib") return zlib.gzipSync(inner, { level: how.level })
  const r = spawnSync("gzip", ["-n", `-${how.level}`, "-c"], { input: inner, maxBuffer: inner.length + (inner.length >> 3) + 1024 })
  return r.status === 0 && Buffer.isBuffer(r.stdout) ? r.stdout : undefined
}

/**
 * The inner bytes of a gzip'd content and the level at which Node's zlib
 * makes exactly this file of them again; undefined when it is not gzip or
 * cannot be recreated byte for byte (another compressor, a name or time in
 * the header, several members).
 */
export const innerForm = (content: Uint8Array): { inner: Buffer; how: Regzip } | undefined => {
  if (!isGzip(content)) return undefined
  const inner = gunzip(content, MAX_DELTA_CONTENT)
  if (!inner) return undefined
  for (const how of REGZIPS) if (regzip(inner, how)?.equals(content)) return { inner, how }
  return undefined
}

// ---- making and applying ----------------------------------------------------------

export interface MadeDelta {
  readonly bytes: Buffer
  readonly gzip?: DeltaRef["gzip"]
}

/**
 * A delta that makes `target` from `base`: between their inner forms when
 * both are gzip'd and the target can be recreated exactly, else between the
 * bytes. Undefined when either side is too large to patch in memory.
 */
export const makeDelta = (base: Uint8Array, target: Uint8Array): MadeDelta | undefined => {
  if (base.length > MAX_DELTA_CONTENT || target.length > MAX_DELTA_CONTENT || base.length === 0) return undefined
  const to = innerForm(target)
  const from = to && gunzip(base, MAX_DELTA_CONTENT)
  if (to && from && from.length > 0)
    return { bytes: compressWithBase(from, to.inner), gzip: { ...to.how, fromSize: from.length, toSize: to.inner.length } }
  return { bytes: compressWithBase(base, target) }
}

/**
 * Makes the content a delta leads to from the content it starts at, and
 * checks it: the delta's own digest first, then the result's size and
 * sha256. Any failure is a DeltaError (the caller fetches the full object).
 */
export const applyDelta = (base: Uint8Array, delta: Uint8Array, ref: DeltaRef, size: number): Buffer => {
  if (delta.length !== ref.size || sha256Of(delta) !== ref.sha256) throw new DeltaError("the delta does not match its sha256")
  let result: Buffer
  if (ref.gzip) {
    if (ref.gzip.fromSize > MAX_DELTA_CONTENT) throw new DeltaError(`contents over ${MAX_DELTA_CONTENT} bytes are not patched`)
    const from = gunzip(base, ref.gzip.fromSize)
    if (!from || from.length !== ref.gzip.fromSize) throw new DeltaError("its base does not gunzip to the size the delta expects")
    const made = regzip(decompressWithBase(from, delta, ref.gzip.toSize), ref.gzip)
    if (!made) throw new DeltaError(`${ref.gzip.tool} could not compress the patched content again`)
    result = made
  } else result = decompressWithBase(base, delta, size)
  if (result.length !== size || sha256Of(result) !== ref.to) throw new DeltaError("the patched content does not match its sha256")
  return result
}
