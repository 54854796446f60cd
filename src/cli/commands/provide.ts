import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { addProvides, removeProvides, systemProvides } from "../../db/desired.js"
import { UsageError } from "../../errors.js"
import { depKey, parseDep } from "../../model/trove.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { printJson, println } from "../format.js"

const names = Args.text({ name: "DEP" }).pipe(Args.atLeast(1))

/** A provide's canonical key (`libc6`, `file: /bin/sh`, `soname: libz.so.1()(64bit)`), or undefined: versions are not taken. */
const provideKey = (text: string): string | undefined => {
  const d = parseDep(text)
  return d === undefined || d.relation !== undefined ? undefined : depKey(d)
}

const add = Command.make("add", { ...rootOptions, names }, (args) =>
  withConary(args, { write: true, command: "provide add" }, (c) =>
    attempt(() => {
      const bad = args.names.find((n) => provideKey(n) === undefined)
      if (bad !== undefined)
        throw new UsageError({ message: `bad provide '${bad}': expected a name, 'file: /absolute/path' or 'soname: libfoo.so.1()(64bit)'` })
      const provides = args.names.map((n) => provideKey(n)!)
      addProvides(c.db, provides)
      println(`The base system provides: ${provides.join(", ")}`)
    }),
  ),
).pipe(Command.withDescription("declare dependencies the base system satisfies: libc6, 'file: /bin/sh', 'soname: libc.so.6()(64bit)'"))

const remove = Command.make("remove", { ...rootOptions, names }, (args) =>
  withConary(args, { write: true, command: "provide remove" }, (c) =>
    attempt(() => {
      // As written and as canonical: rows stored before classes existed are written as they were given.
      removeProvides(c.db, [...args.names, ...args.names.map((n) => provideKey(n) ?? n)])
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
