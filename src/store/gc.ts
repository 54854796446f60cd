import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import { sqlite } from "../db/sqlite.js"
import { StoreDirError } from "../errors.js"
import { rootIdOf, sameStore, storeDirOf } from "./location.js"
import { referencedObjects } from "./references.js"
import { lockStore, registerRoot, registeredRoots, unregisterRoot } from "./registry.js"
import type { ContentStore } from "./store.js"

export interface GcResult {
  readonly generationsRemoved: number
  readonly objectsRemoved: number
  readonly bytesFreed: number
  readonly objectsKept: number
  /** other roots using the store, whose references were kept */
  readonly rootsSharing: number
  /** registered roots found gone, and dropped from the store's registry */
  readonly rootsDropped: ReadonlyArray<string>
}

/**
 * What the other roots registered in the store still need, each database
 * opened read-only. A root whose database is gone, or that uses another store
 * now, is dropped from the registry (and named); one whose database cannot be
 * read stops the gc before anything is deleted.
 */
const othersReferences = (store: string, own: { id: string | undefined; dbPath: string }) => {
  const referenced = new Set<string>()
  const dropped: string[] = []
  let sharing = 0
  for (const reg of registeredRoots(store)) {
    if (reg.id === own.id || reg.db === own.dbPath) continue
    if (!fs.existsSync(reg.db)) {
      unregisterRoot(store, reg.id)
      dropped.push(`${reg.root} (its database ${reg.db} is gone)`)
      continue
    }
    let other: Db
    try {
      other = sqlite(reg.db, { readonly: true, fileMustExist: true })
    } catch (e) {
      throw unreadable(store, reg.root, reg.db, e)
    }
    try {
      other.pragma("busy_timeout = 5000")
      if (!sameStore(storeDirOf(other, reg.db), store)) {
        unregisterRoot(store, reg.id)
        dropped.push(`${reg.root} (it uses another store now)`)
        continue
      }
      for (const sha of referencedObjects(other)) referenced.add(sha)
      sharing++
    } catch (e) {
      throw unreadable(store, reg.root, reg.db, e)
    } finally {
      other.close()
    }
  }
  return { referenced, dropped, sharing }
}

const unreadable = (store: string, root: string, db: string, e: unknown) =>
  new StoreDirError({
    store,
    reason: `cannot read the database ${db} of root ${root}, which uses this store (${e instanceof Error ? e.message : String(e)}); nothing was collected`,
  })

/**
 * Forgets all but the newest `keep` generations (the current one always
 * stays), then deletes store objects that no root using the store still
 * needs (see referencedObjects). Holds the store's lock exclusive throughout
 * (see registry.ts), so no apply of any of those roots is between fetching
 * its contents and recording its generation meanwhile.
 */
export const collectGarbage = (
  c: { readonly db: Db; readonly dbPath: string; readonly root: string },
  store: ContentStore,
  keep: number,
  lockTimeout: number,
): GcResult => {
  fs.mkdirSync(store.dir, { recursive: true })
  const lock = lockStore(store.dir, `gc of root ${c.root}`, lockTimeout)
  try {
    const id = rootIdOf(c.db)
    if (id !== undefined) registerRoot(store.dir, id, c.root, c.dbPath)
    // Read before anything changes: a root that cannot be read stops the gc here.
    const others = othersReferences(store.dir, { id, dbPath: c.dbPath })
    const generationsRemoved = c.db.transaction(
      () =>
        c.db
          .prepare("DELETE FROM generations WHERE id NOT IN (SELECT id FROM generations ORDER BY id DESC LIMIT ?)")
          .run(Math.max(1, keep)).changes,
    )()
    const referenced = referencedObjects(c.db)
    for (const sha of others.referenced) referenced.add(sha)
    let objectsRemoved = 0
    let bytesFreed = 0
    let objectsKept = 0
    const objects = path.join(store.dir, "objects")
    for (const prefix of fs.existsSync(objects) ? fs.readdirSync(objects) : []) {
      for (const rest of fs.readdirSync(path.join(objects, prefix))) {
        // A write that never finished (see ContentStore.tempFile): no apply is writing now.
        if (rest.startsWith(".")) {
          fs.rmSync(path.join(objects, prefix, rest), { force: true })
          continue
        }
        if (referenced.has(prefix + rest)) {
          objectsKept++
          continue
        }
        const file = path.join(objects, prefix, rest)
        bytesFreed += fs.statSync(file).size
        fs.rmSync(file)
        objectsRemoved++
      }
    }
    // Leftovers of writes that never finished: no apply is writing now.
    fs.rmSync(path.join(store.dir, "tmp"), { recursive: true, force: true })
    return { generationsRemoved, objectsRemoved, bytesFreed, objectsKept, rootsSharing: others.sharing, rootsDropped: others.dropped }
  } finally {
    lock.release()
  }
}
