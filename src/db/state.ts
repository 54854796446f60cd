import type { Plan, Reason, TroveOp } from "../model/plan-schema.js"
import type { Foreign, InstalledTrove, RecordedFile, StatRefresh } from "../model/installed.js"
import { type FileKind, type TroveFile, troveLabel } from "../model/trove.js"
import type { Db } from "./connection.js"
import { fromDocument } from "../desired/rows.js"
import { replaceDesired } from "./desired.js"
import { clearJournal } from "./journal.js"
import { trovesById } from "./troves.js"

// Installed state and its history of generations.

export const installedTroves = (db: Db): InstalledTrove[] => {
  const rows = db.prepare("SELECT trove_id, components, reason, via_group FROM installed_troves ORDER BY trove_id").all() as Array<{
    trove_id: number
    components: string
    reason: Reason
    via_group: string | null
  }>
  const metas = new Map(trovesById(db, rows.map((r) => r.trove_id)).map((m) => [m.id, m]))
  return rows.map((r) => ({
    trove: metas.get(r.trove_id)!,
    components: JSON.parse(r.components) as string[],
    reason: r.reason,
    ...(r.via_group === null ? {} : { group: r.via_group }),
  }))
}

/** Records why installed troves are there (a dependency made desired is explicit at once; a group's pin names the group). */
export const setInstalledReasons = (db: Db, reasons: ReadonlyMap<number, { readonly reason: Reason; readonly group?: string }>): void => {
  const set = db.prepare("UPDATE installed_troves SET reason = ?, via_group = ? WHERE trove_id = ?")
  db.transaction(() => {
    for (const [id, r] of reasons) set.run(r.reason, r.group ?? null, id)
  })()
}

type OwnerRow = [number, string, FileKind, number, string | null, number, string | null, number]

/** Installed troves that own a path (the planner's `ownersOf`). */
export const installedOwnersLookup = (db: Db) => {
  const stmt = db
    .prepare(
      `SELECT f.trove_id, f.path, f.kind, f.mode, f.sha256, f.size, f.link_target, f.is_config, tf.owner, tf.grp, tf.component
       FROM installed_files f JOIN trove_files tf ON tf.trove_id = f.trove_id AND tf.path = f.path
       WHERE f.path = ?`,
    )
    .raw()
  const empty = (db.prepare("SELECT count(*) FROM installed_troves").pluck().get() as number) === 0
  return (path: string): Array<{ troveId: number; file: TroveFile }> => {
    if (empty) return []
    return (stmt.all(path) as Array<[...OwnerRow, string, string, string]>).map(
      ([troveId, p, kind, mode, sha256, size, target, config, owner, group, component]) => ({
        troveId,
        file: { path: p, kind, mode, sha256, size, target, config: config === 1, owner, group, component },
      }),
    )
  }
}

/** What the root had at a path before troves came, if anything (the planner's `foreignAt`, one name). */
export const foreignLookup = (db: Db) => {
  const stmt = db.prepare("SELECT kind, sha256, size, mode, uid, gid, link_target FROM foreign_paths WHERE path = ?")
  const empty = (db.prepare("SELECT count(*) FROM foreign_paths").pluck().get() as number) === 0
  return (path: string): Foreign | undefined => {
    if (empty) return undefined
    const r = stmt.get(path) as
      | { kind: "dir" | "file" | "symlink"; sha256: string | null; size: number; mode: number; uid: number; gid: number; link_target: string | null }
      | undefined
    if (!r) return undefined
    if (r.kind === "dir") return { kind: "dir" }
    return { kind: r.kind, sha256: r.sha256, size: r.size, mode: r.mode, uid: r.uid, gid: r.gid, target: r.link_target }
  }
}

/** Records what a plan's operations found on disk before troves came, and forgets what they put back. */
const recordForeign = (db: Db, plan: Plan, gen: number) => {
  const put = db.prepare(
    "INSERT OR REPLACE INTO foreign_paths (path, kind, sha256, size, mode, uid, gid, link_target, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  )
  const handOver = db.prepare("DELETE FROM installed_files WHERE trove_id = ? AND path = ?")
  // Most roots have nothing foreign recorded: then only what this loop records may need forgetting, not every file added.
  const before = db.prepare("SELECT EXISTS (SELECT 1 FROM foreign_paths)").pluck().get() === 1
  const recorded = new Set<string>()
  const record = (path: string, ...row: [kind: string, sha256: string | null, size: number, mode: number, uid: number, gid: number, target: string | null]) => {
    put.run(path, ...row, gen)
    recorded.add(path)
  }
  const remove = db.prepare("DELETE FROM foreign_paths WHERE path = ?")
  const forget = (path: string) => {
    if (before || recorded.has(path)) remove.run(path)
  }
  const files = plan.files
  for (let i = 0; i < files.length; i++) {
    const forgets = files.op(i) === "restore" || (files.op(i) === "add" && files.kind(i) !== "dir")
    if (files.plain(i)) {
      if (forgets) forget(files.path(i))
      continue
    }
    const op = files.at(i)
    if (op.kept) record(op.path, "dir", null, 0, op.mode, 0, 0, null)
    else if (op.saved) {
      const d = op.saved
      record(op.path, d.kind, d.sha256, d.size, d.mode, d.uid, d.gid, d.target)
    } else if (forgets) forget(op.path)
    for (const t of op.takesOver ?? []) handOver.run(t.troveId, t.path)
  }
  // A directory that was there first is no trove's: not verified, never removed.
  db.prepare("DELETE FROM installed_files WHERE kind = 'dir' AND path IN (SELECT path FROM foreign_paths WHERE kind = 'dir')").run()
}

export const currentGeneration = (db: Db): number =>
  (db.prepare("SELECT coalesce(max(id), 0) FROM generations").pluck().get() as number) ?? 0

/** An installed file's row: expected owner and group, and the stat cache of bytes apply verified. */
export interface StatRow {
  readonly troveId: number
  readonly file: TroveFile
  /** the trove's owner and group as resolved in the root, never read back from disk */
  readonly uid: number
  readonly gid: number
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
  readonly ino: bigint
}

/**
 * The page cache (KiB) while a generation is recorded: its installed files go
 * into two b-trees (by trove and by path), which the usual 2 MB cache keeps
 * spilling and reading back. At 200,000 files the record took ~1.2 s with it,
 * ~0.95 s with this; by then apply's fetch has let go of more memory than this.
 */
const RECORD_CACHE_KIB = 16000

/**
 * Records an applied plan in one transaction: a new generation with its trove
 * set and changeset, the installed troves, and the installed files (with their
 * stat cache) of every trove the plan touched.
 */
export const recordGeneration = (db: Db, args: Parameters<typeof recordInOne>[1]): number => {
  const usual = db.pragma("cache_size", { simple: true }) as number
  db.pragma(`cache_size = -${RECORD_CACHE_KIB}`)
  try {
    return recordInOne(db, args)
  } finally {
    db.pragma(`cache_size = ${usual}`)
  }
}

const recordInOne = (
  db: Db,
  args: {
    readonly plan: Plan
    readonly command: string
    readonly now: string
    /** made as they are written (a generator): 200,000 rows need not be held at once */
    readonly stats: Iterable<StatRow>
    /** the desired document the generation was made from */
    readonly desired: string
    /** rollback: make that document the desired state again */
    readonly restoreDesired: boolean
  },
): number =>
  db.transaction(() => {
    const { plan, now } = args
    const gen = Number(
      db
        .prepare("INSERT INTO generations (created_at, command, summary, desired) VALUES (?, ?, ?, ?)")
        .run(now, args.command, JSON.stringify(plan.summary), args.desired).lastInsertRowid,
    )
    const gt = db.prepare("INSERT INTO generation_troves (generation, trove_id, components, reason, via_group) VALUES (?, ?, ?, ?, ?)")
    for (const t of plan.target) gt.run(gen, t.troveId, JSON.stringify(t.components), t.reason, t.group ?? null)
    const filesPerTrove = new Map<string, number>()
    for (const f of plan.files) filesPerTrove.set(f.trove, (filesPerTrove.get(f.trove) ?? 0) + 1)
    const op = db.prepare(
      `INSERT INTO changeset_ops (generation, seq, op, name, old_version, new_version, old_flavor, new_flavor, files)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    const fileCount = (t: TroveOp) => {
      const ref = t.to ?? t.from!
      return filesPerTrove.get(troveLabel({ name: t.name, version: ref.version, flavor: ref.flavor })) ?? 0
    }
    plan.troves.forEach((t, i) =>
      op.run(gen, i, t.op, t.name, t.from?.version ?? null, t.to?.version ?? null, t.from?.flavor ?? null, t.to?.flavor ?? null, fileCount(t)),
    )

    // Installed rows: drop the troves that left or changed, then write the new ones.
    const delTrove = db.prepare("DELETE FROM installed_troves WHERE trove_id = ?")
    for (const t of plan.troves) if (t.from) delTrove.run(t.from.troveId)
    const insTrove = db.prepare(
      "INSERT INTO installed_troves (trove_id, components, reason, via_group, generation, installed_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    for (const t of plan.troves) if (t.to) insTrove.run(t.to.troveId, JSON.stringify(t.to.components), t.reason, t.group ?? null, gen, now)
    // Reasons can change without the trove changing (a dependency becomes desired, a group starts pinning it).
    const reason = db.prepare("UPDATE installed_troves SET reason = ?, via_group = ? WHERE trove_id = ?")
    for (const t of plan.target) reason.run(t.reason, t.group ?? null, t.troveId)
    const insFile = db.prepare(
      `INSERT OR REPLACE INTO installed_files (trove_id, path, kind, mode, uid, gid, sha256, size, link_target, is_config, mtime_ns, ctime_ns, ino)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    for (const s of args.stats) {
      const f = s.file
      insFile.run(s.troveId, f.path, f.kind, f.mode, s.uid, s.gid, f.sha256, f.size, f.target, f.config ? 1 : 0, s.mtimeNs, s.ctimeNs, s.ino)
    }
    recordForeign(db, plan, gen)
    if (args.restoreDesired) replaceDesired(db, fromDocument(args.desired, `generation ${gen}`), now)
    clearJournal(db)
    return gen
  })()

export interface GenerationInfo {
  readonly id: number
  readonly createdAt: string
  readonly command: string
  readonly summary: Plan["summary"]
  readonly operations: ReadonlyArray<{ op: string; name: string; from: string | null; to: string | null }>
}

export const generations = (db: Db): GenerationInfo[] => {
  const gens = db.prepare("SELECT id, created_at, command, summary FROM generations ORDER BY id").all() as Array<{
    id: number
    created_at: string
    command: string
    summary: string
  }>
  const ops = db
    .prepare("SELECT generation, op, name, old_version, new_version, old_flavor, new_flavor FROM changeset_ops ORDER BY generation, seq")
    .all() as Array<{
    generation: number
    op: string
    name: string
    old_version: string | null
    new_version: string | null
    old_flavor: string | null
    new_flavor: string | null
  }>
  const label = (v: string | null, f: string | null) => (v === null ? null : f ? `${v}[${f}]` : v)
  return gens.map((g) => ({
    id: g.id,
    createdAt: g.created_at,
    command: g.command,
    summary: JSON.parse(g.summary) as Plan["summary"],
    operations: ops
      .filter((o) => o.generation === g.id)
      .map((o) => ({ op: o.op, name: o.name, from: label(o.old_version, o.old_flavor), to: label(o.new_version, o.new_flavor) })),
  }))
}

/** The trove set and desired document a generation recorded. */
export const generationState = (db: Db, gen: number) => {
  const row = db.prepare("SELECT desired FROM generations WHERE id = ?").get(gen) as { desired: string } | undefined
  if (!row) return undefined
  const troves = db
    .prepare(
      `SELECT g.trove_id AS troveId, t.name, t.version, t.flavor, g.components, g.reason, g.via_group AS viaGroup
       FROM generation_troves g JOIN troves t ON t.id = g.trove_id WHERE g.generation = ? ORDER BY t.name, t.id`,
    )
    .all(gen) as Array<{ troveId: number; name: string; version: string; flavor: string; components: string; reason: Reason; viaGroup: string | null }>
  return {
    desired: row.desired,
    target: troves.map(({ viaGroup, ...t }) => ({
      ...t,
      components: JSON.parse(t.components) as string[],
      ...(viaGroup === null ? {} : { group: viaGroup }),
    })),
  }
}

/** An installed_files row as a drift scan reads it (integers as bigints): what the stat check needs first. */
export type RecordedRow = [
  troveId: bigint,
  path: string,
  kind: FileKind,
  mode: bigint,
  size: bigint,
  mtimeNs: bigint,
  ctimeNs: bigint,
  ino: bigint,
  uid: bigint,
  gid: bigint,
  sha256: string | null,
  target: string | null,
  config: bigint,
]
const STAT_COLUMNS = "trove_id, path, kind, mode, size, mtime_ns, ctime_ns, ino"
const ROW_COLUMNS = `${STAT_COLUMNS}, uid, gid, sha256, link_target, is_config`

/** A position in installed_files' own order: (trove id, path). */
export type RowKey = readonly [troveId: bigint, path: string]

/** Rows from `from` (inclusive) to `to` (exclusive; null: to the end). */
export interface RowRange {
  readonly from: RowKey
  readonly to: RowKey | null
}

/**
 * The installed files a drift scan reads, with their stat cache: all, some
 * troves' or those at some paths. Read as raw rows in the table's own order
 * (troves, then paths: no index lookup per row) by ranges, so the ranges can
 * be read on several threads and a scan of 200,000 files neither holds them
 * all nor makes an object of each clean one.
 */
export interface RecordedRows {
  readonly db: Db
  /**
   * The rows of a range: binds from's trove and path, then to's (bounded
   * only), then `filter` when defined; whole rows, or only the columns the
   * stat check needs (`stat`: a row that fails it is read whole with `row`).
   */
  readonly sql: {
    readonly bounded: string
    readonly open: string
    readonly statBounded: string
    readonly statOpen: string
    /** one whole row: binds trove and path */
    readonly row: string
  }
  readonly filter: string | undefined
  /** consecutive ranges covering every row, each of about `rows` rows or `bytes` of content at most (by the troves' file counts and sizes) */
  readonly ranges: (rows: number, bytes?: number) => RowRange[]
  /** a row as a RecordedFile, for a closer look */
  readonly file: (row: RecordedRow) => RecordedFile
}

export const recordedRows = (
  db: Db,
  which?: { readonly troveIds: ReadonlyArray<number> } | { readonly paths: ReadonlyArray<string> },
): RecordedRows => {
  const only = which === undefined ? "" : `AND ${"troveIds" in which ? "trove_id" : "path"} IN (SELECT value FROM json_each(?))`
  const select = (columns: string, to: string) =>
    `SELECT ${columns} FROM installed_files WHERE (trove_id, path) >= (?, ?) ${to} ${only} ORDER BY trove_id, path`
  const below = "AND (trove_id, path) < (?, ?)"
  const filter = which === undefined ? undefined : JSON.stringify("troveIds" in which ? which.troveIds : which.paths)
  const ranges = (size: number, bytes = Infinity): RowRange[] => {
    if (which !== undefined && !("troveIds" in which)) return [{ from: [MIN_ID, ""], to: null }]
    const troves = db
      .prepare(
        `SELECT t.id, t.file_count, t.total_size FROM installed_troves i JOIN troves t ON t.id = i.trove_id
         ${filter ? "WHERE t.id IN (SELECT value FROM json_each(?))" : ""} ORDER BY t.id`,
      )
      .raw()
      .safeIntegers(true)
      .all(...(filter ? [filter] : [])) as Array<[bigint, bigint, bigint]>
    // The n-th path of a trove from a path on: where a big trove's next range starts.
    const step = db.prepare("SELECT path FROM installed_files WHERE trove_id = ? AND path >= ? ORDER BY path LIMIT 1 OFFSET ?").pluck()
    const out: RowRange[] = []
    let from: RowKey = [MIN_ID, ""]
    let rows = 0
    let content = 0
    const cut = (to: RowKey) => {
      out.push({ from, to })
      from = to
      rows = content = 0
    }
    for (const [id, count, total] of troves) {
      const parts = Math.max(Math.ceil(Number(count) / size), Math.ceil(Number(total) / bytes))
      if (parts > 1) {
        // A big trove: ranges of its own, cut by path.
        if (rows > 0) cut([id, ""])
        const per = Math.ceil(Number(count) / parts)
        for (let at = step.get(id, "", per) as string | undefined; at !== undefined; at = step.get(id, at, per) as string | undefined) cut([id, at])
        cut([id + 1n, ""])
        continue
      }
      rows += Number(count)
      content += Number(total)
      if (rows >= size || content >= bytes) cut([id + 1n, ""])
    }
    out.push({ from, to: null })
    return out
  }
  const label = db.prepare("SELECT name, version FROM troves WHERE id = ?").raw()
  const labels = new Map<bigint, string>()
  const troveOf = (id: bigint) => {
    let l = labels.get(id)
    if (l === undefined) {
      const [name, version] = label.get(id) as [string, string]
      labels.set(id, (l = `${name}=${version}`))
    }
    return l
  }
  const file = ([troveId, path, kind, mode, size, mtimeNs, ctimeNs, ino, uid, gid, sha256, target, config]: RecordedRow): RecordedFile => ({
    troveId: Number(troveId),
    trove: troveOf(troveId),
    path,
    kind,
    mode: Number(mode),
    uid: Number(uid),
    gid: Number(gid),
    sha256,
    size: Number(size),
    target,
    config: config === 1n,
    mtimeNs,
    ctimeNs,
    ino,
  })
  const sql = {
    bounded: select(ROW_COLUMNS, below),
    open: select(ROW_COLUMNS, ""),
    statBounded: select(STAT_COLUMNS, below),
    statOpen: select(STAT_COLUMNS, ""),
    row: `SELECT ${ROW_COLUMNS} FROM installed_files WHERE trove_id = ? AND path = ?`,
  }
  return { db, sql, filter, ranges, file }
}

const MIN_ID = -(2n ** 63n)

/** Every installed path, and the directories among them (for `verify --unowned`). */
export const installedPaths = (db: Db): { all: Set<string>; dirs: string[] } => {
  // Ghost files are the installed troves' too, though no apply wrote them.
  const rows = db
    .prepare(
      `SELECT DISTINCT path, kind FROM installed_files
       UNION SELECT f.path, f.kind FROM trove_files f JOIN installed_troves i ON i.trove_id = f.trove_id WHERE f.ghost = 1`,
    )
    .raw()
    .all() as Array<[string, string]>
  return { all: new Set(rows.map((r) => r[0])), dirs: rows.filter((r) => r[1] === "dir").map((r) => r[0]) }
}

/** The stat cache rows installed troves hold for a path, with the content each vouches for. */
export const cachedStatsLookup = (db: Db) => {
  const stmt = db
    .prepare("SELECT kind, sha256, link_target, mtime_ns, ctime_ns, ino FROM installed_files WHERE path = ?")
    .raw()
    .safeIntegers(true)
  const lookup = (path: string) =>
    (stmt.all(path) as Array<[FileKind, string | null, string | null, bigint, bigint, bigint]>).map(
      ([kind, sha256, target, mtimeNs, ctimeNs, ino]) => ({ kind, sha256, target, mtimeNs, ctimeNs, ino }),
    )
  // none at all (a first apply): no lookup need be made
  return Object.assign(lookup, { any: db.prepare("SELECT 1 FROM installed_files LIMIT 1").get() !== undefined })
}

/**
 * Writes back the stat rows a scan found clean but moved (a touch, or the
 * rename of an apply). Without the root's lock, so a scan never makes an
 * apply wait or fail: a row only ever takes a stat the scan saw before it
 * hashed the file to that row's content (fixed for a trove's file), so
 * whatever an apply changes meanwhile, a stale row can only say "hash me",
 * never "clean". Not kept when the database cannot be written (a read-only
 * copy, an immutable file) or stays busy: the next scan hashes those files again.
 */
export const keepRefreshed = (db: Db, rows: ReadonlyArray<StatRefresh>): void => {
  if (rows.length === 0) return
  try {
    refreshStats(db, rows)
  } catch (e) {
    const code = String((e as { code?: unknown }).code)
    if (!code.startsWith("SQLITE_READONLY") && !code.startsWith("SQLITE_BUSY")) throw e
  }
}

export const refreshStats = (db: Db, rows: ReadonlyArray<StatRefresh>): void => {
  const upd = db.prepare("UPDATE installed_files SET mtime_ns = ?, ctime_ns = ?, ino = ? WHERE trove_id = ? AND path = ?")
  db.transaction(() => {
    for (const r of rows) upd.run(r.mtimeNs, r.ctimeNs, r.ino, r.troveId, r.path)
  })()
}

/** The sha256 of every installed regular file, by trove, in path order (for SBOMs). */
export const installedFileDigests = (db: Db): Map<number, Array<readonly [string, string]>> => {
  // A trove at a time, in the key's order (no sort), each row the pair itself: twice
  // as fast as one statement stepped row by row, in batches no larger than a trove.
  const files = db.prepare("SELECT path, sha256 FROM installed_files WHERE trove_id = ? AND kind = 'file' ORDER BY path").raw()
  const out = new Map<number, Array<readonly [string, string]>>()
  for (const id of db.prepare("SELECT trove_id FROM installed_troves ORDER BY trove_id").pluck().all() as number[]) {
    const rows = files.all(id) as Array<readonly [string, string]>
    if (rows.length > 0) out.set(id, rows)
  }
  return out
}

/** When the newest generation was made; undefined before the first apply. */
export const lastGenerationTime = (db: Db): string | undefined =>
  db.prepare("SELECT created_at FROM generations ORDER BY id DESC LIMIT 1").pluck().get() as string | undefined
