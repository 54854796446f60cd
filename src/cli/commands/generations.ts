import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { printable } from "../../errors.js"
import { ROLLBACK } from "../../reconcile/apply.js"
import { rollbackPlan } from "../../reconcile/rollback.js"
import { leanHeapFor } from "../../heap.js"
import { collectGarbage } from "../../store/gc.js"
import { attempt, recoveryLine, withConary } from "../context.js"
import { count, formatBytes, printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { gcConfig, recoverConfig, rollbackConfig } from "../tree/generations.js"
import { applyAndReport } from "./apply.js"
import { refreshOf } from "./plan.js"

export const rollback = (args: Parsed<typeof rollbackConfig>) =>
  withConary(args, { write: true, command: "rollback" }, (c) =>
    Effect.gen(function* () {
      leanHeapFor(c.dbPath)
      const back = yield* attempt(() => rollbackPlan(c.db, c.root, c.dbPath, refreshOf(args), Option.getOrUndefined(args.generation)))
      if (!args.json) println(`Rolling back to generation ${back.generation} (its troves and its desired state).`)
      yield* applyAndReport(c, back.plan, ROLLBACK, back.desired, args.json)
    }),
  )

export const recover = (args: Parsed<typeof recoverConfig>) =>
  withConary(args, { write: true, command: "recover" }, (c) =>
    Effect.sync(() => {
      if (args.json) return printJson({ formatVersion: 1, recovered: c.recovered ?? null })
      // What recovery did was already said on stderr.
      println(c.recovered ? recoveryLine(c.recovered) : "Nothing to recover: no apply was interrupted.")
    }),
  )

export const gc = (args: Parsed<typeof gcConfig>) =>
  withConary(args, { write: true, command: "gc" }, (c) =>
    attempt(() => {
      const r = collectGarbage(c, c.store, args.keep, c.lockTimeout)
      for (const root of r.rootsDropped) process.stderr.write(`conary: ${printable(`store ${c.store.dir}: dropped root ${root} from its registry`)}\n`)
      if (args.json) return printJson({ formatVersion: 1, ...r, store: c.store.dir })
      if (r.rootsSharing > 0) println(`Store ${printable(c.store.dir)} is shared with ${count(r.rootsSharing, "other root")}: what they need was kept.`)
      println(
        `Removed ${count(r.generationsRemoved, "generation")} and ${count(r.objectsRemoved, "store object")}, ` +
          `freeing ${formatBytes(r.bytesFreed)}; ${count(r.objectsKept, "object")} kept.`,
      )
    }),
  )
