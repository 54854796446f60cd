import * as Either from "effect/Either"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  type Flavor,
  type Sense,
  FlavorError,
  builtFlavor,
  clashingArches,
  formatFlavor,
  machineArches,
  matchFlavor,
  overrideFlavor,
  parseFlavor,
} from "../src/desired/flavor.js"
import { plan } from "../src/reconcile/plan.js"
import type { TroveMeta } from "../src/model/trove.js"

/** A trove named pkg with the given flavor (normalized) and version. */
const meta = (id: number, flavor: string, version: string): TroveMeta => ({
  id,
  name: "pkg",
  version,
  scheme: "native",
  flavor: formatFlavor(parseFlavor(flavor)),
  components: ["runtime"],
  requires: [],
  provides: [],
  conflicts: [],
  breaks: [],
  optional: [],
  replaces: [],
  fileCount: 0,
  totalSize: 0,
  hasScripts: false,
})

const PREFIX: Record<Sense, string> = { required: "", preferred: "~", prefernot: "~!", disallowed: "!" }

describe("flavor language", () => {
  it("parses, normalizes and prints", () => {
    expect(formatFlavor(parseFlavor("~readline, ssl,~!gtk  is: x86_64"))).toBe("~!gtk,~readline,ssl is: x86_64")
    expect(formatFlavor(parseFlavor("is: x86_64 x86(~sse2,i586,i486)"))).toBe("is: x86(i486,i586,~sse2) x86_64")
    expect(formatFlavor(parseFlavor("kernel.smp,!python.tk"))).toBe("kernel.smp,!python.tk")
    expect(formatFlavor(parseFlavor(""))).toBe("")
    expect(parseFlavor("~!ssl").flags.get("ssl")).toBe("prefernot")
  })

  it("points at the offending character", () => {
    const at = (text: string) => {
      try {
        parseFlavor(text)
      } catch (e) {
        expect(e).toBeInstanceOf(FlavorError)
        return (e as FlavorError).message
      }
      throw new Error(`parsed: ${text}`)
    }
    expect(at("ssl,,gtk")).toBe("bad flavor 'ssl,,gtk': unexpected ',', expected a flag name at column 5")
    expect(at("ssl is:")).toBe("bad flavor 'ssl is:': expected an instruction set after 'is:' at column 8")
    expect(at("is: x86(sse2")).toBe("bad flavor 'is: x86(sse2': unexpected end, expected ',' or ')' at column 13")
    expect(at("ssl,ssl")).toBe("bad flavor 'ssl,ssl': flag 'ssl' given twice at column 5")
    expect(at("ssl$")).toBe("bad flavor 'ssl$': unexpected '$' at column 4")
    expect(at("kernel.")).toBe("bad flavor 'kernel.': a name cannot end with '.' at column 7")
  })

  const senseArb = fc.constantFrom<Sense>("required", "preferred", "prefernot", "disallowed")
  const nameArb = fc.stringMatching(/^[a-z][a-z0-9_]{0,5}(\.[a-z][a-z0-9]{0,3})?$/)
  const flagsArb = fc.dictionary(nameArb, senseArb, { maxKeys: 4 })
  const flavorArb = fc.record({
    flags: flagsArb,
    arches: fc.dictionary(fc.constantFrom("x86", "x86_64", "aarch64", "ppc64le"), flagsArb, { maxKeys: 2 }),
  })
  const text = (f: { flags: Record<string, Sense>; arches: Record<string, Record<string, Sense>> }) => {
    const flags = (m: Record<string, Sense>) => Object.entries(m).map(([n, s]) => PREFIX[s] + n).join(",")
    const arches = Object.entries(f.arches).map(([a, sub]) => (Object.keys(sub).length ? `${a}(${flags(sub)})` : a))
    return [flags(f.flags), arches.length ? `is: ${arches.join(" ")}` : ""].filter((s) => s).join(" ")
  }

  it("round-trips: printing a parsed flavor and parsing it again gives the same flavor", () => {
    fc.assert(
      fc.property(flavorArb, (f) => {
        const parsed = parseFlavor(text(f))
        const printed = formatFlavor(parsed)
        expect(parseFlavor(printed)).toEqual(parsed)
        expect(formatFlavor(parseFlavor(printed))).toBe(printed)
        expect(parsed.flags.size).toBe(Object.keys(f.flags).length)
      }),
      { numRuns: 500 },
    )
  })

  // ---- matching -------------------------------------------------------------

  // The original Conary's sense table, written out independently of the code:
  // [system, trove] -> score, or null when incompatible. "absent" trove flags
  // are ignored whatever the system says.
  const system = ["absent", "required", "disallowed", "preferred", "prefernot"] as const
  const trove = ["required", "disallowed", "preferred", "prefernot", "absent"] as const
  const expected: Record<(typeof system)[number], Array<number | null>> = {
    absent: [null, 0, -1, 1, 0],
    required: [2, null, 1, null, 0],
    disallowed: [null, 2, null, 1, 0],
    preferred: [1, null, 2, -1, 0],
    prefernot: [-2, 1, -1, 1, 0],
  }
  const flag = (sense: string, name: string) => (sense === "absent" ? "" : PREFIX[sense as Sense] + name)

  for (const s of system) {
    trove.forEach((t, i) => {
      it(`system ${s} x trove ${t}: ${expected[s][i] ?? "incompatible"}`, () => {
        const sys = parseFlavor([flag(s, "ssl"), "other"].filter((x) => x).join(",") + " is: x86_64")
        const tr = parseFlavor(flag(t, "ssl"))
        const m = matchFlavor(sys, tr)
        if (expected[s][i] === null) expect(m.ok).toBe(false)
        else expect(m).toEqual({ ok: true, score: expected[s][i] })
        // The same rules hold for an instruction set's own flags, plus 1 for the arch.
        const sysIs = parseFlavor(s === "absent" ? "is: x86" : `is: x86(${flag(s, "sse2")})`)
        const trIs = parseFlavor(t === "absent" ? "is: x86" : `is: x86(${flag(t, "sse2")})`)
        const mi = matchFlavor(sysIs, trIs)
        if (expected[s][i] === null) expect(mi.ok).toBe(false)
        else expect(mi).toEqual({ ok: true, score: 1 + expected[s][i]! })
      })
    })
  }

  it("requires every instruction set the trove is built for", () => {
    const sys = parseFlavor("is: x86_64 x86")
    expect(matchFlavor(sys, parseFlavor("is: x86_64"))).toEqual({ ok: true, score: 1 })
    expect(matchFlavor(sys, parseFlavor("is: x86 x86_64"))).toEqual({ ok: true, score: 2 })
    expect(matchFlavor(sys, parseFlavor("is: aarch64"))).toEqual({ ok: false, reason: "built for aarch64, system is not" })
    expect(matchFlavor(sys, parseFlavor(""))).toEqual({ ok: true, score: 0 })
  })

  it("never chooses a candidate the system flavor does not satisfy", () => {
    fc.assert(
      fc.property(
        flavorArb,
        fc.array(fc.tuple(flavorArb, fc.integer({ min: 1, max: 5 })), { minLength: 1, maxLength: 6 }),
        (sys, cands) => {
          const system: Flavor = parseFlavor(text(sys))
          const available = cands.map(([f, v], i) => meta(i + 1, text(f), `${v}.0-1-1`))
          const result = plan({
            desired: [{ name: "pkg", component: "", version: "", flavor: "" }],
            systemFlavor: system,
            provides: new Set(),
            available,
            installed: [],
            filesOf: () => [],
            ownersOf: () => [],
          })
          const satisfying = available.filter((t) => matchFlavor(system, parseFlavor(t.flavor)).ok)
          if (satisfying.length === 0) {
            expect(Either.isLeft(result)).toBe(true)
            return
          }
          const chosen = available.find((t) => t.id === Either.getOrThrow(result).target[0]!.troveId)!
          expect(matchFlavor(system, parseFlavor(chosen.flavor)).ok).toBe(true)
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe("flavors as Conary users write and expect them", () => {

  it("accepts the use: prefix", () => {
    expect(formatFlavor(parseFlavor("use: gtk,ssl is: x86(sse,mmx)"))).toBe("gtk,ssl is: x86(mmx,sse)")
    expect(formatFlavor(parseFlavor("use:~!ssl"))).toBe("~!ssl")
    expect(formatFlavor(parseFlavor("use: ssl"))).toBe("ssl")
  })

  it("merges instruction-set sub-flags when a row's flavor overrides the system's", () => {
    const system = parseFlavor("ssl is: x86(i686,!i586) x86_64")
    expect(formatFlavor(overrideFlavor(system, parseFlavor("is: x86(i586)")))).toBe("ssl is: x86(i586,i686)")
    expect(formatFlavor(overrideFlavor(system, parseFlavor("!ssl")))).toBe("!ssl is: x86(!i586,i686) x86_64")
  })

  it("records a flag built without as ~!flag", () => {
    expect(formatFlavor(builtFlavor(parseFlavor("!ssl,gtk is: x86(!sse2)")))).toBe("gtk,~!ssl is: x86(~!sse2)")
  })

  it("runs x86 beside x86_64, and refuses instruction sets that cannot coexist", () => {
    expect(machineArches("x64")).toEqual(["x86", "x86_64"])
    expect(machineArches("arm64")).toEqual(["aarch64"])
    expect(clashingArches(parseFlavor("is: x86 x86_64"))).toBeUndefined()
    expect(clashingArches(parseFlavor("is: x86 ppc"))).toEqual(["ppc", "x86"])
    expect(clashingArches(parseFlavor("is: aarch64 x86_64"))).toEqual(["aarch64", "x86_64"])
  })

  it("keeps the installed flavor on update, unless the row names a flavor or asked to reflavor", () => {
    const systemFlavor = parseFlavor("~readline,~ssl is: x86_64")
    const available = [
      meta(1, "readline,~!ssl is: x86_64", "1.0-1-1"),
      meta(2, "~readline,~ssl is: x86_64", "1.0-1-1"),
      meta(3, "readline,~!ssl is: x86_64", "1.1-1-1"),
      meta(4, "~readline,~ssl is: x86_64", "1.1-1-1"),
    ]
    const targetOf = (options: { row?: string; reflavor?: boolean; installed?: TroveMeta } = {}) => {
      const result = plan({
        desired: [{ name: "pkg", component: "", version: "", flavor: options.row ?? "" }],
        systemFlavor,
        provides: new Set(),
        available,
        installed: options.installed ? [{ trove: options.installed, components: ["runtime"], reason: "explicit" }] : [],
        reflavor: options.reflavor,
        filesOf: () => [],
        ownersOf: () => [],
      })
      if (Either.isLeft(result)) throw result.left
      return result.right.target.map((t) => `${t.version} [${t.flavor}]`)
    }
    // Afresh, ~readline,~ssl scores 2 + 2 + 1 against readline,~!ssl's 1 - 1 + 1.
    expect(targetOf()).toEqual(["1.1-1-1 [~readline,~ssl is: x86_64]"])
    expect(targetOf({ installed: available[0] })).toEqual(["1.1-1-1 [readline,~!ssl is: x86_64]"])
    expect(targetOf({ installed: available[0], reflavor: true })).toEqual(["1.1-1-1 [~readline,~ssl is: x86_64]"])
    expect(targetOf({ installed: available[0], row: "ssl" })).toEqual(["1.1-1-1 [~readline,~ssl is: x86_64]"])
    // A dependency keeps its flavor too.
    const app = { ...meta(5, "", "1.0-1-1"), name: "app", requires: ["pkg"] }
    const dependency = plan({
      desired: [{ name: "app", component: "", version: "", flavor: "" }],
      systemFlavor,
      provides: new Set(),
      available: [...available, app],
      installed: [{ trove: available[0]!, components: ["runtime"], reason: "dependency" }],
      filesOf: () => [],
      ownersOf: () => [],
    })
    expect(Either.isRight(dependency) && dependency.right.target.map((t) => `${t.name} ${t.version} [${t.flavor}]`)).toEqual([
      "app 1.0-1-1 []",
      "pkg 1.1-1-1 [readline,~!ssl is: x86_64]",
    ])
    // A flavor with no version as new as the installed one is left for the others.
    expect(targetOf({ installed: meta(9, "readline,~!ssl is: x86_64", "2.0-1-1") })).toEqual(["1.1-1-1 [~readline,~ssl is: x86_64]"])
  })
})
