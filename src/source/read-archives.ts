import * as fs from "node:fs"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import type { NewTrove } from "../db/troves.js"
import { ArchiveError, describeIo } from "../errors.js"
import type { ContentStore } from "../store/store.js"
import { readTroveArchive } from "./formats.js"

// Reads package archives (src/source/formats.ts readTroveArchive) on worker
// threads, one per core: decompression, parsing, hashing and store writes of
// one archive happen on one thread, and the cores share the archives. The
// workers run dist/read-worker.mjs, a bundle of their own (scripts/build.mjs).

export interface ReadRequest {
  readonly seq: number
  readonly archive: string
}

export type ReadReply =
  | { readonly trove: NewTrove; readonly archiveSha256: string }
  /** the archive cannot be read: the ArchiveError's reason */
  | { readonly bad: string }
  /** a failure that is not the archive's (a bug) */
  | { readonly failed: string }

export type ReadResult = { readonly trove: NewTrove; readonly archiveSha256: string } | { readonly bad: ArchiveError }

/** A failure to read one archive, as an ArchiveError; undefined for anything else (a bug). */
export const archiveErrorOf = (archive: string, e: unknown): ArchiveError | undefined => {
  if (e instanceof ArchiveError) return e
  if ((e as NodeJS.ErrnoException).code !== undefined) return new ArchiveError({ archive, reason: describeIo(e) })
  return undefined
}

/** Reads one archive (in a worker, or here when there is only one). */
export const readOne = async (archive: string, store: ContentStore | undefined): Promise<ReadReply> => {
  try {
    const { trove, archiveSha256 } = await readTroveArchive(archive, store)
    return { trove, archiveSha256 }
  } catch (e) {
    const bad = archiveErrorOf(archive, e)
    // Anything else is a bug, not the archive's fault: it stops the sync.
    return bad ? { bad: bad.reason } : { failed: (e as Error).message ?? String(e) }
  }
}

/**
 * Archives (in bytes, all together) below which reading them here is done
 * sooner than workers start: each costs about 0.1 s of CPU to load its
 * bundle, as much as decoding a MiB of xz.
 */
const WORTH_WORKERS = 2 * 1024 * 1024

/** The workers stopped short of reading every archive (a crash, or a failure that is not an archive's). */
export class ReadersFailed extends Error {}

/**
 * dist/read-worker.mjs, found from wherever this module runs: the CLI bundle
 * (dist/conary.cjs), or src/source/ when a test imports it (the test set-up
 * builds the bundle first). The package root is the directory above that
 * holds package.json.
 */
const workerModule = (): URL => {
  for (let dir = new URL(".", import.meta.url); ; dir = new URL("..", dir)) {
    if (fs.existsSync(new URL("package.json", dir))) return new URL("dist/read-worker.mjs", dir)
    if (dir.pathname === "/") throw new ReadersFailed("cannot find conary's package directory (for dist/read-worker.mjs)")
  }
}

/**
 * Reads `archives` (with their sizes) in workers, calling `onRead` with each one's index and
 * result as it comes (in any order). With `store`, the contents decompressed
 * go into it (see PackageFormat.read); the caller makes them durable.
 * Largest archives go first, so no core is left with a big one at the end.
 * One archive, or a few small ones, are read on this thread: sooner than
 * workers start.
 */
export const readArchives = async (
  archives: ReadonlyArray<{ readonly archive: string; readonly size: number }>,
  store: ContentStore | undefined,
  onRead: (index: number, result: ReadResult) => void,
): Promise<void> => {
  if (archives.length === 0) return
  const answer = (seq: number, reply: ReadReply) => {
    if ("failed" in reply) throw new ReadersFailed(`reading ${archives[seq]!.archive}: ${reply.failed}`)
    onRead(seq, "bad" in reply ? { bad: new ArchiveError({ archive: archives[seq]!.archive, reason: reply.bad }) } : reply)
  }
  if (archives.length === 1 || archives.reduce((n, a) => n + a.size, 0) < WORTH_WORKERS) {
    for (const [i, { archive }] of archives.entries()) answer(i, await readOne(archive, store))
    return
  }
  const order = archives.map((_, i) => i).sort((a, b) => archives[b]!.size - archives[a]!.size || a - b)
  const url = workerModule()
  const workers = Math.max(1, Math.min(availableParallelism(), archives.length))
  const pool = Array.from({ length: workers }, () => new Worker(url, { workerData: { store: store?.dir } }))
  let next = 0
  let left = archives.length
  try {
    await new Promise<void>((resolve, reject) => {
      let stopped = false
      const stop = (why: string) => {
        if (stopped) return
        stopped = true
        reject(new ReadersFailed(why))
      }
      const send = (worker: Worker) => {
        if (next === order.length) return
        const seq = order[next++]!
        worker.postMessage({ seq, archive: archives[seq]!.archive } satisfies ReadRequest)
      }
      for (const worker of pool) {
        worker.on("message", (reply: ReadReply & { seq: number }) => {
          if (stopped) return
          try {
            answer(reply.seq, reply)
          } catch (e) {
            stopped = true
            return reject(e)
          }
          if (--left === 0) resolve()
          else send(worker)
        })
        worker.on("error", (e) => stop(`a worker reading archives failed: ${e.message}`))
        worker.on("exit", (code) => stop(`a worker reading archives stopped (exit code ${code})`))
        // One archive at a time each: decoding keeps a worker's core busy, and
        // memory stays one archive's (a bomb's, up to its bound) per core.
        send(worker)
      }
    })
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
}
