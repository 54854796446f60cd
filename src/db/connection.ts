import type Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseError } from "../errors.js"
import { migrations, schemaVersion } from "./migrations.js"
import { sqlite } from "./sqlite.js"

export type Db = Database.Database

// "Cnry": marks a SQLite file as ours, so a stranger's database is refused
// instead of being migrated into.
const APPLICATION_ID = 0x436e7279

/**
 * Opens (and, when `create`, creates) the conary database, applying pending
 * migrations. Throws DatabaseError for anything that is not a usable conary
 * database; callers wrap it in an Effect. A `reader` (a command that changes
 * nothing) that cannot open it where it is reads a copy (readCopy).
 */
export const openDatabase = (file: string, options: { readonly create: boolean; readonly reader?: boolean }): Db => {
  const st = fs.statSync(file, { throwIfNoEntry: false })
  if (st?.isDirectory()) throw new DatabaseError({ path: file, reason: "is a directory, not a database file" })
  // The first directory made for a new database, if any: removed again if SQLite cannot be loaded.
  let made: string | undefined
  if (!st) {
    if (!options.create) {
      throw new DatabaseError({ path: file, reason: "does not exist (run `conary init` first)" })
    }
    made = fs.mkdirSync(path.dirname(file), { recursive: true })
  } else if (st.size === 0 && !options.create) {
    // SQLite would take an empty file for a new database: nothing installed, all clean.
    throw new DatabaseError({ path: file, reason: `is empty (0 bytes): it lost its contents; ${RESTORE_HINT}` })
  }
  // A writer needs the directory (for the log, its index and the lock): said so the same way whether or not
  // SQLite can open the file read-only there (it can while the owner's connection keeps the index).
  const unwritable = st && !options.reader ? directoryUnwritable(fs.realpathSync(file)) : undefined
  if (unwritable !== undefined) throw cannotChange(file, unwritable)
  let db: Db
  try {
    db = sqlite(file)
  } catch (e) {
    if (made !== undefined) removeEmptyUpTo(path.dirname(file), made)
    throw new DatabaseError({ path: file, reason: st && !readable(file) ? "cannot be read by this user (permission denied)" : errorText(e) })
  }
  try {
    return ready(db, file, true)
  } catch (e) {
    db.close()
    // SQLite keeps the log and its index beside the file a symlink leads to, not beside the link.
    const here = cannotOpenHere(e)
    const real = here ? fs.realpathSync(file) : file
    const unwritable = here ? directoryUnwritable(real) : undefined
    if (unwritable !== undefined && options.reader) return ready(readCopy(file, real), file, false)
    if (unwritable !== undefined) throw cannotChange(file, unwritable)
    throw failure(file, e)
  }
}

const readable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.R_OK)
    return true
  } catch {
    return false
  }
}

const cannotChange = (file: string, why: string) => new DatabaseError({ path: file, reason: `cannot be opened to change it: its directory ${why}` })

/** Sets a connection up and brings its schema up to date; `onDisk`: not a copy in memory. */
const ready = (db: Db, file: string, onDisk: boolean): Db => {
  try {
    // A transaction that reads before it writes begins IMMEDIATE: scans keep
    // refreshed stat rows without the root's lock, and a deferred one that
    // read first cannot wait out their write (SQLITE_BUSY at once).
    db.pragma("busy_timeout = 5000")
    if (onDisk) db.pragma("journal_mode = WAL")
    db.pragma("synchronous = NORMAL")
    db.pragma("foreign_keys = ON")
    // SQLite's own default page cache (2 MB), not better-sqlite3's 16 MB: rows are
    // mostly read in key order, each page once, and at 200,000 files the larger
    // cache only added its size to every command's peak memory.
    db.pragma("cache_size = -2000")
    migrate(db, file)
    return db
  } catch (e) {
    if (!onDisk) db.close()
    throw onDisk ? e : failure(file, e)
  }
}

const failure = (file: string, e: unknown): DatabaseError => {
  if (e instanceof DatabaseError) return e
  if ((e as { code?: string }).code === "SQLITE_NOTADB") return new DatabaseError({ path: file, reason: errorText(e) })
  return sqliteFailure(file, e) ?? new DatabaseError({ path: file, reason: errorText(e) })
}

/**
 * SQLite cannot make the write-ahead log's index (the -shm file) it needs to
 * read a WAL database: CANTOPEN on a read-only mount; READONLY_DIRECTORY for a
 * database file and directory this user cannot write (another user's).
 */
const cannotOpenHere = (e: unknown): boolean => {
  const code = (e as { code?: unknown }).code
  return code === "SQLITE_CANTOPEN" || code === "SQLITE_READONLY_CANTINIT" || code === "SQLITE_READONLY_DIRECTORY"
}

/** Why this process cannot create files beside the database (a read-only mount, another user's directory); undefined if it can. */
const directoryUnwritable = (file: string): string | undefined => {
  try {
    fs.accessSync(path.dirname(file), fs.constants.W_OK)
    return undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EROFS" ? "is on a read-only file system" : "is not writable by this user"
  }
}

/**
 * The database, read whole into memory, for a reader that cannot open it
 * where it is: SQLite reads a WAL database only with the log's index beside
 * it, and a read-only mount or a directory of another user's (a snapshot
 * inspected, a monitoring user's verify) lets it create none. Costs about
 * twice the file's size in memory while it loads (the bytes read, and
 * SQLite's own copy); what the reader writes (refreshed stat rows) stays in
 * the copy. Refused when the log holds changes the file does not yet
 * have, or the file changes while it is read (another process writing it).
 * `real`: the file with symlinks resolved, where SQLite keeps the log.
 */
const readCopy = (file: string, real: string): Db => {
  const log = `${real}-wal`
  const logged = () => (fs.statSync(log, { throwIfNoEntry: false })?.size ?? 0) > 0
  const version = () => {
    const st = fs.statSync(real, { bigint: true })
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
  }
  const before = version()
  if (logged())
    throw new DatabaseError({
      path: file,
      reason: "cannot be read here: its directory is read-only to this process and its write-ahead log holds changes not yet in the file (try again once conary is done writing it, or read it as its owner)",
    })
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(real)
  } catch (e) {
    // Node reads no file over 2 GiB whole (ERR_FS_FILE_TOO_LARGE).
    if ((e as { code?: unknown }).code !== "ERR_FS_FILE_TOO_LARGE") throw e
    throw new DatabaseError({
      path: file,
      reason: "cannot be read here: its directory is read-only to this process, and it is too large (over 2 GiB) to be read into memory instead (read it as its owner, or where it can be written)",
    })
  }
  if (version() !== before || logged()) throw new DatabaseError({ path: file, reason: "changed while it was read (another conary is writing it); try again" })
  // The header's bytes 18 and 19 say WAL (2): a copy in memory has no log, and reads as a rollback-journal database (1).
  if (bytes.subarray(0, 16).toString("latin1") === "SQLite format 3\0") bytes[18] = bytes[19] = 1
  try {
    return sqlite(bytes)
  } catch (e) {
    throw new DatabaseError({ path: file, reason: errorText(e) })
  }
}

/** Removes `dir` and its parents up to `top`, each only while empty (another process may have put something there meanwhile). */
const removeEmptyUpTo = (dir: string, top: string) => {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      fs.rmdirSync(d)
    } catch {
      return
    }
    if (d === top || path.dirname(d) === d) return
  }
}

const migrate = (db: Db, file: string) => {
  const version = db.pragma("user_version", { simple: true }) as number
  const appId = db.pragma("application_id", { simple: true }) as number
  if (version === 0) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number }
    if (tables.n > 0) throw new DatabaseError({ path: file, reason: "not a conary database" })
  } else if (appId !== APPLICATION_ID) {
    throw new DatabaseError({ path: file, reason: "not a conary database" })
  }
  if (version > schemaVersion) {
    throw new DatabaseError({
      path: file,
      reason: `schema version ${version} is newer than this conary understands (${schemaVersion}); upgrade conary`,
    })
  }
  for (let v = version; v < schemaVersion; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!)
      db.pragma(`application_id = ${APPLICATION_ID}`)
      db.pragma(`user_version = ${v + 1}`)
    }).immediate()
  }
}

/** How to get a database back: said wherever one turns out corrupt. */
export const RESTORE_HINT = "restore it from a backup made with `conary db backup` (see README: after disk corruption)"

/** Runs PRAGMA quick_check or integrity_check; refuses a database that fails it. */
export const checkIntegrity = (db: Db, file: string, pragma: "quick_check" | "integrity_check"): void => {
  const problems = db.pragma(`${pragma}(3)`, { simple: false }) as Array<Record<string, string>>
  const lines = problems.map((row) => Object.values(row)[0]!.replace(/\s*\n\s*/g, " "))
  if (lines.length === 1 && lines[0] === "ok") return
  throw new DatabaseError({ path: file, reason: `is corrupt (${pragma}: ${lines.join("; ")}); ${RESTORE_HINT}` })
}

/** An SQLite failure as one line, or undefined for anything that is not one. */
export const sqliteFailure = (file: string, e: unknown): DatabaseError | undefined => {
  const code = (e as { code?: unknown }).code
  if (!(e instanceof Error) || typeof code !== "string" || !code.startsWith("SQLITE_")) return undefined
  const reason =
    code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB"
      ? `is corrupt (${e.message}); ${RESTORE_HINT}`
      : code === "SQLITE_FULL"
        ? "cannot be written: no space left on device (disk full)"
        : code.startsWith("SQLITE_READONLY")
          ? `cannot be written: read-only (${e.message})`
          : code.startsWith("SQLITE_IOERR")
            ? `I/O error (${e.message}): is the disk full, or failing?`
            : `${e.message} (${code})`
  return new DatabaseError({ path: file, reason })
}

const errorText = (e: unknown): string => {
  const text = e instanceof Error ? e.message : String(e)
  return text === "file is not a database" ? "not a conary database (not SQLite)" : text
}
