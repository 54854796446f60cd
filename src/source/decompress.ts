import { createRequire } from "node:module"
import * as path from "node:path"
import { Duplex, Transform, type TransformCallback } from "node:stream"
import * as zlib from "node:zlib"
import { Decompress as ZstdDecompress } from "fzstd"
import type Bunzip from "seek-bzip"

// Decompressors for package payloads (a .deb's members, chosen by name; an
// .rpm's payload, by the compressor its header names), each behind a guard
// that stops a decompression bomb at a bound.

// liblzma (a native addon) and seek-bzip load when first used: most commands
// decompress neither, and loading liblzma alone costs a third of a start-up.
const load = createRequire(import.meta.url)
/** The part of lzma-native that LzmaDecoder drives: its addon's Stream (untyped), not its JavaScript stream. */
interface LzmaAddon {
  readonly Stream: new () => LzmaNative
  readonly CONCATENATED: number
}

interface LzmaNative {
  autoDecoder_(memlimit: null, flags: number): void
  /** decodes `input` (null: the end) here and now, calling bufferHandler with each output, then with the end or an error */
  code(input: Buffer | null, async: false): void
  bufferHandler: (out: Buffer | null | undefined, chunks: unknown, error: Error | null | undefined) => void
}

let lzmaModule: LzmaAddon | undefined
/**
 * lzma-native's addon, loaded as its index.js loads it (by node-gyp-build,
 * which picks the rebuilt addon over the prebuilt one) but without the
 * index.js, whose streams (a copy of Node's, readable-stream) are never
 * used here and cost about 20 ms to load on each thread that decodes.
 */
const lzma = () => {
  if (lzmaModule) return lzmaModule
  const pkg = load.resolve("lzma-native/package.json")
  const nodeGypBuild = createRequire(pkg)("node-gyp-build") as (dir: string) => LzmaAddon
  return (lzmaModule = nodeGypBuild(path.dirname(pkg)))
}
let bunzipModule: typeof Bunzip | undefined
const bunzip = () => (bunzipModule ??= load("seek-bzip") as typeof Bunzip)

/** zstd as a stream (fzstd decodes in pure JavaScript, chunk by chunk). */
class Zstd extends Transform {
  private readonly z = new ZstdDecompress((chunk) => {
    this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
  })
  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback) {
    try {
      this.z.push(chunk)
      done()
    } catch (e) {
      done(e as Error)
    }
  }
  override _flush(done: TransformCallback) {
    try {
      this.z.push(new Uint8Array(0), true)
      done()
    } catch (e) {
      done(e as Error)
    }
  }
}

/**
 * Cuts a zstd stream at frame and block boundaries (RFC 8878), so the decoder
 * is fed one whole block at a time: no step produces more than a block's
 * output (128 KiB, the format's limit), and the decoder never gathers a block
 * from many small pieces (fzstd copies what it holds on every push).
 * Skippable frames are dropped; anything it cannot parse goes to the decoder
 * as it is, which says what is wrong. Package payloads (a stream) and
 * repository objects (bounded, streamed or in memory) are both fed by it.
 */
class ZstdCutter {
  private pending: Buffer = Buffer.alloc(0)
  private state: "frame" | "block" | "checksum" | "skip" | "raw" = "frame"
  private checksum = false
  private skip = 0

  /** The size of the next unit at `at` and the state after it; undefined until enough bytes are there. */
  private unit(b: Buffer, at: number): number | undefined {
    const rest = b.length - at
    switch (this.state) {
      case "raw":
        return rest
      case "skip":
        return Math.min(rest, this.skip)
      case "checksum":
        return rest < 4 ? undefined : 4
      case "block": {
        if (rest < 3) return undefined
        const h = b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)
        const type = (h >> 1) & 3
        if (type === 3) return rest
        return 3 + (type === 1 ? 1 : h >>> 3)
      }
      case "frame": {
        if (rest < 8) return undefined
        const magic = b.readUInt32LE(at)
        if ((magic & 0xfffffff0) === 0x184d2a50) return 8
        if (magic !== 0xfd2fb528) return rest
        const d = b[at + 4]!
        const single = (d >> 5) & 1
        const fcs = [single, 2, 4, 8][d >> 6]!
        return 5 + (single ? 0 : 1) + [0, 1, 2, 4][d & 3]! + fcs
      }
    }
  }

  /** Moves past a unit; whether the decoder gets it (skippable frames it does not). */
  private advance(b: Buffer, at: number, size: number): boolean {
    switch (this.state) {
      case "frame": {
        const magic = b.readUInt32LE(at)
        if ((magic & 0xfffffff0) === 0x184d2a50) {
          this.skip = b.readUInt32LE(at + 4)
          this.state = this.skip > 0 ? "skip" : "frame"
          return false
        }
        if (magic !== 0xfd2fb528) this.state = "raw"
        else {
          this.checksum = ((b[at + 4]! >> 2) & 1) === 1
          this.state = "block"
        }
        return true
      }
      case "block":
        if (((b[at]! >> 1) & 3) === 3) this.state = "raw"
        else if ((b[at]! & 1) === 1) this.state = this.checksum ? "checksum" : "frame"
        return true
      case "checksum":
        this.state = "frame"
        return true
      case "skip":
        this.skip -= size
        if (this.skip === 0) this.state = "frame"
        return false
      case "raw":
        return true
    }
  }

  /** Hands each whole unit of what has come so far to `feed`. */
  cut(chunk: Uint8Array, feed: (unit: Buffer) => void): void {
    const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const b = this.pending.length === 0 ? c : Buffer.concat([this.pending, c])
    let at = 0
    for (;;) {
      const size = this.unit(b, at)
      if (size === undefined || size === 0 || size > b.length - at) break
      if (this.advance(b, at, size)) feed(b.subarray(at, at + size))
      at += size
    }
    this.pending = b.subarray(at)
  }

  /** At the end, an unfinished unit goes to the decoder, which says the stream is cut short. */
  end(feed: (unit: Buffer) => void): void {
    if (this.pending.length > 0 && this.state !== "skip") feed(this.pending)
  }
}

/** The cutter as a stream, in front of the streaming decoder. */
class ZstdBlocks extends Transform {
  private readonly cutter = new ZstdCutter()
  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback) {
    this.cutter.cut(chunk, (unit) => this.push(unit))
    done()
  }
  override _flush(done: TransformCallback) {
    this.cutter.end((unit) => this.push(unit))
    done()
  }
}

/**
 * bzip2 as a stream. seek-bzip (pinned: its block-level methods are used,
 * typed in src/types) decodes one block at a time from a synchronous byte
 * source, so input is buffered until a whole block is surely there (a
 * block's Huffman data is bounded: 32767 selectors x 50 symbols x 20 bits),
 * or the input has ended. Memory stays within one block's input and output.
 */
const BZIP2_MAX_BLOCK = 32767 * 50 * 20 / 8 + 4096

class Bunzip2Decoder {
  private chunks: Buffer[] = []
  private offset = 0
  private buffered = 0
  private ended = false
  private bz: Bunzip | undefined
  private out: Buffer[] = []
  private current = Buffer.allocUnsafe(1 << 16)
  private used = 0
  private readonly input = Object.assign(new (bunzip().Stream)(), {
    readByte: (): number => {
      const chunk = this.chunks[0]
      if (chunk === undefined) throw new Error(this.ended ? "bzip2 data is truncated" : "bzip2 block larger than the format allows")
      const b = chunk[this.offset++]!
      this.buffered--
      if (this.offset === chunk.length) {
        this.chunks.shift()
        this.offset = 0
      }
      return b
    },
  })
  private readonly output = Object.assign(new (bunzip().Stream)(), {
    writeByte: (b: number) => {
      this.current[this.used++] = b
      if (this.used === this.current.length) this.take()
    },
  })
  private take() {
    if (this.used > 0) this.out.push(this.current.subarray(0, this.used))
    this.current = Buffer.allocUnsafe(1 << 16)
    this.used = 0
  }
  add(chunk: Buffer) {
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }
  /** Decodes block by block while enough input is there; yields each block's output. */
  *blocks(ended: boolean): Generator<Buffer[]> {
    this.ended = ended
    while (ended ? this.buffered > 0 || this.bz : this.buffered >= BZIP2_MAX_BLOCK) {
      // A file may hold several streams back to back, each with its own header.
      if (!this.bz) this.bz = new (bunzip())(this.input, this.output)
      else if (this.bz._init_block()) this.bz._read_bunzip()
      else {
        if (this.bz.reader.read(32) >>> 0 !== this.bz.streamCRC) throw new Error("bzip2 stream checksum mismatch (corrupt data)")
        this.bz = undefined
      }
      this.take()
      const out = this.out
      this.out = []
      if (out.length > 0) yield out
    }
  }
}

/** bzip2 as a stream that decodes a block only when the reader wants more. */
const bunzip2 = (): Duplex =>
  Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const decoder = new Bunzip2Decoder()
    for await (const chunk of source) {
      decoder.add(chunk)
      for (const out of decoder.blocks(false)) yield* out
    }
    for (const out of decoder.blocks(true)) yield* out
  })

/**
 * liblzma driven here and now: `decode` decodes its input `slice` bytes per
 * call of the addon, handing each output to a sink as it comes, and stops
 * between slices when the sink asks to wait: one call's output, all made at
 * once, is what a slice makes, so a bomb's step stays small. Streams back to
 * back decode as one (CONCATENATED), as `xz -d` reads them.
 */
class LzmaDecoder {
  private readonly native: LzmaNative
  private error: Error | undefined
  private sink: (out: Buffer) => boolean = () => true
  private accepted = true
  /** inside a call of the addon, which holds a lock a nested call would wait for forever */
  private coding = false

  constructor(private readonly slice: number) {
    this.native = new (lzma().Stream)()
    this.native.autoDecoder_(null, lzma().CONCATENATED)
    this.native.bufferHandler = (out, _, error) => {
      if (error) this.error ??= error
      else if (out && !this.sink(out)) this.accepted = false
    }
  }

  /** whether it is decoding now (a sink's push can call back into a stream that would decode again) */
  get busy(): boolean {
    return this.coding
  }

  /** Decodes one slice (null: the end); whether the sink took all it made without asking to wait. */
  private code(input: Buffer | null, sink: (out: Buffer) => boolean): boolean {
    this.sink = sink
    this.accepted = true
    this.coding = true
    try {
      this.native.code(input, false)
    } finally {
      this.coding = false
    }
    if (this.error) throw this.error
    return this.accepted
  }

  /**
   * Decodes `input` from `from` a slice at a time until it is all decoded
   * (returns its length) or the sink asks to wait (returns where to go on).
   * null: the end of the input.
   */
  decode(input: Buffer | null, sink: (out: Buffer) => boolean, from = 0): number {
    if (input === null) {
      this.code(null, sink)
      return 0
    }
    // (lzma-native takes an empty input for the end)
    let at = from
    while (at < input.length) if (!this.code(input.subarray(at, (at += this.slice)), sink)) break
    return at
  }
}

/**
 * LzmaDecoder as a stream, fed no more while the reader lags (push returns
 * false). lzma-native's own stream sends each call to the thread pool and
 * each output through setImmediate, a cost per call larger than the decoding
 * of a slice.
 */
class LzmaOnThisThread extends Transform {
  private readonly decoder: LzmaDecoder
  /** the input being decoded, and its writer's callback */
  private pending: { readonly chunk: Buffer; at: number; readonly done: TransformCallback } | undefined
  private readonly sink = (out: Buffer) => this.push(out)

  constructor(slice: number) {
    super()
    this.decoder = new LzmaDecoder(slice)
  }

  /** Decodes the pending input a slice at a time until it is done or the reader asks to wait. */
  private step() {
    const p = this.pending
    if (p === undefined || this.decoder.busy) return
    try {
      p.at = this.decoder.decode(p.chunk, this.sink, p.at)
      if (p.at < p.chunk.length) return
    } catch (e) {
      this.pending = undefined
      return p.done(e as Error)
    }
    this.pending = undefined
    p.done()
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback) {
    this.pending = { chunk, at: 0, done }
    this.step()
  }
  override _read(size: number) {
    this.step()
    super._read(size)
  }
  override _flush(done: TransformCallback) {
    try {
      this.decoder.decode(null, this.sink)
      done()
    } catch (e) {
      done(e as Error)
    }
  }
}

export class BombError extends Error {}

/** What a decoder says when more than `limit` bytes came out. */
export const bombError = (limit: number) => new BombError(`unpacks to more than ${limit} bytes (decompression bomb?)`)

/** Fails the stream once more than `limit` bytes came out of it. */
class Bound extends Transform {
  private seen = 0
  constructor(private readonly limit: number) {
    super()
  }
  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback) {
    this.seen += chunk.length
    if (this.seen > this.limit) done(bombError(this.limit))
    else done(null, chunk)
  }
}

/** A decompressor fed by a cutter of its input. */
const fedBy = (cutter: Transform, decompressor: Transform): Duplex => Duplex.from({ writable: cutter, readable: cutter.pipe(decompressor) })

export type Compression = "none" | "gzip" | "xz" | "lzma" | "bzip2" | "zstd"

/** A decompressor for a compression by name (the formats name them differently: see below). */
export const decompressor = (compression: Compression): Duplex => {
  switch (compression) {
    case "none":
      return new Transform({ transform: (c, _, done) => done(null, c) })
    case "gzip":
      // Large chunks: each is a hand-off to the thread pool.
      return zlib.createGunzip({ chunkSize: 256 * 1024 })
    // liblzma's auto decoder reads both .xz and the older .lzma (LZMA_alone).
    case "xz":
    case "lzma":
      return new LzmaOnThisThread(XZ_SLICE)
    case "bzip2":
      return bunzip2()
    case "zstd":
      return fedBy(new ZstdBlocks(), new Zstd())
  }
}

/** 2 KiB of a bomb of zeros makes about 14 MiB, all at once. */
const XZ_SLICE = 2048

/** Decodes its input (null: the end), handing each output to `out` before it returns. */
export type ImmediateDecoder = (input: Buffer | null, out: (decoded: Buffer) => void) => void

/**
 * A decoder for a member read here and now, without streams (see
 * tar-payload.ts readTarMember), for the compressions that decode on this
 * thread: xz, lzma, none. undefined for the others.
 */
export const immediateDecoderFor = (member: string): ImmediateDecoder | undefined => {
  const compression = MEMBER_SUFFIXES.find(([suffix]) => member.endsWith(suffix))?.[1]
  if (compression === "none")
    return (input, out) => {
      if (input !== null && input.length > 0) out(input)
    }
  if (compression !== "xz" && compression !== "lzma") return undefined
  // What a slice makes is handed out after the addon returns: a throw inside its callback would not reach the caller.
  const decoder = new LzmaDecoder(XZ_SLICE)
  const made: Buffer[] = []
  const take = (decoded: Buffer) => {
    made.push(decoded)
    return false
  }
  const handOut = (out: (decoded: Buffer) => void) => {
    for (const decoded of made.splice(0)) out(decoded)
  }
  return (input, out) => {
    if (input === null) {
      decoder.decode(null, take)
      return handOut(out)
    }
    for (let at = 0; at < input.length; handOut(out)) at = decoder.decode(input, take, at)
  }
}

const MEMBER_SUFFIXES: ReadonlyArray<readonly [string, Compression]> = [
  [".tar", "none"],
  [".tar.gz", "gzip"],
  [".tar.xz", "xz"],
  [".tar.lzma", "lzma"],
  [".tar.bz2", "bzip2"],
  [".tar.zst", "zstd"],
]

/** The decompressor a member name calls for: what dpkg reads (`man deb`): data.tar{,.gz,.xz,.zst,.bz2,.lzma}. */
export const decompressorFor = (member: string): Duplex | undefined => {
  const found = MEMBER_SUFFIXES.find(([suffix]) => member.endsWith(suffix))
  return found && decompressor(found[1])
}

/**
 * How much a member may unpack to: generous for real packages (which compress
 * a few times over), far below what a bomb of zeros would produce.
 */
export const unpackLimit = (compressedSize: number): number => 64 * 1024 * 1024 + compressedSize * 200

export const bound = (limit: number) => new Bound(limit)

/** Compressed data that does not decompress (cut short, damaged, or past its bound). */
export class CorruptError extends Error {}

const corrupt = (f: () => void) => {
  try {
    f()
  } catch (e) {
    throw new CorruptError((e as Error).message)
  }
}

/**
 * A zstd decoder fed whole blocks (ZstdCutter), collecting its output in
 * `out` and failing once more than `limit` bytes came out: one push yields at
 * most one block (128 KiB), so the bound holds within a block.
 */
const boundedZstd = (limit: number) => {
  const out: Buffer[] = []
  let total = 0
  const z = new ZstdDecompress((chunk) => {
    total += chunk.length
    if (total > limit) throw new BombError(`unpacks to more than ${limit} bytes`)
    out.push(Buffer.from(chunk))
  })
  const cutter = new ZstdCutter()
  const units: Buffer[] = []
  const take = (unit: Buffer) => units.push(unit)
  return {
    out,
    /** The whole blocks that `chunk` completes (empty: the end), each to give to `decode`. */
    cut: (chunk: Uint8Array | undefined): Buffer[] => {
      if (chunk === undefined) cutter.end(take)
      else cutter.cut(chunk, take)
      return units.splice(0)
    },
    decode: (unit: Buffer) => corrupt(() => z.push(unit)),
    end: () => corrupt(() => z.push(new Uint8Array(0), true)),
  }
}

/**
 * zstd-decompresses a stream (a repository's objects), failing once more
 * than `limit` bytes came out: the size a repository names bounds what a
 * hostile object can make us write or hold. What each block makes is passed
 * on before the next is decoded.
 */
export async function* unzstdChunks(source: AsyncIterable<Uint8Array>, limit: number): AsyncGenerator<Buffer> {
  const z = boundedZstd(limit)
  for await (const chunk of source)
    for (const unit of z.cut(chunk)) {
      z.decode(unit)
      if (z.out.length > 0) yield* z.out.splice(0)
    }
  for (const unit of z.cut(undefined)) z.decode(unit)
  z.end()
  yield* z.out.splice(0)
}

/** zstd-decompresses bytes held in memory, at most `limit` bytes of output. */
export const unzstd = (data: Uint8Array, limit: number): Buffer => {
  const z = boundedZstd(limit)
  for (const unit of [...z.cut(data), ...z.cut(undefined)]) z.decode(unit)
  z.end()
  return Buffer.concat(z.out)
}
