import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { addSource, listSources, removeSource } from "../../db/sources.js"
import { BadArchivesError, NotFoundError, UsageError } from "../../errors.js"
import { isHttp } from "../../source/remote.js"
import { publicKeyString } from "../../source/repo.js"
import { TOP, V1_INDEX } from "../../source/repo-meta.js"
import { syncSource } from "../../source/sync.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { printJson, println, table } from "../format.js"

const add = Command.make(
  "add",
  {
    ...rootOptions,
    json: jsonOption,
    trust: Options.text("trust").pipe(
      Options.withDescription("ed25519 public key (a .pub file or its text): the repository's index must be signed with it"),
      Options.optional,
    ),
    insecure: Options.boolean("insecure").pipe(
      Options.withDescription("accept a repository's metadata unsigned (anyone between you and it can change what you install); `status` shows it"),
    ),
    name: Args.text({ name: "NAME" }),
    location: Args.text({ name: "DIR|URL" }),
  },
  (args) =>
    withConary(args, { write: true, command: "source add" }, (c) =>
      attempt(() => {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(args.name)) throw new UsageError({ message: `bad source name '${args.name}'` })
        const http = isHttp(args.location)
        const location = http ? args.location.replace(/\/+$/, "") : path.resolve(args.location)
        if (!http && (!fs.existsSync(location) || !fs.statSync(location).isDirectory()))
          throw new UsageError({ message: `source ${args.name}: ${location} is not a directory or an http(s) URL` })
        // A repository (over HTTP, or a directory with its top document); otherwise a directory of archives.
        if (!http && fs.existsSync(path.join(location, V1_INDEX)) && !fs.existsSync(path.join(location, TOP)))
          throw new UsageError({
            message: `source ${args.name}: ${location} is a format version 1 repository (${V1_INDEX}); this conary reads version 2: rebuild it with \`conary repo build\``,
          })
        const kind = http || fs.existsSync(path.join(location, TOP)) ? "repo" : "dir"
        const trust = args.trust
        const trustKey = Option.isSome(trust) ? publicKeyString(trust.value) : null
        if ((trustKey || args.insecure) && kind !== "repo")
          throw new UsageError({ message: `source ${args.name}: --trust and --insecure are for repositories (built by \`conary repo build\`)` })
        if (trustKey && args.insecure) throw new UsageError({ message: `source ${args.name}: give --trust KEY or --insecure, not both` })
        if (kind === "repo" && !trustKey && !args.insecure)
          throw new UsageError({
            message: `source ${args.name}: a repository needs --trust KEY (its signing key's .pub), or --insecure to accept unsigned metadata`,
          })
        if (!addSource(c.db, { name: args.name, kind, location, trustKey, insecure: args.insecure }, c.now()))
          throw new UsageError({ message: `source ${args.name} exists already` })
        if (args.json) printJson({ formatVersion: 1, name: args.name, kind, location, trustKey, insecure: args.insecure })
        else
          println(
            `Added ${kind === "repo" ? "repository" : "source"} ${args.name} (${location}${trustKey ? ", signed metadata required" : args.insecure ? ", INSECURE: unsigned metadata accepted" : ""}). Run \`conary source sync\` to index it.`,
          )
      }),
    ),
).pipe(Command.withDescription("add a source: a directory of trove archives, or a repository (directory or http(s) URL)"))

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
  {
    ...rootOptions,
    json: jsonOption,
    allowExpired: Options.boolean("allow-expired").pipe(Options.withDescription("accept a repository's expired metadata (labs; it may hide a frozen mirror)")),
    names: Args.text({ name: "NAME" }).pipe(Args.repeated),
  },
  (args) =>
    withConary(args, { write: true, command: "source sync" }, (c) =>
      Effect.gen(function* () {
        const all = listSources(c.db)
        for (const n of args.names) if (!all.some((s) => s.name === n)) yield* Effect.fail(new NotFoundError({ what: "source", name: n }))
        const chosen = args.names.length > 0 ? all.filter((s) => args.names.includes(s.name)) : all
        const results = []
        for (const source of chosen) results.push(yield* attempt(() => syncSource(c.db, source, c.now(), c.report, { allowExpired: args.allowExpired })))
        const bad = results.flatMap((r) => r.bad)
        if (args.json) printJson({ formatVersion: 1, sources: results.map(({ bad, ...r }) => ({ ...r, bad: bad.map((e) => ({ archive: e.archive, reason: e.reason })) })) })
        else if (results.length === 0) println("No sources to sync.")
        else for (const r of results) println(
              `${r.source}: ${r.troves} troves (${r.added} new or changed, ${r.removed} gone${r.bad.length > 0 ? `, ${r.bad.length} unreadable` : ""})` +
                (r.metadata ? `; metadata version ${r.metadata.version}, expires ${r.metadata.expires}` : ""),
            )
        if (bad.length > 0) yield* Effect.fail(new BadArchivesError({ problems: bad }))
      }),
    ),
).pipe(Command.withDescription("index the troves each source offers (metadata only)"))

export const sourceCommand = Command.make("source").pipe(
  Command.withDescription("manage trove sources"),
  Command.withSubcommands([add, list, remove, sync]),
)
