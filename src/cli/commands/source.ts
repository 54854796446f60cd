import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { addSource, listSources, removeSource } from "../../db/sources.js"
import { NotFoundError, UsageError } from "../../errors.js"
import { syncSource } from "../../source/sync.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { printJson, println, table } from "../format.js"

const add = Command.make(
  "add",
  { ...rootOptions, json: jsonOption, name: Args.text({ name: "NAME" }), location: Args.text({ name: "DIR" }) },
  (args) =>
    withConary(args, { write: true, command: "source add" }, (c) =>
      attempt(() => {
        const location = path.resolve(args.location)
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(args.name)) throw new UsageError({ message: `bad source name '${args.name}'` })
        if (!fs.existsSync(location) || !fs.statSync(location).isDirectory())
          throw new UsageError({ message: `source ${args.name}: ${location} is not a directory` })
        if (!addSource(c.db, args.name, "dir", location, c.now()))
          throw new UsageError({ message: `source ${args.name} exists already` })
        if (args.json) printJson({ formatVersion: 1, name: args.name, kind: "dir", location })
        else println(`Added source ${args.name} (${location}). Run \`conary source sync\` to index it.`)
      }),
    ),
).pipe(Command.withDescription("add a directory of trove archives as a source"))

const list = Command.make("list", { ...rootOptions, json: jsonOption }, (args) =>
  withConary(args, { write: false, command: "source list" }, (c) =>
    attempt(() => {
      const sources = listSources(c.db)
      if (args.json) return printJson({ formatVersion: 1, sources })
      if (sources.length === 0) return println("No sources.")
      for (const line of table([
        ["NAME", "KIND", "TROVES", "SYNCED", "LOCATION"],
        ...sources.map((s) => [s.name, s.kind, String(s.troves), s.syncedAt ?? "never", s.location]),
      ]))
        println(line)
    }),
  ),
).pipe(Command.withDescription("list sources"))

const remove = Command.make("remove", { ...rootOptions, name: Args.text({ name: "NAME" }) }, (args) =>
  withConary(args, { write: true, command: "source remove" }, (c) =>
    attempt(() => {
      if (!removeSource(c.db, args.name)) throw new NotFoundError({ what: "source", name: args.name })
      println(`Removed source ${args.name}.`)
    }),
  ),
).pipe(Command.withDescription("remove a source and its index"))

const sync = Command.make(
  "sync",
  { ...rootOptions, json: jsonOption, names: Args.text({ name: "NAME" }).pipe(Args.repeated) },
  (args) =>
    withConary(args, { write: true, command: "source sync" }, (c) =>
      Effect.gen(function* () {
        const all = listSources(c.db)
        for (const n of args.names) if (!all.some((s) => s.name === n)) yield* Effect.fail(new NotFoundError({ what: "source", name: n }))
        const chosen = args.names.length > 0 ? all.filter((s) => args.names.includes(s.name)) : all
        const results = []
        for (const source of chosen) results.push(yield* attempt(() => syncSource(c.db, source, c.now(), c.report)))
        if (args.json) return printJson({ formatVersion: 1, sources: results })
        if (results.length === 0) return println("No sources to sync.")
        for (const r of results) println(`${r.source}: ${r.troves} troves (${r.added} new or changed, ${r.removed} gone)`)
      }),
    ),
).pipe(Command.withDescription("index the troves each source offers (metadata only)"))

export const sourceCommand = Command.make("source").pipe(
  Command.withDescription("manage trove sources"),
  Command.withSubcommands([add, list, remove, sync]),
)
