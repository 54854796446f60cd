import Database from "better-sqlite3"
import { createRequire } from "node:module"

// better-sqlite3's JavaScript is bundled with the CLI (so it runs from the
// code cache), its addon loaded from the package by path: left to itself it
// finds the addon with the `bindings` package, whose search of likely places
// costs every command milliseconds.

const ADDON = "better-sqlite3/build/Release/better_sqlite3.node"

let addon: { readonly file: string; readonly binding: object } | undefined

const loadAddon = (): { file: string; binding: object } => {
  try {
    const load = createRequire(import.meta.url)
    const file = load.resolve(ADDON)
    return { file, binding: load(file) as object }
  } catch (e) {
    // Node's message goes on with the requiring files (or the addon's ABI) on more lines.
    throw new Error(`cannot load SQLite (${ADDON}): ${(e as Error).message.split("\n", 1)[0]}`)
  }
}

/** An SQLite connection to `file`, or to a database in memory made from a file's bytes (better-sqlite3's options). */
export const sqlite = (file: string | Buffer, options?: Database.Options): Database.Database =>
  // It takes the loaded addon as well as a path (its types say only a path).
  new Database(file, { ...options, nativeBinding: (addon ??= loadAddon()).binding as unknown as string })

/**
 * The addon's file, for worker threads that open connections of their own
 * (better-sqlite3's `nativeBinding`): the same SQLite as this thread's, not
 * another build `bindings` finds first (build/Debug): two copies of SQLite in
 * one process drop each other's locks on a database file as they close it.
 */
export const sqliteAddon = (): string => (addon ??= loadAddon()).file
