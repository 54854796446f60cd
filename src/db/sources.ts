import type { Db } from "./connection.js"

export interface SourceRow {
  readonly name: string
  readonly kind: string
  readonly location: string
  /** further base locations of a repository, tried in order after `location` */
  readonly mirrors: ReadonlyArray<string>
  readonly addedAt: string
  readonly syncedAt: string | null
  /** the base location that served the index last accepted */
  readonly syncedFrom: string | null
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

/** Every base location of a source, in the order they are tried. */
export const locationsOf = (s: Pick<SourceRow, "location" | "mirrors">): string[] => [s.location, ...s.mirrors]

export const listSources = (db: Db): SourceRow[] =>
  db
    .prepare(
      `SELECT s.name, s.kind, s.location, s.mirrors, s.added_at AS addedAt, s.synced_at AS syncedAt, s.synced_from AS syncedFrom,
              s.trust_key AS trustKey, s.insecure = 1 AS insecure, s.root_version AS rootVersion, s.root_keys AS rootKeys,
              s.meta_version AS metaVersion, s.meta_expires AS metaExpires,
              (SELECT count(*) FROM available a WHERE a.source = s.name) AS troves
       FROM sources s ORDER BY s.name`,
    )
    .all()
    .map((r) => {
      const row = r as Omit<SourceRow, "insecure" | "mirrors"> & { insecure: number; mirrors: string }
      return { ...row, insecure: row.insecure === 1, mirrors: JSON.parse(row.mirrors) as string[] }
    })

export const addSource = (
  db: Db,
  s: { name: string; kind: string; location: string; mirrors: ReadonlyArray<string>; trustKey: string | null; insecure: boolean },
  now: string,
): boolean =>
  db
    .prepare("INSERT OR IGNORE INTO sources (name, kind, location, mirrors, trust_key, insecure, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .run(s.name, s.kind, s.location, JSON.stringify(s.mirrors), s.trustKey, s.insecure ? 1 : 0, now).changes === 1

export const removeSource = (db: Db, name: string): boolean =>
  db.prepare("DELETE FROM sources WHERE name = ?").run(name).changes === 1

/** The validators of the index a repository source last accepted, for a conditional re-sync. */
export interface IndexValidator {
  readonly url: string
  readonly etag: string | null
  readonly lastModified: string | null
}

export const indexValidator = (db: Db, source: string): IndexValidator | null => {
  const text = db.prepare("SELECT index_validator FROM sources WHERE name = ?").pluck().get(source) as string | null | undefined
  return text ? (JSON.parse(text) as IndexValidator) : null
}

/** Records a repository sync: when, from which base location, and the index's validators. */
export const recordRepoSync = (db: Db, source: string, now: string, from: string, validator: IndexValidator | null): void => {
  db.prepare("UPDATE sources SET synced_at = ?, synced_from = ?, index_validator = ? WHERE name = ?").run(
    now,
    from,
    validator ? JSON.stringify(validator) : null,
    source,
  )
}

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
