import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"
import { refreshOptions } from "./plan.js"

export const rollbackConfig = { ...rootOptions, ...refreshOptions, json: jsonOption, generation: Args.integer({ name: "GENERATION" }).pipe(Args.optional) }

const rollback = Command.make(
  "rollback",
  rollbackConfig,
  lazily(() => import("../commands/generations.js").then((m) => m.rollback)),
).pipe(Command.withDescription("return to an earlier generation (default: the previous one), as a new generation; works offline"))

export const recoverConfig = { ...rootOptions, json: jsonOption }

const recover = Command.make(
  "recover",
  recoverConfig,
  lazily(() => import("../commands/generations.js").then((m) => m.recover)),
).pipe(Command.withDescription("finish or undo an interrupted apply (every command does this first)"))

export const gcConfig = {
  ...rootOptions,
  json: jsonOption,
  keep: Options.integer("keep").pipe(Options.withDescription("generations to keep, the current one included"), Options.withDefault(5)),
}

const gc = Command.make(
  "gc",
  gcConfig,
  lazily(() => import("../commands/generations.js").then((m) => m.gc)),
).pipe(Command.withDescription("forget old generations and delete store contents nothing kept refers to"))

export const generationCommands = [rollback, recover, gc] as const
