import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { jsonOption, lazily, rootOptions } from "./common.js"

const names = Args.text({ name: "DEP" }).pipe(Args.atLeast(1))

export const addConfig = { ...rootOptions, names }

const add = Command.make(
  "add",
  addConfig,
  lazily(() => import("../commands/provide.js").then((m) => m.add)),
).pipe(Command.withDescription("declare dependencies the base system satisfies: libc6, 'file: /bin/sh', 'soname: libc.so.6()(64bit)'"))

export const removeConfig = { ...rootOptions, names }

const remove = Command.make(
  "remove",
  removeConfig,
  lazily(() => import("../commands/provide.js").then((m) => m.remove)),
).pipe(Command.withDescription("withdraw base-system provides"))

export const listConfig = { ...rootOptions, json: jsonOption }

const list = Command.make(
  "list",
  listConfig,
  lazily(() => import("../commands/provide.js").then((m) => m.list)),
).pipe(Command.withDescription("list base-system provides"))

export const provideCommand = Command.make("provide").pipe(
  Command.withDescription("dependencies the base system satisfies"),
  Command.withSubcommands([add, remove, list]),
)
