import * as fs from "node:fs"
import * as path from "node:path"
import { nodeCrypto } from "../builtin.js"
import { DatabaseError, RootError } from "../errors.js"
import type { Db } from "./connection.js"

// A database manages one root. Both keep the root's id: the database in its
// settings, the root in a file beside the default database, so `--db` naming
// another root's database is refused instead of "repairing" this root from
// that one's records.

export const ROOT_ID_FILE = "var/lib/conary/root-id"

const readIdFile = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8").trim()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

const managedElsewhere = (root: string, file: string, id: string) =>
  new RootError({
    root,
    reason:
      `already has files installed by conary, recorded in another database (root id ${id}): ` +
      `give that database with --db, or restore it from a backup; to start over without it, remove ${file}`,
  })

/** `init` of a database that does not exist yet: refused before anything is created when another database manages the root. */
export const checkUnmanaged = (root: string): void => {
  const file = path.join(root, ROOT_ID_FILE)
  const onDisk = readIdFile(file)
  if (onDisk !== undefined) throw managedElsewhere(root, file, onDisk)
}

/**
 * Checks that the database and the root belong together. A database without
 * an id (made before ids, or just created) claims the root when it may write
 * and the root has no id yet; `init` refuses a root whose id says another
 * database records its installed files.
 */
export const checkRootIdentity = (db: Db, dbPath: string, root: string, access: { readonly create: boolean; readonly write: boolean }) => {
  const file = path.join(root, ROOT_ID_FILE)
  const recorded = db.prepare("SELECT value FROM settings WHERE key = 'root_id'").pluck().get() as string | undefined
  const onDisk = readIdFile(file)
  if (recorded !== undefined && onDisk === recorded) return
  if (recorded !== undefined)
    throw new DatabaseError({
      path: dbPath,
      reason: onDisk
        ? `manages another root (root id ${recorded}; ${root} has ${onDisk}): give the database of ${root} with --db`
        : `manages another root (root id ${recorded}); ${file} is missing: if ${root} is that root, write ${recorded} into it`,
    })
  if (onDisk !== undefined) {
    if (access.create) throw managedElsewhere(root, file, onDisk)
    throw new DatabaseError({ path: dbPath, reason: `does not manage ${root} (its root id ${onDisk} is another database's)` })
  }
  if (!access.write) return
  const id = nodeCrypto().randomUUID()
  // The file is written inside the transaction: if it cannot be, neither is claimed.
  db.transaction(() => {
    db.prepare("INSERT INTO settings (key, value) VALUES ('root_id', ?)").run(id)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const temp = `${file}.tmp-${process.pid}`
    fs.writeFileSync(temp, id + "\n")
    fs.renameSync(temp, file)
  })()
}
