import { parentPort, workerData } from "node:worker_threads"
import { ContentStore } from "../store/store.js"
import { type ReadRequest, readOne } from "./read-archives.js"

// A worker thread that reads package archives for `source sync` (built by
// scripts/build.mjs as dist/read-worker.mjs): each one decompressed, parsed,
// hashed and its contents stored here, on this thread's core.

const store = typeof workerData?.store === "string" ? new ContentStore(workerData.store) : undefined

parentPort!.on("message", async ({ seq, archive }: ReadRequest) => parentPort!.postMessage({ seq, ...(await readOne(archive, store)) }))
