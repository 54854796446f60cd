import * as fs from "node:fs"
import * as path from "node:path"
import { forEachBounded } from "../batch.js"
import { type SourceRow, locationsOf } from "../db/sources.js"
import { SourceError, StoreError } from "../errors.js"
import type { Report } from "../model/report.js"
import type { ContentStore } from "../store/store.js"
import { CorruptError, unzstdChunks } from "./decompress.js"
import { type Document, HttpFailure, type Validator, get, getDocument, readBody, retrying } from "./http.js"
import { MAX_META, objectFile } from "./repo-meta.js"

// Reading a repository, over HTTP(S) or from a directory with the same layout.
// Downloads retry transient failures and resume from where they stopped; an
// object (zstd-compressed) comes from the first of its repositories (and
// their mirrors) that serves it whole and decompressing to its sha256.

export const isHttp = (location: string) => /^https?:\/\//.test(location)

const join = (location: string, rel: string) => (isHttp(location) ? `${location.replace(/\/+$/, "")}/${rel}` : path.join(location, rel))

/** The most of one metadata document read: an endless answer is cut off here, not held in memory. */
export const METADATA_MAX = MAX_META

/** The most bytes zstd can take to hold `size` bytes (ZSTD_COMPRESSBOUND, and room for a frame header): more is not an object. */
const compressedBound = (size: number) => size + (size >> 8) + (size < 128 << 10 ? ((128 << 10) - size) >> 11 : 0) + 64

const CONCURRENCY = 8

/**
 * One file of a repository, at most METADATA_MAX bytes. Given the validator
 * of the copy held (ETag, Last-Modified), an unchanged file is not sent again.
 */
export const readRepoDocument = async (source: string, location: string, rel: string, known?: Validator | null): Promise<Document> => {
  if (!isHttp(location)) {
    const p = join(location, rel)
    const st = fs.statSync(p, { throwIfNoEntry: false })
    if (!st) return { status: "missing" }
    if (st.size > METADATA_MAX) throw new SourceError({ source, reason: `${p} is larger than the ${METADATA_MAX} bytes allowed for it` })
    return { status: "ok", body: fs.readFileSync(p), url: p, validator: { url: p, etag: null, lastModified: null } }
  }
  try {
    return await getDocument(join(location, rel), METADATA_MAX, known)
  } catch (e) {
    if (e instanceof HttpFailure) throw new SourceError({ source, reason: `fetching ${rel}: ${e.message}`, unreachable: true })
    throw e
  }
}

/** One file of a repository; undefined when it does not exist there. */
export const readRepoFile = async (source: string, location: string, rel: string): Promise<Buffer | undefined> => {
  const doc = await readRepoDocument(source, location, rel)
  return doc.status === "ok" ? doc.body : undefined
}

/** The size of a file, or -1 when there is none. */
const sizeOf = (file: string) => fs.statSync(file, { throwIfNoEntry: false })?.size ?? -1

const tampered = (url: string) => new HttpFailure(`${url} does not match its sha256 (tampered, truncated or corrupt)`, false)

/** Decompresses an object (at most `size` bytes out) into the store, where it must hash to `sha256`; anything else refuses the URL. */
const intoStore = async (store: ContentStore, compressed: AsyncIterable<Uint8Array>, sha256: string, size: number, url: string) => {
  try {
    await store.putStream(unzstdChunks(compressed, size), sha256)
  } catch (e) {
    if (e instanceof StoreError || e instanceof CorruptError) throw tampered(url)
    throw e
  }
}

/** Whether a download is the object: then it is in the store and the part is gone. */
const adopted = async (store: ContentStore, part: string, sha256: string, size: number, url: string): Promise<boolean> => {
  try {
    await intoStore(store, fs.createReadStream(part), sha256, size, url)
  } catch (e) {
    if (e instanceof HttpFailure) return false
    throw e
  }
  fs.rmSync(part)
  return true
}

/**
 * Downloads one object of `size` bytes (uncompressed) from one base location
 * into the store, verified. A partial download is resumed with a range
 * request; one already complete is verified and used without a request; a
 * 416, or a resumed download that fails verification, starts again from
 * zero. More bytes than zstd can need for `size` are never read.
 */
const fetchFrom = async (base: string, sha256: string, size: number, store: ContentStore): Promise<void> => {
  const url = join(base, objectFile(sha256))
  const max = compressedBound(size)
  if (!isHttp(base)) {
    const st = fs.statSync(url, { throwIfNoEntry: false })
    if (!st) throw new HttpFailure(`${url} is missing`, false)
    if (st.size > max) throw new HttpFailure(`${url} has ${st.size} bytes, more than an object of ${size} bytes can need`, false)
    return intoStore(store, fs.createReadStream(url), sha256, size, url)
  }
  const part = store.partPath(sha256)
  if (sizeOf(part) > max) fs.rmSync(part)
  // What a killed download left may be whole: then it is used as it is.
  if (sizeOf(part) > 0 && (await adopted(store, part, sha256, size, url))) return
  const resumed = sizeOf(part) > 0
  await download(url, part, max, size)
  if (await adopted(store, part, sha256, size, url)) return
  fs.rmSync(part, { force: true })
  // A resumed download may have kept bad bytes from before: once more from zero.
  if (!resumed) throw tampered(url)
  await download(url, part, max, size)
  if (await adopted(store, part, sha256, size, url)) return
  fs.rmSync(part, { force: true })
  throw tampered(url)
}

/** Downloads `url` into `part`, resuming what is there, never past `max` bytes in all (the bound for an object of `size` bytes). */
const download = (url: string, part: string, max: number, size: number) =>
  retrying(async () => {
    const have = Math.max(0, sizeOf(part))
    const res = await get(url, have > 0 ? { range: `bytes=${have}-` } : {})
    if (res.status === 416) {
      // The server cannot continue this part (the object changed, or the part is bad): start again.
      res.body.resume()
      fs.rmSync(part, { force: true })
      throw new HttpFailure(`${url} refused to resume (416)`, true)
    }
    if (res.status !== 200 && res.status !== 206) {
      res.body.resume()
      throw new HttpFailure(`${url} answered ${res.status}`, false)
    }
    // 206 continues the part only from where it ends; any other answer starts it again.
    const resumes = res.status === 206 && have > 0 && String(res.headers["content-range"]).startsWith(`bytes ${have}-`)
    const fd = fs.openSync(part, resumes ? "a" : "w")
    try {
      await readBody(res, max - (resumes ? have : 0), `a compressed object of ${size} bytes can take`, (chunk) => {
        for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off, chunk.length - off)
      })
    } catch (e) {
      // Too long is a lie, not a break: what was written of it is worthless.
      if (e instanceof HttpFailure && !e.transient) fs.rmSync(part, { force: true })
      throw e
    } finally {
      fs.closeSync(fd)
    }
  })

/** A repository's base locations in the order objects are fetched: the one that served its metadata first. */
export const basesOf = (source: Pick<SourceRow, "location" | "mirrors" | "syncedFrom">): string[] => {
  const all = locationsOf(source)
  return source.syncedFrom && all.includes(source.syncedFrom) ? [source.syncedFrom, ...all.filter((b) => b !== source.syncedFrom)] : all
}

/** A repository that offers a content: its source name and base locations, preferred first. */
export interface RepoRef {
  readonly source: string
  readonly bases: ReadonlyArray<string>
}

export interface WantedObject {
  readonly sha256: string
  readonly size: number
  /** every repository that offers it, preferred first */
  readonly repos: ReadonlyArray<RepoRef>
  /** why sources tried before (archives) could not give it */
  readonly tried?: ReadonlyArray<string>
}

/**
 * Fetches objects the store lacks, 8 at a time, under one progress bar. Each
 * comes from the first repository and mirror that serves it whole and
 * verified; a location that stopped answering is not asked again in this
 * run. When none can, the error names each one's failure.
 */
export const fetchObjects = async (wanted: ReadonlyArray<WantedObject>, store: ContentStore, report: Report): Promise<number> => {
  const missing = wanted.filter((w) => !store.has(w.sha256))
  const down = new Map<string, string>()
  report.start("download", missing.length)
  await forEachBounded(missing, CONCURRENCY, async (w) => {
    // Roots sharing a store: another process may be fetching this very object; then it is waited for, not fetched again.
    await store.fetchOnce(w.sha256, () => fetchAny(w, store, down))
    report.tick()
  })
  report.done()
  return missing.length
}

/** Fetches one object from the first repository and mirror that serves it whole and verified. */
const fetchAny = async ({ sha256, size, repos, tried }: WantedObject, store: ContentStore, down: Map<string, string>): Promise<void> => {
  const failures = [...(tried ?? [])]
  for (const { source, bases } of repos)
    for (const base of bases) {
      const known = down.get(base)
      if (known !== undefined) {
        failures.push(`source ${source}: ${known}`)
        continue
      }
      try {
        return await fetchFrom(base, sha256, size, store)
      } catch (e) {
        if (!(e instanceof HttpFailure)) throw e
        if (e.transient) down.set(base, e.message)
        failures.push(`source ${source}: ${e.message}`)
      }
    }
  throw new StoreError({ sha256, reason: failures.length > 0 ? failures.join("; ") : "no repository offers it" })
}
