import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import { builtFlavor, formatFlavor, parseFlavor } from "../../desired/flavor.js"
import { buildNativeTrove } from "../../source/native.js"
import { attempt, jsonOption } from "../context.js"
import { printJson, println } from "../format.js"

const build = Command.make(
  "build",
  {
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
  },
  (args) =>
    Effect.gen(function* () {
      const trove = yield* attempt(() =>
        buildNativeTrove(
          args.dir,
          {
            name: args.name,
            version: args.version,
            flavor: formatFlavor(builtFlavor(parseFlavor(args.flavor))),
            requires: args.requires,
            provides: args.provides,
            autoDeps: !args.noAutoDeps,
            ...Option.match(args.license, { onNone: () => ({}), onSome: (license) => ({ license }) }),
          },
          path.resolve(args.out),
        ),
      )
      const summary = {
        formatVersion: 1,
        archive: path.resolve(args.out),
        name: trove.name,
        version: trove.version,
        flavor: trove.flavor,
        files: trove.files.length,
        requires: trove.requires,
        provides: trove.provides,
        license: trove.license ?? null,
        digest: trove.digest,
      }
      if (args.json) return printJson(summary)
      println(`Built ${trove.name}=${trove.version}${trove.flavor ? `[${trove.flavor}]` : ""}: ${trove.files.length} entries -> ${summary.archive}`)
    }),
).pipe(Command.withDescription("pack a directory into a native trove archive"))

export const troveCommand = Command.make("trove").pipe(
  Command.withDescription("build trove archives"),
  Command.withSubcommands([build]),
)
