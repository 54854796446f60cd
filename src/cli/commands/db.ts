import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { checkIntegrity } from "../../db/connection.js"
import { writeOutputFile } from "../../files.js"
import { attempt, withConary } from "../context.js"
import { formatBytes, printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { backupConfig } from "../tree/db.js"

export const backup = (args: Parsed<typeof backupConfig>) =>
  withConary(args, { write: false, command: "db backup" }, (c) =>
    Effect.gen(function* () {
      const file = path.resolve(args.file)
      const bytes = yield* attempt(async () => {
        // A copy of a corrupt database is no backup.
        checkIntegrity(c.db, c.dbPath, "quick_check")
        // SQLite's online backup: a consistent copy while others read and write.
        await writeOutputFile(file, (temp) => {
          // Made first: SQLite's error for a file it cannot create (CANTOPEN) would be said of the database backed up.
          fs.closeSync(fs.openSync(temp, "w"))
          return c.db.backup(temp)
        })
        return fs.statSync(file).size
      })
      if (args.json) return printJson({ formatVersion: 1, database: c.dbPath, backup: file, bytes })
      println(`Backed up ${c.dbPath} to ${file} (${formatBytes(bytes)}).`)
    }),
  )
