import { type Flavor, type Match, archRank, matchFlavor, narrows, overrideFlavor, parseFlavor } from "../desired/flavor.js"
import { type DesiredRow, formatSpec } from "../desired/rows.js"
import { compareVersions, matchesVersionSpec, satisfiesRelation } from "../desired/version.js"
import { UnresolvableError } from "../errors.js"
import { type Dep, type GroupMember, type TroveMeta, depKey, formatDep, formatDepGroup, isDefaultComponent, parseDep, parseDepGroup, troveLabel } from "../model/trove.js"
import type { Override, Reason, TargetTrove } from "../model/plan-schema.js"
import type { InstalledTrove } from "../model/installed.js"

// Resolution: desired rows -> one trove each -> dependency closure. Pure.

export interface ResolveInput {
  readonly desired: ReadonlyArray<DesiredRow>
  readonly systemFlavor: Flavor
  /** what the base system provides, as canonical keys (`libc6`, `file: /bin/sh`, `soname: libc.so.6()(64bit)`; see depKey) */
  readonly provides: ReadonlySet<string>
  readonly available: ReadonlyArray<TroveMeta>
  /** what is installed: an update keeps the flavor a trove is installed with */
  readonly installed: ReadonlyArray<InstalledTrove>
  /**
   * Owners of the paths `file:` requirements name, keyed by the path as
   * required: available or installed troves with a file there (under any name
   * the root's directory symlinks give it). Without it, only provides satisfy them.
   */
  readonly fileOwners?: ReadonlyMap<string, ReadonlyArray<FileOwner>>
  /** choose flavors afresh, as if nothing were installed (`--reflavor`) */
  readonly reflavor?: boolean
  /** each group's members, by the group's trove id: a trove with members is a group */
  readonly groups?: ReadonlyMap<number, ReadonlyArray<GroupMember>>
}

/** The trove set a desired state resolves to, and the group pins desired rows override. */
export interface Resolution {
  readonly target: ReadonlyArray<TargetTrove>
  readonly overrides: ReadonlyArray<Override>
}

/** The key a provide is found by; an unreadable one provides nothing. */
const providedKey = (text: string): string => {
  const d = parseDep(text)
  return d ? depKey(d) : ""
}

/** A trove with a file at a path a `file:` dependency names, and the component that holds it. */
export interface FileOwner {
  readonly troveId: number
  readonly component: string
}

/** Why a requirement cannot be met, naming its class. */
const unmet = (trove: TroveMeta, group: ReadonlyArray<Dep>): string => {
  const label = `${trove.name}=${trove.version}`
  if (group.every((d) => d.class === "name")) return `${label} requires ${formatDepGroup(group)}: not available`
  const why =
    group.length > 1
      ? "which nothing available satisfies"
      : group[0]!.class === "file"
        ? "which no trove owns and no provide gives"
        : "which no trove provides"
  return `${label} needs ${formatDepGroup(group)}, ${why}`
}

interface Candidate {
  readonly trove: TroveMeta
  readonly flavor: Flavor
}

/** How each candidate fared, for error messages. */
interface Rejection {
  readonly trove: TroveMeta
  readonly reason: string
}

/** Whether a trove satisfies one dependency: by its own name and version, or by what it provides. */
export const provides = (t: TroveMeta, dep: Dep): boolean => {
  if (dep.class === "name" && t.name === dep.name && (!dep.relation || satisfiesRelation(t.scheme, t.version, dep.relation, dep.version!)))
    return true
  for (const p of t.provides) {
    const pd = parseDep(p)
    if (!pd || pd.class !== dep.class || pd.name !== dep.name) continue
    if (!dep.relation) return true
    // A versioned requirement is met only by a versioned provide (Debian
    // policy, pacman); rpm lets an unversioned provide meet any version.
    if (!pd.relation && t.scheme === "rpm") return true
    if (pd.relation === "=" && satisfiesRelation(t.scheme, pd.version!, dep.relation, dep.version!)) return true
  }
  return false
}

/**
 * The best candidate: the system's instruction-set preference, then the
 * newest version, then the flavor score, then the lowest id (stable).
 */
const pickBest = <C extends Candidate & { readonly score: number }>(system: Flavor, scored: ReadonlyArray<C>): C | undefined => {
  let best: C | undefined
  let bestRank = 0
  for (let i = 0; i < scored.length; i++) {
    const c = scored[i]!
    const rank = archRank(system, c.flavor)
    if (best === undefined || (rank !== bestRank ? rank < bestRank : betterThan(c, best))) {
      best = c
      bestRank = rank
    }
  }
  return best
}

/** Between candidates of one instruction-set rank: the newest version, then the flavor score, then the lowest id. */
const betterThan = (c: Candidate & { readonly score: number }, best: Candidate & { readonly score: number }): boolean => {
  const v = compareVersions(c.trove.scheme, c.trove.version, best.trove.version)
  if (v !== 0) return v > 0
  if (c.score !== best.score) return c.score > best.score
  return c.trove.id < best.trove.id
}

/**
 * Whether a trove is one a desired row asks for, whatever the system flavor:
 * its name, version spec, component and the row's flavor narrowing.
 */
const rowAsksFor = (row: DesiredRow, rowFlavor: Flavor, trove: TroveMeta, flavor: Flavor): Match => {
  if (row.component && !trove.components.includes(row.component)) return { ok: false, reason: `has no :${row.component} component` }
  return narrows(rowFlavor, flavor)
}

/** A group's members a desired state installs: those by default, and the optional ones a `group/member` row names. */
export const chosenMembers = (
  group: { readonly name: string },
  members: ReadonlyArray<GroupMember>,
  desired: ReadonlyArray<DesiredRow>,
): GroupMember[] => members.filter((m) => m.byDefault || desired.some((r) => r.member === m.name && r.name === group.name))

/** Whether a trove is exactly a group member's pin. */
export const isPinned = (m: GroupMember, t: { readonly name: string; readonly version: string; readonly flavor: string }): boolean =>
  m.name === t.name && m.version === t.version && m.flavor === t.flavor

/**
 * Whether a trove takes the place of another name: it replaces it and
 * conflicts with it (pacman replaces such a package on upgrade; Debian policy
 * 7.6.2, replacing whole packages). Replaces alone only moves files.
 */
const takesPlaceOf = (t: TroveMeta, name: string): boolean =>
  t.name !== name &&
  [t.replaces, t.conflicts].every((relations) => relations.some((rel) => (parseDepGroup(rel) ?? []).some((d) => d.class === "name" && d.name === name)))

/**
 * Why each installed trove is there, by the desired rows as they are now: a
 * trove some row names (name, component, flavor), or takes the place of, is
 * explicit; one an installed group that is itself wanted pins is the group's;
 * any other a
 * dependency. A row's version spec does not enter: a new pin says where plan
 * moves the trove, not that it was pulled in. Recorded when the desired state
 * changes, not only when files do.
 */
export const reasonsFor = (
  desired: ReadonlyArray<DesiredRow>,
  installed: ReadonlyArray<TroveMeta>,
  groups: ReadonlyMap<number, ReadonlyArray<GroupMember>> = new Map(),
): Map<number, { reason: Reason; group?: string }> => {
  const reasons = new Map<number, { reason: Reason; group?: string }>()
  const rows = desired.filter((r) => !r.member)
  for (const trove of installed) {
    const flavor = parseFlavor(trove.flavor)
    const asked = rows.some(
      (row) =>
        (row.name === trove.name || (row.version === "" && takesPlaceOf(trove, row.name))) &&
        rowAsksFor(row, parseFlavor(row.flavor), trove, flavor).ok,
    )
    if (asked) reasons.set(trove.id, { reason: "explicit" })
  }
  // Groups wanted (explicitly, or through a wanted group) lend their members the reason, outermost first.
  for (let changed = true; changed; ) {
    changed = false
    for (const g of installed) {
      const members = groups.get(g.id)
      if (!members || !reasons.has(g.id)) continue
      for (const m of chosenMembers(g, members, desired)) {
        const t = installed.find((i) => isPinned(m, i))
        if (t && !reasons.has(t.id)) {
          reasons.set(t.id, { reason: "group", group: g.name })
          changed = true
        }
      }
    }
  }
  for (const trove of installed) if (!reasons.has(trove.id)) reasons.set(trove.id, { reason: "dependency" })
  return reasons
}

// The loops over every row and trove index their arrays: the resolver runs
// once per command, mostly in V8's interpreter, where for-of and destructuring
// cost an iterator object per step.
export const resolve = (input: ResolveInput): Resolution => {
  // Flavors, and how they fit, are worked out once per distinct text: troves share a handful of flavors.
  const flavorCache = new Map<string, Flavor>()
  const flavorOf = (text: string): Flavor => {
    let f = flavorCache.get(text)
    if (f === undefined) {
      f = parseFlavor(text)
      flavorCache.set(text, f)
    }
    return f
  }
  /** the system flavor with a desired row's flavor on top, by the row's flavor text */
  const effectiveCache = new Map<string, Flavor>()
  const effectiveFor = (rowFlavor: string): Flavor => {
    let f = effectiveCache.get(rowFlavor)
    if (f === undefined) effectiveCache.set(rowFlavor, (f = overrideFlavor(input.systemFlavor, flavorOf(rowFlavor))))
    return f
  }
  const fitCache = new Map<Flavor, Map<string, Match>>()
  /** How a trove flavor fits a system (or effective) flavor. */
  const fitOf = (system: Flavor, troveFlavor: string): Match => {
    let fits = fitCache.get(system)
    if (fits === undefined) fitCache.set(system, (fits = new Map()))
    let m = fits.get(troveFlavor)
    if (m === undefined) fits.set(troveFlavor, (m = matchFlavor(system, flavorOf(troveFlavor))))
    return m
  }
  const keysCache = new Map<TroveMeta, string[]>()
  /** The keys a trove is found by: its name and what it provides. */
  const keysOf = (t: TroveMeta): string[] => {
    let keys = keysCache.get(t)
    if (keys === undefined) {
      keys = [t.name]
      for (let i = 0; i < t.provides.length; i++) keys.push(providedKey(t.provides[i]!))
      keysCache.set(t, keys)
    }
    return keys
  }
  const byName = new Map<string, TroveMeta[]>()
  const providers = new Map<string, TroveMeta[]>()
  const index = (into: Map<string, TroveMeta[]>, t: TroveMeta) => {
    const keys = keysOf(t)
    for (let i = 0; i < keys.length; i++) {
      const name = keys[i]!
      let list = into.get(name)
      if (!list) into.set(name, (list = []))
      if (!list.includes(t)) list.push(t)
    }
  }
  /** troves that take the place of a name, by that name */
  const successors = new Map<string, TroveMeta[]>()
  for (let i = 0; i < input.available.length; i++) {
    const t = input.available[i]!
    let list = byName.get(t.name)
    if (!list) byName.set(t.name, (list = []))
    list.push(t)
    index(providers, t)
    for (let r = 0; r < t.replaces.length; r++) {
      for (const d of parseDepGroup(t.replaces[r]!) ?? []) {
        if (!takesPlaceOf(t, d.name)) continue
        let list = successors.get(d.name)
        if (!list) successors.set(d.name, (list = []))
        if (!list.includes(t)) list.push(t)
      }
    }
  }
  /** Whether a successor's replaces relation holds for the trove it would replace (any, when there is none). */
  const replacesTrove = (t: TroveMeta, name: string, old: TroveMeta | undefined) =>
    t.replaces.some((rel) =>
      (parseDepGroup(rel) ?? []).some(
        (d) => d.class === "name" && d.name === name && (!d.relation || !old || satisfiesRelation(old.scheme, old.version, d.relation, d.version!)),
      ),
    )
  const installedByName = new Map<string, TroveMeta[]>()
  for (let i = 0; i < (input.reflavor ? 0 : input.installed.length); i++) {
    const trove = input.installed[i]!.trove
    let list = installedByName.get(trove.name)
    if (!list) installedByName.set(trove.name, (list = []))
    list.push(trove)
  }
  /** Whether a candidate has the flavor its name is installed with, at a version at least as new. */
  const keeps = (c: Candidate) => {
    const installed = installedByName.get(c.trove.name) ?? []
    for (let k = 0; k < installed.length; k++) {
      const i = installed[k]!
      if (i.flavor === c.trove.flavor && compareVersions(c.trove.scheme, c.trove.version, i.version) >= 0) return true
    }
    return false
  }
  /**
   * Conary's flavor affinity: a trove keeps the flavor it is installed with
   * while that flavor has a version at least as new, even if another flavor
   * scores higher now; other flavors of that name are then left out.
   */
  const keepInstalledFlavor = <C extends Candidate>(candidates: C[]): C[] => {
    let kept: Set<string> | undefined
    for (let k = 0; k < candidates.length; k++) if (keeps(candidates[k]!)) (kept ??= new Set()).add(candidates[k]!.trove.name)
    return kept === undefined ? candidates : candidates.filter((c) => !kept.has(c.trove.name) || keeps(c))
  }
  const installedNames = new Set(input.installed.map((i) => i.trove.name))
  /** selected troves by every dependency key they provide */
  const selectedProviders = new Map<string, TroveMeta[]>()

  const problems: string[] = []
  const selected = new Map<number, { trove: TroveMeta; components: Set<string>; reason: Reason; group?: string }>()
  const select = (trove: TroveMeta, components: ReadonlyArray<string>, reason: Reason, group?: string) => {
    const existing = selected.get(trove.id)
    if (existing) {
      for (const c of components) existing.components.add(c)
      if (reason === "explicit") {
        existing.reason = "explicit"
        delete existing.group
      }
      return false
    }
    selected.set(trove.id, group === undefined ? { trove, components: new Set(components), reason } : { trove, components: new Set(components), reason, group })
    index(selectedProviders, trove)
    return true
  }
  const defaults = (t: TroveMeta) => t.components.filter(isDefaultComponent)
  const groups = input.groups ?? new Map<number, ReadonlyArray<GroupMember>>()
  const wantedGroups: TroveMeta[] = []

  for (let r = 0; r < input.desired.length; r++) {
    const row = input.desired[r]!
    if (row.member) continue // a group's optional member: settled when the group is expanded
    const rowFlavor = flavorOf(row.flavor)
    const effective = effectiveFor(row.flavor)
    const rejected: Rejection[] = []
    const ok: Array<Candidate & { score: number }> = []
    const named = byName.get(row.name) ?? []
    for (let k = 0; k < named.length; k++) {
      const trove = named[k]!
      if (!matchesVersionSpec(trove.version, row.version)) continue
      const flavor = flavorOf(trove.flavor)
      const asked = rowAsksFor(row, rowFlavor, trove, flavor)
      const match = asked.ok ? fitOf(effective, trove.flavor) : asked
      if (match.ok) ok.push({ trove, flavor, score: match.score })
      else rejected.push({ trove, reason: match.reason })
    }
    // A desired row with a flavor chooses it; one without keeps what is installed.
    let best = pickBest(effective, row.flavor ? ok : keepInstalledFlavor(ok))
    // A trove that takes the place of the row's name is chosen instead, unless the row pins a version.
    if (row.version === "" && successors.has(row.name)) {
      const old = best?.trove ?? input.installed.find((i) => i.trove.name === row.name)?.trove
      const fits: Array<Candidate & { score: number }> = []
      for (const trove of successors.get(row.name)!) {
        if (!replacesTrove(trove, row.name, old)) continue
        const flavor = flavorOf(trove.flavor)
        const asked = rowAsksFor(row, rowFlavor, trove, flavor)
        const match = asked.ok ? fitOf(effective, trove.flavor) : asked
        if (match.ok) fits.push({ trove, flavor, score: match.score })
      }
      best = pickBest(effective, fits) ?? best
    }
    if (best) {
      select(best.trove, row.component ? [row.component] : defaults(best.trove), "explicit")
      if (groups.has(best.trove.id)) wantedGroups.push(best.trove)
    } else if (rejected.length > 0) {
      const why = rejected.map((r) => `${r.trove.version} [${r.trove.flavor || "no flavor"}] ${r.reason}`).join("; ")
      problems.push(`${formatSpec(row)}: nothing fits the flavor: ${why}`)
    } else if ((byName.get(row.name) ?? []).length > 0) {
      const versions = (byName.get(row.name) ?? []).map((t) => t.version).join(", ")
      problems.push(`${formatSpec(row)}: no such version (available: ${versions})`)
    } else {
      problems.push(`${formatSpec(row)}: no source provides it`)
    }
  }
  if (problems.length > 0) throw new UnresolvableError({ problems })

  const overrides = expandGroups(input, wantedGroups, byName, fitOf, select, problems)
  if (problems.length > 0) throw new UnresolvableError({ problems })

  // Dependency closure, breadth first so explicit troves are settled first.
  const byId = new Map(input.available.map((t) => [t.id, t]))
  /** troves with a file at a `file:` dependency's path, and the component holding it */
  const ownersOf = (dep: Dep): ReadonlyArray<FileOwner> => (dep.class === "file" ? (input.fileOwners?.get(dep.name) ?? []) : [])
  /** The best trove to pull in for one alternative, with the components it then installs. */
  const chooseFor = (dep: Dep): { trove: TroveMeta; components: string[] } | undefined => {
    const owned = new Map<number, string>()
    for (const o of ownersOf(dep)) owned.set(o.troveId, o.component)
    const cands = new Set(providers.get(depKey(dep)) ?? [])
    for (const id of owned.keys()) {
      const t = byId.get(id)
      if (t) cands.add(t)
    }
    const ok: Array<Candidate & { score: number }> = []
    for (const c of cands) {
      if (!owned.has(c.id) && !provides(c, dep)) continue
      const m = fitOf(input.systemFlavor, c.flavor)
      if (m.ok) ok.push({ trove: c, flavor: flavorOf(c.flavor), score: m.score })
    }
    // An installed provider stays (as apt and dnf keep it): no switch to a newer trove of another name.
    const fitting = keepInstalledFlavor(ok)
    const installed = fitting.filter((c) => installedNames.has(c.trove.name))
    const best = pickBest(input.systemFlavor, installed.length > 0 ? installed : fitting)?.trove
    if (!best) return undefined
    const component = owned.get(best.id)
    return { trove: best, components: component === undefined ? defaults(best) : [...new Set([...defaults(best), component])] }
  }
  const queue = [...selected.values()].map((s) => s.trove)
  for (let qi = 0; qi < queue.length; qi++) {
    const trove = queue[qi]!
    for (let r = 0; r < trove.requires.length; r++) {
      const req = trove.requires[r]!
      const group = parseDepGroup(req)
      if (!group) {
        problems.push(`${trove.name}=${trove.version} has an unreadable dependency '${req}'`)
        continue
      }
      if (group.some((d) => input.provides.has(depKey(d)))) continue
      if (group.some((d) => (selectedProviders.get(depKey(d)) ?? []).some((t) => provides(t, d)))) continue
      // A selected trove owning the path satisfies a file: dependency (with the component that holds it).
      const owner = group.flatMap(ownersOf).find((o) => selected.has(o.troveId))
      if (owner) {
        select(selected.get(owner.troveId)!.trove, [owner.component], "dependency")
        continue
      }
      let chosen: ReturnType<typeof chooseFor>
      for (const dep of group) {
        chosen = chooseFor(dep)
        if (chosen) break
      }
      if (!chosen) {
        problems.push(unmet(trove, group))
        continue
      }
      if (select(chosen.trove, chosen.components, "dependency")) queue.push(chosen.trove)
    }
  }
  if (problems.length > 0) throw new UnresolvableError({ problems })

  // Debian's Conflicts and Breaks: such troves are never installed together.
  // A trove that conflicts with a name it provides itself does not conflict with itself.
  const clashes = (trove: TroveMeta, kind: string, relations: ReadonlyArray<string>) => {
    for (let r = 0; r < relations.length; r++) {
      for (const dep of parseDepGroup(relations[r]!) ?? []) {
        for (const other of selectedProviders.get(depKey(dep)) ?? []) {
          if (other.id !== trove.id && provides(other, dep))
            problems.push(`${trove.name}=${trove.version} ${kind} ${other.name}=${other.version} (${formatDep(dep)})`)
        }
      }
    }
  }
  for (const { trove } of selected.values()) {
    clashes(trove, "conflicts with", trove.conflicts)
    clashes(trove, "breaks", trove.breaks)
  }
  if (problems.length > 0) throw new UnresolvableError({ problems: [...new Set(problems)] })

  const target = [...selected.values()]
    .map(({ trove, components, reason, group }) => ({
      troveId: trove.id,
      name: trove.name,
      version: trove.version,
      flavor: trove.flavor,
      components: [...components].sort(),
      reason,
      ...(group === undefined ? {} : { group }),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.troveId - b.troveId))
  return { target, overrides }
}

/**
 * Expands the wanted groups to their members at their exact versions and
 * flavors, nested groups too: a member comes by default, or when a
 * `group/member` row names it. A desired row for a member's name overrides
 * the pin (and is reported). Problems: a member no source offers, one that
 * does not fit the system, two groups pinning one trove differently, a group
 * that includes itself, a `group/member` row that names nothing.
 */
const expandGroups = (
  input: ResolveInput,
  wanted: ReadonlyArray<TroveMeta>,
  byName: ReadonlyMap<string, ReadonlyArray<TroveMeta>>,
  fitOf: (system: Flavor, troveFlavor: string) => Match,
  select: (trove: TroveMeta, components: ReadonlyArray<string>, reason: Reason, group?: string) => boolean,
  problems: string[],
): Override[] => {
  const groups = input.groups ?? new Map<number, ReadonlyArray<GroupMember>>()
  const overriding = new Set(input.desired.filter((r) => !r.member).map((r) => r.name))
  const memberRows = input.desired.filter((r) => r.member)
  const usedRows = new Set<DesiredRow>()
  const expanded = new Map<string, TroveMeta>()
  const pinnedBy = new Map<string, { group: string; pin: string }>()
  const overrides: Override[] = []
  const expand = (group: TroveMeta, chain: ReadonlyArray<string>) => {
    if (expanded.has(troveLabel(group))) return
    expanded.set(troveLabel(group), group)
    const members = groups.get(group.id) ?? []
    for (const row of memberRows) if (row.name === group.name && members.some((m) => m.name === row.member)) usedRows.add(row)
    for (const m of chosenMembers(group, members, input.desired)) {
      const pin = troveLabel(m)
      if (chain.includes(m.name)) {
        problems.push(`${m.name} includes itself: ${[...chain.slice(chain.indexOf(m.name)), m.name].join(" includes ")}`)
        continue
      }
      if (overriding.has(m.name)) {
        overrides.push({ name: m.name, group: group.name, pinned: pin })
        continue
      }
      const exact = (byName.get(m.name) ?? []).find((t) => isPinned(m, t))
      if (!exact) {
        problems.push(`${troveLabel(group)}: member ${pin} is not offered by any source`)
        continue
      }
      const fit = fitOf(input.systemFlavor, exact.flavor)
      if (!fit.ok) {
        problems.push(`${troveLabel(group)}: member ${pin} does not fit the system flavor: ${fit.reason}`)
        continue
      }
      const key = `${m.name}[${m.flavor}]`
      const other = pinnedBy.get(key)
      if (other && other.pin !== pin) problems.push(`${other.group} pins ${other.pin} but ${group.name} pins ${pin}`)
      else pinnedBy.set(key, { group: group.name, pin })
      if (groups.has(exact.id)) {
        select(exact, [], "group", group.name)
        expand(exact, [...chain, exact.name])
      } else select(exact, m.components.length > 0 ? m.components : exact.components.filter(isDefaultComponent), "group", group.name)
    }
  }
  for (const g of wanted) expand(g, [g.name])
  for (const row of memberRows) {
    if (usedRows.has(row)) continue
    const group = [...expanded.values()].find((g) => g.name === row.name)
    problems.push(
      group
        ? `${formatSpec(row)}: ${troveLabel(group)} has no member ${row.member}`
        : `${formatSpec(row)}: no group ${row.name} is desired (add it, or a group that includes it)`,
    )
  }
  return overrides
}
