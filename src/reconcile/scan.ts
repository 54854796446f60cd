import { createRequire } from "node:module"
import * as path from "node:path"
import type { RecordedRow, RecordedRows, RowRange } from "../db/state.js"
import { HASH_FILE } from "../store/hash-pool.js"
import { streamInWorkers } from "../worker-stream.js"

// The disk side of a drift scan, on every core: each worker reads ranges of
// the recorded rows from its own connection, lstats every file and compares
// it with the stat cache, and for what differs (or everything, `full`) reads
// what the verdict needs there and then (a symlink's target, a regular file's
// sha256 when its size still matches): hashing starts with the first range,
// not after the last lstat. Only what differs comes back to this thread, and
// no more rows are held than the ranges in flight.

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
  /** regular files hashed and found clean (full), not sent back */
  readonly cleanHashed: number
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
function run({ from, to }, { sqlite, dbPath, db, sql, filter, prefix, full }) {
  if (statements === undefined) {
    let conn = db
    if (conn === undefined) {
      conn = new (require(sqlite))(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 })
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
      if (e.code !== "ENOTDIR") return { out: { checked, cleanHashed, rows: [], status, seen: new BigInt64Array(0), read, error: { code: e.code, syscall: e.syscall, path: e.path, message: e.message } }, transfer: [] }
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
      found = hashFile(p)
    }
    // With full, a row whose stat, owner and content or target all match is clean and
    // its cache stands: counted here, not sent back.
    if (sameStat && st.uid === row[8] && st.gid === row[9] && (kind === "dir" || (found !== null && found === (kind === "file" ? row[10] : row[11])))) {
      if (kind === "file") cleanHashed++
      continue
    }
    const at = rows.push(whole(row)) - 1
    status.push(2)
    seen.push(st.mode, st.uid, st.gid, st.size, st.mtimeNs, st.ctimeNs, st.ino)
    if (found !== undefined) read[at] = found
  }
  const stats = BigInt64Array.from(seen)
  return { out: { checked, cleanHashed, rows, status, seen: stats, read }, transfer: [stats.buffer] }
}
`

const sqlite = createRequire(import.meta.url).resolve("better-sqlite3")

export interface ScanOptions {
  /** look at every row as if its stat had moved: hash every regular file */
  readonly full: boolean
  /** runs on this thread while the workers scan */
  readonly meanwhile?: () => void
  /** rows per range (tests make it small to run many ranges on few files) */
  readonly rangeRows?: number
}

/**
 * Checks recorded rows against the disk under `root`, calling `onRow` for each
 * row not clean by the stat cache, in the rows' order: "missing", or what is
 * there. With `full`, rows whose stat, owner and content (or target) match
 * are clean and counted; every other row goes to `onRow`. Returns how many
 * rows were checked, and how many regular files were hashed and found clean.
 */
export const checkRows = async (
  root: string,
  recorded: RecordedRows,
  options: ScanOptions,
  onRow: (row: RecordedRow, seen: "missing" | Seen) => void,
): Promise<{ checked: number; cleanHashed: number }> => {
  const resolved = path.resolve(root)
  const prefix = resolved === "/" ? "" : resolved
  const workerData = { sqlite, dbPath: recorded.db.name, sql: recorded.sql, filter: recorded.filter, prefix, full: options.full }
  const ranges = recorded.ranges(options.rangeRows ?? RANGE, options.full ? RANGE_BYTES : undefined)
  let next = 0
  let checked = 0
  let cleanHashed = 0
  await streamInWorkers<RowRange, Checked>({
    body: CHECK,
    workerData,
    inlineData: { ...workerData, db: recorded.db },
    next: () => (next < ranges.length ? { message: ranges[next++]! } : undefined),
    meanwhile: options.meanwhile,
    onResult: (out) => {
      const { rows, status, seen, read, error } = out
      if (error) throw Object.assign(new Error(error.message), error)
      checked += out.checked
      cleanHashed += out.cleanHashed
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
  return { checked, cleanHashed }
}
