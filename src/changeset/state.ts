import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { Db } from "../db/connection.js"
import { systemFlavor, systemProvides } from "../db/desired.js"
import { currentGeneration, installedTroves } from "../db/state.js"
import { troveOrigins } from "../db/troves.js"
import { decodeOrProblem } from "../decode.js"
import { formatFlavor } from "../desired/flavor.js"
import { UsageError } from "../errors.js"
import { JSON_INPUT_LIMIT, parseJson, readInputFile } from "../files.js"
import { TargetTrove } from "../model/plan-schema.js"
import { sha256Of } from "../sha256.js"
import { Sha256 } from "../source/repo-meta.js"

// A root's installed state as another host needs it to make a changeset for
// it (`status --json --installed`): the installed troves by digest, and the
// system flavor and provides the planner resolves with. Its digest is what a
// changeset is made for: applying one refuses a root whose state moved.

/** A trove as the plan's target lists it, named by its identity (the digest of its archive or manifest) instead of a row id. */
export const InstalledRef = Schema.Struct({ ...TargetTrove.omit("troveId").fields, digest: Sha256 })
export type InstalledRef = typeof InstalledRef.Type

export const InstalledState = Schema.Struct({
  rootId: Schema.String,
  generation: Schema.Int,
  flavor: Schema.String,
  provides: Schema.Array(Schema.String),
  troves: Schema.Array(InstalledRef),
  digest: Sha256,
})
export type InstalledState = typeof InstalledState.Type

/** What a changeset is made for: the installed troves (and components), the system flavor and provides. */
export const stateDigest = (s: Pick<InstalledState, "flavor" | "provides" | "troves">): string =>
  sha256Of(
    JSON.stringify({
      flavor: s.flavor,
      provides: [...s.provides].sort(),
      troves: s.troves.map((t) => [t.digest, [...t.components].sort()]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    }),
  )

export const installedState = (db: Db): InstalledState => {
  const origins = troveOrigins(db)
  const troves = installedTroves(db).map((i) => ({
    name: i.trove.name,
    version: i.trove.version,
    flavor: i.trove.flavor,
    digest: origins.get(i.trove.id)!.digest,
    components: [...i.components],
    reason: i.reason,
    ...(i.group === undefined ? {} : { group: i.group }),
  }))
  const flavor = formatFlavor(systemFlavor(db))
  const provides = [...systemProvides(db)]
  const rootId = (db.prepare("SELECT value FROM settings WHERE key = 'root_id'").pluck().get() as string | undefined) ?? ""
  return { rootId, generation: currentGeneration(db), flavor, provides, troves, digest: stateDigest({ flavor, provides, troves }) }
}

/** The state in a file `status --json --installed` wrote, checked against its own digest. */
export const readStateFile = (file: string): InstalledState => {
  const fail = (reason: string) => new UsageError({ message: `state file ${file}: ${reason}` })
  const json = parseJson(readInputFile(file, JSON_INPUT_LIMIT, fail), fail)
  const state = json !== null && typeof json === "object" ? (json as { state?: unknown }).state : undefined
  if (state === undefined) throw fail("has no installed state (write it with `conary status --json --installed` on the target)")
  const decoded = decodeOrProblem(InstalledState, state)
  if (Either.isLeft(decoded)) throw fail(`state.${decoded.left}`)
  const digests = new Set(decoded.right.troves.map((t) => t.digest))
  if (digests.size !== decoded.right.troves.length) throw fail("lists a trove twice")
  if (stateDigest(decoded.right) !== decoded.right.digest) throw fail("its digest does not match the state it lists (edited?)")
  return decoded.right
}
