import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { jsonOption, lazily, rootOptions } from "./common.js"

// The database is the one thing conary cannot rebuild from the disk: keep copies.

export const backupConfig = { ...rootOptions, json: jsonOption, file: Args.text({ name: "FILE" }) }

const backup = Command.make(
  "backup",
  backupConfig,
  lazily(() => import("../commands/db.js").then((m) => m.backup)),
).pipe(Command.withDescription("copy the database, consistently, while conary keeps running (SQLite's online backup)"))

export const dbCommand = Command.make("db").pipe(
  Command.withDescription("the database itself: backups"),
  Command.withSubcommands([backup]),
)
