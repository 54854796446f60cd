import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Db, checkIntegrity, openDatabase, sqliteFailure } from "../db/connection.js"
import { checkRootIdentity, checkUnmanaged } from "../db/root-id.js"
import { readJournal } from "../db/journal.js"
import { type Lock, acquireLock, tryLock } from "../db/lock.js"
import { currentGeneration } from "../db/state.js"
import type { Recovery } from "../reconcile/apply.js"
import { type ConaryError, IoError, RootError, describeIo, isConaryError, printable } from "../errors.js"
import type { Report } from "../model/report.js"
import { checkGivenStore, chooseStore, defaultStoreDir, sameStore, storeDirOf } from "../store/location.js"
import { shareMetadataThrough } from "../store/metadata-cache.js"
import { ContentStore } from "../store/store.js"
import { count } from "./format.js"
import { progressReport } from "./progress.js"

// What every state command runs with: a root, its database and content store.

export interface RootArgs {
  readonly root: string
  readonly db: Option.Option<string>
  readonly store: Option.Option<string>
  readonly lockTimeout: number
}

export interface Conary {
  readonly root: string
  readonly dbPath: string
  readonly db: Db
  readonly store: ContentStore
  /** seconds to wait for another conary (--lock-timeout) */
  readonly lockTimeout: number
  readonly report: Report
  readonly now: () => string
  /** what recovery did before this command, if anything */
  readonly recovered?: Recovery
}

/** Runs domain code (sync or async) as an Effect: our errors fail it, anything else is a defect. */
export const attempt = <A>(f: () => A | Promise<A>): Effect.Effect<A, ConaryError> =>
  Effect.tryPromise({ try: async () => f(), catch: (e) => e }).pipe(
    Effect.catchAll((e) => (isConaryError(e) ? Effect.fail(e) : Effect.die(e))),
  )

/**
 * What escaped the domain code as a plain exception but is no bug: an SQLite
 * error, or a system call that failed (disk full, I/O error). One line each.
 */
const asConaryError = (dbPath: string, e: unknown): ConaryError | undefined => {
  const sqlite = sqliteFailure(dbPath, e)
  if (sqlite) return sqlite
  const err = e as NodeJS.ErrnoException
  if (e instanceof Error && typeof err.code === "string" && typeof err.syscall === "string")
    return new IoError({ path: err.path ?? err.syscall, reason: describeIo(e) })
  return undefined
}

const mapKnownDefects =
  (dbPath: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.catchAllDefect((d) => {
        const e = asConaryError(dbPath, d)
        return e ? Effect.fail(e) : Effect.die(d)
      }),
    )

export const resolveRoot = (root: string): string => {
  // An empty root is a script's unset variable (`--root "$1"`), never a wish to manage this machine's /.
  if (root === "") throw new RootError({ root: "''", reason: "is empty; name a directory (--root / for this machine itself)" })
  const abs = path.resolve(root)
  let st: fs.Stats
  try {
    st = fs.statSync(abs)
  } catch {
    throw new RootError({ root: abs, reason: "does not exist" })
  }
  if (!st.isDirectory()) throw new RootError({ root: abs, reason: "is not a directory" })
  return abs
}

export interface Access {
  /** `init` creates the database; every other command wants it to exist */
  readonly create?: boolean
  /** commands that change state hold the root's lock; readers never wait for it */
  readonly write: boolean
  /** named in the lock, for whoever waits on it */
  readonly command: string
}

/** The root and database a command works on. An empty CONARY_DB counts as unset; an empty root is refused. */
const locate = (args: RootArgs) => {
  const root = resolveRoot(args.root)
  const dbPath = path.resolve(
    args.db.pipe(
      Option.filter((d) => d !== ""),
      Option.getOrElse(() => path.join(root, "var/lib/conary/conary.db")),
    ),
  )
  return { root, dbPath }
}

const open = (args: RootArgs, access: Access, { root, dbPath }: ReturnType<typeof locate>, report: Report) => {
  // A store that cannot be used is refused before anything is created.
  if (access.write && Option.isSome(args.store)) checkGivenStore(args.store.value, root, dbPath)
  // A refused init leaves nothing behind: check the root before creating the database, its directory or its lock.
  if (access.create && !fs.existsSync(dbPath)) checkUnmanaged(root)
  const db = openDatabase(dbPath, { create: access.create === true, reader: !access.write })
  let lock: Lock | undefined
  try {
    if (access.write) lock = acquireLock(dbPath, root, access.command, args.lockTimeout)
    // Cheap enough before a change (pages are read, indexes not cross-checked);
    // verify runs the full integrity_check.
    if (access.write && access.create !== true) checkIntegrity(db, dbPath, "quick_check")
    checkRootIdentity(db, dbPath, root, { create: access.create === true, write: access.write })
  } catch (e) {
    lock?.release()
    db.close()
    throw e
  }
  const conary: Conary = {
    root,
    dbPath,
    db,
    store: new ContentStore(storeDirOf(db, dbPath)),
    lockTimeout: args.lockTimeout,
    report,
    now: () => new Date().toISOString(),
  }
  return { conary, lock }
}

/**
 * Finishes or undoes an apply that was interrupted, before anything reads
 * state. A reader that cannot take the lock leaves it to the apply still
 * running (the database shows the old generation until that apply is done).
 */
const recoverIfNeeded = async (c: Conary, held: Lock | undefined): Promise<Recovery | undefined> => {
  const recover = async () => {
    const journal = await readJournal(c.db, c.dbPath)
    if (!journal) return undefined
    const lock = held ?? tryLock(c.dbPath, c.root, "recover")
    if (!lock) return undefined
    try {
      const again = await readJournal(c.db, c.dbPath)
      if (!again) return undefined
      // The applier loads only for this: readers and most commands never need it.
      const { recoverJournal } = await import("../reconcile/apply.js")
      const r = await recoverJournal(c, again, () => currentGeneration(c.db))
      process.stderr.write(`conary: ${printable(recoveryLine(r))}\n`)
      return r
    } finally {
      if (!held) lock.release()
    }
  }
  if (held) return recover()
  // A reader shows the recorded state even when the journal cannot be settled now.
  try {
    return await recover()
  } catch (e) {
    const why = isConaryError(e) ? e.message : describeIo(e)
    process.stderr.write(`conary: warning: an interrupted apply could not be settled (${printable(why)}); showing the state before it\n`)
    return undefined
  }
}

export const recoveryLine = (r: Recovery): string => {
  const done =
    r.action === "rolled-back" ? `undone; the root is at generation ${r.generation}` : `finished; the root is at generation ${r.generation}`
  const failed =
    r.failed.length === 0
      ? ""
      : `; ${r.failed.length === 1 ? "1 path" : `${r.failed.length} paths`} could not be changed and stay as they were ` +
        `(${r.failed[0]!.path}: ${r.failed[0]!.reason}${r.failed.length > 1 ? ", …" : ""}); \`conary verify\` shows them`
  return `recovered an interrupted ${r.command} (pid ${r.pid}, started ${r.startedAt}): ${done}${failed}`
}

/**
 * Opens the root's database (and takes its lock, for writers) for the length
 * of the effect, released on every exit path; recovers first if needed.
 */
export const withConary = <A, E, R>(
  args: RootArgs & { readonly json?: boolean },
  access: Access,
  use: (c: Conary) => Effect.Effect<A, E, R>,
) =>
  Effect.flatMap(attempt(() => locate(args)), (where) => {
    const known = mapKnownDefects(where.dbPath)
    return Effect.acquireUseRelease(
      known(
        attempt(async () => {
          const opened = open(args, access, where, await progressReport(args.json === true))
          try {
            const recovered = await recoverIfNeeded(opened.conary, opened.lock)
            const store = await chooseStore(opened.conary, Option.getOrUndefined(args.store), access.write, args.lockTimeout)
            if (store.movedFrom !== undefined)
              process.stderr.write(`conary: ${printable(`this root now uses the store ${store.dir} (${count(store.copied ?? 0, "object")} it needs copied from ${store.movedFrom})`)}\n`)
            const content = new ContentStore(store.dir)
            shareMetadataThrough(sameStore(store.dir, defaultStoreDir(opened.conary.dbPath)) ? undefined : content)
            return { conary: { ...opened.conary, store: content, recovered }, lock: opened.lock }
          } catch (e) {
            opened.lock?.release()
            opened.conary.db.close()
            throw e
          }
        }),
      ),
      ({ conary }) => known(use(conary)),
      ({ conary, lock }) =>
        Effect.sync(() => {
          lock?.release()
          conary.db.close()
        }),
    )
  })
