import { describe, expect, it } from "vitest"
import { compareDebian, compareNative, matchesVersionSpec } from "../src/desired/version.js"

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

describe("version specs", () => {
  it("match a whole version or a prefix ending at a field boundary", () => {
    expect(matchesVersionSpec("1.24-1-1", "1.24")).toBe(true)
    expect(matchesVersionSpec("1.24-1-1", "1.24-1-1")).toBe(true)
    expect(matchesVersionSpec("1.24-1-1", "1.2")).toBe(false)
    expect(matchesVersionSpec("1.6-2.1+deb12u2", "1.6")).toBe(true)
    expect(matchesVersionSpec("1.6-2.1", "")).toBe(true)
  })
})
