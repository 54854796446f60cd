import type { Db } from "./connection.js"

export interface SourceRow {
  readonly name: string
  readonly kind: string
  readonly location: string
  readonly addedAt: string
  readonly syncedAt: string | null
  readonly trustKey: string | null
  /** added with --insecure: a repository whose metadata need not be signed */
  readonly insecure: boolean
  /** the repository root the client followed the key chain to (0: none yet), and its keys as JSON `{"keys": [...], "threshold": n}` */
  readonly rootVersion: number
  readonly rootKeys: string | null
  /** the highest metadata version accepted, and when it expires */
  readonly metaVersion: number
  readonly metaExpires: string | null
  readonly troves: number
}

export const listSources = (db: Db): SourceRow[] =>
  db
    .prepare(
      `SELECT s.name, s.kind, s.location, s.added_at AS addedAt, s.synced_at AS syncedAt, s.trust_key AS trustKey,
              s.insecure = 1 AS insecure, s.root_version AS rootVersion, s.root_keys AS rootKeys,
              s.meta_version AS metaVersion, s.meta_expires AS metaExpires,
              (SELECT count(*) FROM available a WHERE a.source = s.name) AS troves
       FROM sources s ORDER BY s.name`,
    )
    .all()
    .map((r) => ({ ...(r as SourceRow), insecure: (r as { insecure: number }).insecure === 1 }))

export const addSource = (
  db: Db,
  s: { name: string; kind: string; location: string; trustKey: string | null; insecure: boolean },
  now: string,
): boolean =>
  db
    .prepare("INSERT OR IGNORE INTO sources (name, kind, location, trust_key, insecure, added_at) VALUES (?, ?, ?, ?, ?, ?)")
    .run(s.name, s.kind, s.location, s.trustKey, s.insecure ? 1 : 0, now).changes === 1

export const removeSource = (db: Db, name: string): boolean =>
  db.prepare("DELETE FROM sources WHERE name = ?").run(name).changes === 1

export interface KnownArchive {
  readonly archive: string
  readonly size: number
  readonly mtime: number
}

export const knownArchives = (db: Db, source: string): Map<string, KnownArchive> =>
  new Map(
    (
      db.prepare("SELECT archive, archive_size AS size, archive_mtime AS mtime FROM available WHERE source = ?").all(source) as KnownArchive[]
    ).map((k) => [k.archive, k]),
  )
