import { Transform, type TransformCallback } from "node:stream"
import * as zlib from "node:zlib"
import { Decompress as ZstdDecompress } from "fzstd"
import lzma from "lzma-native"

// Decompressors for the members of a .deb, chosen by the member's name, each
// behind a guard that stops a decompression bomb at a bound.

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

export class BombError extends Error {}

/** Fails the stream once more than `limit` bytes came out of it. */
class Bound extends Transform {
  private seen = 0
  constructor(private readonly limit: number) {
    super()
  }
  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback) {
    this.seen += chunk.length
    if (this.seen > this.limit) done(new BombError(`unpacks to more than ${this.limit} bytes (decompression bomb?)`))
    else done(null, chunk)
  }
}

/** The decompressor a member name calls for: data.tar.xz, control.tar.gz, data.tar.zst, data.tar. */
export const decompressorFor = (member: string): Transform | undefined => {
  if (member.endsWith(".tar")) return new Transform({ transform: (c, _, done) => done(null, c) })
  if (member.endsWith(".tar.gz")) return zlib.createGunzip()
  if (member.endsWith(".tar.xz")) return lzma.createDecompressor() as unknown as Transform
  if (member.endsWith(".tar.zst")) return new Zstd()
  return undefined
}

/**
 * How much a member may unpack to: generous for real packages (which compress
 * a few times over), far below what a bomb of zeros would produce.
 */
export const unpackLimit = (compressedSize: number): number => 256 * 1024 * 1024 + compressedSize * 200

export const bound = (limit: number) => new Bound(limit)
