import * as fs from "node:fs"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import type { NewTrove } from "../db/troves.js"
import { ArchiveError, describeIo } from "../errors.js"
import type { ContentStore } from "../store/store.js"
import { readTroveArchive } from "./formats.js"

// Reads package archives (src/source/formats.ts readTroveArchive) on every
// core, this thread and a worker per other core: decompression, parsing,
// hashing and store writes of one archive happen on one thread, and the
// threads share the archives. The workers run dist/read-worker.mjs, a bundle
// of their own (scripts/build.mjs).

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

/** Reads one archive (in a worker, or here). */
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
 * Archives (in bytes, all together) below which reading them here alone is
 * done sooner than a worker starts: each costs about 0.1 s of CPU to load its
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
 * Reads `archives` (with their sizes) on every core: on this thread and in a
 * worker per other core, calling `onRead` with each one's index and result as
 * it comes (in any order). With `store`, the contents decompressed go into it
 * (see PackageFormat.read); the caller makes them durable. Largest archives
 * go first, so no core is left with a big one at the end. One archive, or a
 * few small ones, are read on this thread alone: sooner than a worker starts.
 */
export const readArchives = async (
  archives: ReadonlyArray<{ readonly archive: string; readonly size: number }>,
  store: ContentStore | undefined,
  onRead: (index: number, result: ReadResult) => void,
): Promise<void> => {
  const answer = (seq: number, reply: ReadReply) => {
    if ("failed" in reply) throw new ReadersFailed(`reading ${archives[seq]!.archive}: ${reply.failed}`)
    onRead(seq, "bad" in reply ? { bad: new ArchiveError({ archive: archives[seq]!.archive, reason: reply.bad }) } : reply)
  }
  const order = archives.map((_, i) => i).sort((a, b) => archives[b]!.size - archives[a]!.size || a - b)
  let next = 0
  let stopped = false
  // One archive at a time on each thread: decoding keeps a core busy, and
  // memory stays one archive's (a bomb's, up to its bound) per core.
  const take = () => (stopped || next === order.length ? undefined : order[next++])
  const here = async () => {
    for (let seq = take(); seq !== undefined; seq = take()) answer(seq, await readOne(archives[seq]!.archive, store))
  }
  const small = archives.length < 2 || archives.reduce((n, a) => n + a.size, 0) < WORTH_WORKERS
  const url = small ? undefined : workerModule()
  const pool = Array.from({ length: url ? Math.min(availableParallelism(), archives.length) - 1 : 0 }, () => new Worker(url!, { workerData: { store: store?.dir } }))
  const inWorker = (worker: Worker) =>
    new Promise<void>((resolve, reject) => {
      const send = () => {
        const seq = take()
        if (seq === undefined) return resolve()
        worker.postMessage({ seq, archive: archives[seq]!.archive } satisfies ReadRequest)
      }
      worker.on("message", (reply: ReadReply & { seq: number }) => {
        try {
          answer(reply.seq, reply)
        } catch (e) {
          return reject(e)
        }
        send()
      })
      worker.on("error", (e) => reject(new ReadersFailed(`a worker reading archives failed: ${e.message}`)))
      worker.on("exit", (code) => reject(new ReadersFailed(`a worker reading archives stopped (exit code ${code})`)))
      send()
    })
  try {
    // Each thread stops taking archives once one fails; the first failure is thrown when all have stopped.
    const lanes = [here(), ...pool.map(inWorker)].map((lane) =>
      lane.catch((e: unknown) => {
        stopped = true
        throw e
      }),
    )
    const failed = (await Promise.allSettled(lanes)).find((r) => r.status === "rejected")
    if (failed) throw failed.reason
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
}
