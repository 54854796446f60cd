import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { LockError } from "../errors.js"

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
  const lockPath = path.join(dir, "lock")
  const infoPath = path.join(dir, "lock.holder")
  const lock = new Database(lockPath)
  lock.pragma(`busy_timeout = ${Math.round(timeoutSeconds * 1000)}`)
  try {
    lock.exec("BEGIN EXCLUSIVE")
  } catch (e) {
    lock.close()
    if ((e as { code?: string }).code !== "SQLITE_BUSY") throw e
    throw new LockError({ root, holder: describeHolder(infoPath), waited: timeoutSeconds })
  }
  const holder: Holder = { pid: process.pid, command, since: new Date().toISOString() }
  // Written whole then renamed, so a waiter never reads half of it.
  const temp = `${infoPath}.${process.pid}`
  fs.writeFileSync(temp, JSON.stringify(holder))
  fs.renameSync(temp, infoPath)
  return {
    release() {
      lock.exec("ROLLBACK")
      lock.close()
    },
  }
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

const describeHolder = (infoPath: string): string => {
  try {
    const h = JSON.parse(fs.readFileSync(infoPath, "utf8")) as Holder
    return `pid ${h.pid} (conary ${h.command}) since ${h.since}`
  } catch {
    return "another conary process"
  }
}
