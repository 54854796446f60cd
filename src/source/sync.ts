import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import { type SourceRow, indexValidator, knownArchives, locationsOf, recordRepoSync } from "../db/sources.js"
import { type NewTrove, upsertTrove } from "../db/troves.js"
import { ArchiveError, SourceError, describeIo } from "../errors.js"
import type { Report } from "../model/report.js"
import { isTroveArchive, readTroveArchive } from "./formats.js"
import { readRepoDocument, readRepoFile } from "./remote.js"
import { INDEX, SIGNATURE, decodeIndex, fromEntry, verifySignature } from "./repo.js"

export interface SyncResult {
  readonly source: string
  readonly troves: number
  readonly added: number
  readonly removed: number
  /** archives that could not be read, each with its reason; not indexed */
  readonly bad: ReadonlyArray<ArchiveError>
  /** a repository: the base location that served the index, whether it was unchanged, and mirrors skipped (with why) */
  readonly from?: string
  readonly unchanged?: boolean
  readonly skipped?: ReadonlyArray<string>
}

/** A failure to read one archive, as an ArchiveError; anything else (a bug) is rethrown. */
const asArchiveError = (archive: string, e: unknown): ArchiveError => {
  if (e instanceof ArchiveError) return e
  if ((e as NodeJS.ErrnoException).code !== undefined) return new ArchiveError({ archive, reason: describeIo(e) })
  throw e
}

/**
 * Indexes a directory source: reads the manifest of every archive that is new
 * or changed (by size and mtime), then records them all in one transaction.
 * An archive that cannot be read is left out (and dropped from the index if
 * it was there) and reported; it does not keep the others from being indexed.
 */
export const syncSource = async (db: Db, source: SourceRow, now: string, report: Report): Promise<SyncResult> => {
  if (source.kind === "repo") return syncRepo(db, source, now)
  let names: string[]
  try {
    names = fs.readdirSync(source.location).filter(isTroveArchive).sort()
  } catch (e) {
    throw new SourceError({ source: source.name, reason: `cannot read ${source.location}: ${(e as Error).message}` })
  }
  const known = knownArchives(db, source.name)
  const fresh: Array<{ archive: string; trove: NewTrove; sha256: string; size: number; mtime: number }> = []
  const present = new Set<string>()
  const bad: ArchiveError[] = []
  report.start(`sync ${source.name}`, names.length)
  for (const name of names) {
    const archive = path.join(source.location, name)
    try {
      const st = fs.statSync(archive)
      const k = known.get(archive)
      if (!k || k.size !== st.size || k.mtime !== Math.trunc(st.mtimeMs)) {
        const { trove, archiveSha256 } = await readTroveArchive(archive)
        fresh.push({ archive, trove, sha256: archiveSha256, size: st.size, mtime: Math.trunc(st.mtimeMs) })
      }
      present.add(archive)
    } catch (e) {
      bad.push(asArchiveError(archive, e))
    }
    report.tick()
  }
  report.done()
  const gone = [...known.keys()].filter((a) => !present.has(a))
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
  })()
  return { source: source.name, troves: present.size, added: fresh.length, removed: gone.length, bad }
}

/**
 * Indexes a repository source from the first of its base locations (the
 * location, then each mirror) that serves a good index: one that answers,
 * verifies against the trust key and decodes. Each one skipped is reported
 * with its reason. Metadata only; contents are downloaded when applied.
 */
export const syncRepo = async (db: Db, source: SourceRow, now: string): Promise<SyncResult> => {
  const skipped: string[] = []
  const bases = locationsOf(source)
  for (const base of bases) {
    try {
      return { ...(await syncRepoFrom(db, source, base, now)), skipped }
    } catch (e) {
      if (!(e instanceof SourceError) || bases.length === 1) throw e
      skipped.push(`${base}: ${e.reason}`)
    }
  }
  throw new SourceError({ source: source.name, reason: `no mirror served a good index: ${skipped.join("; ")}` })
}

/**
 * One base location's index, whose signature must verify against the
 * source's trust key when it has one. An index unchanged since the last
 * sync from the same URL (ETag, Last-Modified) is not downloaded again.
 */
const syncRepoFrom = async (db: Db, source: SourceRow, base: string, now: string): Promise<SyncResult> => {
  const validator = indexValidator(db, source.name)
  const doc = await readRepoDocument(source.name, base, INDEX, validator)
  if (doc.status === "unchanged") {
    recordRepoSync(db, source.name, now, base, validator)
    return { source: source.name, troves: knownArchives(db, source.name).size, added: 0, removed: 0, bad: [], from: base, unchanged: true }
  }
  if (doc.status === "missing") throw new SourceError({ source: source.name, reason: `${base} has no ${INDEX}` })
  const bytes = doc.body
  if (source.trustKey) {
    const sig = await readRepoFile(source.name, base, SIGNATURE)
    if (sig === undefined) throw new SourceError({ source: source.name, reason: "the index is not signed, and this source requires a signature" })
    if (!verifySignature(bytes, sig, source.trustKey))
      throw new SourceError({ source: source.name, reason: "the index signature does not verify against the trusted key (tampered, or signed by another key)" })
  }
  const index = decodeIndex(bytes, source.name)
  // Provenance names where the index really came from: the base a redirect led to.
  const origin = doc.url.endsWith(`/${INDEX}`) ? doc.url.slice(0, -INDEX.length - 1) : base
  const known = knownArchives(db, source.name)
  const present = new Set(index.troves.map((t) => t.digest))
  let added = 0
  db.transaction(() => {
    const del = db.prepare("DELETE FROM available WHERE source = ? AND archive = ?")
    for (const a of known.keys()) if (!present.has(a)) del.run(source.name, a)
    const avail = db.prepare(
      `INSERT OR IGNORE INTO available (source, trove_id, archive, archive_sha256, archive_size, archive_mtime) VALUES (?, ?, ?, ?, 0, 0)`,
    )
    const prov = db.prepare(
      `INSERT OR IGNORE INTO provenance (trove_id, source, origin, archive_sha256, signature_key, imported_at) VALUES (?, ?, ?, ?, ?, ?)`,
    )
    for (const entry of index.troves) {
      const id = upsertTrove(db, fromEntry(entry))
      if (avail.run(source.name, id, entry.digest, entry.digest).changes > 0) added++
      prov.run(id, source.name, origin, entry.digest, source.trustKey, now)
    }
    recordRepoSync(db, source.name, now, base, doc.validator)
  })()
  return { source: source.name, troves: index.troves.length, added, removed: [...known.keys()].filter((a) => !present.has(a)).length, bad: [], from: base }
}
