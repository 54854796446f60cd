import * as fs from "node:fs"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { Db } from "../db/connection.js"
import { desiredRows, systemFlavor, systemProvides } from "../db/desired.js"
import { currentGeneration } from "../db/state.js"
import { decodeOrProblem } from "../decode.js"
import { formatFlavor } from "../desired/flavor.js"
import { StalePlanError } from "../errors.js"
import { JSON_INPUT_LIMIT, parseJson, readInputFile, writeOutputFile } from "../files.js"
import { planFromDb } from "./load.js"
import { sha256Of } from "../sha256.js"
import { type FileOp, Plan } from "../model/plan-schema.js"

// A saved plan carries what it was made against (Terraform's state serial):
// the root, its generation, and digests of the desired state and of the
// available troves. Apply refuses it when any of them moved. The file itself
// is input like any other: apply carries out only the plan conary computes
// now, and refuses a saved plan that differs from it in any operation.

const SavedPlan = Schema.Struct({
  formatVersion: Schema.Literal(1),
  kind: Schema.Literal("conary-saved-plan"),
  root: Schema.String,
  generation: Schema.Int,
  desiredDigest: Schema.String,
  availableDigest: Schema.String,
  createdAt: Schema.String,
  plan: Plan,
})
type SavedPlan = typeof SavedPlan.Type

const digest = (value: unknown) => sha256Of(JSON.stringify(value))

/** The desired rows, system flavor and provides: everything the operator says. */
const desiredDigest = (db: Db) =>
  digest({ desired: desiredRows(db), flavor: formatFlavor(systemFlavor(db)), provides: [...systemProvides(db)] })

const availableDigest = (db: Db) =>
  digest(db.prepare("SELECT source, archive, archive_sha256, trove_id FROM available ORDER BY source, archive").raw().all())

export const savePlan = (db: Db, root: string, plan: Plan, file: string, now: string): Promise<void> => {
  const saved: SavedPlan = {
    formatVersion: 1,
    kind: "conary-saved-plan",
    root,
    generation: currentGeneration(db),
    desiredDigest: desiredDigest(db),
    availableDigest: availableDigest(db),
    createdAt: now,
    plan,
  }
  return writeOutputFile(file, (temp) => fs.writeFileSync(temp, JSON.stringify(saved)))
}

/** JSON with sorted keys: two plans are the same when these strings are. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  )

const describeOp = (op: FileOp) => `${op.op} ${JSON.stringify(op.path)} of ${op.trove}`

/** Why `saved` is not `expected`, naming the first operation that differs. */
const difference = (saved: Plan, expected: Plan): string => {
  const want = new Map(expected.files.map((op) => [op.path, canonical(op)]))
  const index = saved.files.findIndex((op) => want.get(op.path) !== canonical(op))
  if (index >= 0) return `file operation ${index + 1} (${describeOp(saved.files.at(index))}) is not what conary plans for this root`
  const have = new Set(saved.files.map((op) => op.path))
  const missing = expected.files.find((op) => !have.has(op.path))
  if (missing) return `it lacks the file operation ${describeOp(missing)} that conary plans for this root`
  return "its trove operations or target differ from what conary plans for this root"
}

/**
 * The plans a saved one may equal: what `plan` computes now with the disk
 * scan (the default), without it (`--no-refresh`), or restoring config files.
 */
const PLAN_OPTIONS = [
  { refresh: true, restoreConfig: false },
  { refresh: false, restoreConfig: false },
  { refresh: true, restoreConfig: true },
] as const

/** Why a plan or changeset made at an earlier generation of the root is refused. */
export const movedSince = (generation: number, madeAt: number, what: string) =>
  `the root moved to generation ${generation} since the ${what} was made at generation ${madeAt}`

/** Reads a saved plan, checks it still applies to this root, and that conary itself would plan exactly it. */
export const loadPlan = async (db: Db, root: string, dbPath: string, file: string): Promise<Plan> => {
  const refuse = (reason: string) => new StalePlanError({ file, reason })
  const json = parseJson(readInputFile(file, JSON_INPUT_LIMIT, refuse), refuse)
  const decoded = decodeOrProblem(SavedPlan, json)
  if (Either.isLeft(decoded)) throw refuse(`not a conary plan (${decoded.left})`)
  const saved = decoded.right
  if (saved.root !== root) throw refuse(`it was made for root ${saved.root}, not ${root}`)
  const generation = currentGeneration(db)
  if (saved.generation !== generation)
    throw refuse(`${movedSince(generation, saved.generation, "plan")}; plan again`)
  if (saved.desiredDigest !== desiredDigest(db)) throw refuse("the desired state changed since the plan was made; plan again")
  if (saved.availableDigest !== availableDigest(db)) throw refuse("the sources changed since the plan was made (a sync); plan again")
  const wanted = canonical(saved.plan)
  let first: Plan | undefined
  // Computed one at a time: an untouched saved plan matches the first.
  for (const options of PLAN_OPTIONS) {
    const expected = await planFromDb(db, root, dbPath, options)
    if (canonical(expected) === wanted) return expected
    first ??= expected
  }
  throw refuse(`${difference(saved.plan, first!)}; plan again`)
}
