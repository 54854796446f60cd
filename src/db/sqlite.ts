import Database from "better-sqlite3"
import { createRequire } from "node:module"

// better-sqlite3's JavaScript is bundled with the CLI (so it runs from the
// code cache), its addon loaded from the package by path: left to itself it
// finds the addon with the `bindings` package, whose search of likely places
// costs every command milliseconds.

let addon: object | undefined

/** An SQLite connection to `file` (better-sqlite3's options). */
export const sqlite = (file: string, options?: Database.Options): Database.Database =>
  new Database(file, { ...options, nativeBinding: (addon ??= createRequire(import.meta.url)("better-sqlite3/build/Release/better_sqlite3.node")) })
