import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { jsonOption, lazily, rootOptions } from "./common.js"

const flavorArg = Args.text({ name: "FLAVOR" })

export const showConfig = { ...rootOptions, json: jsonOption }

const show = Command.make(
  "show",
  showConfig,
  lazily(() => import("../commands/flavor.js").then((m) => m.show)),
).pipe(Command.withDescription("print the system flavor"))

export const setConfig = { ...rootOptions, flavor: flavorArg }

const set = Command.make(
  "set",
  setConfig,
  lazily(() => import("../commands/flavor.js").then((m) => m.set)),
).pipe(Command.withDescription("replace the system flavor, e.g. 'ssl,~!gtk is: x86_64'"))

export const addConfig = { ...rootOptions, flavor: flavorArg }

const add = Command.make(
  "add",
  addConfig,
  lazily(() => import("../commands/flavor.js").then((m) => m.add)),
).pipe(Command.withDescription("add or change flags of the system flavor"))

export const removeConfig = { ...rootOptions, flavor: flavorArg }

const remove = Command.make(
  "remove",
  removeConfig,
  lazily(() => import("../commands/flavor.js").then((m) => m.remove)),
).pipe(Command.withDescription("remove flags (or instruction sets) from the system flavor"))

export const flavorCommand = Command.make("flavor").pipe(
  Command.withDescription("the system flavor the planner matches troves against"),
  Command.withSubcommands([show, set, add, remove]),
)
