import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { writeOutputFile } from "../../files.js"
import { sbom } from "../../sbom/index.js"
import { attempt, withConary } from "../context.js"
import type { Parsed } from "../tree/common.js"
import type { sbomConfig } from "../tree/sbom.js"

declare const CONARY_VERSION: string

export const writeSbom = (args: Parsed<typeof sbomConfig>) =>
  withConary(args, { write: false, command: "sbom" }, (c) =>
    attempt(async () => {
      const text = await sbom(c.db, {
        format: args.format,
        files: args.files,
        version: typeof CONARY_VERSION === "string" ? CONARY_VERSION : "dev",
      })
      if (Option.isNone(args.out)) return void process.stdout.write(text)
      await writeOutputFile(path.resolve(args.out.value), (temp) => fs.writeFileSync(temp, text))
    }),
  )
