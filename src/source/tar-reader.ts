import { createRequire } from "node:module"
import * as path from "node:path"
import type * as tar from "tar-stream"

// A tar read from pieces pushed in, here and now: no streams, no promises,
// for the payloads `source sync` hashes (a .deb's data.tar: thousands of
// entries, where tar-stream's streams and promises per entry and per piece
// cost as much as decoding). It reads what tar-stream's extract reads, as it
// does: tar-stream's own header decoder (checksum, ustar/GNU, base-256
// numbers), GNU long names, pax headers, zero blocks skipped, and the same
// errors, so either reader gives the same answer for the same archive.

/** The functions of tar-stream's headers.js used here (not among its exports: loaded by path). */
interface TarHeaders {
  decode(block: Buffer, filenameEncoding: string, allowUnknownFormat: boolean): tar.Header | null
  decodePax(data: Buffer): Record<string, string>
  decodeLongPath(data: Buffer, encoding: string): string
}

const load = createRequire(import.meta.url)
let headersModule: TarHeaders | undefined
const headers = () => (headersModule ??= load(path.join(path.dirname(load.resolve("tar-stream")), "headers.js")) as TarHeaders)

/** as tar-stream's extract */
const MAX_HEADER_SIZE = 4 * 1024 * 1024

const padding = (size: number) => (512 - (size % 512)) % 512

/** What a reader calls for each entry: its header, then its data piece by piece, then its end. */
export interface TarSink {
  entry(header: tar.Header): void
  data(piece: Buffer): void
  end(): void
}

export class TarReader {
  /** a header block (or long header) being gathered */
  private gathered: Buffer[] = []
  private gatheredBytes = 0
  /** bytes of the current entry's data still to come, then of padding to skip */
  private data = 0
  private skip = 0
  /** a GNU long name or pax header's size being gathered, with its kind */
  private long: { readonly type: string; readonly size: number } | undefined
  private pax: Record<string, string> | undefined
  private paxGlobal: Record<string, string> | undefined
  private longPath: string | undefined
  private longLinkPath: string | undefined

  constructor(
    private readonly sink: TarSink,
    private readonly filenameEncoding = "latin1",
  ) {}

  push(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.data > 0) {
        const n = Math.min(this.data, chunk.length - at)
        this.data -= n
        this.sink.data(chunk.subarray(at, (at += n)))
        if (this.data === 0) this.sink.end()
      } else if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at)
        this.skip -= n
        at += n
      } else {
        const want = (this.long?.size ?? 512) - this.gatheredBytes
        const n = Math.min(want, chunk.length - at)
        this.gathered.push(chunk.subarray(at, (at += n)))
        this.gatheredBytes += n
        if (n === want) this.block(this.gathered.length === 1 ? this.gathered[0]! : Buffer.concat(this.gathered))
      }
    }
  }

  /** The archive ended: throws if it ended inside an entry or a block, as tar-stream does. */
  end(): void {
    if (this.data > 0 || this.skip > 0 || this.gatheredBytes > 0 || this.long) throw new Error("Unexpected end of data")
  }

  /** A whole header block, or a long header's data. */
  private block(bytes: Buffer): void {
    this.gathered = []
    this.gatheredBytes = 0
    if (this.long) return this.longHeader(this.long.type, bytes)
    const header = headers().decode(bytes, this.filenameEncoding, false)
    if (header === null) return
    switch (header.type as string) {
      case "gnu-long-path":
      case "gnu-long-link-path":
      case "pax-global-header":
      case "pax-header":
        if (header.size! > MAX_HEADER_SIZE) throw new Error("Header exceeds max size")
        this.long = { type: header.type as string, size: header.size! }
        // An empty one is decoded at once.
        if (header.size === 0) this.block(Buffer.alloc(0))
        return
    }
    this.applyLongHeaders(header)
    if (!(header.size! >= 0)) throw new Error("Invalid header")
    this.sink.entry(header)
    // A directory's size is not data (tar-stream reads on from the next block).
    if (header.size === 0 || header.type === "directory") return this.sink.end()
    this.data = header.size!
    this.skip = padding(header.size!)
  }

  private longHeader(type: string, bytes: Buffer): void {
    this.long = undefined
    this.skip = padding(bytes.length)
    const h = headers()
    if (type === "gnu-long-path") this.longPath = h.decodeLongPath(bytes, this.filenameEncoding)
    else if (type === "gnu-long-link-path") this.longLinkPath = h.decodeLongPath(bytes, this.filenameEncoding)
    else if (type === "pax-global-header") this.paxGlobal = h.decodePax(bytes)
    else this.pax = this.paxGlobal === undefined ? h.decodePax(bytes) : { ...this.paxGlobal, ...h.decodePax(bytes) }
  }

  private applyLongHeaders(header: tar.Header): void {
    if (this.longPath) header.name = this.longPath
    if (this.longLinkPath) header.linkname = this.longLinkPath
    this.longPath = this.longLinkPath = undefined
    if (this.pax) {
      if (this.pax.path) header.name = this.pax.path
      if (this.pax.linkpath) header.linkname = this.pax.linkpath
      if (this.pax.size) header.size = parseInt(this.pax.size, 10)
      header.pax = this.pax
      this.pax = undefined
    }
  }
}
