import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"

export const listConfig = { ...rootOptions, json: jsonOption }

const list = Command.make(
  "list",
  listConfig,
  lazily(() => import("../commands/query.js").then((m) => m.list)),
).pipe(Command.withDescription("list installed troves"))

export const showConfig = {
  ...rootOptions,
  json: jsonOption,
  files: Options.boolean("files").pipe(Options.withDescription("list the trove's files")),
  scripts: Options.boolean("scripts").pipe(Options.withDescription("print its maintainer scripts (recorded, never run)")),
  trove: Args.text({ name: "TROVE" }),
}

const show = Command.make(
  "show",
  showConfig,
  lazily(() => import("../commands/query.js").then((m) => m.show)),
).pipe(Command.withDescription("show a trove: version, flavor, components, files, provenance, why installed"))

export const historyConfig = { ...rootOptions, json: jsonOption }

const history = Command.make(
  "history",
  historyConfig,
  lazily(() => import("../commands/query.js").then((m) => m.history)),
).pipe(Command.withDescription("show the generations and the changesets that made them"))

export const queryCommands = [list, show, history] as const
