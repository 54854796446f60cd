import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseError, LockError } from "../errors.js"
import { sqliteFailure } from "./connection.js"
import { sqlite } from "./sqlite.js"

// One lock per root. It is an exclusive SQLite transaction on a small lock
// database: the operating system drops it when the holder dies, however it
// dies, so a dead holder's lock is taken over without guessing from pids.
// Who holds it is written beside it, for the message a waiter prints.

export interface Lock {
  release(): void
}

export interface Holder {
  readonly pid: number
  readonly command: string
  readonly since: string
}

export const acquireLock = (
  dbPath: string,
  root: string,
  command: string,
  timeoutSeconds: number,
): Lock => {
  const dir = path.dirname(dbPath)
  const infoPath = path.join(dir, "lock.holder")
  const lock = fileLock(path.join(dir, "lock"), "exclusive", timeoutSeconds)
  if (!lock) throw new LockError({ root, holder: describeHolder(infoPath), waited: timeoutSeconds })
  try {
    writeHolder(infoPath, command)
  } catch (e) {
    // Not kept past the failure: a reader that goes on (another user's, who cannot write here) would hold the root meanwhile.
    lock.release()
    throw e
  }
  return lock
}

/**
 * The same lock on any file, exclusive (one holder, and no shared one) or
 * shared (any number of holders at once, none while an exclusive one is held
 * or waited for: a waiting exclusive holder goes first). Waits up to
 * `timeoutSeconds`; undefined when still busy then. The wait blocks the
 * thread: take it where nothing else must run meanwhile.
 */
export const fileLock = (file: string, mode: "exclusive" | "shared", timeoutSeconds: number): Lock | undefined => {
  const lock = sqlite(file)
  lock.pragma(`busy_timeout = ${Math.round(timeoutSeconds * 1000)}`)
  try {
    if (mode === "exclusive") lock.exec("BEGIN EXCLUSIVE")
    else {
      // A read transaction holds SQLite's shared lock only on a database with a page to read.
      lock.exec("CREATE TABLE IF NOT EXISTS lease (x)")
      lock.exec("BEGIN")
      lock.prepare("SELECT count(*) FROM lease").get()
    }
  } catch (e) {
    lock.close()
    if ((e as { code?: string }).code !== "SQLITE_BUSY") throw lockFileFailure(file, e)
    return undefined
  }
  return {
    release() {
      lock.exec("ROLLBACK")
      lock.close()
    },
  }
}

/**
 * SQLite's failure on a lock file, naming that file: left to the command's
 * own mapping it named the root's database, and one that is not SQLite was
 * called a corrupt database to restore from a backup (losing what changed
 * since) when the lock file holds nothing and can simply go.
 */
const lockFileFailure = (file: string, e: unknown): unknown => {
  const code = (e as { code?: unknown }).code
  if (code === "SQLITE_NOTADB" || (typeof code === "string" && code.startsWith("SQLITE_CORRUPT")))
    return new DatabaseError({ path: file, reason: `is a lock file SQLite cannot read (${(e as Error).message}); it holds nothing but the lock: remove it` })
  return sqliteFailure(file, e) ?? e
}

/** Says who holds a lock, for the message a waiter prints; written whole then renamed, so a waiter never reads half of it. */
export const writeHolder = (infoPath: string, command: string): void => {
  const holder: Holder = { pid: process.pid, command, since: new Date().toISOString() }
  const temp = `${infoPath}.${process.pid}`
  fs.writeFileSync(temp, JSON.stringify(holder))
  fs.renameSync(temp, infoPath)
}

/** Takes the lock only if it is free right now; undefined when someone holds it. */
export const tryLock = (dbPath: string, root: string, command: string): Lock | undefined => {
  try {
    return acquireLock(dbPath, root, command, 0)
  } catch (e) {
    if (e instanceof LockError) return undefined
    throw e
  }
}

export const describeHolder = (infoPath: string): string => {
  try {
    const h = JSON.parse(fs.readFileSync(infoPath, "utf8")) as Holder
    return `pid ${h.pid} (conary ${h.command}) since ${h.since}`
  } catch {
    return "another conary process"
  }
}
