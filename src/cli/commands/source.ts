import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { addSource, listSources, removeSource } from "../../db/sources.js"
import { BadArchivesError, NotFoundError, UsageError } from "../../errors.js"
import { isHttp } from "../../source/remote.js"
import { publicKeyString } from "../../source/repo.js"
import { FORMAT_VERSION, TOP, V1_INDEX } from "../../source/repo-meta.js"
import { syncSource } from "../../source/sync.js"
import { attempt, withConary } from "../context.js"
import { printJson, println, table } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { addConfig, listConfig, removeConfig, syncConfig } from "../tree/source.js"

export const add = (args: Parsed<typeof addConfig>) =>
  withConary(args, { write: true, command: "source add" }, (c) =>
    attempt(() => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(args.name)) throw new UsageError({ message: `bad source name '${args.name}'` })
      const [location, ...mirrors] = [...args.locations, ...args.mirror].map((l) => {
        if (isHttp(l)) {
          if (!URL.canParse(l)) throw new UsageError({ message: `source ${args.name}: '${l}' is not a valid URL` })
          return l.replace(/\/+$/, "")
        }
        const dir = path.resolve(l)
        if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
          throw new UsageError({ message: `source ${args.name}: ${dir} is not a directory or an http(s) URL` })
        // A repository (over HTTP, or a directory with its top document); otherwise a directory of archives.
        if (fs.existsSync(path.join(dir, V1_INDEX)) && !fs.existsSync(path.join(dir, TOP)))
          throw new UsageError({
            message: `source ${args.name}: ${dir} is a format version 1 repository (${V1_INDEX}); this conary reads version ${FORMAT_VERSION}: rebuild it with \`conary repo build\``,
          })
        return dir
      }) as [string, ...string[]]
      const kind = isHttp(location) || fs.existsSync(path.join(location, TOP)) ? "repo" : "dir"
      if (kind !== "repo" && mirrors.length > 0)
        throw new UsageError({ message: `source ${args.name}: mirrors need a repository (built by \`conary repo build\`); ${location} is a directory of archives` })
      const trust = args.trust
      const trustKey = Option.isSome(trust) ? publicKeyString(trust.value) : null
      if ((trustKey || args.insecure) && kind !== "repo")
        throw new UsageError({ message: `source ${args.name}: --trust and --insecure are for repositories (built by \`conary repo build\`)` })
      if (trustKey && args.insecure) throw new UsageError({ message: `source ${args.name}: give --trust KEY or --insecure, not both` })
      if (kind === "repo" && !trustKey && !args.insecure)
        throw new UsageError({
          message: `source ${args.name}: a repository needs --trust KEY (its signing key's .pub), or --insecure to accept unsigned metadata`,
        })
      if (!addSource(c.db, { name: args.name, kind, location, mirrors, trustKey, insecure: args.insecure }, c.now()))
        throw new UsageError({ message: `source ${args.name} exists already` })
      if (args.json) printJson({ formatVersion: 1, name: args.name, kind, location, mirrors, trustKey, insecure: args.insecure })
      else {
        const also = mirrors.length > 0 ? `, ${mirrors.length === 1 ? "mirror" : "mirrors"} ${mirrors.join(" ")}` : ""
        const trusted = trustKey ? ", signed metadata required" : args.insecure ? ", INSECURE: unsigned metadata accepted" : ""
        println(`Added ${kind === "repo" ? "repository" : "source"} ${args.name} (${location}${also}${trusted}). Run \`conary source sync\` to index it.`)
      }
    }),
  )

export const list = (args: Parsed<typeof listConfig>) =>
  withConary(args, { write: false, command: "source list" }, (c) =>
    attempt(() => {
      const sources = listSources(c.db)
      if (args.json) return printJson({ formatVersion: 1, sources })
      if (sources.length === 0) return println("No sources.")
      for (const line of table([
        ["NAME", "KIND", "TROVES", "SYNCED", "LOCATION"],
        ...sources.flatMap((s) => [
          [s.name, s.kind, String(s.troves), s.syncedAt ?? "never", `${s.location}${s.syncedFrom === s.location && s.mirrors.length > 0 ? " (synced from)" : ""}`],
          // Mirrors on lines of their own, under the location they stand in for.
          ...s.mirrors.map((m) => ["", "", "", "", `mirror ${m}${s.syncedFrom === m ? " (synced from)" : ""}`]),
        ]),
      ]))
        println(line)
    }),
  )

export const remove = (args: Parsed<typeof removeConfig>) =>
  withConary(args, { write: true, command: "source remove" }, (c) =>
    attempt(() => {
      if (!removeSource(c.db, args.name)) throw new NotFoundError({ what: "source", name: args.name })
      println(`Removed source ${args.name}.`)
    }),
  )

export const sync = (args: Parsed<typeof syncConfig>) =>
  withConary(args, { write: true, command: "source sync" }, (c) =>
    Effect.gen(function* () {
      const all = listSources(c.db)
      for (const n of args.names) if (!all.some((s) => s.name === n)) yield* Effect.fail(new NotFoundError({ what: "source", name: n }))
      const chosen = args.names.length > 0 ? all.filter((s) => args.names.includes(s.name)) : all
      const results = []
      for (const source of chosen) results.push(yield* attempt(() => syncSource(c.db, source, c.now(), c.report, { allowExpired: args.allowExpired }, c.store)))
      const bad = results.flatMap((r) => r.bad)
      if (args.json) printJson({ formatVersion: 1, sources: results.map(({ bad, ...r }) => ({ ...r, bad: bad.map((e) => ({ archive: e.archive, reason: e.reason })) })) })
      else if (results.length === 0) println("No sources to sync.")
      else
        for (const r of results) {
          for (const skip of r.skipped ?? []) println(`${r.source}: skipped mirror ${skip}`)
          const from = (r.skipped ?? []).length > 0 ? ` from ${r.from}` : ""
          const meta = r.metadata ? `; metadata version ${r.metadata.version}, expires ${r.metadata.expires}` : ""
          if (r.unchanged) println(`${r.source}: ${r.troves} troves (metadata unchanged${from})${meta}`)
          else println(`${r.source}: ${r.troves} troves (${r.added} new or changed, ${r.removed} gone${r.bad.length > 0 ? `, ${r.bad.length} unreadable` : ""})${from}${meta}`)
        }
      if (bad.length > 0) yield* Effect.fail(new BadArchivesError({ problems: bad }))
    }),
  )
