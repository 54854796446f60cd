import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Option from "effect/Option"
import * as path from "node:path"
import { normalizeFlavor } from "../../desired/flavor.js"
import { type DesiredRow, fromDocument, parseSpec } from "../../desired/rows.js"
import { UsageError } from "../../errors.js"
import { JSON_INPUT_LIMIT, readInputFile } from "../../files.js"
import { troveLabel } from "../../model/trove.js"
import { resolveMembers } from "../../reconcile/group-build.js"
import { writeGroup } from "../../source/group.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { count, printJson, println } from "../format.js"

const desiredFile = (file: string): DesiredRow[] => {
  const origin = file === "-" ? "standard input" : file
  return fromDocument(readInputFile(file === "-" ? 0 : file, JSON_INPUT_LIMIT, (reason) => new UsageError({ message: `${origin}: ${reason}` })), origin)
}

const build = Command.make(
  "build",
  {
    ...rootOptions,
    json: jsonOption,
    name: Options.text("name").pipe(Options.withDescription("the group's name, by convention group-…")),
    version: Options.text("trove-version").pipe(Options.withDescription("the group's version, e.g. 2026.11-1-1")),
    flavor: Options.text("flavor").pipe(Options.withDescription("the group's own flavor"), Options.withDefault("")),
    from: Options.text("from").pipe(Options.withDescription("a desired-state document (as `desired export` prints), or - for standard input"), Options.optional),
    include: Options.text("include").pipe(Options.withDescription("a member installed by default: name, name=version, 'name[flavor]', name:component"), Options.repeated),
    optional: Options.text("optional").pipe(Options.withDescription("a member installed only when a row names it (group/member)"), Options.repeated),
    out: Options.text("out"),
  },
  (args) =>
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
    ),
).pipe(Command.withDescription("resolve a desired state against the sources now and write a group of exact members (a lockfile)"))

export const groupCommand = Command.make("group").pipe(
  Command.withDescription("groups: troves of troves at exact versions, built like a lockfile"),
  Command.withSubcommands([build]),
)
