import { createRequire } from "node:module"
import * as path from "node:path"
import type { RecordedRow, RecordedRows, RowRange } from "../db/state.js"
import { sqliteAddon } from "../db/sqlite.js"
import { HASH_FILE } from "../store/hash-pool.js"
import { streamInWorkers } from "../worker-stream.js"

// The disk side of a drift scan, on every core: each worker reads ranges of
// the recorded rows from its own connection, lstats every file and compares
// it with the stat cache, and for what differs (or everything, `full`) reads
// what the verdict needs there and then (a symlink's target, a regular file's
// sha256 when its size still matches): hashing starts with the first range,
// not after the last lstat. Only what differs comes back to this thread, and
// no more rows are held than the ranges in flight. A file found clean whose
// times or inode moved (every file after an apply: the rename moves its
// ctime) comes back as its new stat alone, not as a row and what was seen.

/** What the disk had at a path that did not match the stat cache (or at every path, when full). */
export interface Seen {
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
  readonly ino: bigint
  /** the symlink's target (null: unreadable), when the row is a symlink and a symlink is there */
  readonly target?: string | null
  /** the sha256 (null: unreadable), when the row is a regular file and one of its recorded size is there */
  readonly sha256?: string | null
}

/** Rows per range: enough to make a message's cost vanish, few enough to keep both cores busy to the end. */
const RANGE = 4096
/** Content per range when hashing everything: a few big files are hashed on every core too. */
const RANGE_BYTES = 32 * 2 ** 20

interface Checked {
  readonly checked: number
  /** regular files hashed and found clean, not sent back as rows */
  readonly cleanHashed: number
  /** clean rows whose times or inode moved: how many, and (when kept) their paths and trove id, mtime, ctime, inode */
  readonly moved: number
  readonly movedPaths: string[]
  readonly movedStats: BigInt64Array
  /** the rows that were not clean by the stat cache, and for each: 1 missing, 2 seen */
  readonly rows: RecordedRow[]
  readonly status: number[]
  /** mode, uid, gid, size, mtime, ctime, inode of each row, zero when missing */
  readonly seen: BigInt64Array
  /** the target or sha256 read for a row, by index */
  readonly read: Array<string | null | undefined>
  readonly error?: { readonly code?: string; readonly syscall?: string; readonly path?: string; readonly message: string }
}

// Runs in the workers (or here, for one range). One synchronous lstat per
// file: a promise per file would cost several times the call. bigint stats:
// times to the nanosecond, as the cache records them.
const CHECK = `${HASH_FILE}
const fs = require("node:fs")
const TYPE_BITS = 0o170000
const TYPES = { file: 0o100000, dir: 0o040000, symlink: 0o120000 }
let statements
function run({ from, to }, { sqlite, addon, dbPath, db, sql, filter, prefix, full, keepMoved }) {
  if (statements === undefined) {
    let conn = db
    if (conn === undefined) {
      conn = new (require(sqlite))(dbPath, { readonly: true, fileMustExist: true, timeout: 5000, nativeBinding: addon })
      // Rows are read in order, each page once: SQLite's own default cache (2 MB), not better-sqlite3's 16 MB per connection.
      conn.pragma("cache_size = -2000")
    }
    const prepare = (text) => conn.prepare(text).raw().safeIntegers(true)
    // Whole rows when every row comes back; otherwise the stat columns, and the rest only where they differ.
    statements = full
      ? { bounded: prepare(sql.bounded), open: prepare(sql.open) }
      : { bounded: prepare(sql.statBounded), open: prepare(sql.statOpen), row: prepare(sql.row) }
  }
  const args = to === null ? [from[0], from[1]] : [from[0], from[1], to[0], to[1]]
  if (filter !== undefined) args.push(filter)
  const whole = (row) => (statements.row === undefined ? row : statements.row.get(row[0], row[1]))
  let checked = 0
  let cleanHashed = 0
  let moved = 0
  const movedPaths = []
  const movedStats = []
  const rows = []
  const status = []
  const seen = []
  const read = []
  for (const row of (to === null ? statements.open : statements.bounded).iterate(...args)) {
    checked++
    // row: trove_id, path, kind, mode, size, mtime_ns, ctime_ns, ino (then uid, gid, sha256, link_target, is_config)
    const p = prefix + row[1]
    let st
    try {
      st = fs.lstatSync(p, { bigint: true, throwIfNoEntry: false })
    } catch (e) {
      // ENOTDIR: a directory on the way was replaced by a file, so nothing is there.
      if (e.code !== "ENOTDIR") return { out: { checked, cleanHashed, moved, movedPaths: [], movedStats: new BigInt64Array(0), rows: [], status, seen: new BigInt64Array(0), read, error: { code: e.code, syscall: e.syscall, path: e.path, message: e.message } }, transfer: [] }
    }
    if (st === undefined) {
      rows.push(whole(row))
      status.push(1)
      seen.push(0n, 0n, 0n, 0n, 0n, 0n, 0n)
      continue
    }
    const mode = Number(st.mode)
    const kind = row[2]
    const typeSame = (mode & TYPE_BITS) === TYPES[kind]
    const sizeSame = st.size === row[4]
    const sameStat = st.mtimeNs === row[5] && st.ctimeNs === row[6] && st.ino === row[7] &&
      (mode & 0o7777) === Number(row[3]) && typeSame && (kind !== "file" || sizeSame)
    if (sameStat && !full) continue
    let found
    if (typeSame && kind === "symlink") {
      try {
        found = fs.readlinkSync(p)
      } catch {
        found = null // vanished since the lstat: the target differs
      }
    } else if (typeSame && kind === "file" && sizeSame) {
      found = hashFile(p, st)
    }
    // A row whose type, mode (a symlink's is not compared), owner and content
    // or target match is clean: counted here, not sent back. Only its times
    // or inode may have moved: then its new stat goes back for the cache.
    const w = whole(row)
    if (typeSame && st.uid === w[8] && st.gid === w[9] && (kind === "symlink" || (mode & 0o7777) === Number(w[3])) &&
      (kind === "dir" || (kind === "file" ? sizeSame && found === w[10] : found === w[11]))) {
      if (kind === "file") cleanHashed++
      if (st.mtimeNs !== w[5] || st.ctimeNs !== w[6] || st.ino !== w[7]) {
        moved++
        if (keepMoved) {
          movedPaths.push(w[1])
          movedStats.push(w[0], st.mtimeNs, st.ctimeNs, st.ino)
        }
      }
      continue
    }
    const at = rows.push(w) - 1
    status.push(2)
    seen.push(st.mode, st.uid, st.gid, st.size, st.mtimeNs, st.ctimeNs, st.ino)
    if (found !== undefined) read[at] = found
  }
  const stats = BigInt64Array.from(seen)
  const movedBuffer = BigInt64Array.from(movedStats)
  return { out: { checked, cleanHashed, moved, movedPaths, movedStats: movedBuffer, rows, status, seen: stats, read }, transfer: [stats.buffer, movedBuffer.buffer] }
}
`

// A worker's better-sqlite3: the package's JavaScript (the bundle's is not a worker's to require), with this thread's addon.
const sqlite = createRequire(import.meta.url).resolve("better-sqlite3")

export interface ScanOptions {
  /** look at every row as if its stat had moved: hash every regular file */
  readonly full: boolean
  /** runs on this thread while the workers scan */
  readonly meanwhile?: () => void
  /** rows per range (tests make it small to run many ranges on few files) */
  readonly rangeRows?: number
}

/** Clean rows whose times or inode moved: paths, and per path its trove id, mtime, ctime and inode (ns). */
export interface Moved {
  readonly paths: ReadonlyArray<string>
  readonly stats: BigInt64Array
}

/**
 * Checks recorded rows against the disk under `root`, calling `onRow` for
 * each row that is not clean, in the rows' order: "missing", or what is
 * there. A row is clean by the stat cache, or (when its stat moved, or with
 * `full`) when its type, mode, owner and content or target match: those
 * whose times or inode moved go to `onMoved` (when given), a range's at a
 * time. Returns how many rows were checked, how many regular files were
 * hashed and found clean, and how many clean rows had moved.
 */
export const checkRows = async (
  root: string,
  recorded: RecordedRows,
  options: ScanOptions,
  onRow: (row: RecordedRow, seen: "missing" | Seen) => void,
  onMoved?: (moved: Moved) => void,
): Promise<{ checked: number; cleanHashed: number; moved: number }> => {
  const resolved = path.resolve(root)
  const prefix = resolved === "/" ? "" : resolved
  const workerData = { sqlite, addon: sqliteAddon(), dbPath: recorded.db.name, sql: recorded.sql, filter: recorded.filter, prefix, full: options.full, keepMoved: onMoved !== undefined }
  const ranges = recorded.ranges(options.rangeRows ?? RANGE, options.full ? RANGE_BYTES : undefined)
  let next = 0
  let checked = 0
  let cleanHashed = 0
  let moved = 0
  await streamInWorkers<RowRange, Checked>({
    body: CHECK,
    workerData,
    inlineData: { ...workerData, db: recorded.db },
    next: () => (next < ranges.length ? { message: ranges[next++]! } : undefined),
    meanwhile: options.meanwhile,
    // A copy of the database in memory (a reader's of a read-only root: db/connection.ts) is this thread's alone.
    here: recorded.db.memory,
    onResult: (out) => {
      const { rows, status, seen, read, error } = out
      if (error) throw Object.assign(new Error(error.message), error)
      checked += out.checked
      cleanHashed += out.cleanHashed
      moved += out.moved
      if (out.movedPaths.length > 0) onMoved?.({ paths: out.movedPaths, stats: out.movedStats })
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!
        if (status[i] === 1) {
          onRow(row, "missing")
          continue
        }
        const at = 7 * i
        const verdict: Seen = {
          mode: Number(seen[at]),
          uid: Number(seen[at + 1]),
          gid: Number(seen[at + 2]),
          size: Number(seen[at + 3]),
          mtimeNs: seen[at + 4]!,
          ctimeNs: seen[at + 5]!,
          ino: seen[at + 6]!,
        }
        const found = read[i]
        if (found === undefined) onRow(row, verdict)
        else onRow(row, row[2] === "symlink" ? { ...verdict, target: found } : { ...verdict, sha256: found })
      }
    },
  })
  return { checked, cleanHashed, moved }
}
