import { addProvides, removeProvides, systemProvides } from "../../db/desired.js"
import { UsageError } from "../../errors.js"
import { depKey, parseDep } from "../../model/trove.js"
import { attempt, withConary } from "../context.js"
import { printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { addConfig, listConfig, removeConfig } from "../tree/provide.js"

/** A provide's canonical key (`libc6`, `file: /bin/sh`, `soname: libz.so.1()(64bit)`), or undefined: versions are not taken. */
const provideKey = (text: string): string | undefined => {
  const d = parseDep(text)
  return d === undefined || d.relation !== undefined ? undefined : depKey(d)
}

export const add = (args: Parsed<typeof addConfig>) =>
  withConary(args, { write: true, command: "provide add" }, (c) =>
    attempt(() => {
      const bad = args.names.find((n) => provideKey(n) === undefined)
      if (bad !== undefined)
        throw new UsageError({ message: `bad provide '${bad}': expected a name, 'file: /absolute/path' or 'soname: libfoo.so.1()(64bit)'` })
      const provides = args.names.map((n) => provideKey(n)!)
      addProvides(c.db, provides)
      println(`The base system provides: ${provides.join(", ")}`)
    }),
  )

export const remove = (args: Parsed<typeof removeConfig>) =>
  withConary(args, { write: true, command: "provide remove" }, (c) =>
    attempt(() => {
      // As written and as canonical: rows stored before classes existed are written as they were given.
      removeProvides(c.db, [...args.names, ...args.names.map((n) => provideKey(n) ?? n)])
      println(`No longer provided by the base system: ${args.names.join(", ")}`)
    }),
  )

export const list = (args: Parsed<typeof listConfig>) =>
  withConary(args, { write: false, command: "provide list" }, (c) =>
    attempt(() => {
      const provides = [...systemProvides(c.db)]
      if (args.json) return printJson({ formatVersion: 1, provides })
      for (const p of provides) println(p)
    }),
  )
