import * as Either from "effect/Either"
import type { Db } from "../db/connection.js"
import { desiredRows } from "../db/desired.js"
import { listSources } from "../db/sources.js"
import { currentGeneration, recordedRows } from "../db/state.js"
import { ArchiveError, SourceError } from "../errors.js"
import { ensureTargetFiles, planInputFromDb } from "./load.js"
import { plan } from "./plan.js"
import type { Resolution } from "./resolve.js"
import { type GroupDifference, groupDifferences } from "./group-state.js"
import { scanDrift } from "./verify.js"

/** One root's state in one object: what a fleet dashboard or a cron job aggregates. */
export interface RootStatus {
  readonly formatVersion: 1
  readonly root: string
  readonly generation: number
  readonly lastApply: string | null
  readonly desired: number
  readonly installed: number
  /** what `plan` would do (and the paths it must leave alone), or why it cannot */
  readonly pending:
    | { install: number; update: number; erase: number; repair: number; files: number; blocked: number }
    | { error: string }
  /** drift `verify` reports; config files changed locally are drift that apply leaves alone */
  readonly drift: { files: number; drifted: number; missing: number; config: number }
  /** where the installed set differs from the installed groups' pins (overridden ones included) */
  readonly groups: { installed: number; differences: ReadonlyArray<GroupDifference> }
  /** nothing to apply: installed state equals desired state and every drift apply would repair is repaired */
  readonly converged: boolean
  /** each source: where it is (a repository's mirrors too), when it was synced and from where; a repository's accepted metadata version and expiry, and whether it was added --insecure */
  readonly sources: ReadonlyArray<{
    name: string
    kind: string
    location: string
    mirrors: ReadonlyArray<string>
    syncedAt: string | null
    syncedFrom: string | null
    version: number | null
    expires: string | null
    insecure: boolean
  }>
}

export const rootStatus = async (db: Db, root: string, dbPath: string): Promise<RootStatus> => {
  const scan = await scanDrift(root, recordedRows(db), { full: false })
  const input = await planInputFromDb(db, root, dbPath, { refresh: true, restoreConfig: false }, scan)
  const installed = input.installed
  // Pending file counts need the manifests of troves to install: fetched as plan fetches them.
  let unfetched: string | undefined
  let resolution: Resolution | undefined
  try {
    resolution = (await ensureTargetFiles(db, input)).resolution
  } catch (e) {
    if (!(e instanceof SourceError || e instanceof ArchiveError)) throw e
    unfetched = e.message
  }
  const result = unfetched === undefined ? plan(input, resolution) : Either.left({ message: unfetched })
  const pending = Either.isRight(result)
    ? (({ install, update, erase, repair, files }) => ({ install, update, erase, repair, files, blocked: result.right.blocked.length }))(
        result.right.summary,
      )
    : { error: result.left.message }
  const last = db.prepare("SELECT created_at FROM generations ORDER BY id DESC LIMIT 1").pluck().get() as string | undefined
  return {
    formatVersion: 1,
    root,
    generation: currentGeneration(db),
    lastApply: last ?? null,
    desired: desiredRows(db).length,
    installed: installed.length,
    pending,
    drift: {
      files: scan.checked,
      drifted: scan.drift.length,
      missing: scan.drift.filter((d) => d.missing).length,
      config: scan.drift.filter((d) => d.config).length,
    },
    groups: {
      installed: installed.filter((i) => input.groups?.has(i.trove.id)).length,
      differences: groupDifferences(installed, input.groups ?? new Map(), input.desired),
    },
    converged: "files" in pending && pending.files + pending.install + pending.update + pending.erase + pending.blocked === 0,
    sources: listSources(db).map((s) => ({
      name: s.name,
      kind: s.kind,
      location: s.location,
      mirrors: s.mirrors,
      syncedAt: s.syncedAt,
      syncedFrom: s.syncedFrom,
      version: s.kind === "repo" && s.metaVersion > 0 ? s.metaVersion : null,
      expires: s.metaExpires,
      insecure: s.insecure,
    })),
  }
}
