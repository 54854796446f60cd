import type { DeltaRef } from "../source/delta.js"
import type { Db } from "./connection.js"

// What a repository trove's manifest says of fetching its contents (see
// repo-meta.ts ManifestDoc): object sizes and deltas, kept with the trove.

/** Records a trove's object sizes and deltas; only those to its own contents (anything else in a manifest is ignored). Call inside a transaction. */
export const recordFetchInfo = (
  db: Db,
  troveId: number,
  contents: ReadonlySet<string>,
  info: { readonly packed?: Readonly<Record<string, number>>; readonly deltas?: ReadonlyArray<DeltaRef> },
): void => {
  const packed = db.prepare("INSERT OR REPLACE INTO content_packed (trove_id, sha256, size) VALUES (?, ?, ?)")
  for (const [sha, size] of Object.entries(info.packed ?? {})) if (contents.has(sha)) packed.run(troveId, sha, size)
  const delta = db.prepare("INSERT OR REPLACE INTO content_deltas (trove_id, to_sha256, from_sha256, sha256, size, gzip) VALUES (?, ?, ?, ?, ?, ?)")
  for (const d of info.deltas ?? [])
    if (contents.has(d.to) && d.from !== d.to) delta.run(troveId, d.to, d.from, d.sha256, d.size, d.gzip ? JSON.stringify(d.gzip) : null)
}

/** Every delta listed to each of `shas`, smallest first. */
export const deltasTo = (db: Db, shas: ReadonlyArray<string>): Map<string, DeltaRef[]> => {
  const rows = db
    .prepare(
      `SELECT DISTINCT to_sha256 AS "to", from_sha256 AS "from", sha256, size, gzip FROM content_deltas
       WHERE to_sha256 IN (SELECT value FROM json_each(?)) ORDER BY size, sha256`,
    )
    .all(JSON.stringify(shas)) as Array<{ to: string; from: string; sha256: string; size: number; gzip: string | null }>
  const out = new Map<string, DeltaRef[]>()
  for (const r of rows) {
    const ref: DeltaRef = { from: r.from, to: r.to, sha256: r.sha256, size: r.size, ...(r.gzip ? { gzip: JSON.parse(r.gzip) as DeltaRef["gzip"] } : {}) }
    out.set(r.to, [...(out.get(r.to) ?? []), ref])
  }
  return out
}

/** The compressed size of each content's object, as a repository listed it (smallest over troves). */
export const packedSizes = (db: Db, shas: ReadonlyArray<string>): Map<string, number> =>
  new Map(
    db
      .prepare("SELECT sha256, min(size) FROM content_packed WHERE sha256 IN (SELECT value FROM json_each(?)) GROUP BY sha256")
      .raw()
      .all(JSON.stringify(shas)) as Array<[string, number]>,
  )

/** Installed files holding each of `shas`, by content (a delta's base the store lacks may still be on disk). */
export const installedPaths = (db: Db, shas: ReadonlyArray<string>): Map<string, string[]> => {
  const out = new Map<string, string[]>()
  if (shas.length === 0) return out
  const rows = db
    .prepare("SELECT sha256, path FROM installed_files WHERE kind = 'file' AND sha256 IN (SELECT value FROM json_each(?))")
    .raw()
    .all(JSON.stringify(shas)) as Array<[string, string]>
  for (const [sha, p] of rows) out.set(sha, [...(out.get(sha) ?? []), p])
  return out
}
