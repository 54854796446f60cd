import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Db, openDatabase } from "../db/connection.js"
import { type ConaryError, RootError, isConaryError } from "../errors.js"
import type { Report } from "../reconcile/report.js"
import { ContentStore } from "../store/store.js"
import { progressReport } from "./progress.js"

// What every state command runs with: a root, its database and content store.

/** Options every command that touches a root accepts. */
export const rootOptions = {
  root: Options.text("root").pipe(
    Options.withDescription("filesystem root to manage (env CONARY_ROOT)"),
    Options.withFallbackConfig(Config.string("CONARY_ROOT")),
    Options.withDefault("/"),
  ),
  db: Options.text("db").pipe(
    Options.withDescription("database file (env CONARY_DB; default <root>/var/lib/conary/conary.db)"),
    Options.withFallbackConfig(Config.string("CONARY_DB")),
    Options.optional,
  ),
}

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print data as JSON"))

export interface RootArgs {
  readonly root: string
  readonly db: Option.Option<string>
}

export interface Conary {
  readonly root: string
  readonly dbPath: string
  readonly db: Db
  readonly store: ContentStore
  readonly report: Report
  readonly now: () => string
}

/** Runs domain code (sync or async) as an Effect: our errors fail it, anything else is a defect. */
export const attempt = <A>(f: () => A | Promise<A>): Effect.Effect<A, ConaryError> =>
  Effect.tryPromise({ try: async () => f(), catch: (e) => e }).pipe(
    Effect.catchAll((e) => (isConaryError(e) ? Effect.fail(e) : Effect.die(e))),
  )

export const resolveRoot = (root: string): string => {
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

/**
 * Opens the root's database for the length of the effect (closed on every
 * exit path). `create` is for `init`; every other command wants it to exist.
 */
export const withConary = <A, E, R>(
  args: RootArgs & { readonly json?: boolean },
  options: { readonly create: boolean },
  use: (c: Conary) => Effect.Effect<A, E, R>,
) =>
  Effect.acquireUseRelease(
    attempt(() => {
      // An empty CONARY_ROOT/CONARY_DB counts as unset.
      const root = resolveRoot(args.root || "/")
      const dbPath = args.db.pipe(
        Option.filter((d) => d !== ""),
        Option.getOrElse(() => path.join(root, "var/lib/conary/conary.db")),
      )
      const db = openDatabase(path.resolve(dbPath), options)
      const conary: Conary = {
        root,
        dbPath: path.resolve(dbPath),
        db,
        store: new ContentStore(path.join(path.dirname(path.resolve(dbPath)), "store")),
        report: progressReport(args.json === true),
        now: () => new Date().toISOString(),
      }
      return conary
    }),
    use,
    (c) => Effect.sync(() => c.db.close()),
  )
