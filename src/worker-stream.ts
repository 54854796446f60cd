import { createRequire } from "node:module"
import { availableParallelism } from "node:os"
import type { Worker } from "node:worker_threads"
import { newWorker } from "./heap.js"

// Batches produced while earlier ones are worked on, on every core, at most
// two per worker in flight, with results handed back in the batches' order:
// memory stays bounded whatever the number of items. Worker code is source
// text (not a file) so the CLI stays a single bundle.

/** Each worker's young generation: what a batch leaves behind dies young, and a big nursery only costs memory. */
const YOUNG_MB = 4

/** A worker thread running CommonJS `source`, its young generation kept small. */
export const startWorker = (source: string, workerData?: unknown): Worker =>
  newWorker(source, { eval: true, workerData, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB } })

/** `body`'s `function run`, made on this thread: for work too small to be worth starting a worker. */
export const runHere = <F>(body: string): F => new Function("require", `${body}\nreturn run`)(createRequire(import.meta.url)) as F

/** A batch to send, with the buffers to move (not copy) to the worker. */
export interface Outgoing<M> {
  readonly message: M
  readonly transfer?: ReadonlyArray<ArrayBuffer>
}

export interface Stream<M, O> {
  /** CommonJS source text defining `function run(message, data)`, returning `{ out, transfer }` (the buffers to move back) */
  readonly body: string
  /** `data` in the workers */
  readonly workerData: unknown
  /** `data` when a single batch runs on this thread (it may hold what cannot be sent to a worker) */
  readonly inlineData?: unknown
  /** the next batch; undefined when there are no more */
  readonly next: () => Outgoing<M> | undefined
  /** each batch's result, in production order */
  readonly onResult: (out: O) => void
  /** runs on this thread once the workers have their first batches (its exception ends the stream) */
  readonly meanwhile?: () => void
  /** every batch on this thread: `inlineData` cannot go to a worker (a database held in memory) */
  readonly here?: boolean
}

export const streamInWorkers = async <M, O>({ body, workerData, inlineData = workerData, next, onResult, meanwhile, here }: Stream<M, O>): Promise<void> => {
  const first = next()
  const second = first && !here ? next() : undefined
  if (first === undefined || second === undefined) {
    // Nothing, or one batch (done here sooner than a worker starts), or all of them here.
    meanwhile?.()
    if (first === undefined) return
    const run = runHere<(message: M, data: unknown) => { out: O }>(body)
    for (let batch: Outgoing<M> | undefined = first; batch !== undefined; batch = here ? next() : undefined) onResult(run(batch.message, inlineData).out)
    return
  }
  const source = `const { parentPort, workerData } = require("node:worker_threads")
${body}
parentPort.on("message", ({ seq, message }) => {
  const { out, transfer } = run(message, workerData)
  parentPort.postMessage({ seq, out }, transfer)
})`
  const queued = [first, second]
  let done = false
  const take = (): Outgoing<M> | undefined => {
    if (queued.length > 0) return queued.shift()
    if (done) return undefined
    const batch = next()
    if (batch === undefined) done = true
    return batch
  }
  let produced = 0
  let delivered = 0
  const ready = new Map<number, O>()
  const pool = Array.from({ length: Math.max(1, availableParallelism()) }, () => startWorker(source, workerData))
  try {
    await new Promise<void>((resolve, reject) => {
      let inFlight = 0
      let failed = false
      const fail = (e: unknown) => {
        failed = true
        reject(e)
      }
      const feed = (worker: Worker, slots: number) => {
        for (let i = 0; i < slots; i++) {
          const batch = take()
          if (batch === undefined) break
          inFlight++
          worker.postMessage({ seq: produced++, message: batch.message }, [...(batch.transfer ?? [])])
        }
        if (inFlight === 0 && done) resolve()
      }
      for (const worker of pool) {
        worker.on("message", ({ seq, out }: { seq: number; out: O }) => {
          if (failed) return
          inFlight--
          try {
            ready.set(seq, out)
            // In order: a later batch waits for the earlier ones.
            while (ready.has(delivered)) {
              const o = ready.get(delivered)!
              ready.delete(delivered++)
              onResult(o)
            }
            feed(worker, 1)
          } catch (e) {
            fail(e)
          }
        })
        worker.on("error", fail)
      }
      try {
        for (const worker of pool) feed(worker, 2)
        meanwhile?.()
      } catch (e) {
        fail(e)
      }
    })
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
}
