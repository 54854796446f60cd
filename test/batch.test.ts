import { describe, expect, it } from "vitest"
import { forEachBounded } from "../src/batch.js"

describe("forEachBounded", () => {
  it("settles every started item before it rejects, and starts no new one after a failure", async () => {
    const started: number[] = []
    const finished: number[] = []
    const gates: Array<() => void> = []
    const run = forEachBounded(Array.from({ length: 40 }, (_, i) => i), 4, async (i) => {
      started.push(i)
      if (i === 0) throw new Error("first fails")
      await new Promise<void>((resolve) => gates.push(resolve))
      finished.push(i)
    })
    let settled = false
    const outcome = run.then(
      () => "resolved",
      (e: Error) => e.message,
    ).finally(() => (settled = true))
    // Let the batch run until its workers wait on their gates.
    for (let i = 0; i < 10; i++) await Promise.resolve()
    expect(settled).toBe(false)
    for (const open of gates) open()
    expect(await outcome).toBe("first fails")
    expect(finished.sort()).toEqual(started.filter((i) => i !== 0).sort())
    expect(started.length).toBeLessThanOrEqual(4)
  })
})
