import * as fs from "node:fs"
import { ApplyError, ArchiveError, StoreError } from "../errors.js"
import type { TroveFile } from "../model/trove.js"
import { type StageTarget, teeToStage } from "../store/copy-out.js"
import type { ContentStore } from "../store/store.js"
import { fetchFromArchive } from "./formats.js"

// One trove's wanted contents from its local archives into the store, each
// written to its stage paths too as it is stored: a job apply gives this
// thread or a worker (read-worker.ts; see reconcile/fetch-local.ts).

export interface FetchJob {
  readonly format: string
  /** the trove's archives, tried in order until one gives every wanted content */
  readonly archives: ReadonlyArray<string>
  /** the trove's files, for a format that finds contents by path (formats.ts fetchNeedsFiles) */
  readonly files: ReadonlyArray<TroveFile>
  readonly wanted: ReadonlyArray<string>
  /** the stage paths (by number) waiting for each content, and what each is to be */
  readonly stage: ReadonlyArray<readonly [sha256: string, paths: ReadonlyArray<readonly [i: number, target: StageTarget]>]>
}

/** Why an archive could not give its contents: an ArchiveError or a StoreError, as plain data. */
export type ArchiveFailure =
  | { readonly tag: "ArchiveError"; readonly archive: string; readonly reason: string }
  | { readonly tag: "StoreError"; readonly sha256: string; readonly reason: string }

export interface FetchReply {
  /** the archive (by index) that gave every wanted content; -1: none did */
  readonly from: number
  /** why each archive tried before that one (or each, when none did) could not */
  readonly failures: ReadonlyArray<ArchiveFailure>
  /** when no archive gave them all: the wanted contents the store holds now */
  readonly stored: ReadonlyArray<string>
  /** stage paths written, their bytes verified, with the stat of the descriptor that wrote them: [i, ino, mtimeNs, ctimeNs] */
  readonly written: ReadonlyArray<readonly [number, bigint, bigint, bigint]>
  /** stage paths found taken at the open: not apply's */
  readonly taken: ReadonlyArray<number>
  /** what stopped the job that is no archive's doing (the store's disk, a bug): apply stops */
  readonly error?: Stopped
}

/** An ApplyError, or any other failure with the fields a system call's error has, as plain data. */
export type Stopped =
  | { readonly tag: "ApplyError"; readonly path: string; readonly reason: string }
  | { readonly tag: "Error"; readonly message: string; readonly code?: string; readonly syscall?: string; readonly path?: string }

export const errorOfFailure = (f: ArchiveFailure): ArchiveError | StoreError =>
  f.tag === "ArchiveError" ? new ArchiveError({ archive: f.archive, reason: f.reason }) : new StoreError({ sha256: f.sha256, reason: f.reason })

export const errorOfStopped = (s: Stopped): Error =>
  s.tag === "ApplyError" ? new ApplyError({ path: s.path, reason: s.reason }) : Object.assign(new Error(s.message), { code: s.code, syscall: s.syscall, path: s.path })

const stoppedOf = (e: unknown): Stopped => {
  if (e instanceof ApplyError) return { tag: "ApplyError", path: e.path, reason: e.reason }
  const { message, code, syscall, path } = e as NodeJS.ErrnoException
  return { tag: "Error", message: message ?? String(e), code, syscall, path }
}

/** Does a FetchJob with `store` (this thread's, or a worker's own). */
export const fetchOne = async (job: FetchJob, store: ContentStore): Promise<FetchReply> => {
  const failures: ArchiveFailure[] = []
  const written: Array<readonly [number, bigint, bigint, bigint]> = []
  const taken: number[] = []
  // Asked of the disk: a worker's store remembers nothing (see ContentStore).
  const reply = (from: number): FetchReply => ({ from, failures, stored: from >= 0 ? [] : job.wanted.filter((s) => fs.existsSync(store.pathOf(s))), written, taken })
  if (job.wanted.length === 0) return reply(0)
  const waiting = new Map(job.stage.map(([sha256, paths]) => [sha256, paths.map(([i]) => i)]))
  const targets = new Map(job.stage.flatMap(([, paths]) => paths))
  store.tee = teeToStage(
    {
      take: (sha256) => {
        const list = waiting.get(sha256)
        waiting.delete(sha256)
        return list
      },
      giveBack: (sha256, list) => void waiting.set(sha256, [...list]),
    },
    (i) => targets.get(i)!,
    (i, st) => written.push([i, st.ino, st.mtimeNs, st.ctimeNs]),
    (i) => taken.push(i),
  )
  const wanted = new Set(job.wanted)
  try {
    for (let k = 0; k < job.archives.length; k++) {
      try {
        await fetchFromArchive(job.format, job.archives[k]!, job.files, wanted, store)
        return reply(k)
      } catch (e) {
        if (e instanceof ArchiveError) failures.push({ tag: "ArchiveError", archive: e.archive, reason: e.reason })
        else if (e instanceof StoreError) failures.push({ tag: "StoreError", sha256: e.sha256, reason: e.reason })
        else return { ...reply(-1), error: stoppedOf(e) }
      }
    }
    return reply(-1)
  } finally {
    store.tee = undefined
  }
}
