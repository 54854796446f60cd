import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"

/** Options of every command that plans. */
export const refreshOptions = {
  noRefresh: Options.boolean("no-refresh").pipe(Options.withDescription("skip the disk scan: plan no repairs")),
  restoreConfig: Options.boolean("restore-config").pipe(Options.withDescription("recreate config files the user deleted")),
}

/** Options of the commands that resolve the desired state (plan, apply). */
export const resolveOptions = {
  ...refreshOptions,
  reflavor: Options.boolean("reflavor").pipe(
    Options.withDescription("choose flavors afresh; by default an update keeps the flavor a trove is installed with"),
  ),
}

export const planConfig = {
  ...rootOptions,
  ...resolveOptions,
  json: jsonOption,
  out: Options.text("out").pipe(
    Options.withDescription("save the plan, with the state it was made against, for `conary apply FILE`"),
    Options.optional,
  ),
  detailedExitcode: Options.boolean("detailed-exitcode").pipe(
    Options.withDescription("exit 0 when there are no changes, 2 when there are, 1 on error"),
  ),
}

export const planCommand = Command.make(
  "plan",
  planConfig,
  lazily(() => import("../commands/plan.js").then((m) => m.planAndShow)),
).pipe(Command.withDescription("show the changeset that would bring the root to the desired state"))
