import * as Data from "effect/Data"

// Conary's flavor language: use flags with senses and instruction sets after
// `is:`, e.g. `ssl,~!gtk,~readline is: x86(i486,~sse2) x86_64`.

export type Sense = "required" | "preferred" | "prefernot" | "disallowed"

export interface Flavor {
  /** use flags, sorted by name */
  readonly flags: ReadonlyMap<string, Sense>
  /** instruction sets, each with its own sub-flags */
  readonly arches: ReadonlyMap<string, ReadonlyMap<string, Sense>>
}

export class FlavorError extends Data.TaggedError("FlavorError")<{
  readonly input: string
  readonly position: number
  readonly reason: string
}> {
  override get message() {
    return `bad flavor '${this.input}': ${this.reason} at column ${this.position + 1}`
  }
}

const PREFIX: Record<Sense, string> = { required: "", preferred: "~", prefernot: "~!", disallowed: "!" }

const NAME_START = /[A-Za-z0-9_]/
const NAME_CHAR = /[A-Za-z0-9_.+-]/

export const parseFlavor = (input: string): Flavor => {
  let i = 0
  const fail = (reason: string, at = i): never => {
    throw new FlavorError({ input, position: at, reason })
  }
  const skipSpace = () => {
    while (i < input.length && input[i] === " ") i++
  }
  const describe = () => (i < input.length ? `unexpected '${input[i]}'` : "unexpected end")
  const name = (what: string): string => {
    const start = i
    if (i >= input.length || !NAME_START.test(input[i]!)) fail(`${describe()}, expected ${what}`)
    while (i < input.length && NAME_CHAR.test(input[i]!)) i++
    if (input[i - 1] === ".") fail("a name cannot end with '.'", i - 1)
    return input.slice(start, i)
  }
  const flag = (into: Map<string, Sense>) => {
    const at = i
    let sense: Sense = "required"
    if (input.startsWith("~!", i)) {
      sense = "prefernot"
      i += 2
    } else if (input[i] === "~") {
      sense = "preferred"
      i += 1
    } else if (input[i] === "!") {
      sense = "disallowed"
      i += 1
    }
    const n = name("a flag name")
    if (into.has(n)) fail(`flag '${n}' given twice`, at)
    into.set(n, sense)
  }
  const flagList = (into: Map<string, Sense>, close?: string) => {
    for (;;) {
      skipSpace()
      flag(into)
      skipSpace()
      if (input[i] === ",") {
        i++
        continue
      }
      if (close !== undefined && input[i] !== close) fail(`${describe()}, expected ',' or '${close}'`)
      return
    }
  }

  const flags = new Map<string, Sense>()
  const arches = new Map<string, Map<string, Sense>>()
  skipSpace()
  // Conary writes use flags after `use:` too: `use: ssl,~gtk is: x86_64`.
  if (input.startsWith("use:", i)) {
    i += 4
    skipSpace()
  }
  if (i < input.length && !input.startsWith("is:", i)) {
    flagList(flags)
    skipSpace()
  }
  if (input.startsWith("is:", i)) {
    i += 3
    skipSpace()
    if (i >= input.length) fail("expected an instruction set after 'is:'")
    while (i < input.length) {
      const at = i
      const arch = name("an instruction set")
      if (arches.has(arch)) fail(`instruction set '${arch}' given twice`, at)
      const sub = new Map<string, Sense>()
      if (input[i] === "(") {
        i++
        flagList(sub, ")")
        i++
      }
      arches.set(arch, sub)
      if (i < input.length && input[i] !== " ") fail(`${describe()}, expected a space`)
      skipSpace()
    }
  }
  if (i < input.length) fail(describe())
  return normalize(flags, arches)
}

const sortedMap = <V>(m: ReadonlyMap<string, V>): Map<string, V> =>
  new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))

const normalize = (flags: ReadonlyMap<string, Sense>, arches: ReadonlyMap<string, ReadonlyMap<string, Sense>>): Flavor => ({
  flags: sortedMap(flags),
  arches: sortedMap(new Map([...arches].map(([a, sub]) => [a, sortedMap(sub)]))),
})

const printFlags = (flags: ReadonlyMap<string, Sense>) =>
  [...flags].map(([name, sense]) => PREFIX[sense] + name).join(",")

export const formatFlavor = (f: Flavor): string => {
  const parts: string[] = []
  if (f.flags.size > 0) parts.push(printFlags(f.flags))
  if (f.arches.size > 0) {
    const arches = [...f.arches].map(([a, sub]) => (sub.size > 0 ? `${a}(${printFlags(sub)})` : a))
    parts.push(`is: ${arches.join(" ")}`)
  }
  return parts.join(" ")
}

/** Canonical text of a flavor string; throws FlavorError. */
export const normalizeFlavor = (text: string): string => formatFlavor(parseFlavor(text))

// ---- matching -------------------------------------------------------------

type SystemSense = Sense | "unspecified"

// Conary's sense table (deps.py): rows are the system's sense, columns the
// trove's; undefined marks an incompatible pair. It is not symmetric.
const SCORE: Record<SystemSense, Record<Sense, number | undefined>> = {
  unspecified: { required: undefined, disallowed: 0, preferred: -1, prefernot: 1 },
  required: { required: 2, disallowed: undefined, preferred: 1, prefernot: undefined },
  disallowed: { required: undefined, disallowed: 2, preferred: undefined, prefernot: 1 },
  preferred: { required: 1, disallowed: undefined, preferred: 2, prefernot: -1 },
  prefernot: { required: -2, disallowed: 1, preferred: -1, prefernot: 1 },
}

export type Match =
  | { readonly ok: true; readonly score: number }
  | { readonly ok: false; readonly reason: string }

const scoreFlags = (
  system: ReadonlyMap<string, Sense>,
  trove: ReadonlyMap<string, Sense>,
  where: string,
): Match => {
  let score = 0
  for (const [flag, sense] of trove) {
    const sys = system.get(flag) ?? "unspecified"
    const s = SCORE[sys][sense]
    if (s === undefined) {
      const has = sys === "unspecified" ? "does not set it" : `has ${PREFIX[sys]}${flag}`
      return { ok: false, reason: `needs ${PREFIX[sense]}${flag}${where}, system ${has}` }
    }
    score += s
  }
  return { ok: true, score }
}

/** Whether the system flavor satisfies a trove flavor, and with what score. */
export const matchFlavor = (system: Flavor, trove: Flavor): Match => {
  const flags = scoreFlags(system.flags, trove.flags, "")
  if (!flags.ok) return flags
  let score = flags.score
  for (const [arch, sub] of trove.arches) {
    const sysSub = system.arches.get(arch)
    if (sysSub === undefined) return { ok: false, reason: `built for ${arch}, system is not` }
    const m = scoreFlags(sysSub, sub, ` on ${arch}`)
    if (!m.ok) return m
    score += 1 + m.score
  }
  return { ok: true, score }
}

/**
 * Applies a desired row's flavor on top of the system's: its flags override
 * the system's senses; its instruction sets replace the system's, each keeping
 * the system's sub-flags under the row's (Conary: `is: x86(i686,!i586)`
 * overridden by `is: x86(i586)` is `is: x86(i586,i686)`).
 */
export const overrideFlavor = (system: Flavor, row: Flavor): Flavor => ({
  flags: sortedMap(new Map([...system.flags, ...row.flags])),
  arches:
    row.arches.size > 0
      ? new Map([...row.arches].map(([arch, sub]) => [arch, sortedMap(new Map([...(system.arches.get(arch) ?? []), ...sub]))]))
      : system.arches,
})

/** What a build records: a flag built without is `~!flag` in Conary, never `!flag`. */
export const builtFlavor = (f: Flavor): Flavor => {
  const built = (flags: ReadonlyMap<string, Sense>) =>
    new Map([...flags].map(([name, sense]) => [name, sense === "disallowed" ? ("prefernot" as const) : sense]))
  return { flags: built(f.flags), arches: new Map([...f.arches].map(([a, sub]) => [a, built(sub)])) }
}

/**
 * Whether a trove is one the desired row asks for: every flag the row requires
 * the trove was built with (`f` or `~f`); every flag it forbids the trove was
 * not; every instruction set it names the trove is for (or has none).
 */
export const narrows = (row: Flavor, trove: Flavor): Match => {
  for (const [flag, sense] of row.flags) {
    const t = trove.flags.get(flag)
    if (sense === "required" && t !== "required" && t !== "preferred")
      return { ok: false, reason: `asked for ${flag}, trove is not built with it` }
    if (sense === "disallowed" && (t === "required" || t === "preferred"))
      return { ok: false, reason: `asked for !${flag}, trove is built with it` }
  }
  if (trove.arches.size > 0) {
    for (const arch of row.arches.keys()) {
      if (!trove.arches.has(arch)) return { ok: false, reason: `asked for is: ${arch}, trove is not` }
    }
  }
  return { ok: true, score: 0 }
}

// Wider instruction sets first: a system that runs both prefers x86_64 to x86.
const ARCH_ORDER = ["x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "riscv64", "x86", "i686", "i586", "i486", "i386", "armhf", "armel"]

const archOrder = (arch: string) => {
  const i = ARCH_ORDER.indexOf(arch)
  return i === -1 ? ARCH_ORDER.length : i
}

/** Each system flavor's instruction sets, preferred first: sorted once, not for every candidate ranked. */
const preferences = new WeakMap<Flavor, string[]>()

/**
 * Where a trove stands in the system's instruction-set preference; lower is
 * preferred. A trove for no instruction set ranks with the best.
 */
export const archRank = (system: Flavor, trove: Flavor): number => {
  if (trove.arches.size === 0) return 0
  let preference = preferences.get(system)
  if (preference === undefined) preferences.set(system, (preference = [...system.arches.keys()].sort((a, b) => archOrder(a) - archOrder(b))))
  let rank = 0
  for (const arch of trove.arches.keys()) {
    const i = preference.indexOf(arch)
    rank = Math.max(rank, i === -1 ? preference.length : i)
  }
  return rank
}

/**
 * The instruction sets this machine runs, as Conary names them: an x86_64
 * machine runs x86 too (x86_64 preferred, see ARCH_ORDER), so 32-bit-only
 * troves install.
 */
export const machineArches = (nodeArch: string = process.arch): string[] =>
  ({ x64: ["x86", "x86_64"], ia32: ["x86"], arm64: ["aarch64"], arm: ["armhf"], ppc64: ["ppc64le"], s390x: ["s390x"], riscv64: ["riscv64"] })[
    nodeArch
  ] ?? [nodeArch]

// Instruction sets one system can run together; any other pair cannot coexist.
const FAMILIES = [
  ["x86", "x86_64", "i386", "i486", "i586", "i686"],
  ["aarch64", "armhf", "armel"],
  ["ppc", "ppc64"],
  ["ppc64le"],
  ["s390", "s390x"],
  ["riscv64"],
]

/** The instruction sets of a system flavor that cannot coexist with the first one, if any. */
export const clashingArches = (f: Flavor): [string, string] | undefined => {
  const arches = [...f.arches.keys()]
  const family = (a: string) => FAMILIES.find((fam) => fam.includes(a)) ?? [a]
  for (const a of arches) for (const b of arches) if (a < b && !family(a).includes(b)) return [a, b]
  return undefined
}

/** Debian architecture names as instruction sets; `all` means none. */
const DEBIAN_ARCHES: Readonly<Record<string, string>> = {
  amd64: "x86_64",
  i386: "x86",
  arm64: "aarch64",
  armhf: "armhf",
  armel: "armel",
  ppc64el: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
}

export const debianArchFlavor = (arch: string): string => {
  if (arch === "all" || arch === "") return ""
  return `is: ${DEBIAN_ARCHES[arch] ?? arch}`
}

/** The instruction set of a flavor written by debianArchFlavor, as Debian names it: `is: x86_64` -> amd64, none -> all. */
export const debianArchOf = (flavor: string): string => {
  const isa = flavor.startsWith("is: ") ? flavor.slice(4) : ""
  if (isa === "") return "all"
  return Object.entries(DEBIAN_ARCHES).find(([, v]) => v === isa)?.[0] ?? isa
}

/** Arch's architecture names (CARCH) as instruction sets; `any` means none. */
export const alpmArchFlavor = (arch: string): string => {
  if (arch === "any" || arch === "") return ""
  const map: Record<string, string> = { i486: "x86", i586: "x86", i686: "x86", pentium4: "x86", armv7h: "armhf", armv6h: "armhf" }
  return `is: ${map[arch] ?? arch}`
}

/** rpm architecture names as instruction sets; `noarch` means none, the 32-bit x86 family is `x86`. */
export const rpmArchFlavor = (arch: string): string => {
  if (arch === "noarch") return ""
  if (/^(i[3-6]86|athlon|geode|pentium[34])$/.test(arch)) return "is: x86"
  const map: Record<string, string> = { armv7hl: "armhf", armv7hnl: "armhf" }
  return `is: ${map[arch] ?? arch}`
}
