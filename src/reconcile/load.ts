import type * as Either from "effect/Either"
import type { Db } from "../db/connection.js"
import { desiredRows, systemFlavor, systemProvides } from "../db/desired.js"
import { installedOwnersLookup, installedTroves } from "../db/state.js"
import { availableTroves, troveFilesLookup } from "../db/troves.js"
import type { FileConflictError, UnresolvableError } from "../errors.js"
import type { Plan } from "./plan-schema.js"
import { type PlanInput, plan } from "./plan.js"

/** The planner's four inputs as the database holds them now. */
export const planInputFromDb = (db: Db): PlanInput => ({
  desired: desiredRows(db),
  systemFlavor: systemFlavor(db),
  provides: systemProvides(db),
  available: availableTroves(db),
  installed: installedTroves(db),
  filesOf: troveFilesLookup(db),
  ownersOf: installedOwnersLookup(db),
})

export const planFromDb = (db: Db): Either.Either<Plan, UnresolvableError | FileConflictError> => plan(planInputFromDb(db))
