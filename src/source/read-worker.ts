import { parentPort, workerData } from "node:worker_threads"
import { ContentStore } from "../store/store.js"
import { type FetchJob, fetchOne } from "./fetch-archive.js"
import { type ReadRequest, readOne } from "./read-archives.js"

// A worker thread that works on package archives (built by scripts/build.mjs
// as dist/read-worker.mjs; see archive-lanes.ts): reads them for `source
// sync`, or fetches their contents for apply, each decompressed, parsed,
// hashed and its contents stored here, on this thread's core. One job at a
// time: a second is sent ahead only so that this worker has it at hand while
// the main thread answers the first.

const store = typeof workerData?.store === "string" ? new ContentStore(workerData.store, workerData.remembers !== false) : undefined

type Request = ReadRequest | { readonly seq: number; readonly fetch: FetchJob }

const queue: Request[] = []
let busy = false
const work = async () => {
  busy = true
  for (let r = queue.shift(); r !== undefined; r = queue.shift())
    parentPort!.postMessage({ seq: r.seq, ...("fetch" in r ? await fetchOne(r.fetch, store!) : await readOne(r.archive, store)) })
  busy = false
}
parentPort!.on("message", (r: Request) => {
  queue.push(r)
  if (!busy) void work()
})
