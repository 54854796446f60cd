import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"

export const buildConfig = {
  ...rootOptions,
  json: jsonOption,
  name: Options.text("name").pipe(Options.withDescription("the group's name, by convention group-…")),
  version: Options.text("trove-version").pipe(Options.withDescription("the group's version, e.g. 2026.11-1-1")),
  flavor: Options.text("flavor").pipe(Options.withDescription("the group's own flavor"), Options.withDefault("")),
  from: Options.text("from").pipe(Options.withDescription("a desired-state document (as `desired export` prints), or - for standard input"), Options.optional),
  include: Options.text("include").pipe(Options.withDescription("a member installed by default: name, name=version, 'name[flavor]', name:component"), Options.repeated),
  optional: Options.text("optional").pipe(Options.withDescription("a member installed only when a row names it (group/member)"), Options.repeated),
  out: Options.text("out"),
}

const build = Command.make(
  "build",
  buildConfig,
  lazily(() => import("../commands/group.js").then((m) => m.build)),
).pipe(Command.withDescription("resolve a desired state against the sources now and write a group of exact members (a lockfile)"))

export const groupCommand = Command.make("group").pipe(
  Command.withDescription("groups: troves of troves at exact versions, built like a lockfile"),
  Command.withSubcommands([build]),
)
