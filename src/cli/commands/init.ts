import * as Effect from "effect/Effect"
import { setSystemFlavor, systemFlavor } from "../../db/desired.js"
import { formatFlavor, machineArches } from "../../desired/flavor.js"
import { attempt, withConary } from "../context.js"
import { printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { initConfig } from "../tree/init.js"

export const init = (args: Parsed<typeof initConfig>) =>
  withConary(args, { create: true, write: true, command: "init" }, (c) =>
    Effect.gen(function* () {
      const flavor = yield* attempt(() => {
        // The instruction set comes from the machine; flags are the operator's to set.
        if (systemFlavor(c.db).arches.size === 0) {
          setSystemFlavor(c.db, { flags: systemFlavor(c.db).flags, arches: new Map(machineArches().map((a) => [a, new Map()])) })
        }
        return formatFlavor(systemFlavor(c.db))
      })
      if (args.json) return printJson({ formatVersion: 1, root: c.root, database: c.dbPath, flavor })
      println(`Initialized conary for ${c.root} (database ${c.dbPath}, system flavor '${flavor}').`)
    }),
  )
