import * as fs from "node:fs"
import * as path from "node:path"
import { type Lock, describeHolder, fileLock, writeHolder } from "../db/lock.js"
import { StoreDirError } from "../errors.js"

// Roots sharing one content store (see README: Fleets on one host):
// - every root that uses a store has a file `roots/<root id>.json` in it
//   naming its root and database, so the gc of any one of them can read what
//   all of them still need;
// - `lock` in the store is an SQLite lock (as a root's lock, released by the
//   operating system when its holder dies): apply and rollback hold it shared
//   from before they look for contents in the store until their generation
//   is recorded; gc holds it exclusive while it decides and deletes. So gc
//   waits for applies in flight, and applies that start meanwhile wait for it.

export interface Registration {
  readonly id: string
  readonly root: string
  readonly db: string
  /** the registry file itself */
  readonly file: string
}

const rootsDir = (store: string) => path.join(store, "roots")
const entryFile = (store: string, id: string) => path.join(rootsDir(store), `${id}.json`)

/** Records that this root uses the store (written whole, then renamed); nothing when it is recorded already. */
export const registerRoot = (store: string, id: string, root: string, db: string): void => {
  const file = entryFile(store, id)
  const text = JSON.stringify({ formatVersion: 1, root, db })
  if (readText(file) === text) return
  fs.mkdirSync(rootsDir(store), { recursive: true })
  const temp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(temp, text)
  fs.renameSync(temp, file)
}

export const unregisterRoot = (store: string, id: string): void => fs.rmSync(entryFile(store, id), { force: true })

const readText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

/** The roots registered in a store. An entry that cannot be read is refused: gc must know every root it may not take from. */
export const registeredRoots = (store: string): Registration[] => {
  const dir = rootsDir(store)
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith(".json")) : []
  return names.map((name) => {
    const file = path.join(dir, name)
    let entry: { root?: unknown; db?: unknown } | undefined
    try {
      entry = JSON.parse(fs.readFileSync(file, "utf8"))
    } catch {
      entry = undefined
    }
    if (typeof entry?.root !== "string" || typeof entry.db !== "string" || !path.isAbsolute(entry.db))
      throw new StoreDirError({ store, reason: `registry entry ${file} is unreadable; remove it only if no root uses this store through it` })
    return { id: name.slice(0, -".json".length), root: entry.root, db: entry.db, file }
  })
}

/** The least an apply waits for a gc of its store: a gc is short, and a fleet's applies should not fail because one root collects. */
const APPLY_WAITS_FOR_GC = 60

/** Leases this process holds, by store: a nested one shares the outer one (a second would queue behind a waiting gc that waits for the first). */
const held = new Map<string, { lock: Lock; count: number }>()

/** apply's hold on the store: shared with other roots' applies; waits for a gc in progress. */
export const leaseStore = (store: string, lockTimeout: number): Lock => {
  let h = held.get(store)
  if (!h) {
    const waited = Math.max(lockTimeout, APPLY_WAITS_FOR_GC)
    const lock = fileLock(path.join(store, "lock"), "shared", waited)
    if (!lock) throw new StoreDirError({ store, reason: `is being collected by ${describeHolder(holderFile(store))}; gave up after ${waited} s (see --lock-timeout)` })
    held.set(store, (h = { lock, count: 0 }))
  }
  const lease = h
  lease.count++
  return {
    release() {
      if (--lease.count > 0) return
      held.delete(store)
      lease.lock.release()
    },
  }
}

/** gc's hold on the store: no apply of any root using it runs meanwhile. */
export const lockStore = (store: string, command: string, lockTimeout: number): Lock => {
  const lock = fileLock(path.join(store, "lock"), "exclusive", lockTimeout)
  if (!lock)
    throw new StoreDirError({
      store,
      reason: `is in use (an apply of a root sharing it, or another gc); gave up after ${lockTimeout} s (see --lock-timeout)`,
    })
  writeHolder(holderFile(store), command)
  return lock
}

const holderFile = (store: string) => path.join(store, "lock.holder")
