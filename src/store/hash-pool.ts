import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"

// SHA-256 of many files on every core. Each worker reads through one fixed
// 1 MiB buffer, so memory stays bounded whatever the file sizes. The worker is
// source text (not a file) so the CLI stays a single bundle.
const WORKER = `
const { parentPort } = require("node:worker_threads")
const fs = require("node:fs")
const { createHash } = require("node:crypto")
const buf = Buffer.allocUnsafe(1 << 20)
parentPort.on("message", ({ id, paths }) => {
  const out = paths.map((p) => {
    let fd
    try {
      fd = fs.openSync(p, "r")
      const h = createHash("sha256")
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null)
        if (n === 0) break
        h.update(buf.subarray(0, n))
      }
      return h.digest("hex")
    } catch {
      return null
    } finally {
      if (fd !== undefined) fs.closeSync(fd)
    }
  })
  parentPort.postMessage({ id, out })
})
`

const BATCH = 64

/** Hashes files in parallel; null for a file that cannot be read. */
export const hashFiles = async (paths: ReadonlyArray<string>): Promise<Array<string | null>> => {
  const result: Array<string | null> = new Array(paths.length).fill(null)
  if (paths.length === 0) return result
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(paths.length / BATCH)))
  const pool = Array.from({ length: workers }, () => new Worker(WORKER, { eval: true }))
  let next = 0
  try {
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            // Two batches in flight per worker keep it busy while the other is answered.
            let inFlight = 0
            const send = () => {
              while (inFlight < 2 && next < paths.length) {
                const start = next
                next = Math.min(paths.length, next + BATCH)
                inFlight++
                worker.postMessage({ id: start, paths: paths.slice(start, next) })
              }
              if (inFlight === 0) resolve()
            }
            worker.on("message", ({ id, out }: { id: number; out: Array<string | null> }) => {
              for (let i = 0; i < out.length; i++) result[id + i] = out[i]!
              inFlight--
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

