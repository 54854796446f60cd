import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { applyPlan } from "../../reconcile/apply.js"
import { isEmptyPlan } from "../../reconcile/plan-schema.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { count, formatBytes, printJson, println } from "../format.js"
import { NO_CHANGES, currentPlan, planLines } from "./plan.js"

export const applyCommand = Command.make("apply", { ...rootOptions, json: jsonOption }, (args) =>
  withConary(args, { create: false }, (c) =>
    Effect.gen(function* () {
      const started = performance.now()
      const plan = yield* currentPlan(c)
      const result = yield* attempt(() => applyPlan(c, plan, "apply"))
      const seconds = (performance.now() - started) / 1000
      if (args.json) {
        return printJson({ formatVersion: 1, generation: result.generation, changed: !isEmptyPlan(plan), seconds, plan })
      }
      if (result.generation === null) return println(NO_CHANGES)
      for (const line of planLines(plan)) println(line)
      println()
      const s = plan.summary
      println(
        `Applied generation ${result.generation}: ${s.install} installed, ${s.update} updated, ${s.erase} erased; ` +
          `${count(s.files, "file")}, ${formatBytes(s.bytes)} written in ${seconds.toFixed(2)} s.`,
      )
    }),
  ),
).pipe(Command.withDescription("apply the changeset to the root, making a new generation"))
