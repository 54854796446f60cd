import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"

// Per-file work (hashing, copying out of the store) on every core, in batches:
// plain synchronous system calls inside each worker cost far less than a
// promise per call on the main thread. Worker code is source text (not a
// file) so the CLI stays a single bundle.

const BATCH = 64

/**
 * Runs `body`'s `function run(item)` over `items` in worker threads and
 * returns the results in order, calling `onBatch` as batches finish. `body`
 * is CommonJS source text; it may keep state per worker (a reusable buffer)
 * at its top level.
 */
export const runInWorkers = async <I, O>(
  body: string,
  items: ReadonlyArray<I>,
  onBatch: (done: number) => void = () => {},
): Promise<O[]> => {
  const result = new Array<O>(items.length)
  if (items.length === 0) return result
  const source = `const { parentPort } = require("node:worker_threads")
${body}
parentPort.on("message", ({ id, items }) => parentPort.postMessage({ id, out: items.map(run) }))`
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(items.length / BATCH)))
  const pool = Array.from({ length: workers }, () => new Worker(source, { eval: true }))
  let next = 0
  try {
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            // Two batches in flight per worker keep it busy while the other is answered.
            let inFlight = 0
            const send = () => {
              while (inFlight < 2 && next < items.length) {
                const start = next
                next = Math.min(items.length, next + BATCH)
                inFlight++
                worker.postMessage({ id: start, items: items.slice(start, next) })
              }
              if (inFlight === 0) resolve()
            }
            worker.on("message", ({ id, out }: { id: number; out: O[] }) => {
              for (let i = 0; i < out.length; i++) result[id + i] = out[i]!
              inFlight--
              onBatch(out.length)
              send()
            })
            worker.on("error", reject)
            send()
          }),
      ),
    )
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
  return result
}
