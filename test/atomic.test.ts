import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { killLoop, setupScenario } from "./fault-harness.js"
import { buildTrove, conary, listTree, onSmallDisk, ok, setupRoot, tempDir } from "./helpers.js"

describe("atomic apply under SIGKILL", () => {
  // 20 kills keep the suite's time in bounds; bench/fault-injection.ts runs 1,000.
  it("leaves exactly the old or the new generation after 20 kills at random instants", async () => {
    const s = await setupScenario(tempDir(), 6, 300)
    // 7 troves x ~300 files: each apply is thousands of file operations.
    const report = await killLoop(s, 20)
    console.log(`fault injection: ${JSON.stringify(report)}, apply takes ${s.applyMs.toFixed(0)} ms`)
    expect(report.kills).toBe(20)
    // Kills landed on both sides of the commit point, not only before or after the apply.
    expect(report.rolledBack + report.rolledForward + report.finishedBeforeKill).toBeGreaterThan(0)
  }, 600_000)

  it("does the same when apply reads its contents from the archives while it stages (the store emptied before every other apply)", async () => {
    const s = await setupScenario(tempDir(), 3, 200)
    const report = await killLoop(s, 10, { coldStore: true })
    console.log(`fault injection, cold store: ${JSON.stringify(report)}`)
    expect(report.kills).toBe(10)
  }, 600_000)

  it("undoes an apply killed while staging and finishes one killed after the commit point", async () => {
    const s = await setupScenario(tempDir(), 2, 50)
    const r = ["--root", s.root]
    ok(["desired", "set", "--file", s.desired.a, ...r])
    const killed = conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "staged" } })
    expect(killed.code).toBe(-1) // killed by a signal
    expect(Object.keys(listTree(s.root)).some((p) => p.includes(".conary-new."))).toBe(true)
    // A reader recovers first (the lock is free) and then sees the old generation.
    const list = conary(["list", "--json", ...r])
    expect(list.stderr).toMatch(/recovered an interrupted apply \(pid \d+, started .*\): undone; the root is at generation 2/)
    expect(listTree(s.root)).toEqual(s.listings.b)

    const killed2 = conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "committing" } })
    expect(killed2.code).toBe(-1)
    const rec = conary(["recover", ...r])
    expect(rec.stdout).toMatch(/finished; the root is at generation 3/)
    expect(listTree(s.root)).toEqual(s.listings.a)
    expect(ok(["recover", ...r]).trim()).toBe("Nothing to recover: no apply was interrupted.")
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
  }, 120_000)

  it("finishes a commit of more renames than one thread makes (they are made on every core) after a kill at the commit point, and when a worker fails", async () => {
    // 9 troves x 2,000 files onto an empty root: its commit renames 18,000 staged files, above RENAMES_IN_WORKERS.
    const base = tempDir()
    const s = await setupScenario(base, 8, 2000)
    const killedAtCommit = (name: string) => {
      const root = path.join(base, name)
      fs.mkdirSync(root)
      const r = ["--root", root]
      ok(["init", ...r])
      ok(["source", "add", "repo", path.join(base, "repo"), ...r])
      ok(["source", "sync", ...r])
      ok(["desired", "set", "--file", s.desired.a, ...r])
      expect(conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "committing" } }).code).toBe(-1)
      expect(Object.keys(listTree(root)).filter((p) => p.includes(".conary-new.")).length).toBeGreaterThan(16384)
      return { root, r }
    }
    const finished = (root: string, r: string[], recovered: { code: number; stdout: string; stderr: string }) => {
      expect(recovered.code).toBe(0)
      expect(recovered.stderr).toMatch(/^conary: recovered an interrupted apply \(pid \d+, started \S+\): finished; the root is at generation 1\n$/)
      expect(listTree(root)).toEqual(s.listings.a)
      expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
    }
    const one = killedAtCommit("one")
    finished(one.root, one.r, conary(["recover", ...one.r]))
    // A worker that fails (here 5 ms after it starts) does not stop the commit halfway: the rest is renamed on the main thread.
    const two = killedAtCommit("two")
    const preload = path.join(import.meta.dirname, "fixtures/failing-rename-worker.cjs")
    const mark = path.join(base, "worker-failed")
    finished(two.root, two.r, conary(["recover", ...two.r], { env: { NODE_OPTIONS: `--require ${preload}`, FAILED_WORKER_MARK: mark } }))
    expect(fs.existsSync(mark)).toBe(true)
  }, 300_000)
})

describe("locking", () => {
  it("refuses a second writer at once, naming the holder; waits with --lock-timeout; readers never wait", async () => {
    const s = await setupScenario(tempDir(), 4, 400)
    const r = ["--root", s.root]
    ok(["desired", "set", "--file", s.desired.a, ...r])
    // Hold the lock with an apply stopped at its commit point... by a slow apply.
    const { spawn } = await import("node:child_process")
    const holder = spawn(process.execPath, [path.join(import.meta.dirname, "../bin/conary.js"), "apply", ...r], { stdio: "ignore" })
    // Wait until it holds the lock.
    const holderFile = path.join(s.root, "var/lib/conary/lock.holder")
    for (let i = 0; i < 200; i++) {
      if (fs.existsSync(holderFile) && JSON.parse(fs.readFileSync(holderFile, "utf8")).pid === holder.pid) break
      await new Promise((res) => setTimeout(res, 10))
    }
    const second = conary(["desired", "add", "x", ...r])
    const readers = conary(["list", "--json", ...r])
    const exited = new Promise((res) => holder.on("exit", res))
    await exited
    expect(second.code).toBe(1)
    expect(second.stderr.trim()).toMatch(
      new RegExp(`^conary: root ${s.root} is locked by pid ${holder.pid} \\(conary apply\\) since \\S+; gave up after 0 s \\(see --lock-timeout\\)$`),
    )
    // The reader ran while the apply held the lock, and saw a whole generation.
    expect(readers.code).toBe(0)
    expect(listTree(s.root)).toEqual(s.listings.a)

    // With a timeout the second writer waits for the first.
    ok(["desired", "set", "--file", s.desired.b, ...r])
    const first = spawn(process.execPath, [path.join(import.meta.dirname, "../bin/conary.js"), "apply", ...r], { stdio: "ignore" })
    for (let i = 0; i < 200 && !(fs.existsSync(holderFile) && JSON.parse(fs.readFileSync(holderFile, "utf8")).pid === first.pid); i++)
      await new Promise((res) => setTimeout(res, 10))
    const waited = spawnSync(process.execPath, [path.join(import.meta.dirname, "../bin/conary.js"), "apply", "--lock-timeout", "60", ...r], {
      encoding: "utf8",
    })
    expect(waited.status).toBe(0)
    expect(waited.stdout.trim()).toBe("No changes. Installed state matches desired state.")
    expect(listTree(s.root)).toEqual(s.listings.b)
  }, 180_000)

  it("takes over the lock of a killed holder and recovers its apply", async () => {
    const s = await setupScenario(tempDir(), 2, 50)
    const r = ["--root", s.root]
    ok(["desired", "set", "--file", s.desired.a, ...r])
    expect(conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "committing" } }).code).toBe(-1)
    const next = conary(["desired", "add", "extra", ...r])
    expect(next.code).toBe(0)
    expect(next.stderr).toMatch(/recovered an interrupted apply .*: finished; the root is at generation 3/)
    expect(listTree(s.root)).toEqual(s.listings.a)
  }, 120_000)
})

describe("rollback, saved plans, gc", () => {
  it("rolls back and forth, offline, as new generations, restoring the desired state", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "app", "1.0-1-1", { "usr/bin/app": "one", "usr/share/app/data": "same" })
    buildTrove(repo, "app", "2.0-1-1", { "usr/bin/app": "two", "usr/share/app/data": "same", "usr/share/app/new": "new" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app=1.0", ...r])
    ok(["apply", ...r])
    const one = listTree(root)
    ok(["desired", "add", "app=2.0", ...r])
    ok(["apply", ...r])
    const two = listTree(root)
    // Offline: the source is gone; contents come from the store.
    fs.rmSync(repo, { recursive: true })
    const back = ok(["rollback", ...r])
    expect(back).toContain("Rolling back to generation 1")
    expect(back).toContain("~ app 2.0-1-1 → 1.0-1-1")
    expect(listTree(root)).toEqual(one)
    expect(JSON.parse(ok(["desired", "export", ...r])).troves).toEqual([{ name: "app", version: "1.0" }])
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
    // Rolling back the rollback returns to generation 2's state, as generation 4.
    expect(ok(["rollback", ...r])).toContain("Applied generation 4")
    expect(listTree(root)).toEqual(two)
    ok(["rollback", "1", ...r])
    expect(listTree(root)).toEqual(one)
    const history = JSON.parse(ok(["history", "--json", ...r])).generations
    expect(history.map((g: { command: string }) => g.command)).toEqual(["apply", "apply", "rollback", "rollback", "rollback"])
    expect(conary(["rollback", "99", ...r]).stderr.trim()).toBe("conary: no generation named 99")

    // gc keeps what the kept generations need and frees the rest.
    const gc = JSON.parse(ok(["gc", "--keep", "1", "--json", ...r]))
    expect(gc.generationsRemoved).toBe(4)
    expect(gc.objectsRemoved).toBeGreaterThan(0)
    expect(gc.bytesFreed).toBeGreaterThan(0)
    expect(JSON.parse(ok(["history", "--json", ...r])).generations).toHaveLength(1)
  })

  it("applies a saved plan exactly, and refuses it once the state moved, or when corrupt or foreign", () => {
    const { base, root, repo, r } = setupRoot()
    buildTrove(repo, "app", "1.0-1-1", { "usr/bin/app": "one" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app", ...r])
    const file = path.join(base, "plan.json")
    expect(ok(["plan", "--out", file, ...r])).toContain("+ app 1.0-1-1")
    expect(ok(["apply", file, ...r])).toContain("Applied generation 1")
    expect(listTree(root)["usr/bin/app"]).toBeDefined()
    const stale = conary(["apply", file, ...r])
    expect(stale.code).toBe(1)
    expect(stale.stderr.trim()).toBe(`conary: saved plan ${file} refused: the root moved to generation 1 since the plan was made at generation 0; plan again`)

    ok(["plan", "--out", file, ...r])
    ok(["desired", "add", "other", ...r])
    expect(conary(["apply", file, ...r]).stderr).toContain("the desired state changed since the plan was made")
    ok(["desired", "remove", "other", ...r])
    ok(["plan", "--out", file, ...r])
    buildTrove(repo, "app", "1.1-1-1", { "usr/bin/app": "two" })
    ok(["source", "sync", ...r])
    expect(conary(["apply", file, ...r]).stderr).toContain("the sources changed since the plan was made")

    fs.writeFileSync(file, fs.readFileSync(file, "utf8").slice(0, 50))
    expect(conary(["apply", file, ...r]).stderr).toContain("not valid JSON")
    const other = setupRoot()
    const foreign = path.join(other.base, "plan.json")
    ok(["plan", "--out", foreign, ...other.r])
    expect(conary(["apply", foreign, ...r]).stderr).toContain(`it was made for root ${other.root}, not ${root}`)
    expect(JSON.parse(ok(["history", "--json", ...r])).generations).toHaveLength(1)
  })
})

describe("disk full", () => {
  it("leaves the root at the old generation and says the disk is full", () => {
    const base = tempDir()
    const root = path.join(base, "root")
    onSmallDisk("disk full", root, "1m", () => {
      const repo = path.join(base, "repo")
      fs.mkdirSync(repo)
      // The database and the store live outside the small filesystem; the root fills up.
      const r = ["--root", root, "--db", path.join(base, "state", "conary.db")]
      ok(["init", ...r])
      ok(["source", "add", "repo", repo, ...r])
      buildTrove(repo, "small", "1.0-1-1", { "usr/share/small": "small" })
      const big: Record<string, string> = {}
      for (let i = 0; i < 8; i++) big[`usr/share/big/f${i}`] = `${i}`.repeat(256 * 1024)
      buildTrove(repo, "big", "1.0-1-1", big)
      ok(["source", "sync", ...r])
      ok(["desired", "add", "small", ...r])
      ok(["apply", ...r])
      const before = listTree(root, "")
      ok(["desired", "add", "big", ...r])
      const full = conary(["apply", ...r])
      expect(full.code).toBe(1)
      expect(full.stderr).toMatch(/^conary: apply failed at \/usr\/share\/big\/f\d: no space left on device \(disk full\)$/m)
      expect(listTree(root, "")).toEqual(before)
      expect(JSON.parse(ok(["list", "--json", ...r])).troves.map((t: { name: string }) => t.name)).toEqual(["small"])
      expect(ok(["recover", ...r]).trim()).toBe("Nothing to recover: no apply was interrupted.")
    })
  })
})
