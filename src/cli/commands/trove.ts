import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import { builtFlavor, formatFlavor, parseFlavor } from "../../desired/flavor.js"
import { buildNativeTrove } from "../../source/native.js"
import { attempt } from "../context.js"
import { printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { buildConfig } from "../tree/trove.js"

export const build = (args: Parsed<typeof buildConfig>) =>
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
  })
