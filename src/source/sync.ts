import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import { type SourceRow, knownArchives, locationsOf } from "../db/sources.js"
import { type NewTrove, upsertTrove } from "../db/troves.js"
import { type ArchiveError, SourceError } from "../errors.js"
import type { Report } from "../model/report.js"
import { type ContentStore, writeBehind } from "../store/store.js"
import { isTroveArchive } from "./formats.js"
import { LanesFailed } from "./archive-lanes.js"
import { archiveErrorOf, readArchives } from "./read-archives.js"
import { type RepoSyncOptions, syncRepoV2 } from "./repo-client.js"

export interface SyncResult {
  readonly source: string
  readonly troves: number
  readonly added: number
  readonly removed: number
  /** archives that could not be read, each with its reason; not indexed */
  readonly bad: ReadonlyArray<ArchiveError>
  /** a repository's metadata version and expiry, as accepted */
  readonly metadata?: { readonly version: number; readonly expires: string }
  /** a repository: the base location that served the metadata, whether it was unchanged, and mirrors skipped (with why) */
  readonly from?: string
  readonly unchanged?: boolean
  readonly skipped?: ReadonlyArray<string>
}

/**
 * Indexes a directory source: reads the manifest of every archive that is new
 * or changed (by size and mtime), then records them all in one transaction.
 * An archive that cannot be read is left out (and dropped from the index if
 * it was there) and reported; it does not keep the others from being indexed.
 * With `store`, the contents a package's payload is decompressed for (to hash
 * them) go into the store on the way, so apply only copies them out.
 */
export const syncSource = async (
  db: Db,
  source: SourceRow,
  now: string,
  report: Report,
  options: RepoSyncOptions = {},
  store?: ContentStore,
): Promise<SyncResult> => {
  if (source.kind === "repo") return syncRepo(db, source, now, options)
  let names: string[]
  try {
    names = fs.readdirSync(source.location).filter(isTroveArchive).sort()
  } catch (e) {
    throw new SourceError({ source: source.name, reason: `cannot read ${source.location}: ${(e as Error).message}` })
  }
  const known = knownArchives(db, source.name)
  type Fresh = { archive: string; trove: NewTrove; sha256: string; size: number; mtime: number }
  // By the archive's place in `names`, so the index is written in the same order however reads interleave.
  const read: Array<{ fresh?: Fresh; bad?: ArchiveError; present: boolean }> = new Array(names.length)
  const stale: Array<{ i: number; archive: string; size: number; mtime: number }> = []
  report.start(`sync ${source.name}`, names.length)
  names.forEach((name, i) => {
    const archive = path.join(source.location, name)
    try {
      const st = fs.statSync(archive)
      const k = known.get(archive)
      const mtime = Math.trunc(st.mtimeMs)
      if (!k || k.size !== st.size || k.mtime !== mtime) stale.push({ i, archive, size: st.size, mtime })
      else {
        read[i] = { present: true }
        report.tick()
      }
    } catch (e) {
      const bad = archiveErrorOf(archive, e)
      if (!bad) throw e
      read[i] = { bad, present: false }
      report.tick()
    }
  })
  // The new and changed ones are read on every core (see read-archives.ts).
  const stopWriteBehind = store && stale.length > 0 ? writeBehind(store.dir) : undefined
  try {
    await readArchives(stale, store, (j, r) => {
      const { i, archive, size, mtime } = stale[j]!
      read[i] = "bad" in r ? { bad: r.bad, present: false } : { fresh: { archive, trove: r.trove, sha256: r.archiveSha256, size, mtime }, present: true }
      report.tick()
    })
  } catch (e) {
    if (e instanceof LanesFailed) throw new SourceError({ source: source.name, reason: e.message })
    throw e
  } finally {
    stopWriteBehind?.()
  }
  report.done()
  const fresh = read.flatMap((r) => (r.fresh ? [r.fresh] : []))
  const bad = read.flatMap((r) => (r.bad ? [r.bad] : []))
  const present = new Set(names.flatMap((name, i) => (read[i]!.present ? [path.join(source.location, name)] : [])))
  // What was stored is durable before the index says the trove is there.
  if (fresh.length > 0) store?.sync()
  const gone = [...known.keys()].filter((a) => !present.has(a))
  // Immediate: upsertTrove may read first (see connection.ts).
  db.transaction(() => {
    const del = db.prepare("DELETE FROM available WHERE source = ? AND archive = ?")
    for (const a of gone) del.run(source.name, a)
    const avail = db.prepare(
      `INSERT OR REPLACE INTO available (source, trove_id, archive, archive_sha256, archive_size, archive_mtime)
       VALUES (?, ?, ?, ?, ?, ?)`,
    )
    const prov = db.prepare(
      `INSERT OR REPLACE INTO provenance (trove_id, source, origin, archive_sha256, signature_key, imported_at)
       VALUES (?, ?, ?, ?, NULL, ?)`,
    )
    for (const f of fresh) {
      const id = upsertTrove(db, f.trove)
      avail.run(source.name, id, f.archive, f.sha256, f.size, f.mtime)
      prov.run(id, source.name, f.archive, f.sha256, now)
    }
    db.prepare("UPDATE sources SET synced_at = ? WHERE name = ?").run(now, source.name)
  }).immediate()
  return { source: source.name, troves: present.size, added: fresh.length, removed: gone.length, bad }
}

/**
 * Indexes a repository source (format version 2) from the first of its base
 * locations (the location, then each mirror) that serves good metadata: it
 * answers, verifies, is fresh and decodes. Each one skipped is reported with
 * its reason. Metadata only; contents and manifests come when a plan needs them.
 */
const syncRepo = async (db: Db, source: SourceRow, now: string, options: RepoSyncOptions): Promise<SyncResult> => {
  const skipped: string[] = []
  const bases = locationsOf(source)
  for (const base of bases) {
    try {
      const r = await syncRepoV2(db, source, base, now, options)
      const metadata = { version: r.version, expires: r.expires }
      return { source: source.name, troves: r.troves, added: r.added, removed: r.removed, bad: [], metadata, from: base, unchanged: r.unchanged, skipped }
    } catch (e) {
      if (!(e instanceof SourceError) || bases.length === 1) throw e
      skipped.push(`${base}: ${e.reason}`)
    }
  }
  throw new SourceError({ source: source.name, reason: `no mirror served good metadata: ${skipped.join("; ")}` })
}
