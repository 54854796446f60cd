import { spawn } from "node:child_process"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { compareAlpm, compareDebian, compareNative, compareRpm, compareVersions, debianVersionProblem, matchesVersionSpec } from "../src/desired/version.js"
import type { VersionScheme } from "../src/model/trove.js"

const sign = (n: number) => Math.sign(n)

describe("native versions", () => {
  it("orders upstream-source-build component-wise, numeric where numeric", () => {
    const ordered = ["1.0-1-1", "1.0-1-2", "1.0-2-1", "1.1-1-1", "1.9-1-1", "1.10-1-1", "1.10a-1-1", "2.0-1-1", "10.0-1-1"]
    for (let i = 0; i < ordered.length; i++)
      for (let j = 0; j < ordered.length; j++) expect(sign(compareNative(ordered[i]!, ordered[j]!))).toBe(sign(i - j))
    expect(compareNative("1.0", "1.0.0")).toBeLessThan(0)
    expect(compareNative("1.01-1-1", "1.1-1-1")).toBe(0)
  })
})

describe("Debian versions", () => {
  it("follows dpkg's rules for epochs, tildes and letters", () => {
    expect(compareDebian("1:1.0", "2.0")).toBeGreaterThan(0)
    expect(compareDebian("1.0~rc1", "1.0")).toBeLessThan(0)
    expect(compareDebian("1.0~~", "1.0~")).toBeLessThan(0)
    expect(compareDebian("1.0a", "1.0+")).toBeLessThan(0)
    expect(compareDebian("1.6-2.1+deb12u2", "1.6-2.1+deb12u1")).toBeGreaterThan(0)
    expect(compareDebian("2.10-3", "2.9-9")).toBeGreaterThan(0)
    expect(compareDebian("1.0-1", "1.0-1")).toBe(0)
  })
})

/** Runs a shell script without blocking the worker (a minute of blocking starves its own messages); its stdout lines. */
const shellLines = async (script: string): Promise<string[]> => {
  const child = spawn("sh", [], { stdio: ["pipe", "pipe", "ignore"] })
  let stdout = ""
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
  const exited = new Promise((resolve) => child.on("exit", resolve))
  child.stdin.end(script)
  await exited
  return stdout.trim().split("\n")
}

describe("Debian versions side by side with dpkg", () => {
  it("orders every pair dpkg accepts as dpkg --compare-versions does, epochs and odd shapes included", async () => {
    const part = fc.stringMatching(/^[0-9a-z][0-9a-zA-Z.+~]{0,6}$/)
    // Epochs small and at the edge of an int; upstreams that start with a letter (dpkg only warns
    // when comparing), that hold ':' or '-'; revisions or none.
    const epoch = fc.option(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom(2147483647, 2147483648)), { nil: undefined })
    const upstream = fc.oneof(part, fc.tuple(part, fc.constantFrom(":", "-"), part).map((t) => t.join("")))
    const version = fc.tuple(epoch, upstream, fc.option(fc.stringMatching(/^[0-9a-zA-Z.+~]{1,5}$/), { nil: undefined }))
      .map(([e, u, rev]) => `${e === undefined ? "" : `${e}:`}${u}${rev === undefined ? "" : `-${rev}`}`)
    const pairs = fc.sample(fc.tuple(version, version), { numRuns: 6000, seed: 20261125 })
    // One shell runs all the comparisons: a process per pair from node would take minutes.
    // x: dpkg refused a version (exit 2).
    const script = pairs
      .map(([a, b]) => `dpkg --compare-versions '${a}' lt '${b}'; r=$?; if [ $r = 0 ]; then echo -1; elif [ $r = 2 ]; then echo x; elif dpkg --compare-versions '${a}' eq '${b}'; then echo 0; else echo 1; fi`)
      .join("\n")
    const out = await shellLines(script)
    expect(out).toHaveLength(pairs.length)
    const accepted = pairs.filter((_, i) => out[i] !== "x")
    // the sample must hold the shapes that once disagreed
    expect(accepted.filter(([a, b]) => /^[a-z]/.test(a) && /^\d+:[a-z]/.test(b)).length).toBeGreaterThan(0)
    expect(accepted.length).toBeGreaterThan(pairs.length / 2)
    const wrong = pairs.filter(([a, b], i) => out[i] !== "x" && String(Math.sign(compareDebian(a, b))) !== out[i])
    expect(wrong.slice(0, 5)).toEqual([])
    // the resolver's comparison (each version parsed once and kept) too
    const wrongKept = pairs.filter(([a, b], i) => out[i] !== "x" && String(Math.sign(compareVersions("deb", a, b))) !== out[i])
    expect(wrongKept.slice(0, 5)).toEqual([])
  }, 300_000)

  it("refuses a version for dpkg's reason, in dpkg's words", async () => {
    // (not '-1' or '': dpkg reads those as an option and as "no version")
    const versions = ["1.0-", "a1", "1:a1", "2147483648:1", "2147483647:1", ":1", "x:1", "1x:1", "1:", "0:-1", "1.0_1", "1-1_0", "1 0", "1:2:3", "1.0-1-2", "0:1", "+1:1"]
    const out = await shellLines(versions.map((v) => `dpkg --compare-versions '${v}' eq '${v}' 2>&1 | sed -n 's/.*has bad syntax: //p;s/.*version string is empty.*/version string is empty/p' | head -1; echo .`).join("\n"))
    const reasons = out.join("\n").split(".\n").map((s) => s.replace(/\n?\.?$/, ""))
    expect(versions.map((v) => debianVersionProblem(v) ?? "")).toEqual(reasons.slice(0, versions.length))
  })
})

/**
 * The native order as it was written before versions were parsed once:
 * fields split at '-', each compared by its dot-separated parts, runs of
 * digits numerically. The oracle for the parsed form.
 */
const nativeOracle = (a: string, b: string): number => {
  const digits = (x: string, y: string) => {
    const p = x.replace(/^0+/, "")
    const q = y.replace(/^0+/, "")
    return p.length !== q.length ? p.length - q.length : p < q ? -1 : p > q ? 1 : 0
  }
  const natural = (x: string, y: string) => {
    const rx = x.match(/\d+|\D+/g) ?? []
    const ry = y.match(/\d+|\D+/g) ?? []
    for (let i = 0; i < Math.min(rx.length, ry.length); i++) {
      const dx = /^\d/.test(rx[i]!)
      const dy = /^\d/.test(ry[i]!)
      const c = dx && dy ? digits(rx[i]!, ry[i]!) : dx !== dy ? (dx ? 1 : -1) : rx[i]! < ry[i]! ? -1 : rx[i]! > ry[i]! ? 1 : 0
      if (c !== 0) return c
    }
    return rx.length - ry.length
  }
  const dotted = (x: string, y: string) => {
    if (x === y) return 0
    const fx = x === "" ? [] : x.split(".")
    const fy = y === "" ? [] : y.split(".")
    for (let i = 0; i < Math.min(fx.length, fy.length); i++) {
      const c = natural(fx[i]!, fy[i]!)
      if (c !== 0) return c
    }
    return fx.length - fy.length
  }
  const pa = a.split("-")
  const pb = b.split("-")
  for (let i = 0; i < 3; i++) {
    const c = dotted(pa[i] ?? "", pb[i] ?? "")
    if (c !== 0) return c
  }
  return 0
}

describe("versions parsed once", () => {
  // Versions from a small alphabet, so that pairs share prefixes and differ late; a second of a pair is often a small change of the first.
  const token = fc.constantFrom("0", "1", "2", "9", "10", "007", "a", "b", "rc", "Z", ".", ".", "-", "-", "~", "+", "^", "_", ":", "1:", "ü")
  const version = fc.array(token, { minLength: 1, maxLength: 7 }).map((t) => t.join(""))
  const pair = version.chain((a) =>
    fc.tuple(fc.constant(a), fc.oneof(version, fc.constant(a), token.map((t) => a + t), fc.nat(a.length).map((i) => a.slice(0, i) + a.slice(i + 1)))),
  )
  const uncached: Record<VersionScheme, (a: string, b: string) => number> = { native: compareNative, deb: compareDebian, rpm: compareRpm, alpm: compareAlpm }
  const schemes = Object.keys(uncached) as VersionScheme[]

  it("order every pair as the scheme's comparison of the unparsed text does, whichever scheme saw the text first", () => {
    fc.assert(
      fc.property(fc.array(pair, { minLength: 1, maxLength: 20 }), fc.shuffledSubarray(schemes, { minLength: 4 }), (pairs, order) => {
        // The same text in every scheme, in a random order of schemes: parsed forms are kept per scheme.
        for (const scheme of order)
          for (const [a, b] of pairs) {
            expect(Math.sign(compareVersions(scheme, a, b))).toBe(Math.sign(uncached[scheme](a, b)))
            expect(Math.sign(compareVersions(scheme, b, a))).toBe(Math.sign(uncached[scheme](b, a)))
          }
      }),
      { numRuns: 400, seed: 20261126 },
    )
  })

  it("order native versions as the unparsed algorithm did", () => {
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect(Math.sign(compareNative(a, b))).toBe(Math.sign(nativeOracle(a, b)))
        expect(Math.sign(compareVersions("native", a, b))).toBe(Math.sign(nativeOracle(a, b)))
      }),
      { numRuns: 5000, seed: 20261126 },
    )
  })
})

describe("version specs", () => {
  it("match a whole version or a prefix ending at a field boundary", () => {
    expect(matchesVersionSpec("1.24-1-1", "1.24")).toBe(true)
    expect(matchesVersionSpec("1.24-1-1", "1.24-1-1")).toBe(true)
    expect(matchesVersionSpec("1.24-1-1", "1.2")).toBe(false)
    expect(matchesVersionSpec("1.6-2.1+deb12u2", "1.6")).toBe(true)
    expect(matchesVersionSpec("1.6-2.1", "")).toBe(true)
  })
})
