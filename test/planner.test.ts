import * as Either from "effect/Either"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseFlavor } from "../src/desired/flavor.js"
import type { DesiredRow } from "../src/desired/rows.js"
import type { RootLayout } from "../src/reconcile/layout.js"
import type { Plan } from "../src/model/plan-schema.js"
import type { InstalledTrove } from "../src/model/installed.js"
import { type PlanInput, plan } from "../src/reconcile/plan.js"
import type { FileOwner } from "../src/reconcile/resolve.js"
import { type TroveFile, type TroveMeta, componentOf, filesForComponents } from "../src/model/trove.js"

// The planner is pure, so it is tested on values: a universe of troves, a
// desired state, an installed state, and a simulated disk.

interface Universe {
  readonly troves: TroveMeta[]
  readonly files: Map<number, TroveFile[]>
}

const dir = (path: string, component = componentOf(path)): TroveFile => ({
  path,
  kind: "dir",
  mode: 0o755,
  owner: "root",
  group: "root",
  sha256: null,
  size: 0,
  target: null,
  config: false,
  component,
})

const regular = (path: string, content: string, mode = 0o644): TroveFile => ({
  ...dir(path),
  kind: "file",
  mode,
  sha256: content.padEnd(64, "0").slice(0, 64),
  size: content.length,
})

const makeUniverse = (
  specs: ReadonlyArray<{
    name: string
    version: string
    files: TroveFile[]
    requires?: string[]
    provides?: string[]
    conflicts?: string[]
    replaces?: string[]
    flavor?: string
  }>,
): Universe => {
  const troves: TroveMeta[] = []
  const files = new Map<number, TroveFile[]>()
  specs.forEach((s, i) => {
    const id = i + 1
    const all = [dir("/usr", "runtime"), dir("/usr/bin", "runtime"), dir("/usr/share", "runtime"), dir("/usr/share/doc", "doc"), ...s.files]
    files.set(id, all)
    troves.push({
      id,
      name: s.name,
      version: s.version,
      scheme: "native",
      flavor: s.flavor ?? "",
      components: [...new Set(all.map((f) => f.component))].sort(),
      requires: s.requires ?? [],
      provides: s.provides ?? [],
      conflicts: s.conflicts ?? [],
      breaks: [],
      optional: [],
      replaces: s.replaces ?? [],
      fileCount: all.length,
      totalSize: all.reduce((n, f) => n + f.size, 0),
      hasScripts: false,
    })
  })
  return { troves, files }
}

/** Every path of the universe and the troves with an entry there: what load.ts asks the database for `file:` deps. */
const ownersIn = (u: Universe): Map<string, FileOwner[]> => {
  const owners = new Map<string, FileOwner[]>()
  for (const [troveId, files] of u.files)
    for (const f of files) owners.set(f.path, [...(owners.get(f.path) ?? []), { troveId, component: f.component }])
  return owners
}

const inputFor = (u: Universe, desired: DesiredRow[], installed: InstalledTrove[], provides: string[] = []): PlanInput => {
  const filesOf = (id: number) => u.files.get(id) ?? []
  return {
    desired,
    systemFlavor: parseFlavor("is: x86_64"),
    provides: new Set(provides),
    available: u.troves,
    fileOwners: ownersIn(u),
    installed,
    filesOf,
    ownersOf: (path) =>
      installed.flatMap((i) =>
        filesForComponents(filesOf(i.trove.id), i.components)
          .filter((f) => f.path === path)
          .map((file) => ({ troveId: i.trove.id, file })),
      ),
  }
}

const row = (name: string, version = "", component = "", flavor = ""): DesiredRow => ({ name, version, component, flavor })

const mustPlan = (input: PlanInput): Plan => {
  const result = plan(input)
  if (Either.isLeft(result)) throw result.left
  return result.right
}

/** What apply records: the target troves become the installed state. */
const installedAfter = (u: Universe, p: Plan): InstalledTrove[] =>
  p.target.map((t) => ({ trove: u.troves.find((x) => x.id === t.troveId)!, components: t.components, reason: t.reason }))

type Disk = Map<string, { kind: string; sha256: string | null; mode: number; target: string | null }>

const applyToDisk = (disk: Disk, p: Plan): Disk => {
  const next = new Map(disk)
  for (const op of p.files) {
    if (op.op === "remove") next.delete(op.path)
    else next.set(op.path, { kind: op.kind, sha256: op.sha256, mode: op.mode, target: op.target })
  }
  return next
}

const diskOf = (u: Universe, installed: ReadonlyArray<InstalledTrove>): Disk => {
  const disk: Disk = new Map()
  for (const i of installed)
    for (const f of filesForComponents(u.files.get(i.trove.id)!, i.components))
      disk.set(f.path, { kind: f.kind, sha256: f.sha256, mode: f.mode, target: f.target })
  return disk
}

describe("plan", () => {
  const u = makeUniverse([
    { name: "hello", version: "1.0-1-1", files: [regular("/usr/bin/hello", "a1"), regular("/usr/share/doc/hello", "d1")], requires: ["libc6", "libgreet (>= 2)"] },
    { name: "hello", version: "1.1-1-1", files: [regular("/usr/bin/hello", "a2"), regular("/usr/share/doc/hello", "d1")], requires: ["libc6", "libgreet (>= 2)"] },
    { name: "libgreet", version: "1.5-1-1", files: [regular("/usr/bin/greet-old", "g1")] },
    { name: "libgreet", version: "2.0-1-1", files: [regular("/usr/bin/greet", "g2")] },
    { name: "tool", version: "1.0-1-1", files: [regular("/usr/bin/tool", "t1")], provides: ["virtual-tool"] },
  ])

  it("installs the newest version with its dependency closure", () => {
    const p = mustPlan(inputFor(u, [row("hello")], [], ["libc6"]))
    expect(p.troves.map((t) => `${t.op} ${t.name} ${t.to?.version} ${t.reason}`)).toEqual([
      "install hello 1.1-1-1 explicit",
      "install libgreet 2.0-1-1 dependency",
    ])
    expect(p.summary).toMatchObject({ install: 2, update: 0, erase: 0 })
    expect(p.files.filter((f) => f.kind === "file").map((f) => f.path)).toEqual(["/usr/bin/greet", "/usr/bin/hello", "/usr/share/doc/hello"])
  })

  it("updates only the files whose content changed, and erases what is no longer wanted", () => {
    const first = mustPlan(inputFor(u, [row("hello", "1.0")], [], ["libc6"]))
    const installed = installedAfter(u, first)
    const second = mustPlan(inputFor(u, [row("hello")], installed, ["libc6"]))
    expect(second.troves.map((t) => `${t.op} ${t.name}`)).toEqual(["update hello"])
    expect(second.files.map((f) => `${f.op} ${f.path}`)).toEqual(["replace /usr/bin/hello"])
    const third = mustPlan(inputFor(u, [], installedAfter(u, second), ["libc6"]))
    expect(third.troves.map((t) => `${t.op} ${t.name}`)).toEqual(["erase hello", "erase libgreet"])
    expect(applyToDisk(diskOf(u, installedAfter(u, second)), third).size).toBe(0)
  })

  it("never plans a file operation for a ghost file (owned, never on disk)", () => {
    const u = makeUniverse([
      { name: "tool", version: "1.0", files: [regular("/usr/bin/tool", "old"), { ...regular("/usr/share/tool.log", ""), ghost: true }] },
      { name: "tool", version: "2.0", files: [regular("/usr/bin/tool", "new"), { ...regular("/usr/share/tool.log", "other"), ghost: true }] },
    ])
    const first = mustPlan(inputFor(u, [row("tool", "1.0")], []))
    expect(first.files.map((f) => f.path)).toContain("/usr/bin/tool")
    expect(first.files.map((f) => f.path)).not.toContain("/usr/share/tool.log")
    const update = mustPlan(inputFor(u, [row("tool")], installedAfter(u, first)))
    expect(update.files.map((f) => f.path)).toEqual(["/usr/bin/tool"])
    const erase = mustPlan(inputFor(u, [], installedAfter(u, update)))
    expect(erase.files.map((f) => f.path)).not.toContain("/usr/share/tool.log")
  })

  it("satisfies a dependency through a provide, and names what cannot be resolved", () => {
    const v = makeUniverse([{ name: "app", version: "1-1-1", files: [], requires: ["virtual-tool | nothing"] }, ...[
      { name: "tool", version: "1-1-1", files: [], provides: ["virtual-tool"] },
    ]])
    expect(mustPlan(inputFor(v, [row("app")], [])).target.map((t) => t.name)).toEqual(["app", "tool"])
    const missing = plan(inputFor(u, [row("hello"), row("ghost")], []))
    expect(Either.isLeft(missing) && missing.left.message).toBe("unresolvable: ghost: no source provides it")
    const dep = plan(inputFor(u, [row("hello")], []))
    expect(Either.isLeft(dep) && dep.left.message).toBe("unresolvable: hello=1.1-1-1 requires libc6: not available")
    const version = plan(inputFor(u, [row("tool", "9")], []))
    expect(Either.isLeft(version) && version.left.message).toBe("unresolvable: tool=9: no such version (available: 1.0-1-1)")
  })

  it("keeps an installed provider of a virtual dependency rather than switching to a newer one of another name", () => {
    const v = makeUniverse([
      { name: "app", version: "1-1-1", files: [], requires: ["virtual-tool"] },
      { name: "atool", version: "2-1-1", files: [], provides: ["virtual-tool"] },
      { name: "ztool", version: "1-1-1", files: [], provides: ["virtual-tool"] },
    ])
    // Nothing installed: the newest provider.
    expect(mustPlan(inputFor(v, [row("app")], [])).target.map((t) => t.name)).toEqual(["app", "atool"])
    // ztool was asked for once; dropping that row keeps it as app's provider.
    const first = mustPlan(inputFor(v, [row("app"), row("ztool")], []))
    expect(first.target.map((t) => t.name)).toEqual(["app", "ztool"])
    expect(mustPlan(inputFor(v, [row("app")], installedAfter(v, first))).target.map((t) => t.name)).toEqual(["app", "ztool"])
  })

  it("reports a conflict between two troves writing one path differently", () => {
    const v = makeUniverse([
      { name: "a", version: "1-1-1", files: [regular("/usr/bin/x", "1")] },
      { name: "b", version: "1-1-1", files: [regular("/usr/bin/x", "2")] },
      { name: "c", version: "1-1-1", files: [regular("/usr/bin/x", "1")] },
    ])
    const result = plan(inputFor(v, [row("a"), row("b")], []))
    expect(Either.isLeft(result) && result.left.message).toBe("file conflict: /usr/bin/x differs between a=1-1-1 and b=1-1-1")
    // The same content and metadata may be shared.
    expect(Either.isRight(plan(inputFor(v, [row("a"), row("c")], [])))).toBe(true)
  })

  it("installs a named component with the trove's directories above it", () => {
    const p = mustPlan(inputFor(u, [row("tool", "", "doc")], []))
    expect(p.target[0]!.components).toEqual(["doc"])
    expect(p.files.map((f) => f.path)).toEqual(["/usr", "/usr/share", "/usr/share/doc"])
  })

  it("lets a trove that replaces and conflicts with another take its place, stably; replaces alone or a version pin does not", () => {
    const specs = [
      { name: "old", version: "1.0-1-1", files: [regular("/usr/bin/tool", "old")] },
      { name: "new", version: "2.0-1-1", files: [regular("/usr/bin/tool", "new")], replaces: ["old (<< 2)"], conflicts: ["old"] },
      { name: "side", version: "1.0-1-1", files: [regular("/usr/bin/side", "s")], replaces: ["old"] },
    ]
    const v = makeUniverse(specs)
    const before = installedAfter(v, mustPlan(inputFor(v, [row("old", "1.0")], [])))
    const p = mustPlan(inputFor(v, [row("old")], before))
    expect(before.map((i) => i.trove.name)).toEqual(["old"])
    expect(p.troves.map((t) => `${t.op} ${t.name}`).sort()).toEqual(["erase old", "install new"])
    // Planned again on what that left, nothing changes.
    expect(mustPlan(inputFor(v, [row("old")], installedAfter(v, p))).troves).toEqual([])
    // The relation's version is checked against the trove it would replace.
    const newer = makeUniverse([...specs, { name: "old", version: "3.0-1-1", files: [regular("/usr/bin/tool", "old3")] }])
    expect(mustPlan(inputFor(newer, [row("old")], [])).target.map((t) => `${t.name} ${t.version}`)).toEqual(["old 3.0-1-1"])
  })
})

describe("dependency classes", () => {
  const u = makeUniverse([
    { name: "app", version: "1-1-1", files: [regular("/usr/bin/app", "app")], requires: ["file: /usr/bin/sh"] },
    { name: "dash", version: "1-1-1", files: [regular("/usr/bin/sh", "dash"), regular("/usr/share/doc/dash", "d")] },
    { name: "zapp", version: "1-1-1", files: [], requires: ["soname: libz.so.1()(64bit)"] },
    { name: "zlib", version: "1-1-1", files: [], provides: ["soname: libz.so.1()(64bit)", "soname: libz"] },
    { name: "z32", version: "1-1-1", files: [], requires: ["soname: libz.so.1"] },
    { name: "named", version: "1-1-1", files: [], requires: ["libz"] },
    { name: "either", version: "1-1-1", files: [], requires: ["nothing | file: /usr/bin/sh"] },
    { name: "lost", version: "1-1-1", files: [], requires: ["nothing | file: /nowhere"] },
    { name: "orphan", version: "1-1-1", files: [], requires: ["file: /bin/sh"] },
  ])
  const targets = (p: Plan) => p.target.map((t) => `${t.name} ${t.reason}`)
  const failure = (input: PlanInput) => {
    const result = plan(input)
    return Either.isLeft(result) ? result.left.message : "planned"
  }
  const installedAs = (name: string): InstalledTrove => {
    const trove = u.troves.find((t) => t.name === name)!
    return { trove, components: trove.components, reason: "explicit" }
  }

  it("satisfies file: by the trove that owns the path: pulled in, co-installed, or installed already", () => {
    expect(targets(mustPlan(inputFor(u, [row("app")], [])))).toEqual(["app explicit", "dash dependency"])
    expect(targets(mustPlan(inputFor(u, [row("app"), row("dash")], [])))).toEqual(["app explicit", "dash explicit"])
    const kept = mustPlan(inputFor(u, [row("app")], [installedAs("dash")]))
    expect(kept.troves.map((t) => `${t.op} ${t.name}`)).toEqual(["install app"])
    expect(targets(kept)).toEqual(["app explicit", "dash dependency"])
  })

  it("adds the component that holds the path to a trove installed only in part", () => {
    expect(mustPlan(inputFor(u, [row("dash", "", "doc")], [])).target[0]?.components).toEqual(["doc"])
    const p = mustPlan(inputFor(u, [row("app"), row("dash", "", "doc")], []))
    expect(p.target.find((t) => t.name === "dash")?.components).toEqual(["doc", "runtime"])
  })

  it("satisfies file: and soname: by a base-system provide", () => {
    expect(targets(mustPlan(inputFor(u, [row("app")], [], ["file: /usr/bin/sh"])))).toEqual(["app explicit"])
    expect(targets(mustPlan(inputFor(u, [row("z32")], [], ["soname: libz.so.1"])))).toEqual(["z32 explicit"])
  })

  it("matches sonames exactly, and never a name against a soname", () => {
    expect(targets(mustPlan(inputFor(u, [row("zapp")], [])))).toEqual(["zapp explicit", "zlib dependency"])
    expect(failure(inputFor(u, [row("z32")], []))).toBe("unresolvable: z32=1-1-1 needs soname: libz.so.1, which no trove provides")
    expect(failure(inputFor(u, [row("named")], []))).toBe("unresolvable: named=1-1-1 requires libz: not available")
  })

  it("names the class of what cannot be resolved, and takes alternatives across classes", () => {
    expect(failure(inputFor(u, [row("orphan")], []))).toBe("unresolvable: orphan=1-1-1 needs file: /bin/sh, which no trove owns and no provide gives")
    expect(targets(mustPlan(inputFor(u, [row("either")], [])))).toEqual(["dash dependency", "either explicit"])
    expect(failure(inputFor(u, [row("lost")], []))).toBe("unresolvable: lost=1-1-1 needs nothing | file: /nowhere, which nothing available satisfies")
  })
})

// ---- properties -------------------------------------------------------------

const NAMES = ["alpha", "beta", "gamma", "delta"]

/** Random universes without conflicts: each trove's files live under its own name. */
const universeArb = fc
  .array(
    fc.record({
      name: fc.constantFrom(...NAMES),
      major: fc.integer({ min: 1, max: 4 }),
      files: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.constantFrom("x", "y"), fc.constantFrom(0o644, 0o755)), { maxLength: 5 }),
      docs: fc.boolean(),
      lib: fc.boolean(),
      // Every class: a name, a path some trove may own, a soname some trove may provide.
      requires: fc.subarray([...NAMES, ...NAMES.map((n) => `file: /usr/bin/${n}-0`), ...NAMES.map((n) => `soname: lib${n}.so.1()(64bit)`)], { maxLength: 3 }),
    }),
    { minLength: 1, maxLength: 10 },
  )
  .map((specs) => {
    const seen = new Set<string>()
    return makeUniverse(
      specs
        .filter((s) => !seen.has(`${s.name}-${s.major}`) && seen.add(`${s.name}-${s.major}`))
        .map((s) => ({
          name: s.name,
          version: `${s.major}.0-1-1`,
          files: [
            ...new Map(s.files.map(([n, c, mode]) => [n, regular(`/usr/bin/${s.name}-${n}`, `${s.name}${n}${c}`, mode)])).values(),
            ...(s.docs ? [dir(`/usr/share/doc/${s.name}`), regular(`/usr/share/doc/${s.name}/README`, `${s.name}doc`)] : []),
          ],
          requires: s.requires.filter((r) => r !== s.name),
          provides: s.lib ? [`soname: lib${s.name}.so.1()(64bit)`] : [],
        })),
    )
  })

const desiredArb = (u: Universe) =>
  fc.subarray(
    u.troves.flatMap((t) => [row(t.name), row(t.name, t.version), row(t.name, "", "doc"), row(t.name, "", "runtime")]),
    { maxLength: 4 },
  ).map((rows) => {
    // One row per name and component, as the desired table keeps them.
    const byKey = new Map(rows.map((r) => [`${r.name}:${r.component}`, r]))
    return [...byKey.values()]
  })

describe("plan properties", () => {
  it("applying a plan and planning again yields no changes; file ops turn the old disk into the target", () => {
    fc.assert(
      fc.property(
        universeArb.chain((u) => fc.tuple(fc.constant(u), desiredArb(u), desiredArb(u))),
        ([u, d1, d2]) => {
          let installed: InstalledTrove[] = []
          let disk: Disk = new Map()
          for (const desired of [d1, d2]) {
            const result = plan(inputFor(u, desired, installed))
            // A row may name a component the chosen trove lacks: then nothing changes.
            if (Either.isLeft(result)) return
            const p = result.right
            disk = applyToDisk(disk, p)
            installed = installedAfter(u, p)
            expect(disk).toEqual(diskOf(u, installed))
            const again = mustPlan(inputFor(u, desired, installed))
            expect(again.troves).toEqual([])
            expect(again.files).toEqual([])
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it("every planned trove satisfies its desired row and every requirement is met", () => {
    fc.assert(
      fc.property(
        universeArb.chain((u) => fc.tuple(fc.constant(u), desiredArb(u))),
        ([u, desired]) => {
          const result = plan(inputFor(u, desired, []))
          if (Either.isLeft(result)) return
          const target = result.right.target
          const names = new Set(target.map((t) => t.name))
          for (const r of desired) expect(names.has(r.name)).toBe(true)
          const owned = new Set(target.flatMap((t) => filesForComponents(u.files.get(t.troveId)!, t.components).map((f) => `file: ${f.path}`)))
          const provided = new Set(target.flatMap((t) => u.troves.find((x) => x.id === t.troveId)!.provides))
          for (const t of target) {
            for (const req of u.troves.find((x) => x.id === t.troveId)!.requires)
              expect(names.has(req) || owned.has(req) || provided.has(req), req).toBe(true)
          }
        },
      ),
      { numRuns: 300 },
    )
  })
})


describe("planning against a real root's layout", () => {
  // bin -> usr/bin, as a merged-/usr root has it; /etc is on disk already.
  const layout: RootLayout = {
    canonical: (p) => p.replace(/^\/bin\//, "/usr/bin/"),
    at: (p) => (p === "/bin" ? "dirlink" : p === "/etc" ? "dir" : null),
    dirLinks: () => new Map([["/bin", "/usr/bin"]]),
  }
  const u = makeUniverse([
    { name: "old", version: "1", files: [dir("/bin"), regular("/bin/x", "same")] },
    { name: "twin", version: "1", files: [regular("/usr/bin/x", "same")] },
    { name: "rival", version: "1", files: [regular("/usr/bin/x", "different")] },
    { name: "etc", version: "1", files: [dir("/etc"), regular("/etc/e.conf", "e")] },
  ])
  const installedAs = (...names: string[]): InstalledTrove[] =>
    names.map((n) => {
      const trove = u.troves.find((t) => t.name === n)!
      return { trove, components: trove.components, reason: "explicit" }
    })

  it("sees one file under two names: a conflict when they differ, kept for the trove that stays", () => {
    const conflict = plan({ ...inputFor(u, [row("old"), row("rival")], installedAs("old")), layout })
    expect(Either.isLeft(conflict) && conflict.left._tag).toBe("FileConflictError")
    const erase = mustPlan({ ...inputFor(u, [row("twin")], installedAs("old", "twin")), layout })
    expect(erase.files.filter((f) => f.path.endsWith("/x"))).toEqual([])
  })

  it("keeps directories the disk has: no chmod, and never removed", () => {
    const install = mustPlan({ ...inputFor(u, [row("old"), row("etc")], []), layout })
    expect(install.files.filter((f) => f.kind === "dir" && f.kept).map((f) => f.path).sort()).toEqual(["/bin", "/etc"])
    const foreignAt = (p: string) => (p === "/etc" || p === "/bin" ? ({ kind: "dir" } as const) : undefined)
    const erase = mustPlan({ ...inputFor(u, [], installedAs("old", "etc")), layout, foreignAt })
    expect(erase.files.filter((f) => f.path === "/etc" || f.path === "/bin")).toEqual([])
    // What the troves created goes with them.
    expect(erase.files.filter((f) => f.op === "remove" && f.kind === "dir").map((f) => f.path)).toContain("/usr/bin")
  })
})
