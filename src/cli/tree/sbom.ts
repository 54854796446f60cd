import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { lazily, rootOptions } from "./common.js"

export const sbomConfig = {
  ...rootOptions,
  format: Options.choice("format", ["cyclonedx", "spdx"]).pipe(
    Options.withDescription("CycloneDX 1.6 JSON (default) or SPDX 2.3 JSON"),
    Options.withDefault("cyclonedx" as const),
  ),
  files: Options.boolean("files").pipe(Options.withDescription("list every installed file with its sha256")),
  out: Options.text("out").pipe(Options.withDescription("write the document to FILE instead of standard output"), Options.optional),
}

export const sbomCommand = Command.make(
  "sbom",
  sbomConfig,
  lazily(() => import("../commands/sbom.js").then((m) => m.writeSbom)),
).pipe(Command.withDescription("a software bill of materials of the installed troves: CycloneDX or SPDX JSON, with package URLs, licences, provenance, dependencies"))
