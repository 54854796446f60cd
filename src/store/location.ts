import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import { type Lock } from "../db/lock.js"
import { StoreDirError, describeIo } from "../errors.js"
import { referencedObjects } from "./references.js"
import { leaseStore, registerRoot, unregisterRoot } from "./registry.js"
import { ContentStore } from "./store.js"

// Where a root's content store lives: its own `store/` beside the database,
// or a store shared by several roots (`--store DIR`, env CONARY_STORE), which
// the database records (settings `store`) so that every later command uses it.

/** In every store conary made: a directory without it (and not empty) is not taken for one, since gc deletes what it finds there. */
const MARK = "conary-store"

export const defaultStoreDir = (dbPath: string): string => path.join(path.dirname(dbPath), "store")

/** The store a database records, or the root's own. */
export const storeDirOf = (db: Db, dbPath: string): string =>
  (db.prepare("SELECT value FROM settings WHERE key = 'store'").pluck().get() as string | undefined) ?? defaultStoreDir(dbPath)

export const rootIdOf = (db: Db): string | undefined =>
  db.prepare("SELECT value FROM settings WHERE key = 'root_id'").pluck().get() as string | undefined

const real = (p: string): string => {
  try {
    return fs.realpathSync(p)
  } catch {
    return path.resolve(p)
  }
}

export const sameStore = (a: string, b: string): boolean => real(a) === real(b)

const within = (parent: string, child: string): boolean => {
  const rel = path.relative(parent, child)
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

/**
 * Refuses a directory that cannot be a root's store, or makes it one (created
 * when missing, and marked). A shared store lies outside the root: inside,
 * troves could install files into it (the root's own store is reserved).
 */
const prepareStore = (dir: string, root: string, own: boolean): void => {
  const st = fs.statSync(dir, { throwIfNoEntry: false })
  if (st && !st.isDirectory()) throw new StoreDirError({ store: dir, reason: "is not a directory" })
  if (!own) {
    const [r, d] = [real(root), real(dir)]
    if (within(d, r)) throw new StoreDirError({ store: dir, reason: `contains the root ${root}; put the store beside the roots that use it` })
    if (within(r, d))
      throw new StoreDirError({ store: dir, reason: `is inside the root ${root}, where troves install files; put the store outside the roots that use it` })
  }
  try {
    // Only the last component: a mistyped path is refused rather than made. Roots set up at once race to make it.
    if (!st) fs.mkdirSync(dir, { recursive: fs.existsSync(path.dirname(dir)) })
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK)
  } catch (e) {
    throw new StoreDirError({ store: dir, reason: `is not usable: ${describeIo(e)}` })
  }
  const mark = path.join(dir, MARK)
  if (fs.existsSync(mark)) return
  if (!own && fs.readdirSync(dir).length > 0)
    throw new StoreDirError({ store: dir, reason: `is not empty and is no conary store (it has no ${MARK} file); name an empty or new directory` })
  try {
    fs.writeFileSync(mark, "conary content store: objects/ by sha256; roots/ the roots using it (see README: Fleets on one host)\n")
  } catch (e) {
    throw new StoreDirError({ store: dir, reason: `is not usable: ${describeIo(e)}` })
  }
}

export interface StoreChoice {
  readonly dir: string
  /** set when this command moved the root from a store that exists */
  readonly movedFrom?: string
  readonly copied?: number
}

/**
 * The store a command works with. Commands that change state and are given a
 * store (option or environment) other than the recorded one move the root to
 * it: they copy into it every object the root still needs (installed files,
 * kept generations, saved files no trove owned), register the root there and
 * record it, then leave the old store's registry. Readers use the recorded store.
 */
export const chooseStore = async (
  c: { readonly db: Db; readonly dbPath: string; readonly root: string },
  given: string | undefined,
  write: boolean,
  lockTimeout: number,
): Promise<StoreChoice> => {
  const current = storeDirOf(c.db, c.dbPath)
  if (given === undefined || !write || sameStore(given, current)) return { dir: current }
  const to = path.resolve(given)
  const own = sameStore(to, defaultStoreDir(c.dbPath))
  const id = rootIdOf(c.db)!
  const lease = leaseStore(to, lockTimeout)
  let copied = 0
  try {
    registerRoot(to, id, c.root, c.dbPath)
    const [source, target] = [new ContentStore(current), new ContentStore(to)]
    for (const sha of referencedObjects(c.db)) {
      if (target.has(sha) || !source.has(sha)) continue
      await target.putStream(fs.createReadStream(source.pathOf(sha)), sha)
      copied++
    }
    if (own) c.db.prepare("DELETE FROM settings WHERE key = 'store'").run()
    else c.db.prepare("INSERT INTO settings (key, value) VALUES ('store', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(to)
  } finally {
    lease.release()
  }
  if (!fs.existsSync(current)) return { dir: to }
  unregisterRoot(current, id)
  return { dir: to, movedFrom: current, copied }
}

/** Checks a store given to a command that changes state (and makes it, when missing), before the database is opened or created. */
export const checkGivenStore = (given: string, root: string, dbPath: string): void => {
  if (given === "") throw new StoreDirError({ store: "''", reason: "is empty; name a directory (a script's unset variable?)" })
  const dir = path.resolve(given)
  prepareStore(dir, root, sameStore(dir, defaultStoreDir(dbPath)))
}

/**
 * apply's hold on its store for as long as it runs (see registry.ts); the
 * root is (re)registered there. The root's own store is made when missing; a
 * shared one must be there: a missing one is rather unmounted than empty.
 */
export const holdStore = (c: { readonly db: Db; readonly dbPath: string; readonly root: string }, dir: string, lockTimeout: number): Lock => {
  if (sameStore(dir, defaultStoreDir(c.dbPath))) prepareStore(dir, c.root, true)
  else if (!fs.existsSync(path.join(dir, MARK)))
    throw new StoreDirError({ store: dir, reason: `which this root uses, is missing or no conary store (no ${MARK} file): is it mounted?` })
  const lease = leaseStore(dir, lockTimeout)
  try {
    const id = rootIdOf(c.db)
    if (id !== undefined) registerRoot(dir, id, c.root, c.dbPath)
  } catch (e) {
    lease.release()
    throw e
  }
  return lease
}
