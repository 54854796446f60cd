import * as fs from "node:fs"
import { availableParallelism } from "node:os"
import type { Worker } from "node:worker_threads"
import { newWorker } from "../heap.js"

// Work on package archives (reading them for `source sync`, fetching their
// contents for apply) on every core: this thread and a worker per other core,
// each taking the next job as it finishes one. Decompression, parsing, hashing
// and writing of one archive happen on one thread. The workers run
// dist/read-worker.mjs, a bundle of their own (scripts/build.mjs).

/**
 * Archives (in bytes, all together) below which working on them here alone
 * is done sooner than a worker starts: each costs about 0.1 s of CPU to load
 * its bundle, as much as decoding a MiB of xz.
 */
const WORTH_WORKERS = 2 * 1024 * 1024

/** The workers stopped short (a crash, or a failure that is not an archive's). */
export class LanesFailed extends Error {}

/**
 * dist/read-worker.mjs, found from wherever this module runs: the CLI bundle
 * (dist/conary.cjs), or src/source/ when a test imports it (the test set-up
 * builds the bundle first). The package root is the directory above that
 * holds package.json.
 */
const workerModule = (): URL => {
  for (let dir = new URL(".", import.meta.url); ; dir = new URL("..", dir)) {
    if (fs.existsSync(new URL("package.json", dir))) return new URL("dist/read-worker.mjs", dir)
    if (dir.pathname === "/") throw new LanesFailed("cannot find conary's package directory (for dist/read-worker.mjs)")
  }
}

export interface Lanes<Reply> {
  /** each job's archive size in bytes (largest go first, so no core is left with a big one at the end) */
  readonly sizes: ReadonlyArray<number>
  /** what the workers are started with (read-worker.ts) */
  readonly workerData: unknown
  /** at most this many lanes (this thread's included), whatever the cores */
  readonly maxLanes?: number
  /** does job `i` on this thread */
  readonly here: (i: number) => Promise<Reply>
  /** job `i` as a message to a worker, made when a worker is about to take it; read-worker.ts answers it with a Reply */
  readonly request: (i: number) => object
  /** job `i`'s reply, from here or a worker, in any order; throwing stops every lane */
  readonly answer: (i: number, reply: Reply) => void
}

/**
 * Runs every job on every core (see Lanes). After the first failure no lane
 * takes another job; the failure is thrown once each has had the answers to
 * the jobs it sent, so whoever undoes the work does not race writes still
 * landing. One job, or a few small ones, run here alone: sooner than a worker starts.
 */
export const onEveryCore = async <Reply>(lanes: Lanes<Reply>): Promise<void> => {
  const { sizes } = lanes
  const order = sizes.map((_, i) => i).sort((a, b) => sizes[b]! - sizes[a]! || a - b)
  let next = 0
  let stopped = false
  const take = () => (stopped || next === order.length ? undefined : order[next++])
  const here = async () => {
    for (let i = take(); i !== undefined; i = take()) {
      lanes.answer(i, await lanes.here(i))
      // A job read from a local file may never wait on the event loop: the workers' replies (and their next jobs) would.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const small = sizes.length < 2 || sizes.reduce((n, s) => n + s, 0) < WORTH_WORKERS
  const url = small ? undefined : workerModule()
  const pool = Array.from({ length: url ? Math.min(availableParallelism(), sizes.length, lanes.maxLanes ?? Infinity) - 1 : 0 }, () => newWorker(url!, { workerData: lanes.workerData }))
  const inWorker = (worker: Worker) =>
    new Promise<void>((resolve, reject) => {
      let inFlight = 0
      let failure: { error: unknown } | undefined
      const fail = (e: unknown) => {
        failure ??= { error: e }
        stopped = true
      }
      // A second job sent ahead, the worker takes it (it works one at a time) while this thread answers the first;
      // not near the end, where it would wait there while another lane has nothing left to take.
      const room = () => inFlight === 0 || (inFlight < 2 && order.length - next > pool.length + 1)
      const send = () => {
        try {
          for (let i = room() ? take() : undefined; i !== undefined; i = room() ? take() : undefined) {
            worker.postMessage({ seq: i, ...lanes.request(i) })
            inFlight++
          }
        } catch (e) {
          fail(e)
        }
        if (inFlight === 0) (failure ? reject(failure.error) : resolve())
      }
      // Every reply is answered, after a failure too: what its job wrote is then known to whoever undoes it.
      worker.on("message", (reply: Reply & { seq: number }) => {
        inFlight--
        try {
          lanes.answer(reply.seq, reply)
        } catch (e) {
          fail(e)
        }
        send()
      })
      worker.on("error", (e) => reject(new LanesFailed(`a worker working on archives failed: ${e.message}`)))
      worker.on("exit", (code) => reject(new LanesFailed(`a worker working on archives stopped (exit code ${code})`)))
      send()
    })
  try {
    // Each lane stops taking jobs once one fails; the first failure is thrown when all have stopped.
    const all = [here(), ...pool.map(inWorker)].map((lane) =>
      lane.catch((e: unknown) => {
        stopped = true
        throw e
      }),
    )
    const failed = (await Promise.allSettled(all)).find((r) => r.status === "rejected")
    if (failed) throw failed.reason
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
}
