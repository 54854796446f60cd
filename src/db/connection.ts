import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseError } from "../errors.js"
import { migrations, schemaVersion } from "./migrations.js"

export type Db = Database.Database

// "Cnry": marks a SQLite file as ours, so a stranger's database is refused
// instead of being migrated into.
const APPLICATION_ID = 0x436e7279

/**
 * Opens (and, when `create`, creates) the conary database, applying pending
 * migrations. Throws DatabaseError for anything that is not a usable conary
 * database; callers wrap it in an Effect.
 */
export const openDatabase = (file: string, options: { readonly create: boolean }): Db => {
  if (!fs.existsSync(file)) {
    if (!options.create) {
      throw new DatabaseError({ path: file, reason: "does not exist (run `conary init` first)" })
    }
    fs.mkdirSync(path.dirname(file), { recursive: true })
  }
  let db: Db
  try {
    db = new Database(file)
  } catch (e) {
    throw new DatabaseError({ path: file, reason: errorText(e) })
  }
  try {
    db.pragma("busy_timeout = 5000")
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = NORMAL")
    db.pragma("foreign_keys = ON")
    migrate(db, file)
    return db
  } catch (e) {
    db.close()
    if (e instanceof DatabaseError) throw e
    throw new DatabaseError({ path: file, reason: errorText(e) })
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

const errorText = (e: unknown): string => {
  const text = e instanceof Error ? e.message : String(e)
  return text === "file is not a database" ? "not a conary database (not SQLite)" : text
}
