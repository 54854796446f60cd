import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"

export const verifyConfig = {
  ...rootOptions,
  json: jsonOption,
  full: Options.boolean("full").pipe(Options.withDescription("hash every file, not only those whose stat changed")),
  unowned: Options.boolean("unowned").pipe(Options.withDescription("also list entries in owned directories that no trove owns")),
  provenance: Options.boolean("provenance").pipe(
    Options.withDescription("instead of files, check each trove against its source: same digest, signed by a trusted key"),
  ),
  quiet: Options.boolean("quiet").pipe(Options.withAlias("q"), Options.withDescription("print nothing when clean")),
  troves: Args.text({ name: "TROVE" }).pipe(Args.repeated),
}

export const verifyCommand = Command.make(
  "verify",
  verifyConfig,
  lazily(() => import("../commands/verify.js").then((m) => m.verify)),
).pipe(Command.withDescription("compare installed files with what was recorded, or (--provenance) troves with their sources (exit 0 clean, 2 drift, 1 error)"))
