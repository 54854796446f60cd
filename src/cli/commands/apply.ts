import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import { printable } from "../../errors.js"
import { desiredRows } from "../../db/desired.js"
import { toDocument } from "../../desired/rows.js"
import { applyPlan } from "../../reconcile/apply.js"
import { type Plan, isEmptyPlan } from "../../model/plan-schema.js"
import { loadPlan } from "../../reconcile/saved-plan.js"
import { type Conary, attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { count, formatBytes, printJson, println } from "../format.js"
import { NO_CHANGES, blockedLines, currentPlan, fileNoteLines, overrideLines, planLines, refreshOf, resolveOptions } from "./plan.js"

/** Applies a plan and reports it; shared by apply and rollback. */
export const applyAndReport = (c: Conary, plan: Plan, command: string, desired: string, json: boolean) =>
  Effect.gen(function* () {
    const started = performance.now()
    const result = yield* attempt(() => applyPlan(c, plan, command, desired))
    const seconds = (performance.now() - started) / 1000
    if (json)
      return printJson({ formatVersion: 1, generation: result.generation, changed: !isEmptyPlan(plan), seconds, merges: result.merges, plan })
    if (result.generation === null) {
      for (const line of blockedLines(plan)) println(printable(line))
      return println(NO_CHANGES)
    }
    const merged = new Map(result.merges.map((m) => [m.path, m.merged]))
    for (const line of [...planLines(plan), ...overrideLines(plan), ...fileNoteLines(plan, merged)]) println(printable(line))
    println()
    const s = plan.summary
    println(
      `Applied generation ${result.generation}: ${s.install} installed, ${s.update} updated, ${s.erase} erased; ` +
        `${count(s.files, "file")}, ${formatBytes(s.bytes)} written in ${seconds.toFixed(2)} s.`,
    )
  })

export const applyCommand = Command.make(
  "apply",
  { ...rootOptions, ...resolveOptions, json: jsonOption, file: Args.text({ name: "PLAN" }).pipe(Args.optional) },
  (args) =>
    withConary(args, { write: true, command: "apply" }, (c) =>
      Effect.gen(function* () {
        const file = args.file
        const plan = Option.isSome(file) ? yield* attempt(() => loadPlan(c.db, c.root, c.dbPath, path.resolve(file.value))) : yield* currentPlan(c, refreshOf(args), { name: "apply", holdsLock: true })
        const desired = JSON.stringify(toDocument(desiredRows(c.db)))
        yield* applyAndReport(c, plan, "apply", desired, args.json)
      }),
    ),
).pipe(Command.withDescription("apply the changeset (or a plan saved by `plan --out`) to the root, making a new generation"))
