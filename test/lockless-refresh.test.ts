import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, conaryAsync, ok, setupRoot } from "./helpers.js"

// Scans (verify, plan, changeset show) keep refreshed stat rows without the
// root's lock, so a command holding it may find SQLite's write lock taken by
// a refresh batch. It must wait that out as for any writer, never fail with
// "database is locked": a transaction that reads before it writes cannot
// wait unless it began IMMEDIATE.

/** Runs the CLI while this test's own connection holds the write lock as a refresh batch does, released after `ms`. */
const whileRefreshing = async (dbPath: string, args: string[], ms = 2000) => {
  const db = new Database(dbPath)
  db.pragma("busy_timeout = 5000")
  db.exec("BEGIN IMMEDIATE")
  db.prepare("UPDATE installed_files SET mtime_ns = mtime_ns").run()
  const released = new Promise<void>((resolve) =>
    setTimeout(() => {
      db.exec("COMMIT")
      db.close()
      resolve()
    }, ms),
  )
  const run = await conaryAsync(args)
  await released
  return run
}

describe("writers and a scan's refresh without the root's lock", () => {
  it("desired remove, apply FILE.ccs and source sync wait for a refresh batch's write instead of failing 'database is locked'", async () => {
    const { root, repo, r } = setupRoot()
    const dbPath = path.join(root, "var/lib/conary/conary.db")
    buildTrove(repo, "tool", "1.0", { "usr/bin/tool": "v1\n" })
    buildTrove(repo, "other", "1.0", { "usr/bin/other": "other\n" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool", "other", ...r])
    ok(["apply", ...r])

    // removeDesired counts the rows before it deletes them
    const removed = await whileRefreshing(dbPath, ["desired", "remove", "other", "--lock-timeout", "0", ...r])
    expect(removed.stderr).toBe("")
    expect(removed.code).toBe(0)
    expect(ok(["desired", "list", ...r])).not.toContain("other")
    ok(["apply", ...r])

    // a changeset's troves are looked up before the new ones are inserted
    const other = setupRoot()
    fs.copyFileSync(path.join(repo, "tool-1.0.ctrv"), path.join(other.repo, "tool-1.0.ctrv"))
    buildTrove(other.repo, "tool", "3.0", { "usr/bin/tool": "v3\n" })
    ok(["source", "sync", ...other.r])
    ok(["desired", "add", "tool=3.0", ...other.r])
    const state = path.join(other.base, "state.json")
    fs.writeFileSync(state, ok(["status", "--json", "--installed", ...r]))
    const ccs = path.join(other.base, "tool.ccs")
    ok(["changeset", "create", ccs, "--for", state, ...other.r])
    ok(["verify", ...r]) // keeps the moved rows now: the changeset's scan has none to write
    const applied = await whileRefreshing(dbPath, ["apply", ccs, "--insecure", "--lock-timeout", "0", ...r])
    expect(applied.stderr).toBe("")
    expect(applied.code).toBe(0)
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("v3\n")

    // a sync looks a new archive's trove up before it inserts it
    buildTrove(repo, "tool", "2.0", { "usr/bin/tool": "v2\n" })
    const synced = await whileRefreshing(dbPath, ["source", "sync", "--lock-timeout", "0", ...r])
    expect(synced.stderr).toBe("")
    expect(synced.code).toBe(0)
    ok(["desired", "add", "tool=2.0", ...r])
    expect(ok(["apply", ...r])).toContain("~ tool 3.0 → 2.0")
  })
})
