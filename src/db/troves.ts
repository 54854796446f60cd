import { DEP_KINDS, type DepKind, type FileKind, type GroupMember, type TroveFile, type TroveMeta, type VersionScheme } from "../model/trove.js"
import type { Db } from "./connection.js"

// The trove catalog: every trove seen, its files and dependencies.

export interface NewTrove {
  readonly digest: string
  readonly name: string
  readonly version: string
  readonly scheme: VersionScheme
  readonly flavor: string
  readonly format: string
  readonly requires: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
  readonly conflicts?: ReadonlyArray<string>
  readonly breaks?: ReadonlyArray<string>
  readonly replaces?: ReadonlyArray<string>
  readonly optional?: ReadonlyArray<string>
  readonly files: ReadonlyArray<TroveFile>
  readonly scripts?: Readonly<Record<string, string>>
  /** as the package declares it (see TroveMeta.license) */
  readonly license?: string
  /** a group's members (a group has no files) */
  readonly members?: ReadonlyArray<GroupMember>
}

/** A trove whose files are not known yet: a repository's entry, with the digest of its manifest. */
export interface LazyTrove extends Omit<NewTrove, "files" | "scripts"> {
  readonly components: ReadonlyArray<string>
  readonly fileCount: number
  readonly totalSize: number
  readonly hasScripts: boolean
  readonly manifest: { readonly sha256: string; readonly size: number }
  /** the paths `file:` dependencies usually name (see repo-meta.ts), with their components */
  readonly paths?: ReadonlyArray<readonly [string, string]>
}

const insertRow = (
  db: Db,
  t: Omit<NewTrove, "files" | "scripts">,
  row: { components: ReadonlyArray<string>; fileCount: number; totalSize: number; scripts: string | null; manifest: string | null; manifestSize: number | null },
): number => {
  const id = Number(
    db
      .prepare(
        `INSERT INTO troves (digest, name, version, scheme, flavor, format, components, file_count, total_size, scripts, manifest, manifest_size, license)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(t.digest, t.name, t.version, t.scheme, t.flavor, t.format, JSON.stringify(row.components), row.fileCount, row.totalSize, row.scripts, row.manifest, row.manifestSize, t.license ?? null)
      .lastInsertRowid,
  )
  const dep = db.prepare("INSERT INTO trove_deps (trove_id, kind, seq, value) VALUES (?, ?, ?, ?)")
  for (const kind of DEP_KINDS) (t[kind] ?? []).forEach((v, i) => dep.run(id, kind, i, v))
  const member = db.prepare(
    "INSERT INTO group_members (group_id, seq, name, version, flavor, components, by_default) VALUES (?, ?, ?, ?, ?, ?, ?)",
  )
  ;(t.members ?? []).forEach((m, i) => member.run(id, i, m.name, m.version, m.flavor, JSON.stringify(m.components), m.byDefault ? 1 : 0))
  return id
}

const scriptsText = (scripts: Readonly<Record<string, string>> | undefined) => (scripts && Object.keys(scripts).length > 0 ? JSON.stringify(scripts) : null)

/**
 * Records a trove's files (and maintainer scripts), which until now only its
 * manifest's digest stood for. Call inside a transaction.
 */
export const fillTroveFiles = (db: Db, id: number, files: ReadonlyArray<TroveFile>, scripts?: Readonly<Record<string, string>>): void => {
  const file = db.prepare(
    `INSERT OR IGNORE INTO trove_files (trove_id, path, kind, mode, owner, grp, sha256, size, link_target, is_config, component, mtime, hardlink, ghost)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
  for (const f of files) {
    file.run(id, f.path, f.kind, f.mode, f.owner, f.group, f.sha256, f.size, f.target, f.config ? 1 : 0, f.component, f.mtime ?? null, f.hardlink ?? null, f.ghost ? 1 : 0)
  }
  db.prepare("UPDATE troves SET manifest = NULL, manifest_size = NULL, scripts = ? WHERE id = ?").run(scriptsText(scripts), id)
  db.prepare("DELETE FROM trove_paths WHERE trove_id = ?").run(id)
}

const existingTrove = (db: Db, digest: string) =>
  db.prepare("SELECT id, manifest FROM troves WHERE digest = ?").get(digest) as { id: number; manifest: string | null } | undefined

/** Inserts a trove unless one with the same digest exists; returns its id. Call inside a transaction. */
export const upsertTrove = (db: Db, t: NewTrove): number => {
  const existing = existingTrove(db, t.digest)
  if (existing) {
    // Known from a repository without its files: an archive brings them.
    if (existing.manifest !== null) fillTroveFiles(db, existing.id, t.files, t.scripts)
    return existing.id
  }
  const id = insertRow(db, t, {
    components: [...new Set(t.files.map((f) => f.component))].sort(),
    fileCount: t.files.length,
    totalSize: t.files.reduce((n, f) => n + f.size, 0),
    scripts: null,
    manifest: null,
    manifestSize: null,
  })
  fillTroveFiles(db, id, t.files, t.scripts)
  return id
}

/** Inserts a repository's trove without its files unless one with the same digest exists; returns its id. */
export const upsertLazyTrove = (db: Db, t: LazyTrove): number => {
  const existing = existingTrove(db, t.digest)
  if (existing) return existing.id
  const id = insertRow(db, t, {
    components: t.components,
    fileCount: t.fileCount,
    totalSize: t.totalSize,
    // Known to exist; their text comes with the manifest.
    scripts: t.hasScripts ? "{}" : null,
    manifest: t.manifest.sha256,
    manifestSize: t.manifest.size,
  })
  const put = db.prepare("INSERT OR IGNORE INTO trove_paths (trove_id, path, component) VALUES (?, ?, ?)")
  for (const [p, component] of t.paths ?? []) put.run(id, p, component)
  return id
}

/** Troves among `ids` whose files are not known yet, with their manifest's digest and size. */
export const lazyTroves = (db: Db, ids: ReadonlyArray<number>): Array<{ id: number; manifest: string; manifestSize: number }> =>
  db
    .prepare(
      `SELECT id, manifest, manifest_size AS manifestSize FROM troves
       WHERE manifest IS NOT NULL AND id IN (SELECT value FROM json_each(?)) ORDER BY id`,
    )
    .all(JSON.stringify(ids)) as Array<{ id: number; manifest: string; manifestSize: number }>

/** Every group's members, by the group's trove id (what resolve expands groups with). */
export const groupMembers = (db: Db): Map<number, GroupMember[]> => {
  const groups = new Map<number, GroupMember[]>()
  const rows = db
    .prepare("SELECT group_id, name, version, flavor, components, by_default FROM group_members ORDER BY group_id, seq")
    .raw()
    .all() as Array<[number, string, string, string, string, number]>
  for (const [id, name, version, flavor, components, byDefault] of rows) {
    let list = groups.get(id)
    if (!list) groups.set(id, (list = []))
    list.push({ name, version, flavor, components: JSON.parse(components) as string[], byDefault: byDefault === 1 })
  }
  return groups
}

/** What the planner reads of a trove: TroveMeta's fields, its scripts only as whether it has any. */
type TroveRow = [
  id: number,
  name: string,
  version: string,
  scheme: VersionScheme,
  flavor: string,
  components: string,
  fileCount: number,
  totalSize: number,
  hasScripts: number,
  license: string | null,
]

const TROVE_COLUMNS = "t.id, t.name, t.version, t.scheme, t.flavor, t.components, t.file_count, t.total_size, t.scripts IS NOT NULL, t.license"

/** Shared by every trove without dependencies (most of a large catalog has none of some kinds). */
const NO_DEPS: Readonly<Record<DepKind, ReadonlyArray<string>>> = { requires: [], provides: [], conflicts: [], breaks: [], replaces: [], optional: [] }

/**
 * The troves whose ids `idQuery` (an SQL query, with its parameters) selects, with
 * their dependencies: two queries, each reading only those troves' rows. Rows
 * are read by index, not destructured: this runs once per command over every
 * trove, in V8's interpreter, where destructuring steps an iterator.
 */
const loadMetas = (db: Db, idQuery: string, ...params: unknown[]): TroveMeta[] => {
  const rows = db.prepare(`SELECT ${TROVE_COLUMNS} FROM troves t WHERE t.id IN (${idQuery}) ORDER BY t.id`).raw().all(...params) as TroveRow[]
  const deps = new Map<number, Record<DepKind, string[]>>()
  const depRows = db.prepare(`SELECT trove_id, kind, value FROM trove_deps WHERE trove_id IN (${idQuery}) ORDER BY trove_id, kind, seq`).raw().all(...params) as Array<
    [number, DepKind, string]
  >
  for (let i = 0; i < depRows.length; i++) {
    const row = depRows[i]!
    let d = deps.get(row[0])
    if (d === undefined) deps.set(row[0], (d = { requires: [], provides: [], conflicts: [], breaks: [], replaces: [], optional: [] }))
    d[row[1]].push(row[2])
  }
  // Troves share a few component lists: each text is parsed once.
  const componentLists = new Map<string, ReadonlyArray<string>>()
  const metas: TroveMeta[] = []
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    let components = componentLists.get(r[5])
    if (components === undefined) componentLists.set(r[5], (components = JSON.parse(r[5]) as string[]))
    const d = deps.get(r[0]) ?? NO_DEPS
    const license = r[9]
    metas.push({
      id: r[0],
      name: r[1],
      version: r[2],
      scheme: r[3],
      flavor: r[4],
      components,
      requires: d.requires,
      provides: d.provides,
      conflicts: d.conflicts,
      breaks: d.breaks,
      replaces: d.replaces,
      optional: d.optional,
      fileCount: r[6],
      totalSize: r[7],
      hasScripts: r[8] === 1,
      ...(license === null ? {} : { license }),
    })
  }
  return metas
}

/** Troves some source offers. */
export const availableTroves = (db: Db): TroveMeta[] => loadMetas(db, "SELECT trove_id FROM available")

export const trovesById = (db: Db, ids: ReadonlyArray<number>): TroveMeta[] =>
  ids.length === 0 ? [] : loadMetas(db, "SELECT value FROM json_each(?)", JSON.stringify(ids))

export const troveScripts = (db: Db, id: number): Record<string, string> => {
  const row = db.prepare("SELECT scripts FROM troves WHERE id = ?").get(id) as { scripts: string | null } | undefined
  return row?.scripts ? (JSON.parse(row.scripts) as Record<string, string>) : {}
}

type FileRow = [string, FileKind, number, string, string, string | null, number, string | null, number, string, number | null, string | null, number]

const toFile = ([path, kind, mode, owner, group, sha256, size, target, config, component, mtime, hardlink, ghost]: FileRow): TroveFile => ({
  path,
  kind,
  mode,
  owner,
  group,
  sha256,
  size,
  target,
  config: config === 1,
  component,
  ...(mtime === null ? {} : { mtime }),
  ...(hardlink === null ? {} : { hardlink }),
  ...(ghost === 1 ? { ghost: true } : {}),
})

const FILE_COLUMNS = "path, kind, mode, owner, grp, sha256, size, link_target, is_config, component, mtime, hardlink, ghost"

/** A trove's files, read anew at each call: for a pass over troves one at a time that need not hold them all. */
export const troveFilesReader = (db: Db): ((troveId: number) => TroveFile[]) => {
  const stmt = db.prepare(`SELECT ${FILE_COLUMNS} FROM trove_files WHERE trove_id = ? ORDER BY path`).raw()
  return (troveId) => (stmt.all(troveId) as FileRow[]).map(toFile)
}

/**
 * The archive's mtime of a trove's file, if it gave one, for apply's
 * per-file staging: nothing asked of a trove without mtimes (native troves
 * built without them), one narrow query a file of the others.
 */
export const troveMtimeLookup = (db: Db): ((troveId: number, path: string) => number | undefined) => {
  const any = db.prepare("SELECT EXISTS (SELECT 1 FROM trove_files WHERE trove_id = ? AND mtime IS NOT NULL)").pluck()
  const stmt = db.prepare("SELECT mtime FROM trove_files WHERE trove_id = ? AND path = ?").pluck()
  const hasMtimes = new Map<number, boolean>()
  return (troveId, path) => {
    let has = hasMtimes.get(troveId)
    if (has === undefined) hasMtimes.set(troveId, (has = any.get(troveId) === 1))
    return has ? ((stmt.get(troveId, path) as number | null | undefined) ?? undefined) : undefined
  }
}

/** A memoizing lookup of a trove's files, as the planner wants it. */
export const troveFilesLookup = (db: Db): ((troveId: number) => ReadonlyArray<TroveFile>) => {
  const read = troveFilesReader(db)
  const cache = new Map<number, ReadonlyArray<TroveFile>>()
  return (troveId) => {
    let files = cache.get(troveId)
    if (files === undefined) cache.set(troveId, (files = read(troveId)))
    return files
  }
}

/** One file of a trove, by its key (nothing kept between calls). */
export const troveFileLookup = (db: Db): ((troveId: number, path: string) => TroveFile | undefined) => {
  const stmt = db.prepare(`SELECT ${FILE_COLUMNS} FROM trove_files WHERE trove_id = ? AND path = ?`).raw()
  return (troveId, path) => {
    const row = stmt.get(troveId, path) as FileRow | undefined
    return row && toFile(row)
  }
}

/** The hard links among some troves' files: trove id, path, and the path it links to (few; read in one query). */
export const troveHardLinks = (db: Db, troveIds: ReadonlyArray<number>): Array<[number, string, string]> =>
  db
    .prepare("SELECT trove_id, path, hardlink FROM trove_files WHERE trove_id IN (SELECT value FROM json_each(?)) AND hardlink IS NOT NULL")
    .raw()
    .all(JSON.stringify(troveIds)) as Array<[number, string, string]>

export interface ArchiveRef {
  readonly source: string
  /** dir: an archive file; repo: the trove's digest */
  readonly archive: string
  readonly format: string
  readonly kind: string
  readonly location: string
  /** the archive's size in bytes */
  readonly size: number
}

/** Where to get a trove's contents: its archives or repositories, by source name. */
export const archivesOf = (db: Db, troveId: number): ArchiveRef[] =>
  db
    .prepare(
      `SELECT a.source, a.archive, t.format, s.kind, s.location, a.archive_size AS size FROM available a
       JOIN troves t ON t.id = a.trove_id JOIN sources s ON s.name = a.source
       WHERE a.trove_id = ? ORDER BY a.source`,
    )
    .all(troveId) as ArchiveRef[]

export interface Provenance {
  readonly source: string
  readonly origin: string
  readonly archiveSha256: string
  readonly signatureKey: string | null
  readonly importedAt: string
}

const PROVENANCE = `SELECT trove_id AS troveId, source, origin, archive_sha256 AS archiveSha256, signature_key AS signatureKey, imported_at AS importedAt
  FROM provenance`

export const provenanceOf = (db: Db, troveId: number): Provenance[] =>
  (db.prepare(`${PROVENANCE} WHERE trove_id = ? ORDER BY imported_at, source, origin`).all(troveId) as Array<Provenance & { troveId?: number }>).map(
    ({ troveId: _, ...p }) => p,
  )

/** Every trove's provenance, in provenanceOf's order, in one query. */
export const provenanceByTrove = (db: Db): Map<number, Provenance[]> => {
  const out = new Map<number, Provenance[]>()
  for (const { troveId, ...p } of db.prepare(`${PROVENANCE} ORDER BY trove_id, imported_at, source, origin`).all() as Array<Provenance & { troveId: number }>) {
    let list = out.get(troveId)
    if (!list) out.set(troveId, (list = []))
    list.push(p)
  }
  return out
}

/** What identifies a trove beyond its metadata: its digest and the package format it was read from. */
export const troveOrigins = (db: Db): Map<number, { readonly digest: string; readonly format: string }> =>
  new Map(
    (db.prepare("SELECT id, digest, format FROM troves").raw().all() as Array<[number, string, string]>).map(([id, digest, format]) => [id, { digest, format }]),
  )

/**
 * Which of the given troves have an entry at any of the given paths, and in
 * which component: the owners `file:` dependencies are resolved against. One
 * query, answered from the (trove_id, path) key, whatever the catalog's size.
 */
export const fileOwnersAt = (
  db: Db,
  troveIds: ReadonlyArray<number>,
  paths: ReadonlyArray<string>,
): Array<{ troveId: number; path: string; component: string }> =>
  troveIds.length === 0 || paths.length === 0
    ? []
    : (db
        .prepare(
          // trove_paths: what a repository says of a trove whose manifest is not fetched yet.
          `SELECT trove_id AS troveId, path, component FROM trove_files
           WHERE trove_id IN (SELECT value FROM json_each(?)) AND path IN (SELECT value FROM json_each(?))
           UNION SELECT trove_id, path, component FROM trove_paths
           WHERE trove_id IN (SELECT value FROM json_each(?)) AND path IN (SELECT value FROM json_each(?))`,
        )
        .all(JSON.stringify(troveIds), JSON.stringify(paths), JSON.stringify(troveIds), JSON.stringify(paths)) as Array<{ troveId: number; path: string; component: string }>)
