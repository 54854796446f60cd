import { createHash } from "node:crypto"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { openDatabase } from "../src/db/connection.js"
import { JOURNAL_CHUNK, beginJournal, clearJournal, readJournal } from "../src/db/journal.js"
import { FileOps } from "../src/model/file-ops.js"
import type { FileOp, Plan } from "../src/model/plan-schema.js"
import { referencedObjects } from "../src/store/references.js"
import { tempDir } from "./helpers.js"

// The apply journal of a big plan: its file operations are written in chunks
// beside the journal row, and read back exactly, in order.

const sha = (i: number) => createHash("sha256").update(String(i)).digest("hex")

const planOf = (files: number): Plan => ({
  formatVersion: 1,
  troves: [{ op: "install", name: "big", reason: "explicit", to: { troveId: 1, version: "1-1-1", flavor: "", components: ["runtime"] }, scripts: false }],
  files: FileOps.from(
    Array.from(
      { length: files },
      (_, i): FileOp => ({
        op: i % 7 === 0 ? "replace" : "add",
        path: `/usr/share/big/d${i % 50}/f${i}`,
        kind: "file",
        troveId: 1,
        trove: "big=1-1-1",
        sha256: sha(i),
        size: i,
        mode: 0o644,
        owner: "root",
        group: "root",
        target: null,
        config: false,
        ...(i === files - 1 ? { note: "the last one", unowned: true } : {}),
      }),
    ),
  ),
  target: [{ troveId: 1, name: "big", version: "1-1-1", flavor: "", components: ["runtime"], reason: "explicit" }],
  blocked: [],
  overrides: [],
  summary: { install: 1, update: 0, erase: 0, repair: 0, files, bytes: 0 },
})

const begin = (dbFile: string, plan: Plan) => {
  const db = openDatabase(dbFile, { create: true })
  beginJournal(db, { command: "apply", plan, desired: "{}", startedAt: "2026-11-26T00:00:00Z", pid: 1, dirs: ["/usr/share/big"] })
  return db
}

describe("apply journal", () => {
  it("keeps a plan of 10,001 files in chunks and reads it back exactly, in order; gc sees every content it names", async () => {
    const dbFile = path.join(tempDir(), "conary.db")
    const plan = planOf(10_001)
    const db = begin(dbFile, plan)
    expect(db.prepare("SELECT count(*) FROM journal_files").pluck().get()).toBe(Math.ceil(10_001 / JOURNAL_CHUNK))
    // the journal row itself does not hold the file operations
    expect((db.prepare("SELECT plan FROM journal").pluck().get() as string).length).toBeLessThan(2000)
    const read = (await readJournal(db, dbFile))!
    expect(read.state).toBe("staging")
    expect(read.plan).toEqual(plan)
    expect(read.dirs).toEqual(["/usr/share/big"])
    const referenced = referencedObjects(db)
    for (const i of [0, JOURNAL_CHUNK - 1, JOURNAL_CHUNK, 2 * JOURNAL_CHUNK - 1, 2 * JOURNAL_CHUNK, 10_000]) expect(referenced.has(sha(i))).toBe(true)
    clearJournal(db)
    expect(await readJournal(db, dbFile)).toBeUndefined()
    expect(db.prepare("SELECT count(*) FROM journal_files").pluck().get()).toBe(0)
    db.close()
  })

  it("reads a journal written whole in its row (before chunks), and calls a damaged chunk unreadable", async () => {
    const dbFile = path.join(tempDir(), "conary.db")
    const plan = planOf(5)
    const db = begin(dbFile, planOf(0))
    db.prepare("UPDATE journal SET plan = ?").run(JSON.stringify(plan))
    expect((await readJournal(db, dbFile))!.plan).toEqual(plan)
    clearJournal(db)
    beginJournal(db, { command: "apply", plan: planOf(5000), desired: "{}", startedAt: "2026-11-26T00:00:00Z", pid: 1, dirs: [] })
    db.prepare("UPDATE journal_files SET ops = '[{\"op\": \"add\"' WHERE seq = 1").run()
    await expect(readJournal(db, dbFile)).rejects.toThrow(/apply journal is unreadable: its plan is not JSON/)
    db.prepare("UPDATE journal_files SET ops = '[{\"op\": \"add\"}]' WHERE seq = 1").run()
    await expect(readJournal(db, dbFile)).rejects.toThrow(new RegExp(`apply journal is unreadable: files\\.${JOURNAL_CHUNK}\\.`))
    db.close()
  })
})
