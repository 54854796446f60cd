import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { checkIntegrity } from "../../db/connection.js"
import { installedPaths, installedTroves, keepRefreshed, recordedFiles } from "../../db/state.js"
import { NotFoundError, printable } from "../../errors.js"
import { findUnowned, scanDrift } from "../../reconcile/verify.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { EXIT_CHANGES, EXIT_OK } from "../exit.js"
import { count, printJson, println } from "../format.js"

export const verifyCommand = Command.make(
  "verify",
  {
    ...rootOptions,
    json: jsonOption,
    full: Options.boolean("full").pipe(Options.withDescription("hash every file, not only those whose stat changed")),
    unowned: Options.boolean("unowned").pipe(Options.withDescription("also list entries in owned directories that no trove owns")),
    quiet: Options.boolean("quiet").pipe(Options.withAlias("q"), Options.withDescription("print nothing when clean")),
    troves: Args.text({ name: "TROVE" }).pipe(Args.repeated),
  },
  (args) =>
    withConary(args, { write: false, command: "verify" }, (c) =>
      Effect.gen(function* () {
        const result = yield* attempt(async () => {
          // Drift in the records is worse than drift on disk: check every page and index first.
          checkIntegrity(c.db, c.dbPath, "integrity_check")
          const installed = installedTroves(c.db)
          for (const name of args.troves)
            if (!installed.some((i) => i.trove.name === name)) throw new NotFoundError({ what: "installed trove", name })
          const ids = args.troves.length > 0 ? installed.filter((i) => args.troves.includes(i.trove.name)).map((i) => i.trove.id) : undefined
          const scan = await scanDrift(c.root, recordedFiles(c.db, ids), { full: args.full })
          keepRefreshed(c.db, { dbPath: c.dbPath, root: c.root, command: "verify", holdsLock: false }, scan.refresh)
          const owned = args.unowned ? installedPaths(c.db) : undefined
          const unowned = owned ? findUnowned(c.root, owned.all, owned.dirs, "/" + path.relative(c.root, path.dirname(c.dbPath))) : []
          return { scan, unowned, troves: ids?.length ?? installed.length }
        })
        const { scan, unowned } = result
        const missing = scan.drift.filter((d) => d.missing).length
        const clean = scan.drift.length === 0 && unowned.length === 0
        const summary = {
          troves: result.troves,
          files: scan.checked,
          hashed: scan.hashed,
          drifted: scan.drift.length,
          missing,
          unowned: unowned.length,
          refreshed: scan.refresh.length,
        }
        if (args.json) {
          printJson({
            formatVersion: 1,
            clean,
            summary,
            drift: scan.drift.map(({ path: p, trove, flags, config, missing: m, localSha256 }) => ({ path: p, trove, flags, config, missing: m, localSha256 })),
            ...(args.unowned ? { unowned } : {}),
          })
        } else if (!(clean && args.quiet)) {
          for (const d of scan.drift) println(`${d.missing ? "missing  " : d.flags}  ${d.config ? "c" : " "} ${printable(d.path)}`)
          for (const u of unowned) println(`unowned      ${printable(u)}`)
          // After restoring an older database these are what it forgot: say plainly that nothing rebuilds them.
          if (unowned.length > 0)
            println(`Unowned entries have no records, and conary cannot rebuild any: remove them, or install the trove that ships them (apply saves what it finds there before replacing it).`)
          if (!args.quiet || !clean)
            println(
              `Verified ${count(scan.checked, "file")} of ${count(result.troves, "trove")}: ` +
                (clean ? "no drift." : `${count(scan.drift.length, "file")} drifted (${missing} missing)${args.unowned ? `, ${unowned.length} unowned` : ""}.`),
            )
        }
        process.exitCode = clean ? EXIT_OK : EXIT_CHANGES
      }),
    ),
).pipe(Command.withDescription("compare installed files with what was recorded (exit 0 clean, 2 drift, 1 error)"))
