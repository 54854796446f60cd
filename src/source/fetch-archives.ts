import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { ApplyError, ArchiveError, StoreError } from "../errors.js"
import type { TroveFile } from "../model/trove.js"
import { type CopiedStat, type StageTarget, teeToStage } from "../store/copy-out.js"
import { ContentStore } from "../store/store.js"
import { fetchFromArchive } from "./formats.js"
import { workerModule } from "./read-archives.js"

// Reads the contents apply lacks out of local trove archives on every core:
// this thread, and a worker per other core (dist/fetch-worker.mjs) taking a
// trove's archive whenever it has room. Each content goes into the store,
// verified, and to the stage paths handed along with it (teeToStage): a
// worker writes those itself and sends back their stats.

/** One archive to read in a worker: its wanted contents, and the stage paths some of them go to. */
export interface FetchJob {
  readonly store: string
  readonly format: string
  readonly archive: string
  readonly files: ReadonlyArray<TroveFile>
  readonly wanted: ReadonlyArray<string>
  /** stage paths (by their number in the caller's list) of the contents this job writes */
  readonly tee: ReadonlyArray<readonly [sha256: string, copies: ReadonlyArray<readonly [number, StageTarget]>]>
}

/** The failure of a job, as data (an error's class does not cross threads). */
type Failure =
  | { readonly tag: "ArchiveError"; readonly archive: string; readonly reason: string }
  | { readonly tag: "StoreError"; readonly sha256: string; readonly reason: string }
  | { readonly tag: "ApplyError"; readonly path: string; readonly reason: string }
  | { readonly tag: "Error"; readonly message: string; readonly code?: string; readonly syscall?: string }

export interface FetchReply {
  /** the wanted contents the store holds now */
  readonly stored: ReadonlyArray<string>
  /** stage paths written, verified, with their stats */
  readonly written: ReadonlyArray<readonly [number, CopiedStat]>
  /** contents of `tee` whose stage paths were not written */
  readonly unwritten: ReadonlyArray<string>
  readonly failure?: Failure
}

const asFailure = (e: unknown): Failure => {
  if (e instanceof ArchiveError) return { tag: "ArchiveError", archive: e.archive, reason: e.reason }
  if (e instanceof StoreError) return { tag: "StoreError", sha256: e.sha256, reason: e.reason }
  if (e instanceof ApplyError) return { tag: "ApplyError", path: e.path, reason: e.reason }
  const { message, code, syscall } = e as NodeJS.ErrnoException
  return { tag: "Error", message: String(message ?? e), ...(code ? { code } : {}), ...(syscall ? { syscall } : {}) }
}

const fromFailure = (f: Failure): Error => {
  switch (f.tag) {
    case "ArchiveError":
      return new ArchiveError({ archive: f.archive, reason: f.reason })
    case "StoreError":
      return new StoreError({ sha256: f.sha256, reason: f.reason })
    case "ApplyError":
      return new ApplyError({ path: f.path, reason: f.reason })
    case "Error":
      return Object.assign(new Error(f.message), f.code ? { code: f.code } : {}, f.syscall ? { syscall: f.syscall } : {})
  }
}

/** A worker's view of one store: its stage paths waiting, by content, and each one's job. */
interface WorkerStore {
  readonly store: ContentStore
  readonly lacking: Map<string, ReadonlyArray<number>>
  readonly targets: Map<number, StageTarget>
  /** the written list of the job each stage path belongs to */
  readonly jobOf: Map<number, Array<readonly [number, CopiedStat]>>
}

const stores = new Map<string, WorkerStore>()

/** One instance per store and worker (it lists each fan-out directory once), with one tee for the jobs in flight. */
const workerStore = (dir: string): WorkerStore => {
  let w = stores.get(dir)
  if (!w) {
    const lacking = new Map<string, ReadonlyArray<number>>()
    const targets = new Map<number, StageTarget>()
    const jobOf = new Map<number, Array<readonly [number, CopiedStat]>>()
    const store = new ContentStore(dir)
    store.tee = teeToStage(lacking, (i) => targets.get(i)!, (i, stat) => jobOf.get(i)?.push([i, stat]))
    stores.set(dir, (w = { store, lacking, targets, jobOf }))
  }
  return w
}

/** Runs a job (in a worker): the archive's wanted contents into the store, and to their stage paths. */
export const runFetchJob = async (job: FetchJob): Promise<FetchReply> => {
  const { store, lacking, targets, jobOf } = workerStore(job.store)
  const written: Array<readonly [number, CopiedStat]> = []
  for (const [sha256, copies] of job.tee) {
    lacking.set(sha256, copies.map(([i]) => i))
    for (const [i, target] of copies) {
      targets.set(i, target)
      jobOf.set(i, written)
    }
  }
  let failure: Failure | undefined
  try {
    await fetchFromArchive(job.format, job.archive, job.files, new Set(job.wanted), store)
  } catch (e) {
    failure = asFailure(e)
  }
  // What the tee did not take (or gave back) is left for another archive, or the copy out of the store.
  const unwritten: string[] = []
  for (const [sha256, copies] of job.tee) {
    if (lacking.delete(sha256)) unwritten.push(sha256)
    for (const [i] of copies) {
      targets.delete(i)
      jobOf.delete(i)
    }
  }
  const stored = job.wanted.filter((sha256) => store.has(sha256))
  return { stored, written, unwritten, ...(failure ? { failure } : {}) }
}

/** Contents (in bytes, all together) below which a worker is not worth starting (it costs ~0.1 s of CPU to load). */
const WORTH_WORKERS = 2 * 1024 * 1024

/**
 * Fetches from local archives on this thread and in workers. `lacking`
 * holds the stage paths (by number) still waiting for each content; `target`
 * says where one goes; `onWritten` takes each path a worker wrote and
 * verified. On this thread `store.tee` (teeToStage over the same `lacking`)
 * writes them. Call `close` when done.
 */
export const archiveFetcher = (
  store: ContentStore,
  totalBytes: number,
  lacking: Map<string, ReadonlyArray<number>>,
  target: (i: number) => StageTarget,
  onWritten: (i: number, stat: CopiedStat) => void,
) => {
  const url = totalBytes < WORTH_WORKERS ? undefined : workerModule("fetch-worker")
  const lanes = Array.from({ length: url ? Math.max(0, availableParallelism() - 1) : 0 }, () => ({ worker: new Worker(url!), busy: 0, gone: false }))
  let seq = 0
  const pending = new Map<number, { resolve: (r: FetchReply) => void; reject: (e: unknown) => void }>()
  for (const lane of lanes) {
    lane.worker.unref()
    lane.worker.on("message", ({ id, reply }: { id: number; reply: FetchReply }) => {
      lane.busy--
      pending.get(id)?.resolve(reply)
      pending.delete(id)
    })
    // Its jobs fail (the apply with them); no more go to it.
    const fail = (why: string) => {
      lane.gone = true
      for (const p of pending.values()) p.reject(new Error(`a worker reading archives ${why}`))
      pending.clear()
    }
    lane.worker.on("error", (e) => fail(`failed: ${e.message}`))
    lane.worker.on("exit", (code) => fail(`stopped (exit code ${code})`))
  }
  const inWorker = (lane: (typeof lanes)[number], job: FetchJob) =>
    new Promise<FetchReply>((resolve, reject) => {
      const id = seq++
      pending.set(id, { resolve, reject })
      lane.busy++
      lane.worker.postMessage({ id, job })
    })
  return {
    /** The wanted contents of one archive into the store (and their stage paths), each verified; throws as fetchFromArchive does. */
    async fetch(format: string, archive: string, files: ReadonlyArray<TroveFile>, wanted: ReadonlySet<string>): Promise<void> {
      // Two jobs in flight per worker keep it busy; the rest is read here.
      const lane = lanes.find((l) => !l.gone && l.busy < 2)
      // (here, the store's tee writes the stage paths: see fetchContents)
      if (!lane) return fetchFromArchive(format, archive, files, wanted, store)
      const lacks = [...wanted].filter((sha256) => !store.has(sha256))
      if (lacks.length === 0) return
      // The worker writes the stage paths of the contents it takes: nobody else does meanwhile.
      const teed: Array<readonly [string, ReadonlyArray<readonly [number, StageTarget]>]> = []
      for (const sha256 of lacks) {
        const copies = lacking.get(sha256)
        if (copies === undefined) continue
        lacking.delete(sha256)
        teed.push([sha256, copies.map((i) => [i, target(i)] as const)])
      }
      const reply = await inWorker(lane, { store: store.dir, format, archive, files, wanted: lacks, tee: teed })
      for (const [i, stat] of reply.written) onWritten(i, stat)
      const back = new Set(reply.unwritten)
      for (const [sha256, copies] of teed) if (back.has(sha256)) lacking.set(sha256, copies.map(([i]) => i))
      // The worker's store is another instance: this one learns what it added.
      for (const sha256 of reply.stored) store.added(sha256)
      if (reply.failure) throw fromFailure(reply.failure)
    },
    close: () => Promise.all(lanes.map((l) => l.worker.terminate())),
  }
}
