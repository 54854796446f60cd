import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { tempDir } from "./helpers.js"

// In a process of its own: V8's flags are the whole process's, and a young
// generation's size depends on everything that ran before.
const youngAfterWorker = (lean = "leanHeap()"): number => {
  const script = path.join(tempDir(), "young.mts")
  fs.writeFileSync(
    script,
    `import * as v8 from "node:v8"
import { leanHeap, leanHeapFor, newWorker } from ${JSON.stringify(new URL("../src/heap.ts", import.meta.url).pathname)}
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").physical_space_size
${lean}
const worker = newWorker("require('node:worker_threads').parentPort.postMessage('up')", { eval: true })
await new Promise((resolve) => worker.once("message", resolve))
// Much that survives scavenges, as a plan's rows do: what makes V8 grow a young generation it may grow.
const kept = []
let most = 0
for (let round = 0; round < 30; round++) {
  for (let i = 0; i < 200_000; i++) {
    const o = { i, s: "x" + i }
    if (i % 3 === 0) kept.push(o)
  }
  most = Math.max(most, newSpace())
}
await worker.terminate()
console.log(most)
`,
  )
  const run = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8" })
  if (run.status !== 0) throw new Error(run.stderr)
  return Number(run.stdout)
}

describe("leanHeap", () => {
  it("still holds on this thread once a worker has started (Node sets V8's flags back as one starts)", () => {
    // Lean: V8's first semi-spaces (1 MiB each), never grown; V8's defaults grow them to 16 MiB here.
    expect(youngAfterWorker()).toBeLessThanOrEqual(4 << 20)
  })

  it("is taken only when the database (with its log), or a changeset being applied, could hold a plan big enough for it to matter (16 MiB)", () => {
    const dir = tempDir()
    // Sizes without the bytes: only the sizes are read.
    const file = (name: string, size: number) => {
      const p = path.join(dir, name)
      fs.writeFileSync(p, "")
      fs.truncateSync(p, size)
      return JSON.stringify(p)
    }
    const small = file("small.db", 1 << 20)
    expect(youngAfterWorker(`leanHeapFor(${small})`)).toBeGreaterThan(4 << 20)
    expect(youngAfterWorker(`leanHeapFor(${file("big.db", 16 << 20)})`)).toBeLessThanOrEqual(4 << 20)
    file("small.db-wal", 15 << 20)
    expect(youngAfterWorker(`leanHeapFor(${small})`)).toBeLessThanOrEqual(4 << 20)
    expect(youngAfterWorker(`leanHeapFor(${file("other.db", 1 << 20)}, ${file("big.ccs", 15 << 20)})`)).toBeLessThanOrEqual(4 << 20)
  })
})
