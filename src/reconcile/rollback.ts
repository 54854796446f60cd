import type { Db } from "../db/connection.js"
import { currentGeneration, generationState } from "../db/state.js"
import { trovesById } from "../db/troves.js"
import { NotFoundError, UsageError } from "../errors.js"
import { type RefreshOptions, planInstalled } from "./load.js"
import type { Plan } from "../model/plan-schema.js"
import { planTo } from "./plan.js"

/**
 * The plan back to a generation's trove set (default: the one before the
 * current), with the desired document to restore. Needs no source: contents
 * come from the store.
 */
export const rollbackPlan = async (
  db: Db,
  root: string,
  dbPath: string,
  options: RefreshOptions,
  generation?: number,
): Promise<{ plan: Plan; generation: number; desired: string }> => {
  const current = currentGeneration(db)
  if (current === 0) throw new UsageError({ message: "nothing to roll back: no generation has been applied" })
  const target =
    generation ??
    (db.prepare("SELECT max(id) FROM generations WHERE id < ?").pluck().get(current) as number | null) ??
    undefined
  if (target === undefined) throw new UsageError({ message: `nothing to roll back to: generation ${current} is the first` })
  const state = generationState(db, target)
  if (!state) throw new NotFoundError({ what: "generation", name: String(target) })
  const metas = trovesById(db, state.target.map((t) => t.troveId))
  const plan = await planInstalled(db, root, dbPath, options, (installed) => planTo(installed, state.target, metas))
  return { plan, generation: target, desired: state.desired }
}
