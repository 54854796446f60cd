import * as Either from "effect/Either"
import type { Db } from "../db/connection.js"
import { desiredRows, systemFlavor, systemProvides } from "../db/desired.js"
import { installedOwnersLookup, installedTroves, recordedFiles } from "../db/state.js"
import { availableTroves, troveFilesLookup } from "../db/troves.js"
import type { Plan } from "./plan-schema.js"
import { type DiffInput, plan } from "./plan.js"
import { scanDrift } from "./verify.js"

export interface RefreshOptions {
  /** scan the disk for drift and plan repairs (default); false trusts the records */
  readonly refresh: boolean
  /** recreate config files the user deleted */
  readonly restoreConfig: boolean
  /** choose flavors afresh instead of keeping the installed ones */
  readonly reflavor?: boolean
}

/** The installed side of the planner's input, with a drift scan of the disk unless refresh is off. */
export const diffInputFromDb = async (db: Db, root: string, options: RefreshOptions): Promise<DiffInput> => ({
  installed: installedTroves(db),
  filesOf: troveFilesLookup(db),
  ownersOf: installedOwnersLookup(db),
  restoreConfig: options.restoreConfig,
  ...(options.refresh ? { drift: (await scanDrift(root, recordedFiles(db), { full: false })).drift } : {}),
})

/** The plan from the database as it is now (and the disk, unless refresh is off). Throws on unresolvable rows and conflicts. */
export const planFromDb = async (db: Db, root: string, options: RefreshOptions): Promise<Plan> => {
  const result = plan({
    desired: desiredRows(db),
    systemFlavor: systemFlavor(db),
    provides: systemProvides(db),
    available: availableTroves(db),
    reflavor: options.reflavor === true,
    ...(await diffInputFromDb(db, root, options)),
  })
  if (Either.isLeft(result)) throw result.left
  return result.right
}
