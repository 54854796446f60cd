import * as fs from "node:fs"
import * as path from "node:path"
import { forEachBounded } from "../batch.js"
import { SourceError, StoreError } from "../errors.js"
import type { Report } from "../model/report.js"
import type { ContentStore } from "../store/store.js"
import { CorruptError, unzstdChunks } from "./decompress.js"
import { TOP, objectFile } from "./repo-meta.js"

// Reading a repository, over HTTP(S) or from a directory with the same layout.
// Downloads retry transient failures and resume from where they stopped.

export const isHttp = (location: string) => /^https?:\/\//.test(location)

const join = (location: string, rel: string) => (isHttp(location) ? `${location.replace(/\/+$/, "")}/${rel}` : path.join(location, rel))

const ATTEMPTS = 4
const CONCURRENCY = 8

class Transient extends Error {}

const describe = (e: unknown): string => {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (e as Error).message
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Retries what may pass (connection errors, 5xx, 429) with backoff; anything else fails at once. */
const withRetry = async <A>(what: string, source: string, f: () => Promise<A>): Promise<A> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f()
    } catch (e) {
      if (!(e instanceof Transient) || attempt >= ATTEMPTS) {
        if (e instanceof SourceError || e instanceof StoreError) throw e
        throw new SourceError({ source, reason: `${what}: ${e instanceof Transient ? e.message : describe(e)}` })
      }
      await sleep(100 * 2 ** attempt)
    }
  }
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  let res: Response
  try {
    res = await fetch(url, { headers })
  } catch (e) {
    throw new Transient(`cannot reach ${url} (${describe(e)})`)
  }
  if (res.status >= 500 || res.status === 429) throw new Transient(`${url} answered ${res.status}`)
  return res
}

/** One file of a repository; undefined when it does not exist there. */
export const readRepoFile = async (source: string, location: string, rel: string): Promise<Buffer | undefined> => {
  if (!isHttp(location)) {
    const p = join(location, rel)
    return fs.existsSync(p) ? fs.readFileSync(p) : undefined
  }
  return withRetry(`fetching ${rel}`, source, async () => {
    const res = await get(join(location, rel))
    if (res.status === 404) return undefined
    if (!res.ok) throw new SourceError({ source, reason: `${join(location, rel)} answered ${res.status}` })
    return Buffer.from(await res.arrayBuffer())
  })
}

/**
 * Decompresses an object (at most `size` bytes: the size its manifest names)
 * into the store, where it must hash to `sha256`; anything else refuses it.
 */
const intoStore = async (source: string, sha256: string, size: number, compressed: AsyncIterable<Uint8Array>, store: ContentStore) => {
  try {
    await store.putStream(unzstdChunks(compressed, size), sha256)
  } catch (e) {
    if (!(e instanceof StoreError || e instanceof CorruptError)) throw e
    throw new SourceError({ source, reason: `object ${sha256.slice(0, 16)} does not match its sha256 (tampered, truncated or corrupt)` })
  }
}

/** Downloads one object into the store: resumes a partial download, decompresses, verifies, commits. */
const fetchObject = async (source: string, location: string, sha256: string, size: number, store: ContentStore) => {
  if (!isHttp(location)) {
    const p = join(location, objectFile(sha256))
    if (!fs.existsSync(p)) throw new SourceError({ source, reason: `object ${sha256.slice(0, 16)} is missing from the repository` })
    await intoStore(source, sha256, size, fs.createReadStream(p), store)
    return
  }
  const part = store.partPath(sha256)
  await withRetry(`fetching object ${sha256.slice(0, 16)}`, source, async () => {
    const have = fs.existsSync(part) ? fs.statSync(part).size : 0
    const res = await get(join(location, objectFile(sha256)), have > 0 ? { range: `bytes=${have}-` } : {})
    if (res.status === 404) throw new SourceError({ source, reason: `object ${sha256.slice(0, 16)} is missing from the repository` })
    if (!res.ok) throw new SourceError({ source, reason: `object ${sha256.slice(0, 16)}: server answered ${res.status}` })
    // 206 continues the partial file; a full answer starts it again.
    const out = fs.createWriteStream(part, { flags: res.status === 206 ? "a" : "w" })
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()))
      }
    } catch (e) {
      throw new Transient(`download of ${sha256.slice(0, 16)} broke off (${describe(e)})`)
    } finally {
      await new Promise<void>((resolve) => out.end(() => resolve()))
    }
  })
  try {
    await intoStore(source, sha256, size, fs.createReadStream(part), store)
  } finally {
    fs.rmSync(part, { force: true })
  }
}

/** Fetches the objects the store lacks, in parallel with a bound, under one progress bar. */
export const fetchObjects = async (
  source: string,
  location: string,
  /** sha256 -> size of each content wanted */
  wanted: ReadonlyMap<string, number>,
  store: ContentStore,
  report: Report,
): Promise<number> => {
  const missing = [...wanted.keys()].filter((sha) => !store.has(sha))
  report.start("download", missing.length)
  await forEachBounded(missing, CONCURRENCY, async (sha) => {
    await fetchObject(source, location, sha, wanted.get(sha)!, store)
    report.tick()
  })
  report.done()
  return missing.length
}

/** Whether a repository answers at all: its top document is there. */
export const checkReachable = async (source: string, location: string): Promise<void> => {
  if ((await readRepoFile(source, location, TOP)) === undefined) throw new SourceError({ source, reason: `${location} has no ${TOP}` })
}
