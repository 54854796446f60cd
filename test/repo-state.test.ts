import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { type Patch, applyPatch, diff, lineHash, nextPatches, stateDigest } from "../src/source/repo-state.js"

// The patches a repository build writes: from the state before (a diff) and
// from each earlier one (composed). Whatever the history, each leads from
// its state to the newest.

const stateOf = (lines: ReadonlyArray<string>) => new Map(lines.map((l) => [lineHash(l), l]))

describe("metadata patches", () => {
  it("lead from every earlier state to the newest, through removals, re-additions and unchanged builds", () => {
    // Each state: some of a small pool of lines, so lines go, come back, and stay.
    const pool = Array.from({ length: 12 }, (_, i) => `{"digest":"${i}"}`)
    const history = fc.array(fc.subarray(pool), { minLength: 2, maxLength: 10 })
    fc.assert(
      fc.property(history, (states) => {
        let previous = stateOf(states[0]!)
        let patches: Patch[] = []
        const seen = [previous]
        for (const lines of states.slice(1)) {
          const newest = stateOf(lines)
          const before = new Set(previous.keys())
          const from = stateDigest(before)
          if (from !== stateDigest(newest.keys())) {
            const last = diff(before, from, newest)
            patches = nextPatches(patches, last, newest, 16)
          }
          for (const p of patches) {
            const start = seen.find((s) => stateDigest(s.keys()) === p.from)!
            expect(stateDigest(applyPatch(new Set(start.keys()), p))).toBe(stateDigest(newest.keys()))
            // Nothing is both dropped and added, nor added when it was there.
            expect(p.add.filter((l) => start.has(lineHash(l)))).toEqual([])
            expect(p.remove.filter((h) => newest.has(h))).toEqual([])
          }
          seen.push(newest)
          previous = newest
        }
      }),
      { numRuns: 300 },
    )
  })
})
