import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { writeOutputFile } from "../../files.js"
import { attempt, rootOptions, withConary } from "../context.js"

declare const CONARY_VERSION: string

export const sbomCommand = Command.make(
  "sbom",
  {
    ...rootOptions,
    format: Options.choice("format", ["cyclonedx", "spdx"]).pipe(
      Options.withDescription("CycloneDX 1.6 JSON (default) or SPDX 2.3 JSON"),
      Options.withDefault("cyclonedx" as const),
    ),
    files: Options.boolean("files").pipe(Options.withDescription("list every installed file with its sha256")),
    out: Options.text("out").pipe(Options.withDescription("write the document to FILE instead of standard output"), Options.optional),
  },
  (args) =>
    withConary(args, { write: false, command: "sbom" }, (c) =>
      attempt(async () => {
        // The SBOM libraries load only here: other commands start without them.
        const { sbom } = await import("../../sbom/index.js")
        const text = await sbom(c.db, {
          format: args.format,
          files: args.files,
          version: typeof CONARY_VERSION === "string" ? CONARY_VERSION : "dev",
        })
        if (Option.isNone(args.out)) return void process.stdout.write(text)
        await writeOutputFile(path.resolve(args.out.value), (temp) => fs.writeFileSync(temp, text))
      }),
    ),
).pipe(Command.withDescription("a software bill of materials of the installed troves: CycloneDX or SPDX JSON, with package URLs, licences, provenance, dependencies"))
