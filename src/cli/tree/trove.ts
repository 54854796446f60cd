import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily } from "./common.js"

export const buildConfig = {
  dir: Args.directory({ name: "DIR", exists: "yes" }),
  name: Options.text("name"),
  version: Options.text("trove-version").pipe(Options.withDescription("the trove's version, e.g. 1.24-1-1")),
  flavor: Options.text("flavor").pipe(
    Options.withDescription("how it was built, e.g. 'ssl,!gtk is: x86_64'; a flag built without is recorded as ~!flag"),
    Options.withDefault(""),
  ),
  requires: Options.text("requires").pipe(Options.repeated),
  provides: Options.text("provides").pipe(Options.repeated),
  noAutoDeps: Options.boolean("no-auto-deps").pipe(
    Options.withDescription("do not add the soname provides and requires of the ELF files packed"),
  ),
  license: Options.text("license").pipe(
    Options.withDescription("its licence as an SPDX expression, e.g. 'MIT' or 'GPL-2.0-or-later OR Apache-2.0' (for SBOMs)"),
    Options.optional,
  ),
  out: Options.text("out"),
  json: jsonOption,
}

const build = Command.make(
  "build",
  buildConfig,
  lazily(() => import("../commands/trove.js").then((m) => m.build)),
).pipe(Command.withDescription("pack a directory into a native trove archive"))

export const troveCommand = Command.make("trove").pipe(
  Command.withDescription("build trove archives"),
  Command.withSubcommands([build]),
)
