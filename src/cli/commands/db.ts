import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { checkIntegrity } from "../../db/connection.js"
import { writeOutputFile } from "../../files.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { formatBytes, printJson, println } from "../format.js"

// The database is the one thing conary cannot rebuild from the disk: keep copies.

const backup = Command.make(
  "backup",
  { ...rootOptions, json: jsonOption, file: Args.text({ name: "FILE" }) },
  (args) =>
    withConary(args, { write: false, command: "db backup" }, (c) =>
      Effect.gen(function* () {
        const file = path.resolve(args.file)
        const bytes = yield* attempt(async () => {
          // A copy of a corrupt database is no backup.
          checkIntegrity(c.db, c.dbPath, "quick_check")
          // SQLite's online backup: a consistent copy while others read and write.
          await writeOutputFile(file, (temp) => c.db.backup(temp))
          return fs.statSync(file).size
        })
        if (args.json) return printJson({ formatVersion: 1, database: c.dbPath, backup: file, bytes })
        println(`Backed up ${c.dbPath} to ${file} (${formatBytes(bytes)}).`)
      }),
    ),
).pipe(Command.withDescription("copy the database, consistently, while conary keeps running (SQLite's online backup)"))

export const dbCommand = Command.make("db").pipe(
  Command.withDescription("the database itself: backups"),
  Command.withSubcommands([backup]),
)
