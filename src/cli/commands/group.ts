import * as Option from "effect/Option"
import * as path from "node:path"
import { normalizeFlavor } from "../../desired/flavor.js"
import { type DesiredRow, fromDocument, parseSpec } from "../../desired/rows.js"
import { UsageError } from "../../errors.js"
import { JSON_INPUT_LIMIT, readInputFile } from "../../files.js"
import { troveLabel } from "../../model/trove.js"
import { resolveMembers } from "../../reconcile/group-build.js"
import { writeGroup } from "../../source/group.js"
import { attempt, withConary } from "../context.js"
import { count, printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { buildConfig } from "../tree/group.js"

const desiredFile = (file: string): DesiredRow[] => {
  const origin = file === "-" ? "standard input" : file
  return fromDocument(readInputFile(file === "-" ? 0 : file, JSON_INPUT_LIMIT, (reason) => new UsageError({ message: `${origin}: ${reason}` })), origin)
}

export const build = (args: Parsed<typeof buildConfig>) =>
  withConary(args, { write: false, command: "group build" }, (c) =>
    attempt(async () => {
      const rows = [...Option.match(args.from, { onNone: () => [], onSome: desiredFile }), ...args.include.map(parseSpec)]
      const members = resolveMembers(c.db, { name: args.name, rows, optional: args.optional.map(parseSpec) })
      let flavor: string
      try {
        flavor = normalizeFlavor(args.flavor)
      } catch (e) {
        throw new UsageError({ message: `group build: --flavor: ${(e as Error).message}` })
      }
      const out = path.resolve(args.out)
      const { group, digest } = await writeGroup(out, { name: args.name, version: args.version, flavor, members })
      if (args.json) return printJson({ formatVersion: 1, file: out, digest, ...group })
      println(`Built ${troveLabel(group)}: ${count(group.members.length, "member")} (${group.members.filter((m) => !m.byDefault).length} optional) -> ${out}`)
    }),
  )
