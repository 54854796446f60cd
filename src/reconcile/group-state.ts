import type { DesiredRow } from "../desired/rows.js"
import type { InstalledTrove } from "../model/installed.js"
import { type GroupMember, troveLabel } from "../model/trove.js"
import { chosenMembers, isPinned } from "./resolve.js"

// How the installed set compares with the installed groups' pins: what
// `show`, `verify` and `status` report. Pure.

export type MemberState =
  /** installed at exactly the pinned version and flavor */
  | "pinned"
  /** a desired row for the trove overrides the pin */
  | "overridden"
  /** installed, at another version or flavor than pinned */
  | "differs"
  | "missing"
  /** optional, and no `group/member` row asks for it */
  | "not-selected"

export interface MemberStatus {
  readonly member: GroupMember
  readonly state: MemberState
  /** what is installed under the member's name, as name=version[flavor] */
  readonly installed: ReadonlyArray<string>
}

/** Each member of a group and how the installed set has it. */
export const memberStatus = (
  group: { readonly name: string },
  members: ReadonlyArray<GroupMember>,
  installed: ReadonlyArray<InstalledTrove>,
  desired: ReadonlyArray<DesiredRow>,
): MemberStatus[] => {
  const chosen = new Set(chosenMembers(group, members, desired))
  return members.map((m) => {
    const same = installed.filter((i) => i.trove.name === m.name)
    const state: MemberState = !chosen.has(m)
      ? "not-selected"
      : desired.some((r) => !r.member && r.name === m.name)
        ? "overridden"
        : same.some((i) => isPinned(m, i.trove))
          ? "pinned"
          : same.length > 0
            ? "differs"
            : "missing"
    return { member: m, state, installed: same.map((i) => troveLabel(i.trove)) }
  })
}

export interface GroupDifference {
  readonly group: string
  readonly member: string
  readonly pinned: string
  readonly state: "differs" | "missing" | "overridden"
  readonly installed: ReadonlyArray<string>
}

/**
 * Where the installed set differs from what the installed groups pin: a member
 * missing or at another version (drift: `apply` brings it back), or
 * overridden by a desired row (intended, but still not what the group says).
 */
export const groupDifferences = (
  installed: ReadonlyArray<InstalledTrove>,
  groups: ReadonlyMap<number, ReadonlyArray<GroupMember>>,
  desired: ReadonlyArray<DesiredRow>,
): GroupDifference[] =>
  installed.flatMap(({ trove }) => {
    const members = groups.get(trove.id)
    if (!members) return []
    return memberStatus(trove, members, installed, desired).flatMap((s) =>
      s.state === "differs" || s.state === "missing" || (s.state === "overridden" && !s.installed.includes(troveLabel(s.member)))
        ? [{ group: troveLabel(trove), member: s.member.name, pinned: troveLabel(s.member), state: s.state, installed: s.installed }]
        : [],
    )
  })

/** One line for a difference, as verify and status print it. */
export const differenceLine = (d: GroupDifference): string =>
  d.state === "missing"
    ? `${d.group}: ${d.pinned} is not installed`
    : `${d.group}: ${d.pinned} pinned, ${d.installed.join(", ") || "nothing"} installed${d.state === "overridden" ? " (a desired row overrides the pin)" : ""}`
