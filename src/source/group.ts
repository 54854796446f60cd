import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { decodeOrProblem } from "../decode.js"
import { normalizeFlavor } from "../desired/flavor.js"
import { COMPONENT, NAME, VERSION } from "../desired/rows.js"
import { isNativeVersion } from "../desired/version.js"
import { ArchiveError } from "../errors.js"
import { parseJson, readInputFile, writeOutputFile } from "../files.js"
import type { GroupMember } from "../model/trove.js"
import type { FormatReader } from "./package-format.js"

// A group trove (`.cgrp`): a JSON document naming its members, each a trove
// (or another group) at an exact version and flavor. It has no files; its
// digest is the sha256 of the document, and a repository's signed index
// carries it like any trove.

/** Far beyond any real group (100,000 members take about 15 MiB). */
const MAX_GROUP_BYTES = 32 * 1024 * 1024
const MAX_MEMBERS = 100_000

export const GroupMemberSchema = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(NAME)),
  version: Schema.String.pipe(Schema.pattern(VERSION)),
  flavor: Schema.String,
  components: Schema.Array(Schema.String.pipe(Schema.pattern(COMPONENT))).pipe(Schema.maxItems(64)),
  byDefault: Schema.Boolean,
})

export const GroupMembers = Schema.Array(GroupMemberSchema).pipe(Schema.minItems(1), Schema.maxItems(MAX_MEMBERS))

const GroupDocument = Schema.Struct({
  formatVersion: Schema.Literal(1),
  kind: Schema.Literal("group"),
  name: Schema.String.pipe(Schema.pattern(NAME)),
  version: Schema.String,
  flavor: Schema.String,
  members: GroupMembers,
})
type GroupDocument = typeof GroupDocument.Type

export interface Group {
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly members: ReadonlyArray<GroupMember>
}

/**
 * What decoding cannot see in a group's members, naming the field: a flavor
 * not in canonical form (members are matched by it exactly), the same trove
 * twice, or the group itself among them (nesting through other groups is
 * refused when they are expanded).
 */
export const membersProblem = (group: string, members: ReadonlyArray<GroupMember>): string | undefined => {
  const seen = new Map<string, number>()
  for (const [i, m] of members.entries()) {
    let canonical: string
    try {
      canonical = normalizeFlavor(m.flavor)
    } catch (e) {
      return `members.${i}.flavor: ${(e as Error).message}`
    }
    if (canonical !== m.flavor) return `members.${i}.flavor: not in canonical form (write '${canonical}')`
    if (m.name === group) return `members.${i}: the group ${group} includes itself`
    const key = `${m.name}[${m.flavor}]`
    const at = seen.get(key)
    if (at !== undefined) return `members.${at} and members.${i}: ${key} is a member twice`
    seen.set(key, i)
  }
  return undefined
}

const checkGroup = (doc: GroupDocument): Group | string => {
  if (!isNativeVersion(doc.version)) return `version: '${doc.version}' is not upstream-source-build`
  let flavor: string
  try {
    flavor = normalizeFlavor(doc.flavor)
  } catch (e) {
    return `flavor: ${(e as Error).message}`
  }
  const problem = membersProblem(doc.name, doc.members)
  if (problem) return problem
  return { name: doc.name, version: doc.version, flavor, members: doc.members }
}

/** Reads and validates a group file: bounded, and every problem names its field. */
export const readGroup = (file: string): { group: Group; digest: string } => {
  const bad = (reason: string) => new ArchiveError({ archive: file, reason })
  const text = readInputFile(file, MAX_GROUP_BYTES, bad)
  const decoded = decodeOrProblem(GroupDocument, parseJson(text, bad))
  if (Either.isLeft(decoded)) throw bad(`bad group: ${decoded.left}`)
  const group = checkGroup(decoded.right)
  if (typeof group === "string") throw bad(`bad group: ${group}`)
  return { group, digest: createHash("sha256").update(text).digest("hex") }
}

/** Writes a group file (whole, by rename), and reads it back through the same checks as any other. */
export const writeGroup = async (out: string, group: Group): Promise<{ group: Group; digest: string }> => {
  const doc: GroupDocument = { formatVersion: 1, kind: "group", ...group }
  await writeOutputFile(out, (temp) => fs.writeFileSync(temp, JSON.stringify(doc, null, 2) + "\n"))
  return readGroup(out)
}

export const groupReader: FormatReader = {
  read: async (file) => {
    const { group, digest } = readGroup(file)
    return { trove: { ...group, digest, requires: [], provides: [], files: [] }, archiveSha256: digest }
  },
  // A group has no contents.
  fetch: async () => undefined,
}
