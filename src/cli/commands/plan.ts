import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as path from "node:path"
import { savePlan } from "../../reconcile/saved-plan.js"
import { type Plan, isEmptyPlan } from "../../reconcile/plan-schema.js"
import { planFromDb } from "../../reconcile/load.js"
import { type Conary, attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { EXIT_CHANGES, EXIT_OK } from "../exit.js"
import { count, formatBytes, printJson, println } from "../format.js"

/** Computes the plan for the root as it stands; unresolvable rows and conflicts fail it. */
export const currentPlan = (c: Conary) =>
  attempt(() => {
    const result = planFromDb(c.db)
    if (Either.isLeft(result)) throw result.left
    return result.right
  })

const withFlavor = (version: string, flavor: string) => (flavor ? `${version} [${flavor}]` : version)

/** Terraform-style lines: `+ name version`, `~ name old → new`, `- name version`. */
export const planLines = (plan: Plan): string[] =>
  plan.troves.map((t) => {
    const notes = [t.reason === "dependency" && t.op !== "erase" ? "(dependency)" : "", t.scripts ? "[scripts not run]" : ""]
      .filter((n) => n !== "")
      .join(" ")
    const tail = notes ? ` ${notes}` : ""
    if (t.op === "install") return `+ ${t.name} ${withFlavor(t.to!.version, t.to!.flavor)}${tail}`
    if (t.op === "erase") return `- ${t.name} ${withFlavor(t.from!.version, t.from!.flavor)}`
    const from = withFlavor(t.from!.version, t.from!.flavor)
    const to = withFlavor(t.to!.version, t.to!.flavor)
    const comps =
      from === to
        ? ` (components ${t.from!.components.join(",")} → ${t.to!.components.join(",")})`
        : ""
    return `~ ${t.name} ${from === to ? from : `${from} → ${to}`}${comps}${tail}`
  })

export const summaryLine = (plan: Plan): string => {
  const s = plan.summary
  return `Plan: ${s.install} to install, ${s.update} to update, ${s.erase} to erase; ${count(s.files, "file")}, ${formatBytes(s.bytes)} to write.`
}

export const NO_CHANGES = "No changes. Installed state matches desired state."

export const showPlan = (plan: Plan) => {
  if (isEmptyPlan(plan)) return println(NO_CHANGES)
  for (const line of planLines(plan)) println(line)
  println()
  println(summaryLine(plan))
}

export const planCommand = Command.make(
  "plan",
  {
    ...rootOptions,
    json: jsonOption,
    out: Options.text("out").pipe(
      Options.withDescription("save the plan, with the state it was made against, for `conary apply FILE`"),
      Options.optional,
    ),
    detailedExitcode: Options.boolean("detailed-exitcode").pipe(
      Options.withDescription("exit 0 when there are no changes, 2 when there are, 1 on error"),
    ),
  },
  (args) =>
    withConary(args, { write: false, command: "plan" }, (c) =>
      Effect.gen(function* () {
        const plan = yield* currentPlan(c)
        const out = args.out
        if (Option.isSome(out)) yield* attempt(() => savePlan(c.db, c.root, plan, path.resolve(out.value), c.now()))
        if (args.json) printJson(plan)
        else showPlan(plan)
        process.exitCode = args.detailedExitcode && !isEmptyPlan(plan) ? EXIT_CHANGES : EXIT_OK
      }),
    ),
).pipe(Command.withDescription("show the changeset that would bring the root to the desired state"))
