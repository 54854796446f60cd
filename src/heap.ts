import * as fs from "node:fs"
import { Worker, type WorkerOptions } from "node:worker_threads"
import { nodeV8 } from "./builtin.js"

/**
 * Makes V8 keep the heap small, at the cost of more collections, for the
 * commands that apply a plan: at 200,000 files apply peaked ~60 MiB lower
 * (206-216 -> ~150 MiB), for ~3 % more CPU (20,000 files, medians). Without
 * them V8 grows its young generation to 16 MiB semi-spaces while much of
 * what it allocates survives a scavenge, as a plan's rows do, and sizes
 * the old generation for speed.
 * V8 flags, set at run time, once the code cache is read: V8's check of a
 * cache includes the flags, so bin/conary.js sets these back to V8's defaults
 * before it makes one.
 */
export const leanHeap = (): void => {
  lean = true
  setLean()
}

/**
 * A database this small (with its write-ahead log) holds too few files for
 * the lean heap to matter, and it costs a small apply more than it saves: 45
 * Debian packages (2,700 files, a 0.75 MiB database) applied ~20 ms sooner
 * without it. 200,000 files take ~32 MiB before their first apply.
 */
const LEAN_FROM_BYTES = 16 * 2 ** 20

/**
 * leanHeap, when what bounds how many files a plan can hold is large enough
 * for it to matter: the database at `dbPath` (with its log), and a changeset
 * file being applied (its troves come into the database only as it is read).
 */
export const leanHeapFor = (dbPath: string, changeset?: string): void => {
  const size = (file: string) => fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0
  if (size(dbPath) + size(`${dbPath}-wal`) + (changeset === undefined ? 0 : size(changeset)) >= LEAN_FROM_BYTES) leanHeap()
}

let lean = false
const setLean = () => nodeV8().setFlagsFromString("--semi-space-growth-factor=1 --optimize-for-size")

/**
 * A worker thread. As one starts, Node sets V8's flags back to the command
 * line's, for every thread (Node 20): once it is up, leanHeap's are set again.
 * Without that, apply's young generation grew to 16 MiB semi-spaces as soon
 * as its first worker started (~9 MiB more at the peak at 200,000 files).
 */
export const newWorker = (file: string | URL, options: WorkerOptions): Worker => {
  const worker = new Worker(file, options)
  if (lean) worker.once("online", setLean)
  return worker
}
