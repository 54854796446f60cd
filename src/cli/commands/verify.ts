import * as Effect from "effect/Effect"
import * as path from "node:path"
import { checkIntegrity } from "../../db/connection.js"
import { installedPaths, installedTroves, keepRefreshed, recordedRows } from "../../db/state.js"
import { NotFoundError, UsageError, printable } from "../../errors.js"
import { PROVENANCE_STATUSES, checkProvenance } from "../../reconcile/provenance.js"
import { type Scan, findUnowned, scanDrift } from "../../reconcile/verify.js"
import { desiredRows } from "../../db/desired.js"
import { groupMembers } from "../../db/troves.js"
import { differenceLine, groupDifferences } from "../../reconcile/group-state.js"
import { type Conary, attempt, withConary } from "../context.js"
import { EXIT_CHANGES, EXIT_OK } from "../exit.js"
import { count, printJson, printJsonPaced, println, table } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { verifyConfig } from "../tree/verify.js"

/** The installed troves named (all when none is); an unknown name is an error. */
const chosenTroves = (c: Conary, names: ReadonlyArray<string>): number[] | undefined => {
  const installed = installedTroves(c.db)
  for (const name of names) if (!installed.some((i) => i.trove.name === name)) throw new NotFoundError({ what: "installed trove", name })
  return names.length > 0 ? installed.filter((i) => names.includes(i.trove.name)).map((i) => i.trove.id) : undefined
}

const verifyProvenance = (c: Conary, args: { readonly troves: ReadonlyArray<string>; readonly json: boolean; readonly quiet: boolean }) =>
  Effect.gen(function* () {
    const troves = yield* attempt(() => checkProvenance(c.db, c.now(), chosenTroves(c, args.troves)))
    const counts = Object.fromEntries(PROVENANCE_STATUSES.map((s) => [s, troves.filter((t) => t.status === s).length]))
    const clean = troves.every((t) => t.status === "verified")
    if (args.json) printJson({ formatVersion: 1, clean, summary: { troves: troves.length, ...counts }, troves })
    else if (!(clean && args.quiet)) {
      const rows = troves
        .filter((t) => t.status !== "verified")
        .flatMap((t) =>
          (t.checks.length > 0 ? t.checks : [{ status: t.status, source: "-", detail: "no record of where it came from" }]).map((k) => [
            k.status,
            printable(t.trove),
            `${printable(k.source)}: ${printable(k.detail)}`,
          ]),
        )
      for (const line of table(rows)) println(line)
      const found = PROVENANCE_STATUSES.filter((s) => counts[s]! > 0).map((s) => `${counts[s]} ${s}`)
      println(`Checked the provenance of ${count(troves.length, "trove")}: ${found.join(", ") || "none installed"}.`)
    }
    process.exitCode = clean ? EXIT_OK : EXIT_CHANGES
  })

export const verify = (args: Parsed<typeof verifyConfig>) =>
  withConary(args, { write: false, command: "verify" }, (c) =>
    Effect.gen(function* () {
      if (args.provenance && (args.full || args.unowned))
        return yield* Effect.fail(new UsageError({ message: "verify --provenance checks troves against their sources, not files: drop --full and --unowned" }))
      if (args.provenance) return yield* verifyProvenance(c, args)
      const result = yield* attempt(async () => {
        // Drift in the records is worse than drift on disk: every page and index is checked, while the
        // workers scan, and its failure is what is reported, whatever else failed.
        let checked = false
        const integrity = () => {
          checkIntegrity(c.db, c.dbPath, "integrity_check")
          checked = true
        }
        let ids: number[] | undefined
        let scan: Scan
        try {
          ids = chosenTroves(c, args.troves)
          scan = await scanDrift(c.root, recordedRows(c.db, ids && { troveIds: ids }), {
            full: args.full,
            meanwhile: integrity,
            keep: (rows) => keepRefreshed(c.db, rows),
          })
        } catch (e) {
          if (!checked) integrity()
          throw e
        }
        const owned = args.unowned ? installedPaths(c.db) : undefined
        const unowned = owned ? findUnowned(c.root, owned.all, owned.dirs, "/" + path.relative(c.root, path.dirname(c.dbPath))) : []
        // The installed set against the installed groups' pins (of the named troves, when some are named).
        const installed = installedTroves(c.db)
        const groups = groupDifferences(installed, groupMembers(c.db), desiredRows(c.db)).filter(
          (d) => args.troves.length === 0 || args.troves.some((t) => d.group.startsWith(t + "=")),
        )
        return { scan, unowned, groups, troves: ids?.length ?? installed.length }
      })
      const { scan, unowned, groups } = result
      const missing = scan.drift.filter((d) => d.missing).length
      // An overridden pin is the admin's intent: reported, not drift.
      const groupDrift = groups.filter((d) => d.state !== "overridden").length
      const clean = scan.drift.length === 0 && unowned.length === 0 && groupDrift === 0
      const summary = {
        troves: result.troves,
        files: scan.checked,
        hashed: scan.hashed,
        drifted: scan.drift.length,
        missing,
        unowned: unowned.length,
        groupDifferences: groupDrift,
        refreshed: scan.refreshed,
      }
      if (args.json) {
        yield* Effect.promise(() =>
          printJsonPaced({
            formatVersion: 1,
            clean,
            summary,
            drift: scan.drift.map(({ path: p, trove, flags, config, missing: m, localSha256 }) => ({ path: p, trove, flags, config, missing: m, localSha256 })),
            ...(args.unowned ? { unowned } : {}),
            groups,
          }),
        )
      } else if (!(clean && args.quiet)) {
        for (const d of scan.drift) println(`${d.missing ? "missing  " : d.flags}  ${d.config ? "c" : " "} ${printable(d.path)}`)
        for (const u of unowned) println(`unowned      ${printable(u)}`)
        for (const d of groups) println(`group        ${printable(differenceLine(d))}`)
        // After restoring an older database these are what it forgot: say plainly that nothing rebuilds them.
        if (unowned.length > 0)
          println(`Unowned entries have no records, and conary cannot rebuild any: remove them, or install the trove that ships them (apply saves what it finds there before replacing it).`)
        if (!args.quiet || !clean)
          println(
            `Verified ${count(scan.checked, "file")} of ${count(result.troves, "trove")}: ` +
              (clean
                ? "no drift."
                : `${count(scan.drift.length, "file")} drifted (${missing} missing)${args.unowned ? `, ${unowned.length} unowned` : ""}` +
                  `${groupDrift > 0 ? `; ${count(groupDrift, "group member")} not as pinned` : ""}.`),
          )
      }
      process.exitCode = clean ? EXIT_OK : EXIT_CHANGES
    }),
  )
