import type { Db } from "../db/connection.js"

const SHA256 = /[0-9a-f]{64}/g

/**
 * Every object a root's database still needs: its installed files and every
 * kept generation's, what troves displaced (to put back), and whatever an
 * interrupted apply's journal names (recovery may still finish it).
 */
export const referencedObjects = (db: Db): Set<string> => {
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
  for (const text of db.prepare("SELECT plan FROM journal UNION ALL SELECT ops FROM journal_files").pluck().iterate() as IterableIterator<string>)
    for (const [sha] of text.matchAll(SHA256)) referenced.add(sha)
  return referenced
}
