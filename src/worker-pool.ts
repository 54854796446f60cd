import { availableParallelism } from "node:os"
import { runHere, startWorker } from "./worker-stream.js"

// Per-file work (hashing, copying out of the store) on every core, in batches:
// plain synchronous system calls inside each worker cost far less than a
// promise per call on the main thread. Worker code is source text (not a
// file) so the CLI stays a single bundle.

const BATCH = 64

/**
 * Runs `body`'s `function run(item)` over items 0..count-1 in worker threads
 * (on this thread when `here`: by default, a batch's worth or less),
 * making each item only when its batch is sent and handing each result to
 * `onResult` as its batch comes back: no more items or results are held
 * than the batches in flight. `body` is CommonJS source text; it may keep
 * state per worker (a reusable buffer) at its top level.
 */
export const forEachInWorkers = async <I, O>(
  body: string,
  count: number,
  item: (i: number) => I,
  onResult: (i: number, out: O) => void,
  onBatch: (done: number) => void = () => {},
  // Starting a worker costs ~10 MB and tens of milliseconds: more than one batch's work.
  here = count <= BATCH,
): Promise<void> => {
  if (count === 0) return
  if (here) {
    const run = runHere<(item: I) => O>(body)
    for (let i = 0; i < count; i++) {
      onResult(i, run(item(i)))
      if ((i + 1) % BATCH === 0 || i === count - 1) onBatch(i % BATCH + 1)
    }
    return
  }
  const source = `const { parentPort } = require("node:worker_threads")
${body}
parentPort.on("message", ({ id, items }) => parentPort.postMessage({ id, out: items.map(run) }))`
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(count / BATCH)))
  const pool = Array.from({ length: workers }, () => startWorker(source))
  let next = 0
  try {
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            // Two batches in flight per worker keep it busy while the other is answered.
            let inFlight = 0
            const send = () => {
              while (inFlight < 2 && next < count) {
                const start = next
                next = Math.min(count, next + BATCH)
                const items = new Array<I>(next - start)
                for (let i = start; i < next; i++) items[i - start] = item(i)
                inFlight++
                worker.postMessage({ id: start, items })
              }
              if (inFlight === 0) resolve()
            }
            worker.on("message", ({ id, out }: { id: number; out: O[] }) => {
              try {
                for (let i = 0; i < out.length; i++) onResult(id + i, out[i]!)
                inFlight--
                onBatch(out.length)
                send()
              } catch (e) {
                reject(e)
              }
            })
            worker.on("error", reject)
            try {
              send()
            } catch (e) {
              reject(e)
            }
          }),
      ),
    )
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
}

/** forEachInWorkers over an array, the results in order. */
export const runInWorkers = async <I, O>(body: string, items: ReadonlyArray<I>, onBatch?: (done: number) => void): Promise<O[]> => {
  const result = new Array<O>(items.length)
  await forEachInWorkers<I, O>(body, items.length, (i) => items[i]!, (i, out) => (result[i] = out), onBatch)
  return result
}
