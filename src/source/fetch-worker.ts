import { parentPort } from "node:worker_threads"
import { type FetchJob, runFetchJob } from "./fetch-archives.js"

// A worker thread that reads trove archives for apply (built by
// scripts/build.mjs as dist/fetch-worker.mjs): see fetch-archives.ts.

parentPort!.on("message", async ({ id, job }: { id: number; job: FetchJob }) => parentPort!.postMessage({ id, reply: await runFetchJob(job) }))
