import * as fs from "node:fs"
import * as zlib from "node:zlib"
import { ApplyError, ArchiveError, StoreError, describeIo } from "../errors.js"
import { type ContentStore, type Incoming, storeFailure } from "../store/store.js"
import type { FormatReader } from "./package-format.js"
import { type TarSink, TarReader } from "./tar-reader.js"

// Reading a native trove archive (.ctrv, a gzipped tar: see native.ts), and
// fetching its contents into the store: a module of its own, so that apply's
// archive workers load no manifest Schema.

/**
 * Reads a native archive's tar into `sink` here, until `enough` says so or
 * the archive ends: no stream or promise per entry (as tar-stream makes).
 * `whole`: the caller wants most of it (apply's contents), so a small
 * archive is inflated at once on this thread; otherwise (or when it is
 * large) zlib inflates it on the thread pool in large chunks.
 */
export const readArchive = async (archive: string, sink: TarSink, enough: () => boolean, whole = false): Promise<void> => {
  const reader = new TarReader(sink, "utf-8")
  const inflated = whole ? inflateSmall(archive) : undefined
  if (inflated !== undefined) {
    // In slices: what is enough stops it between them.
    for (let at = 0; at < inflated.length; at += GUNZIP_CHUNK) {
      reader.push(inflated.subarray(at, at + GUNZIP_CHUNK))
      if (enough()) return
    }
    return reader.end()
  }
  const input = fs.createReadStream(archive, { highWaterMark: GUNZIP_CHUNK })
  const unzip = zlib.createGunzip({ chunkSize: GUNZIP_CHUNK })
  input.on("error", (e) => unzip.destroy(e))
  try {
    for await (const chunk of input.pipe(unzip)) {
      reader.push(chunk as Buffer)
      if (enough()) return
    }
    reader.end()
  } finally {
    input.destroy()
    unzip.destroy()
  }
}

// Large chunks: zlib runs each one on the thread pool, and a hand-off per 16 KiB costs more than the inflating.
const GUNZIP_CHUNK = 256 * 1024

/** Archives up to this size, inflating to at most SMALL_INFLATED, are inflated at once. */
const SMALL_ARCHIVE = 4 << 20
const SMALL_INFLATED = 16 << 20

/** What inflateSmall reads an archive into: one buffer, grown to the largest archive, instead of one per archive. */
let compressed: Buffer | undefined

/**
 * A small archive's tar, inflated at once; undefined when the archive or its
 * tar is larger than that. Into one buffer as large as gzip's trailer says
 * (zlib checks that size; a wrong one costs at most SMALL_INFLATED), not
 * into 16 KiB chunks and then their join: the garbage of archives read is
 * much of apply's peak memory.
 */
const inflateSmall = (archive: string): Buffer | undefined => {
  const fd = fs.openSync(archive, "r")
  try {
    const size = fs.fstatSync(fd).size
    if (size > SMALL_ARCHIVE) return undefined
    if (compressed === undefined || compressed.length < size) compressed = Buffer.allocUnsafeSlow(Math.max(size, 1 << 20))
    let got = 0
    for (let n; got < size && (n = fs.readSync(fd, compressed, got, size - got, null)) > 0; ) got += n
    const gzip = compressed.subarray(0, got)
    const inflatedSize = got >= 18 ? gzip.readUInt32LE(got - 4) : 0
    return zlib.gunzipSync(gzip, { maxOutputLength: SMALL_INFLATED, chunkSize: Math.min(Math.max(inflatedSize + 1, 64 << 10), SMALL_INFLATED + 1) })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") return undefined
    throw e
  } finally {
    fs.closeSync(fd)
  }
}

export const archiveError = (archive: string, e: unknown): ArchiveError | ApplyError => {
  if (e instanceof ArchiveError) return e
  const { code, path } = e as NodeJS.ErrnoException
  if (code === "ENOENT") return new ArchiveError({ archive, reason: "no such file" })
  // Failing to open the archive is its own failure (another source may have it); failing to write the store is not.
  if (path === archive) return new ArchiveError({ archive, reason: describeIo(e) })
  const stored = storeFailure(e)
  if (stored instanceof ApplyError) return stored
  if (code === "Z_BUF_ERROR" || /unexpected end/i.test(String((e as Error).message)))
    return new ArchiveError({ archive, reason: "truncated archive" })
  return new ArchiveError({ archive, reason: (e as Error).message })
}

/**
 * Writes the wanted contents of a native archive into the store (each
 * verified against its sha256) as they are read. Fails when the archive
 * lacks one of them.
 */
const extractNativeObjects = async (archive: string, wanted: ReadonlySet<string>, store: ContentStore): Promise<void> => {
  const missing = new Set<string>()
  for (const sha of wanted) if (!store.has(sha)) missing.add(sha)
  if (missing.size === 0) return
  let current: { readonly sha: string; readonly into: Incoming } | undefined
  try {
    await readArchive(
      archive,
      {
        entry: (header) => {
          const sha = header.name.startsWith("objects/") ? header.name.slice(8) : ""
          if (missing.has(sha)) current = { sha, into: store.incoming(sha, header.size) }
        },
        data: (piece) => current?.into.write(piece),
        end: () => {
          if (current === undefined) return
          const { sha, into } = current
          current = undefined
          try {
            into.finish()
          } catch (e) {
            if (e instanceof StoreError) throw new ArchiveError({ archive, reason: `content of ${sha.slice(0, 16)} does not match its sha256` })
            throw e
          }
          missing.delete(sha)
        },
      },
      () => missing.size === 0,
      true,
    )
    if (missing.size > 0) {
      throw new ArchiveError({ archive, reason: `lacks content ${[...missing][0]!.slice(0, 16)}` })
    }
  } catch (e) {
    current?.into.abort()
    throw archiveError(archive, e)
  }
}

/** The native format's fetch: contents are found by their digests alone. */
export const fetchNative: FormatReader["fetch"] = (archive, _files, wanted, store) => extractNativeObjects(archive, wanted, store)
