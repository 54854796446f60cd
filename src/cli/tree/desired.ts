import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"

const specs = Args.text({ name: "SPEC" }).pipe(Args.atLeast(1))

export const addConfig = { ...rootOptions, specs }

const add = Command.make(
  "add",
  addConfig,
  lazily(() => import("../commands/desired.js").then((m) => m.add)),
).pipe(Command.withDescription("add desired troves: name, name:component, name=version, 'name[flavor]', group/member (a group's optional member)"))

export const removeConfig = { ...rootOptions, specs }

const remove = Command.make(
  "remove",
  removeConfig,
  lazily(() => import("../commands/desired.js").then((m) => m.remove)),
).pipe(Command.withDescription("remove desired troves by name or name:component"))

export const listConfig = { ...rootOptions, json: jsonOption }

const list = Command.make(
  "list",
  listConfig,
  lazily(() => import("../commands/desired.js").then((m) => m.list)),
).pipe(Command.withDescription("list desired troves"))

export const setConfig = {
  ...rootOptions,
  file: Options.text("file").pipe(Options.withDescription("JSON document, or - for standard input")),
}

const set = Command.make(
  "set",
  setConfig,
  lazily(() => import("../commands/desired.js").then((m) => m.set)),
).pipe(Command.withDescription("replace the whole desired state from a JSON document, atomically"))

const exportCommand = Command.make(
  "export",
  rootOptions,
  lazily(() => import("../commands/desired.js").then((m) => m.exportDesired)),
).pipe(Command.withDescription("print the desired state as the JSON document `desired set` takes"))

export const desiredCommand = Command.make("desired").pipe(
  Command.withDescription("the desired state: which troves the root should have"),
  Command.withSubcommands([add, remove, list, set, exportCommand]),
)
