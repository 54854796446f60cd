import * as Schema from "effect/Schema"
import { sha256Of } from "../sha256.js"
import { Sha256, decodeJson } from "./repo-meta.js"

// A repository's metadata as a set of lines, one per trove (its Entry as
// JSON text), and the patches between such sets. The top document names the
// set by one digest (the state), so a client that holds the lines of an
// earlier state reads one small patch instead of the parts, and checks that
// what it ends up with is the state the signed document names.
//
//   state   sha256 of the sorted sha256s (hex) of its lines, joined by "\n"
//   part    the lines of the troves whose names hash to one bucket, each
//           ending in "\n", sorted by name then digest
//   patch   a header line {"from": STATE, "remove": [LINE SHA256…]}, then
//           the lines to add, each ending in "\n"


/** What identifies a line in a state. */
export const lineHash = (line: string): string => sha256Of(line)

/** The digest of a set of lines, given their hashes (any order; each once). */
export const stateDigest = (hashes: Iterable<string>): string => sha256Of([...hashes].sort().join("\n"))

/** The lines of a part, or of a patch after its header. */
export const linesOf = (text: string): string[] => {
  const lines = text.split("\n")
  if (lines.at(-1) === "") lines.pop()
  return lines
}

export const partBytes = (lines: ReadonlyArray<string>): Buffer => Buffer.from(lines.map((l) => `${l}\n`).join(""))

const PatchHeader = Schema.Struct({ from: Sha256, remove: Schema.Array(Sha256) })

export interface Patch {
  readonly from: string
  /** hashes of the lines to drop */
  readonly remove: ReadonlyArray<string>
  /** lines to add */
  readonly add: ReadonlyArray<string>
}

export const patchBytes = (p: Patch): Buffer =>
  partBytes([JSON.stringify({ from: p.from, remove: [...p.remove].sort() }), ...[...p.add].sort()])

export const decodePatch = (bytes: Buffer, fail: (reason: string) => Error): Patch => {
  const [header, ...add] = linesOf(bytes.toString())
  const h = decodeJson(PatchHeader, header ?? "", fail)
  return { from: h.from, remove: h.remove, add }
}

/** The patch from a state (its line hashes) to another (its lines by hash). */
export const diff = (from: ReadonlySet<string>, fromState: string, to: ReadonlyMap<string, string>): Patch => ({
  from: fromState,
  remove: [...from].filter((h) => !to.has(h)),
  add: [...to].filter(([h]) => !from.has(h)).map(([, line]) => line),
})

/**
 * The patch from an older state to the newest, given the patch from it to
 * the state before the newest (`older`) and the patch from that one to the
 * newest (`last`), whose lines are `newest`: lines `last` drops go (unless
 * `older` added them, then they were never there), lines `older` dropped stay
 * dropped unless the newest has them again; lines `older` added and the
 * newest keeps, and lines `last` added that the older state lacked, come.
 */
export const compose = (older: Patch, last: Patch, newest: ReadonlyMap<string, string>): Patch => {
  const olderAdds = new Set(older.add.map(lineHash))
  const olderRemoves = new Set(older.remove)
  return {
    from: older.from,
    remove: [...new Set([...last.remove.filter((h) => !olderAdds.has(h)), ...older.remove.filter((h) => !newest.has(h))])],
    add: [...last.add.filter((l) => !olderRemoves.has(lineHash(l))), ...older.add.filter((l) => newest.has(lineHash(l)))],
  }
}

/**
 * The patches a build writes to its new state `newest`: the diff from the
 * state before, then each patch to that state composed with it (none from
 * the new state itself: a client there reads nothing), at most `max`.
 */
export const nextPatches = (earlier: ReadonlyArray<Patch>, last: Patch, newest: ReadonlyMap<string, string>, max: number): Patch[] => {
  const state = stateDigest(newest.keys())
  return [last, ...earlier.filter((p) => p.from !== state).map((p) => compose(p, last, newest))].slice(0, max)
}

/** The line hashes after applying a patch to a state's. */
export const applyPatch = (hashes: ReadonlySet<string>, p: Patch): Set<string> => {
  const out = new Set(hashes)
  for (const h of p.remove) out.delete(h)
  for (const l of p.add) out.add(lineHash(l))
  return out
}
