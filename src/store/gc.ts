import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import type { ContentStore } from "./store.js"

export interface GcResult {
  readonly generationsRemoved: number
  readonly objectsRemoved: number
  readonly bytesFreed: number
  readonly objectsKept: number
}

/**
 * Forgets all but the newest `keep` generations (the current one always
 * stays), then deletes store objects that no remaining generation and no
 * installed trove references, keeping what troves displaced (to put back).
 */
export const collectGarbage = (db: Db, store: ContentStore, keep: number): GcResult => {
  const generationsRemoved = db.transaction(
    () =>
      db
        .prepare("DELETE FROM generations WHERE id NOT IN (SELECT id FROM generations ORDER BY id DESC LIMIT ?)")
        .run(Math.max(1, keep)).changes,
  )()
  const referenced = new Set(
    db
      .prepare(
        `SELECT DISTINCT sha256 FROM trove_files WHERE sha256 IS NOT NULL AND trove_id IN
           (SELECT trove_id FROM generation_troves UNION SELECT trove_id FROM installed_troves)
         UNION SELECT sha256 FROM foreign_paths WHERE sha256 IS NOT NULL`,
      )
      .pluck()
      .all() as string[],
  )
  let objectsRemoved = 0
  let bytesFreed = 0
  let objectsKept = 0
  const objects = path.join(store.dir, "objects")
  for (const prefix of fs.existsSync(objects) ? fs.readdirSync(objects) : []) {
    for (const rest of fs.readdirSync(path.join(objects, prefix))) {
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
  // Leftovers of writes that never finished.
  fs.rmSync(path.join(store.dir, "tmp"), { recursive: true, force: true })
  return { generationsRemoved, objectsRemoved, bytesFreed, objectsKept }
}
