import { spawn, spawnSync } from "node:child_process"
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { REPO, buildTrove, conary, listTree, ok, onSmallDisk, setupRoot, sha256, stagedLeftovers } from "./helpers.js"

/** One line on stderr, exit 1: the error contract. */
const refused = (args: string[]) => {
  const r = conary(args)
  expect(r.stderr).toMatch(/^conary: [^\n]+\n$/)
  expect(r.code).toBe(1)
  return r.stderr.trim()
}

describe("saved plans are input", () => {
  it("applies only the plan conary itself computes: a foreign path, a chmod or a swapped digest is refused, nothing touched", () => {
    const { base, root, repo, r } = setupRoot()
    buildTrove(repo, "app", "1.0-1-1", { "usr/bin/app": "one", "usr/share/app/data": "data" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app", ...r])
    ok(["apply", ...r])
    buildTrove(repo, "app", "1.1-1-1", { "usr/bin/app": "two", "usr/share/app/new": "new" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app=1.1", ...r])
    const victim = path.join(base, "outside", "victim")
    fs.mkdirSync(path.dirname(victim))
    fs.writeFileSync(victim, "not conary's")
    const file = path.join(base, "plan.json")
    ok(["plan", "--out", file, ...r])
    const saved = JSON.parse(fs.readFileSync(file, "utf8"))
    const ops = saved.plan.files as Array<Record<string, unknown>>
    const add = ops.find((op) => op.path === "/usr/share/app/new")!
    const before = listTree(root)
    const tamper = (name: string, files: Array<Record<string, unknown>>) => {
      const out = path.join(base, `${name}.json`)
      fs.writeFileSync(out, JSON.stringify({ ...saved, plan: { ...saved.plan, files } }))
      return out
    }

    const outside = tamper("outside", [...ops, { ...add, op: "remove", path: "/../outside/victim" }])
    expect(refused(["apply", outside, ...r])).toMatch(/refused: file operation \d \(remove "\/\.\.\/outside\/victim" of app=1\.1-1-1\) is not what conary plans for this root; plan again$/)
    const chmod = tamper("chmod", [...ops, { ...add, op: "chmod", path: "/usr/share/app/data", mode: 0o4777 }])
    expect(refused(["apply", chmod, ...r])).toContain('(chmod "/usr/share/app/data" of app=1.1-1-1) is not what conary plans')
    const swapped = tamper(
      "swapped",
      ops.map((op) => (op === add ? { ...op, sha256: ops.find((o) => o.path === "/usr/bin/app")!.sha256 } : op)),
    )
    expect(refused(["apply", swapped, ...r])).toContain('(add "/usr/share/app/new" of app=1.1-1-1) is not what conary plans')
    const dropped = tamper("dropped", ops.filter((op) => op !== add))
    expect(refused(["apply", dropped, ...r])).toContain('lacks the file operation add "/usr/share/app/new"')

    expect(listTree(root)).toEqual(before)
    expect(fs.readFileSync(victim, "utf8")).toBe("not conary's")
    expect(ok(["apply", file, ...r])).toContain("Applied generation 2")
    expect(fs.readFileSync(path.join(root, "usr/share/app/new"), "utf8")).toBe("new")
  })
})

/** Whether `chattr +i` works on this filesystem (it needs root and an ext4/xfs/btrfs-like filesystem). */
const chattrWorks = (dir: string): boolean => {
  const probe = path.join(dir, "chattr-probe")
  fs.writeFileSync(probe, "")
  const r = spawnSync("chattr", ["+i", probe])
  spawnSync("chattr", ["-i", probe])
  fs.rmSync(probe)
  if (r.status !== 0) console.warn(`SKIPPED: chattr +i is not supported here (${r.stderr?.toString().trim() || r.error?.message})`)
  return r.status === 0
}

/** app 1.0 installed: 1.1 replaces bin/app, drops share/app/old and adds share/app/new. */
const updateReady = () => {
  const s = setupRoot()
  buildTrove(s.repo, "app", "1.0-1-1", { "usr/bin/app": "one", "usr/share/app/old": "old", "usr/share/app/keep": "keep" })
  ok(["source", "sync", ...s.r])
  ok(["desired", "add", "app", ...s.r])
  ok(["apply", ...s.r])
  buildTrove(s.repo, "app", "1.1-1-1", { "usr/bin/app": "two", "usr/share/app/new": "new", "usr/share/app/keep": "keep" })
  ok(["source", "sync", ...s.r])
  ok(["desired", "add", "app=1.1", ...s.r])
  return s
}

const versions = (r: string[]) => (JSON.parse(ok(["list", "--json", ...r])).troves as Array<{ version: string }>).map((t) => t.version)

describe("failures after the commit point", () => {
  it("refuses, before the commit point, a file to remove that became a non-empty directory, an immutable target and a mount point", () => {
    const { base, root, r } = updateReady()
    const old = path.join(root, "usr/share/app/old")
    fs.rmSync(old)
    fs.mkdirSync(old)
    fs.writeFileSync(path.join(old, "mine"), "the admin's")
    let before = listTree(root)
    // Trusting the records (with the disk scan, plan sets the path aside and
    // the rest goes on: see e2e-drift-trust.test.ts).
    expect(refused(["apply", "--no-refresh", ...r])).toBe(
      "conary: apply failed at /usr/share/app/old: is now a directory, where conary installed a file; move it away, then apply again",
    )
    expect(listTree(root)).toEqual(before)
    expect(versions(r)).toEqual(["1.0-1-1"])
    fs.rmSync(old, { recursive: true })

    const bin = path.join(root, "usr/bin/app")
    const mountFrom = path.join(base, "elsewhere")
    fs.writeFileSync(mountFrom, "bind mounted")
    const bound = spawnSync("mount", ["--bind", mountFrom, bin], { encoding: "utf8" })
    if (bound.status !== 0) console.warn(`SKIPPED the mount point case: mount --bind failed (${bound.stderr.trim()})`)
    else {
      try {
        before = listTree(root)
        expect(refused(["apply", ...r])).toBe("conary: apply failed at /usr/bin/app: is a mount point; unmount it, then apply again")
        expect(listTree(root)).toEqual(before)
      } finally {
        spawnSync("umount", [bin])
      }
    }

    if (chattrWorks(root)) {
      for (const target of [bin, path.dirname(old)]) {
        spawnSync("chattr", ["+i", target])
        try {
          before = listTree(root)
          const rel = "/" + path.relative(root, target)
          expect(refused(["apply", ...r])).toBe(
            `conary: apply failed at ${rel}: is immutable or append-only (chattr +i/+a); clear the flag with chattr -i -a, then apply again`,
          )
          expect(listTree(root)).toEqual(before)
        } finally {
          spawnSync("chattr", ["-i", target])
        }
      }
    }
    expect(versions(r)).toEqual(["1.0-1-1"])
    expect(ok(["apply", ...r])).toContain("Applied generation 2")
  })

  it("finishes a committing journal whose step fails: the new generation stands, the path is drift, every command works", () => {
    const { root, r } = updateReady()
    const killed = conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "committing" } })
    expect(killed.code).not.toBe(0)
    // After the commit point, the file to remove becomes a non-empty directory.
    const old = path.join(root, "usr/share/app/old")
    fs.rmSync(old)
    fs.mkdirSync(old)
    fs.writeFileSync(path.join(old, "mine"), "the admin's")
    const list = conary(["list", "--json", ...r])
    expect(list.code).toBe(0)
    expect(list.stderr).toMatch(
      /^conary: recovered an interrupted apply \(pid \d+, started [^)]+\): finished; the root is at generation 2; 1 path could not be changed and stay as they were \(\/usr\/share\/app\/old: is a directory\); `conary verify` shows them\n$/,
    )
    expect(JSON.parse(list.stdout).troves.map((t: { version: string }) => t.version)).toEqual(["1.1-1-1"])
    expect(fs.readFileSync(path.join(old, "mine"), "utf8")).toBe("the admin's")
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("two")
    expect(ok(["status", ...r])).toBeDefined()
    expect(conary(["verify", ...r]).code).toBe(0)
    expect(ok(["apply", ...r])).toContain("No changes")
  })

  it("lets readers work on a journal that cannot be settled, showing the state before it", () => {
    const { root, r } = updateReady()
    expect(conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "committing" } }).code).not.toBe(0)
    const db = new Database(path.join(root, "var/lib/conary/conary.db"))
    db.prepare("UPDATE journal SET plan = 'garbage'").run()
    db.close()
    for (const cmd of [["list"], ["status"], ["verify"], ["plan"]]) {
      const run = conary([...cmd, ...r])
      expect(run.stderr).toMatch(/^conary: warning: an interrupted apply could not be settled \(database .*: apply journal is unreadable: .*\); showing the state before it\n$/)
      expect([0, 2]).toContain(run.code)
    }
    expect(versions(r)).toEqual(["1.0-1-1"])
    expect(refused(["apply", ...r])).toContain("apply journal is unreadable")
  })

  it("finishes a committing journal whose rename fails on an immutable file, and verify reports it", () => {
    const { root, r } = updateReady()
    if (!chattrWorks(root)) return
    expect(conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "committing" } }).code).not.toBe(0)
    const bin = path.join(root, "usr/bin/app")
    spawnSync("chattr", ["+i", bin])
    try {
      const v = conary(["verify", ...r])
      expect(v.stderr).toContain("1 path could not be changed and stay as they were (/usr/bin/app: permission denied")
      expect(v.stdout).toMatch(/^\.\.5\.\.\.\.T\.\s+\/usr\/bin\/app$/m)
      expect(v.code).toBe(2)
      expect(versions(r)).toEqual(["1.1-1-1"])
    } finally {
      spawnSync("chattr", ["-i", bin])
    }
    expect(ok(["apply", ...r])).toContain("Applied generation 3")
    expect(fs.readFileSync(bin, "utf8")).toBe("two")
    expect(fs.readdirSync(path.dirname(bin))).toEqual(["app"])
  })
})

describe("the database", () => {
  it("is created only by init: an empty or missing one is refused, and init will not adopt a root another database manages", () => {
    const { root, r } = updateReady()
    const db = path.join(root, "var/lib/conary/conary.db")
    fs.truncateSync(db, 0)
    for (const cmd of [["list"], ["verify"], ["status"], ["plan"], ["apply"], ["desired", "add", "x"]])
      expect(refused([...cmd, ...r])).toBe(
        `conary: database ${db}: is empty (0 bytes): it lost its contents; restore it from a backup made with \`conary db backup\` (see README: after disk corruption)`,
      )
    expect(fs.statSync(db).size).toBe(0)
    fs.rmSync(db)
    expect(refused(["list", ...r])).toBe(`conary: database ${db}: does not exist (run \`conary init\` first)`)
    expect(refused(["init", ...r])).toMatch(
      new RegExp(`^conary: root ${root}: already has files installed by conary, recorded in another database \\(root id [0-9a-f-]{36}\\): give that database with --db, or restore it from a backup; to start over without it, remove ${root}/var/lib/conary/root-id$`),
    )
    // Refused, it leaves nothing it would have created: no database, no directory, no lock.
    const other = path.join(root, "elsewhere/conary.db")
    expect(refused(["init", ...r, "--db", other])).toMatch(/already has files installed by conary/)
    expect(fs.existsSync(path.dirname(other))).toBe(false)
  })

  it("refuses another root's database", () => {
    const a = setupRoot()
    const b = setupRoot()
    const dbA = path.join(a.root, "var/lib/conary/conary.db")
    for (const cmd of [["list"], ["apply"], ["verify"]])
      expect(refused([...cmd, "--root", b.root, "--db", dbA])).toMatch(
        new RegExp(`^conary: database ${dbA}: manages another root \\(root id [0-9a-f-]{36}; ${b.root} has [0-9a-f-]{36}\\): give the database of ${b.root} with --db$`),
      )
    const empty = path.join(b.base, "fresh")
    fs.mkdirSync(empty)
    expect(refused(["apply", "--root", empty, "--db", dbA])).toContain(`manages another root (root id`)
    expect(fs.existsSync(path.join(empty, "var"))).toBe(false)
  })

  it("names a root's lock file that is not SQLite as itself, never the database (to restore from a backup)", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "hello", "1.0-1-1", { "usr/bin/hello": "hi" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "hello", ...r])
    const lock = path.join(root, "var/lib/conary/lock")
    fs.writeFileSync(lock, Buffer.alloc(4096, 0x5a))
    for (const cmd of [["apply"], ["desired", "add", "other"]])
      expect(refused([...cmd, ...r])).toBe(
        `conary: database ${lock}: is a lock file SQLite cannot read (file is not a database); it holds nothing but the lock: remove it`,
      )
    // Readers take no lock.
    expect(ok(["desired", "list", ...r])).toBe("hello\n")
    fs.rmSync(lock)
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/hello"), "utf8")).toBe("hi")
  })

  it("finds flipped bytes before a write and in verify, says so in one line, and is restored from `conary db backup`", () => {
    const { base, root, r } = updateReady()
    ok(["apply", ...r])
    const db = path.join(root, "var/lib/conary/conary.db")
    const backup = path.join(base, "backup.db")
    expect(ok(["db", "backup", backup, ...r])).toMatch(/^Backed up .* to .*backup\.db \(\d+(\.\d+)? KiB\)\.\n$/)
    // Garble the middle of the file, leaving the header and first page intact.
    const bytes = fs.readFileSync(db)
    const pageSize = bytes.readUInt16BE(16)
    const pages = bytes.length / pageSize
    for (let p = 2; p < pages; p += 2) bytes.fill(0x5a, p * pageSize + 8, p * pageSize + pageSize / 2)
    fs.writeFileSync(db, bytes)
    const corrupt = new RegExp(`^conary: database ${db}: is corrupt \\(.+\\); restore it from a backup made with \`conary db backup\``)
    for (const cmd of [["desired", "add", "x"], ["verify"], ["apply"]]) {
      const run = conary([...cmd, ...r])
      expect(run.stderr).toMatch(corrupt)
      expect(run.stderr.split("\n")).toHaveLength(2)
      expect(run.code).toBe(1)
    }
    fs.copyFileSync(backup, db)
    expect(versions(r)).toEqual(["1.1-1-1"])
    expect(conary(["verify", ...r]).code).toBe(0)
  })
})

describe("failures while staging", () => {
  it("leaves nothing of its own behind when one staged file fails mid-batch", () => {
    const { root, repo, r } = setupRoot()
    const files: Record<string, string> = {}
    for (let i = 0; i < 200; i++) files[`usr/share/many/f${String(i).padStart(3, "0")}`] = `${i}\n`.repeat(4096)
    buildTrove(repo, "many", "1.0-1-1", files)
    ok(["source", "sync", ...r])
    ok(["desired", "add", "many", ...r])
    ok(["apply", ...r])
    ok(["desired", "remove", "many", ...r])
    ok(["apply", ...r])
    // The erased contents stay in the store; one rots, so its copy out of the store fails at once, with 15 others in flight.
    const sha = sha256(files["usr/share/many/f001"]!)
    fs.writeFileSync(path.join(root, "var/lib/conary/store/objects", sha.slice(0, 2), sha.slice(2)), "rotten\n")
    ok(["desired", "add", "many", ...r])
    const before = listTree(root)
    expect(refused(["apply", ...r])).toMatch(/^conary: apply failed at \/usr\/share\/many\/f001: its content [0-9a-f]{16} in the store is corrupt/)
    expect(listTree(root)).toEqual(before)
    expect(stagedLeftovers(root)).toEqual([])
  })

  it("leaves no staged file and no stack trace when root and database fill a small filesystem at any point", () => {
    const { base, repo } = setupRoot()
    const mnt = path.join(base, "small")
    onSmallDisk("a small filesystem filling up", mnt, "20m", () => {
      const root = path.join(mnt, "root")
      fs.mkdirSync(root)
      const r = ["--root", root]
      ok(["init", ...r])
      ok(["source", "add", "local", repo, ...r])
      const files: Record<string, string> = {}
      for (let i = 0; i < 160; i++) files[`usr/share/big/d${i % 8}/f${i}`] = `${i} `.repeat(16 * 1024)
      buildTrove(repo, "big", "1.0-1-1", files)
      ok(["source", "sync", ...r])
      ok(["desired", "add", "big", ...r])
      const before = listTree(root)
      const free = () => Number(fs.statfsSync(mnt).bavail) * fs.statfsSync(mnt).bsize
      const filler = path.join(mnt, "filler")
      const outcomes: string[] = []
      // From full to roomy: the first runs fail fetching; once the store holds
      // the contents, the tight ones fail writing the journal, the rest staging.
      for (const leave of [64, 5600, 8, 48, 3000, 7000, 9000, 14000]) {
        fs.rmSync(filler, { force: true })
        const fill = free() - leave * 1024
        if (fill > 0) expect(spawnSync("fallocate", ["-l", String(fill), filler]).status).toBe(0)
        const run = conary(["apply", ...r])
        fs.rmSync(filler, { force: true })
        expect(run.stderr).not.toMatch(/\n\s+at |internal error/)
        expect(stagedLeftovers(root)).toEqual([])
        const after = conary(["list", "--json", ...r])
        expect(after.code).toBe(0)
        const names = JSON.parse(after.stdout).troves.map((t: { name: string }) => t.name)
        outcomes.push(`${leave} KiB free: ${run.code === 0 ? "applied" : run.stderr.trim()}`)
        // A short write into the store must fail the fetch, never leave a truncated object found later.
        expect(run.stderr).not.toMatch(/corrupt/)
        if (run.code === 0) {
          expect(names).toEqual(["big"])
          break
        }
        expect(run.stderr.split("\n")).toHaveLength(2)
        expect(run.code).toBe(1)
        expect(names).toEqual([])
        expect(listTree(root)).toEqual(before)
        expect(stagedLeftovers(root)).toEqual([])
      }
      console.log(outcomes.join("\n"))
      expect(outcomes.at(-1)).toMatch(/applied$/)
    })
  })
})

describe("error contract", () => {
  it("runs every command against broken roots and databases: one line on stderr, exit 1 (or 0/2 where the state allows), never a stack trace", async () => {
    const { base, root, repo, r } = setupRoot()
    buildTrove(repo, "app", "1.0-1-1", { "usr/share/app/data": "data", "usr/share/app/sub/more": "more", "usr/bin/app": "bin" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app", ...r])
    ok(["apply", ...r])
    const other = path.join(base, "other")
    fs.mkdirSync(other)
    ok(["init", "--root", other])

    // Each case: a copy of the root, broken one way; `db` is what --db names.
    const cases: Record<string, (root: string) => string> = {
      "empty database": (root) => (fs.truncateSync(dbOf(root), 0), dbOf(root)),
      "missing database": (root) => (fs.rmSync(dbOf(root)), dbOf(root)),
      "garbled database": (root) => {
        const bytes = fs.readFileSync(dbOf(root))
        const pageSize = bytes.readUInt16BE(16)
        for (let p = 1; p < bytes.length / pageSize; p++) bytes.fill(0xa5, p * pageSize + 4, p * pageSize + pageSize / 2)
        fs.writeFileSync(dbOf(root), bytes)
        return dbOf(root)
      },
      "database is a directory": (root) => (fs.rmSync(dbOf(root)), fs.mkdirSync(dbOf(root)), dbOf(root)),
      "another root's database": () => dbOf(other),
      "a trove's directory replaced by a file": (root) => {
        fs.rmSync(path.join(root, "usr/share/app"), { recursive: true })
        fs.writeFileSync(path.join(root, "usr/share/app"), "a file now")
        return dbOf(root)
      },
      "root id file unreadable": (root) => {
        fs.rmSync(path.join(root, "var/lib/conary/root-id"))
        fs.mkdirSync(path.join(root, "var/lib/conary/root-id"))
        return dbOf(root)
      },
    }
    const commands = [
      ["list"], ["status"], ["plan"], ["apply"], ["verify", "--full", "--unowned"], ["desired", "add", "app"],
      ["source", "sync"], ["rollback"], ["db", "backup", path.join(base, "backup.db")], ["init"],
    ]
    const runs: Array<{ name: string; args: string[] }> = []
    for (const [name, breakIt] of Object.entries(cases)) {
      const copy = path.join(base, name.replace(/\W+/g, "-"))
      spawnSync("cp", ["-a", root, copy])
      const db = breakIt(copy)
      for (const cmd of commands) runs.push({ name, args: [...cmd, "--root", copy, "--db", db] })
    }
    const results = await runAll(runs.map((run) => run.args), 3)
    const broken = results.flatMap((res, i) => {
      const { name, args } = runs[i]!
      const lines = res.stderr.split("\n").filter((l) => l !== "")
      const fine =
        lines.length <= 1 &&
        !/internal error|\n\s+at /.test(res.stderr) &&
        (res.code === 0 || res.code === 2 ? lines.every((l) => l.startsWith("conary: ")) : res.code === 1 && lines.length === 1)
      return fine ? [] : [`${name}: conary ${args.slice(0, -4).join(" ")} exited ${res.code}: ${res.stderr.slice(0, 300)}`]
    })
    expect(broken).toEqual([])
    // A broken database is never taken for an empty one.
    for (const [i, res] of results.entries()) if (runs[i]!.name.includes("database") && runs[i]!.args[0] !== "init") expect(res.code).toBe(1)
    // A directory replaced by a file is drift, not an error.
    const replaced = runs.findIndex((run) => run.name.startsWith("a trove's directory") && run.args[0] === "verify")
    expect(results[replaced]!.code).toBe(2)
  }, 300_000)
})

const dbOf = (root: string) => path.join(root, "var/lib/conary/conary.db")

/** Runs the CLI on many argument lists, `limit` at a time. */
const runAll = async (all: string[][], limit: number): Promise<Array<{ code: number; stderr: string }>> => {
  const out: Array<{ code: number; stderr: string }> = []
  let next = 0
  const worker = async () => {
    while (next < all.length) {
      const i = next++
      out[i] = await new Promise((resolve) => {
        const child = spawn(process.execPath, [path.join(REPO, "bin", "conary.js"), ...all[i]!], { stdio: ["ignore", "ignore", "pipe"] })
        let stderr = ""
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
        child.on("close", (code) => resolve({ code: code ?? -1, stderr }))
      })
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  return out
}
