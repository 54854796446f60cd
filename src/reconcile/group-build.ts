import * as Either from "effect/Either"
import type { Db } from "../db/connection.js"
import { systemFlavor, systemProvides } from "../db/desired.js"
import { availableTroves, groupMembers, troveFilesLookup } from "../db/troves.js"
import { type DesiredRow, formatSpec } from "../desired/rows.js"
import { UsageError } from "../errors.js"
import type { TargetTrove } from "../model/plan-schema.js"
import type { GroupMember } from "../model/trove.js"
import { type PlanInput, plan } from "./plan.js"

// Building a group is resolving a desired state against the sources as they
// are now, like a lockfile: the planner's own resolution (and its conflict
// checks, on an empty root) decides the member set, so a group installs
// exactly what was built, or building it fails with plan's own messages.

export interface GroupSpec {
  readonly name: string
  /** installed with the group */
  readonly rows: ReadonlyArray<DesiredRow>
  /** members only a `group/member` row installs */
  readonly optional: ReadonlyArray<DesiredRow>
}

/** The planner's input for an empty root wanting `desired`: nothing installed, nothing on disk. */
const freshInput = (db: Db, desired: ReadonlyArray<DesiredRow>): PlanInput => ({
  desired,
  systemFlavor: systemFlavor(db),
  provides: systemProvides(db),
  available: availableTroves(db),
  installed: [],
  groups: groupMembers(db),
  filesOf: troveFilesLookup(db),
  ownersOf: () => [],
})

const targetOf = (db: Db, desired: ReadonlyArray<DesiredRow>): ReadonlyArray<TargetTrove> => {
  if (desired.length === 0) return []
  const result = plan(freshInput(db, desired))
  if (Either.isLeft(result)) throw result.left
  return result.right.target
}

/**
 * The members of a group: every trove the rows (and the optional rows) resolve
 * to with its dependency closure, at exact versions, flavors and components;
 * nested groups as themselves (they pin their own members). Those only the
 * optional rows need come only when asked.
 */
export const resolveMembers = (db: Db, spec: GroupSpec): GroupMember[] => {
  const memberRow = [...spec.rows, ...spec.optional].find((r) => r.member)
  if (memberRow)
    throw new UsageError({
      message: `group build: ${formatSpec(memberRow)} selects an optional member on a host; include the trove itself (--include ${memberRow.member}=VERSION)`,
    })
  const all = targetOf(db, [...spec.rows, ...spec.optional])
  const byDefault = new Set(targetOf(db, spec.rows).map((t) => t.troveId))
  const members = all
    .filter((t) => t.reason !== "group")
    .map((t) => ({ name: t.name, version: t.version, flavor: t.flavor, components: t.components, byDefault: byDefault.has(t.troveId) }))
  if (members.length === 0) throw new UsageError({ message: "group build: a group needs at least one member (--from, --include or --optional)" })
  // A nested group that includes this one (by name, at any depth) would expand forever.
  const groups = groupMembers(db)
  const available = availableTroves(db)
  const nests = (name: string, seen: Set<string>): string[] | undefined => {
    for (const t of available.filter((a) => a.name === name && groups.has(a.id))) {
      for (const m of groups.get(t.id)!) {
        if (m.name === spec.name) return [name, m.name]
        if (seen.has(m.name)) continue
        seen.add(m.name)
        const path = nests(m.name, seen)
        if (path) return [name, ...path]
      }
    }
    return undefined
  }
  for (const m of members) {
    const cycle = nests(m.name, new Set())
    if (cycle) throw new UsageError({ message: `group build: ${spec.name} would include itself: ${[spec.name, ...cycle].join(" includes ")}` })
  }
  return members
}
