import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { addProvides, removeProvides, systemProvides } from "../../db/desired.js"
import { UsageError } from "../../errors.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { printJson, println } from "../format.js"

const names = Args.text({ name: "NAME" }).pipe(Args.atLeast(1))
const NAME = /^[A-Za-z0-9][A-Za-z0-9+._:-]*$/

const add = Command.make("add", { ...rootOptions, names }, (args) =>
  withConary(args, { write: true, command: "provide add" }, (c) =>
    attempt(() => {
      const bad = args.names.find((n) => !NAME.test(n))
      if (bad !== undefined) throw new UsageError({ message: `bad dependency name '${bad}'` })
      addProvides(c.db, args.names)
      println(`The base system provides: ${args.names.join(", ")}`)
    }),
  ),
).pipe(Command.withDescription("declare dependencies the base system satisfies (e.g. libc6)"))

const remove = Command.make("remove", { ...rootOptions, names }, (args) =>
  withConary(args, { write: true, command: "provide remove" }, (c) =>
    attempt(() => {
      removeProvides(c.db, args.names)
      println(`No longer provided by the base system: ${args.names.join(", ")}`)
    }),
  ),
).pipe(Command.withDescription("withdraw base-system provides"))

const list = Command.make("list", { ...rootOptions, json: jsonOption }, (args) =>
  withConary(args, { write: false, command: "provide list" }, (c) =>
    attempt(() => {
      const provides = [...systemProvides(c.db)]
      if (args.json) return printJson({ formatVersion: 1, provides })
      for (const p of provides) println(p)
    }),
  ),
).pipe(Command.withDescription("list base-system provides"))

export const provideCommand = Command.make("provide").pipe(
  Command.withDescription("dependencies the base system satisfies"),
  Command.withSubcommands([add, remove, list]),
)
