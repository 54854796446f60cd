import Database from "better-sqlite3"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { REPO, type Run, buildTrove, conary, mustSkip, ok, readOnly, setupRoot, sha256, tempDir } from "./helpers.js"

const NOBODY = 65534

/** The CLI run as the unprivileged user nobody (setpriv), as a monitoring job would read a root-owned root. */
const asNobody = (args: ReadonlyArray<string>): Run => {
  const r = spawnSync("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, path.join(REPO, "bin/conary.js"), ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** Whether `test` must skip (saying so loudly): this process cannot run the CLI as nobody (not root, no setpriv, or a checkout closed to other users). */
const cannotRunAsNobody = (test: string): boolean =>
  mustSkip(
    process.getuid?.() === 0 && asNobody(["--version"]).code === 0,
    test,
    "not root, no setpriv, or a checkout other users cannot read",
    "run the tests as root, with util-linux, from a checkout others can read",
  )

/** A root whose trove "tool" (`files`) is synced and desired, and installed when `install`. */
const toolRoot = (files: Record<string, string>, install = true) => {
  const setup = setupRoot()
  buildTrove(setup.repo, "tool", "1.0", files)
  ok(["source", "sync", ...setup.r])
  ok(["desired", "add", "tool", ...setup.r])
  if (install) ok(["apply", ...setup.r])
  return setup
}

/** A directory of nobody's in the test's temporary directory `base`, which is root's alone (0700) until opened here to others (not for writing). */
const nobodysDir = (base: string): string => {
  fs.chmodSync(base, 0o755)
  const out = path.join(base, "out")
  fs.mkdirSync(out)
  fs.chownSync(out, NOBODY, NOBODY)
  return out
}

// A root whose database directory this process cannot write: a read-only
// mount (an image or snapshot inspected), or a root-owned database read by
// another user. SQLite cannot create the write-ahead log's index there, so
// readers work from a copy of the database in memory; writers are refused.

const FILES = 4500 // more than one scan range (4096 rows): the copy's ranges are all read on the main thread

describe("a root whose database directory is read-only", () => {
  it("is listed, planned and verified (drift found in any range) from a copy; writers are refused in one line; nothing is written", () => {
    const { root, repo, r } = setupRoot()
    const tree: Record<string, string> = {}
    for (let i = 0; i < FILES; i++) tree[`usr/share/many/f${String(i).padStart(5, "0")}`] = `file ${i}\n`
    buildTrove(repo, "many", "1.0", tree)
    ok(["source", "sync", ...r])
    ok(["desired", "add", "many", ...r])
    ok(["apply", ...r])
    // Drift in the first and the last range.
    fs.writeFileSync(path.join(root, "usr/share/many/f00007"), "changed\n")
    fs.rmSync(path.join(root, "usr/share/many/f04400"))
    const dbDir = path.join(root, "var/lib/conary")
    const db = path.join(dbDir, "conary.db")
    const before = { names: fs.readdirSync(dbDir).sort(), db: sha256(fs.readFileSync(db)) }
    readOnly("read-only root", root, () => {
      expect(ok(["list", ...r])).toMatch(/^many +1\.0/m)
      for (const full of [[], ["--full"]]) {
        const v = conary(["verify", ...full, ...r])
        expect([v.code, v.stderr]).toEqual([2, ""])
        expect(v.stdout).toMatch(/\/usr\/share\/many\/f00007\n/)
        expect(v.stdout).toMatch(/missing +\/usr\/share\/many\/f04400\n/)
        expect(v.stdout).toContain(`Verified ${FILES + 3} files of 1 trove: 2 files drifted (1 missing)`)
      }
      expect(ok(["plan", ...r])).toContain("2 to repair")
      for (const write of [["apply"], ["desired", "add", "other"], ["gc"]]) {
        const w = conary([...write, ...r])
        expect([w.code, w.stdout]).toEqual([1, ""])
        expect(w.stderr).toBe(`conary: database ${db}: cannot be opened to change it: its directory is on a read-only file system\n`)
      }
    })
    expect({ names: fs.readdirSync(dbDir).sort(), db: sha256(fs.readFileSync(db)) }).toEqual(before)
    // Writable again: the drift is still there to repair.
    expect(conary(["verify", ...r]).code).toBe(2)
    ok(["apply", ...r])
    expect(conary(["verify", ...r]).code).toBe(0)
  })

  it("refuses, in one line, a database whose write-ahead log holds changes a copy of the file would miss", () => {
    const { root, r } = toolRoot({ "usr/bin/tool": "t\n" })
    const db = path.join(root, "var/lib/conary/conary.db")
    // What a snapshot taken while conary was writing could hold: a log without its index.
    fs.writeFileSync(`${db}-wal`, "not yet checkpointed")
    readOnly("read-only root with a write-ahead log", root, () => {
      const l = conary(["list", ...r])
      expect([l.code, l.stdout]).toEqual([1, ""])
      expect(l.stderr).toMatch(/^conary: database .*conary\.db: cannot be read here: its directory is read-only to this process and its write-ahead log holds changes not yet in the file \(.*\)\n$/)
    })
    fs.rmSync(`${db}-wal`)
    expect(ok(["list", ...r])).toMatch(/^tool +1\.0/m)
  })

  it("refuses a database reached through a symlink whose log, beside the file the link leads to, holds changes", () => {
    const { root, r } = setupRoot()
    ok(["desired", "add", "tool", ...r])
    const db = path.join(root, "var/lib/conary/conary.db")
    // A snapshot taken while conary was writing: the file, and the log of a change not yet in it (no index).
    const snap = tempDir()
    fs.mkdirSync(path.join(snap, "data"))
    const real = path.join(snap, "data/real.db")
    fs.copyFileSync(db, real)
    const writer = new Database(db)
    writer.pragma("wal_autocheckpoint = 0")
    writer.prepare("INSERT INTO desired (name, added_at) VALUES ('other', '2026-01-01T00:00:00Z')").run()
    fs.copyFileSync(`${db}-wal`, `${real}-wal`)
    writer.close()
    const link = path.join(snap, "link.db")
    fs.symlinkSync("data/real.db", link)
    readOnly("a symlinked database on a read-only mount", snap, () => {
      const l = conary(["desired", "list", ...r, "--db", link])
      expect([l.code, l.stdout]).toEqual([1, ""])
      expect(l.stderr).toMatch(/^conary: database .*link\.db: cannot be read here: .*write-ahead log holds changes not yet in the file/)
    })
    // Writable, SQLite reads the log: the change was there to miss.
    expect(ok(["desired", "list", ...r, "--db", link])).toBe("other\ntool\n")
  })

  it("refuses in one line a database too large to be read into memory (over 2 GiB)", () => {
    const { root, r } = setupRoot()
    const dbDir = path.join(root, "var/lib/conary")
    const db = path.join(dbDir, "conary.db")
    // Sparse: SQLite reads only the first pages of it; the copy would be the whole file.
    fs.truncateSync(db, 2200 * 1024 * 1024)
    readOnly("a read-only root with a large database", dbDir, () => {
      const l = conary(["list", ...r])
      expect([l.code, l.stdout]).toEqual([1, ""])
      expect(l.stderr).toBe(
        `conary: database ${db}: cannot be read here: its directory is read-only to this process, and it is too large (over 2 GiB) to be read into memory instead (read it as its owner, or where it can be written)\n`,
      )
    })
  })

  it("is read by another user when the database and its directory are root's; writers are told why; nothing is written", () => {
    if (cannotRunAsNobody("a root-owned database read by another user")) return
    const { base, root, r } = toolRoot({ "usr/bin/tool": "t\n", "usr/share/tool/data": "d\n" })
    fs.writeFileSync(path.join(root, "usr/share/tool/data"), "changed\n")
    const out = nobodysDir(base)
    const dbDir = path.join(root, "var/lib/conary")
    const db = path.join(dbDir, "conary.db")
    const before = { names: fs.readdirSync(dbDir).sort(), db: sha256(fs.readFileSync(db)) }
    const l = asNobody(["list", ...r])
    expect([l.code, l.stderr]).toEqual([0, ""])
    expect(l.stdout).toMatch(/^tool +1\.0/m)
    const v = asNobody(["verify", ...r])
    expect([v.code, v.stderr]).toEqual([2, ""])
    expect(v.stdout).toMatch(/\/usr\/share\/tool\/data\n/)
    const b = asNobody(["db", "backup", path.join(out, "copy.db"), ...r])
    expect([b.code, b.stderr]).toEqual([0, ""])
    // A backup into the root's own directory: the file that cannot be made is named, not the database.
    const nb = asNobody(["db", "backup", path.join(dbDir, "copy.db"), ...r])
    expect([nb.code, nb.stdout]).toEqual([1, ""])
    expect(nb.stderr).toMatch(new RegExp(`^conary: ${dbDir}/copy\\.db\\.tmp-\\d+: permission denied \\(open\\)\n$`))
    const refused = [1, "", `conary: database ${db}: cannot be opened to change it: its directory is not writable by this user\n`]
    const a = asNobody(["apply", ...r])
    expect([a.code, a.stdout, a.stderr]).toEqual(refused)
    // The same while root has it open (its -shm lets SQLite open the file read-only; the lock then could not be made).
    const held = new Database(db)
    try {
      held.prepare("SELECT count(*) FROM desired").get()
      expect(fs.existsSync(`${db}-shm`)).toBe(true)
      expect(asNobody(["list", ...r]).code).toBe(0)
      for (const write of [["apply"], ["desired", "add", "other"], ["gc"], ["recover"]]) {
        const w = asNobody([...write, ...r])
        expect([w.code, w.stdout, w.stderr]).toEqual(refused)
      }
    } finally {
      held.close()
    }
    expect({ names: fs.readdirSync(dbDir).sort(), db: sha256(fs.readFileSync(db)) }).toEqual(before)
    // A database only root may read: said so, not SQLite's "unable to open database file".
    fs.chmodSync(db, 0o600)
    const unreadable = asNobody(["list", ...r])
    expect([unreadable.code, unreadable.stdout, unreadable.stderr]).toEqual([1, "", `conary: database ${db}: cannot be read by this user (permission denied)\n`])
  })

  it("another user's reader that cannot settle an interrupted apply does not keep the root's lock while it goes on", async () => {
    if (cannotRunAsNobody("another user's reader of an interrupted apply")) return
    const { base, r } = toolRoot({ "usr/bin/tool": "t\n" }, false)
    expect(conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "staged" } }).code).not.toBe(0)
    const out = nobodysDir(base)
    // A signing key read from a pipe holds the reader after it has opened the root, until the pipe is written.
    const key = path.join(out, "key")
    expect(spawnSync("mkfifo", ["-m", "666", key]).status).toBe(0)
    const reader = spawn("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, path.join(REPO, "bin/conary.js"), "changeset", "create", "--sign", key, path.join(out, "cs"), ...r], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    })
    let stderr = ""
    const exited = new Promise<number | null>((resolve) => reader.on("exit", resolve))
    // Its first line (or its end, should it fail at once).
    await new Promise<void>((resolve) => {
      reader.stderr.on("data", (d: Buffer) => {
        stderr += d.toString()
        if (stderr.includes("\n")) resolve()
      })
      void exited.then(() => resolve())
    })
    try {
      expect(stderr).toMatch(/^conary: warning: an interrupted apply could not be settled \(permission denied \(open\)\); showing the state before it\n/)
      const rec = conary(["recover", "--lock-timeout", "0", ...r])
      expect(rec.code).toBe(0)
      expect(rec.stderr).toMatch(/^conary: recovered an interrupted apply .*: undone; the root is at generation 0\n$/)
    } finally {
      fs.writeFileSync(key, "not a key\n")
      await exited
    }
  })
})
