import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { acquireLock } from "../src/db/lock.js"
import { buildTrove, conary, listTree, mustSkip, ok, setupRoot } from "./helpers.js"

const tree = (conf: string, bin = "binary v1\n") => ({
  "usr/bin/tool": { content: bin, mode: 0o755 },
  "usr/bin/tool-link": { symlink: "tool" },
  "etc/tool.conf": conf,
  "usr/share/doc/tool/README": "docs\n",
})

const CONF1 = "# tool\nport = 80\n\nuser = www\n\nlog = /var/log/tool\n"

const setup = () => {
  const s = setupRoot()
  buildTrove(s.repo, "tool", "1.0-1-1", tree(CONF1))
  ok(["source", "sync", ...s.r])
  ok(["desired", "add", "tool", ...s.r])
  ok(["apply", ...s.r])
  return s
}

describe("verify", () => {
  it("is clean after apply, and reports drift rpm -V style with cron exit codes", () => {
    const { root, r } = setup()
    expect(ok(["verify", ...r]).trim()).toBe("Verified 10 files of 1 trove: no drift.")
    expect(ok(["verify", "--quiet", ...r])).toBe("")

    fs.writeFileSync(path.join(root, "etc/tool.conf"), CONF1 + "extra = 1\n")
    fs.chmodSync(path.join(root, "usr/bin/tool"), 0o700)
    fs.rmSync(path.join(root, "usr/share/doc/tool/README"))
    fs.rmSync(path.join(root, "usr/bin/tool-link"))
    fs.symlinkSync("elsewhere", path.join(root, "usr/bin/tool-link"))
    fs.writeFileSync(path.join(root, "usr/bin/stray"), "not ours")

    const v = conary(["verify", "--unowned", ...r])
    expect(v.code).toBe(2)
    expect(v.stdout).toMatch(/^S\.5\.\.\.\.T\.  c \/etc\/tool\.conf$/m)
    expect(v.stdout).toMatch(/^\.M\.\.\.\.\.\.\.    \/usr\/bin\/tool$/m)
    expect(v.stdout).toMatch(/^\.\.\.\.L\.\.\.\.    \/usr\/bin\/tool-link$/m)
    expect(v.stdout).toMatch(/^missing {6}\/usr\/share\/doc\/tool\/README$/m)
    expect(v.stdout).toMatch(/^unowned      \/usr\/bin\/stray$/m)
    expect(v.stdout).toMatch(/^Unowned entries have no records, and conary cannot rebuild any: /m)
    expect(v.stdout).toContain("Verified 10 files of 1 trove: 4 files drifted (1 missing), 1 unowned.")
    // Without --unowned the stray file is not reported.
    expect(conary(["verify", ...r]).stdout).not.toContain("stray")
    const json = JSON.parse(conary(["verify", "--json", ...r]).stdout)
    expect(json.formatVersion).toBe(1)
    expect(json.clean).toBe(false)
    expect(json.drift.map((d: { path: string; flags: string }) => `${d.flags} ${d.path}`)).toEqual([
      "S.5....T. /etc/tool.conf",
      ".M....... /usr/bin/tool",
      "....L.... /usr/bin/tool-link",
      "missing /usr/share/doc/tool/README",
    ])
    expect(conary(["verify", "nosuch", ...r]).stderr.trim()).toBe("conary: no installed trove named nosuch")
  })

  it("finds a same-size edit only by hashing: the stat path catches it by mtime, --full regardless", () => {
    const { root, r } = setup()
    const bin = path.join(root, "usr/bin/tool")
    const st = fs.statSync(bin)
    fs.writeFileSync(bin, "binary v2\n") // same size
    fs.utimesSync(bin, st.atime, st.mtime) // and the same mtime: only ctime and content differ
    // (utimes keeps milliseconds only, so T may show for the sub-millisecond part.)
    expect(conary(["verify", ...r]).stdout).toMatch(/^\.\.5\.\.\.\.[.T]\.    \/usr\/bin\/tool$/m)
    expect(conary(["verify", "--full", ...r]).stdout).toMatch(/^\.\.5\.\.\.\.[.T]\.    \/usr\/bin\/tool$/m)
  })

  it("refreshes the stat cache after a touch, so the next scan reads nothing", () => {
    const { root, r } = setup()
    // The rename into place moved each written file's ctime: the first scan
    // (here plan's) hashes them once and keeps their refreshed rows.
    ok(["plan", ...r])
    expect(JSON.parse(ok(["verify", "--json", ...r])).summary).toMatchObject({ hashed: 0, refreshed: 0 })
    const later = new Date(Date.now() + 60_000)
    fs.utimesSync(path.join(root, "usr/bin/tool"), later, later)
    const first = JSON.parse(ok(["verify", "--json", ...r]))
    expect(first.clean).toBe(true)
    expect(first.summary).toMatchObject({ hashed: 1, refreshed: 1 })
    const second = JSON.parse(ok(["verify", "--json", ...r]))
    expect(second.summary).toMatchObject({ hashed: 0, refreshed: 0 })
    expect(JSON.parse(ok(["verify", "--json", "--full", ...r])).summary.hashed).toBe(3)
  })

  it("keeps refreshed rows while another conary holds the root's lock, which it never waits for or takes", () => {
    const { root, r } = setup()
    ok(["plan", ...r])
    const later = new Date(Date.now() + 60_000)
    fs.utimesSync(path.join(root, "usr/bin/tool"), later, later)
    // As an apply at work holds it: a scan from cron must neither wait nor make that apply fail.
    const held = acquireLock(path.join(root, "var/lib/conary/conary.db"), root, "apply", 0)
    try {
      expect(JSON.parse(ok(["verify", "--json", ...r])).summary).toMatchObject({ hashed: 1, refreshed: 1 })
      expect(JSON.parse(ok(["verify", "--json", ...r])).summary).toMatchObject({ hashed: 0, refreshed: 0 })
    } finally {
      held.release()
    }
  })

  it("verifies from a database it cannot write, keeping no refreshed rows", (ctx) => {
    const { root, r } = setup()
    const db = path.join(root, "var/lib/conary/conary.db")
    // Root writes through file modes: an immutable file (chattr +i) is read-only to it too.
    if (mustSkip(spawnSync("chattr", ["+i", db]).status === 0, "read-only database", "chattr +i failed", "run as root on ext4")) return ctx.skip()
    try {
      fs.writeFileSync(path.join(root, "etc/tool.conf"), CONF1 + "extra = 1\n")
      // Every file apply renamed into place has its ctime moved: clean, with a row to refresh that cannot be kept.
      const v = conary(["verify", "--json", ...r])
      expect(v.stderr).toBe("")
      expect(v.code).toBe(2)
      expect(JSON.parse(v.stdout).drift.map((d: { path: string }) => d.path)).toEqual(["/etc/tool.conf"])
    } finally {
      spawnSync("chattr", ["-i", db])
    }
  })

  it("keeps the refreshed rows of more files than one batch (the first scan after a big apply)", () => {
    const { repo, r } = setupRoot()
    const many: Record<string, string> = {}
    for (let i = 0; i < 1100; i++) many[`usr/share/many/d${i % 10}/f${i}`] = `file ${i}\n`
    buildTrove(repo, "many", "1.0-1-1", many)
    ok(["source", "sync", ...r])
    ok(["desired", "add", "many", ...r])
    ok(["apply", ...r])
    // Every entry apply made had its ctime moved by the rename into place (or a new entry in it): all are refreshed, the files hashed.
    const first = JSON.parse(ok(["verify", "--json", ...r]))
    expect(first.clean).toBe(true)
    expect(first.summary).toMatchObject({ hashed: 1100, refreshed: first.summary.files })
    expect(first.summary.files).toBeGreaterThan(1100)
    expect(JSON.parse(ok(["verify", "--json", ...r])).summary).toMatchObject({ hashed: 0, refreshed: 0 })
  })

  it("carries the cache of files an update does not rewrite: the next scan hashes only what apply wrote", () => {
    const { repo, r } = setup()
    ok(["plan", ...r])
    buildTrove(repo, "tool", "1.1-1-1", tree(CONF1, "binary v1.1\n"))
    ok(["source", "sync", ...r])
    ok(["apply", ...r])
    const after = JSON.parse(ok(["verify", "--json", ...r]))
    expect(after.clean).toBe(true)
    // the new binary only (its rename moved its ctime): the config file and README kept their rows
    expect(after.summary.hashed).toBe(1)
  })
})

describe("converging drift", () => {
  it("plans and applies repairs of non-config files; leaves a changed config file alone", () => {
    const { root, r } = setup()
    const before = listTree(root)
    fs.writeFileSync(path.join(root, "usr/bin/tool"), "tampered")
    fs.rmSync(path.join(root, "usr/share/doc/tool"), { recursive: true })
    fs.writeFileSync(path.join(root, "etc/tool.conf"), "mine\n")
    const plan = conary(["plan", "--detailed-exitcode", ...r])
    expect(plan.code).toBe(2)
    expect(plan.stdout).toContain("! repair /usr/bin/tool (content changed)")
    expect(plan.stdout).toContain("! repair /usr/share/doc/tool (missing)")
    expect(plan.stdout).toContain("! repair /usr/share/doc/tool/README (missing)")
    expect(plan.stdout).not.toContain("/etc/tool.conf")
    expect(plan.stdout).toContain("Plan: 0 to install, 0 to update, 0 to erase, 3 to repair;")
    expect(conary(["plan", "--no-refresh", "--detailed-exitcode", ...r]).code).toBe(0)
    ok(["apply", ...r])
    const after = listTree(root)
    expect(after["usr/bin/tool"]).toEqual(before["usr/bin/tool"])
    expect(after["usr/share/doc/tool/README"]).toEqual(before["usr/share/doc/tool/README"])
    expect(fs.readFileSync(path.join(root, "etc/tool.conf"), "utf8")).toBe("mine\n")
    // Only the config file remains drifted, as the user left it.
    const v = JSON.parse(conary(["verify", "--json", ...r]).stdout)
    expect(v.drift.map((d: { path: string }) => d.path)).toEqual(["/etc/tool.conf"])
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
  })

  it("does not recreate a deleted config file unless asked", () => {
    const { root, r } = setup()
    fs.rmSync(path.join(root, "etc/tool.conf"))
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
    expect(ok(["plan", "--restore-config", ...r])).toContain("! repair /etc/tool.conf (missing)")
    ok(["apply", "--restore-config", ...r])
    expect(fs.readFileSync(path.join(root, "etc/tool.conf"), "utf8")).toBe(CONF1)
  })

  it("on update: installs the new config when untouched, merges when both changed, keeps the user's on conflict", () => {
    const s = setupRoot()
    const { root, repo, r } = s
    for (const [i, conf] of [CONF1, CONF1.replace("port = 80", "port = 8080"), CONF1.replace("port = 80", "port = 9090").replace("log = /var/log/tool", "log = /srv/log")].entries())
      buildTrove(repo, "tool", `1.${i}-1-1`, tree(conf, `binary v${i}\n`))
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    const conf = path.join(root, "etc/tool.conf")

    // Untouched locally: the package's new version is installed.
    ok(["desired", "add", "tool=1.1", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(conf, "utf8")).toContain("port = 8080")

    // Changed locally (user) and by the package (log line and port): the user's line is not in conflict -> clean merge.
    fs.writeFileSync(conf, fs.readFileSync(conf, "utf8").replace("user = www", "user = nginx"))
    ok(["desired", "add", "tool=1.2", ...r])
    expect(ok(["plan", ...r])).toContain("! merge /etc/tool.conf (changed locally and by the package: 3-way merge")
    const merged = ok(["apply", ...r])
    expect(merged).toContain("! merged /etc/tool.conf")
    expect(fs.readFileSync(conf, "utf8")).toBe("# tool\nport = 9090\n\nuser = nginx\n\nlog = /srv/log\n")

    // A conflicting local change: the user's file stays, the new one is written beside it.
    fs.writeFileSync(conf, fs.readFileSync(conf, "utf8").replace("port = 9090", "port = 1234"))
    ok(["desired", "add", "tool=1.0", ...r])
    const kept = ok(["apply", ...r])
    expect(kept).toContain("! kept /etc/tool.conf (changed locally and by the package, merge conflicts): the new version is /etc/tool.conf.conary-new")
    expect(fs.readFileSync(conf, "utf8")).toContain("port = 1234")
    expect(fs.readFileSync(conf + ".conary-new", "utf8")).toBe(CONF1)
  })

  it("keeps a changed config file when the package did not change it, and saves it on erase", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "tool", "1.0-1-1", tree(CONF1))
    buildTrove(repo, "tool", "1.1-1-1", tree(CONF1, "binary v2\n"))
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    const conf = path.join(root, "etc/tool.conf")
    fs.writeFileSync(conf, "mine\n")
    ok(["desired", "add", "tool=1.1", ...r])
    const plan = JSON.parse(ok(["plan", "--json", ...r]))
    expect(plan.files.map((f: { op: string; path: string }) => `${f.op} ${f.path}`)).toEqual(["replace /usr/bin/tool"])
    ok(["apply", ...r])
    expect(fs.readFileSync(conf, "utf8")).toBe("mine\n")

    ok(["desired", "remove", "tool", ...r])
    expect(ok(["plan", ...r])).toContain("! save /etc/tool.conf as /etc/tool.conf.conary-save (changed locally)")
    ok(["apply", ...r])
    expect(fs.existsSync(conf)).toBe(false)
    expect(fs.readFileSync(conf + ".conary-save", "utf8")).toBe("mine\n")
  })
})
