import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { type TreeSpec, conary, listTree, ok, okAsync, setupRoot, sha256, tempDir, writeTree } from "./helpers.js"

const BIN = fileURLToPath(new URL("../bin/conary.js", import.meta.url))

// The stat cache may only vouch for bytes apply wrote and verified; nothing a
// user does to their own files may make a root unmanageable; the config-file
// rules hold whatever the refresh mode.

/** Builds trove archives into `repo` in parallel, with the real CLI. */
const buildAll = (repo: string, troves: ReadonlyArray<[name: string, version: string, tree: TreeSpec]>) =>
  Promise.all(
    troves.map(([name, version, tree]) => {
      const dir = writeTree(fs.mkdtempSync(path.join(path.dirname(repo), `build-${name}-`)), tree)
      return okAsync(["trove", "build", dir, "--name", name, "--trove-version", version, "--out", path.join(repo, `${name}-${version}.ctrv`)])
    }),
  )

const CONF = "# tool\nport = 80\n\nuser = www\n\nlog = /var/log/tool\n"

const toolTree = (bin: string, conf = CONF, doc = "docs\n"): TreeSpec => ({
  "usr/bin/tool": { content: bin, mode: 0o755 },
  "usr/share/tool/data": "data v1\n",
  "usr/share/doc/tool/README": doc,
  "etc/tool.conf": conf,
})

interface DriftLine {
  path: string
  flags: string
}
const drift = (r: string[], ...extra: string[]): string[] =>
  (JSON.parse(conary(["verify", "--json", ...extra, ...r]).stdout).drift as DriftLine[]).map((d) => `${d.flags} ${d.path}`)

/** verify and verify --full agree. */
const verified = (r: string[]): string[] => {
  const fast = drift(r)
  expect(drift(r, "--full")).toEqual(fast)
  return fast
}

describe("the stat cache vouches only for what apply wrote", () => {
  it("keeps drift made before an update visible: same-size edits, a chown, with --no-refresh, and a merged config file", async () => {
    const { root, repo, r } = setupRoot()
    await buildAll(repo, [
      ["tool", "1.0-1-1", toolTree("binary v1\n")],
      ["tool", "2.0-1-1", toolTree("binary v2\n")],
      ["tool", "3.0-1-1", toolTree("binary v3\n", CONF.replace("port = 80", "port = 8080"))],
    ])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    expect(verified(r)).toEqual([])

    // Same-size edits (a config file and a data file), and a chown.
    const at = (p: string) => path.join(root, p)
    fs.writeFileSync(at("etc/tool.conf"), CONF.replace("www", "WWW"))
    fs.writeFileSync(at("usr/share/tool/data"), "data vX\n")
    fs.chownSync(at("usr/share/doc/tool/README"), 1, 1)
    const expected = ["S.5....T. /etc/tool.conf", ".....UG.. /usr/share/doc/tool/README", "..5....T. /usr/share/tool/data"]
      .map((l) => l.replace("S.5", "..5"))
    expect(verified(r)).toEqual(expected)

    // An update that does not repair (--no-refresh) keeps every one of them drifted.
    ok(["desired", "add", "tool=2.0", ...r])
    ok(["apply", "--no-refresh", ...r])
    expect(fs.readFileSync(at("usr/bin/tool"), "utf8")).toBe("binary v2\n")
    expect(verified(r)).toEqual(expected)

    // The package changes the config file too: merged, and the merge is drift against the package.
    ok(["desired", "add", "tool=3.0", ...r])
    expect(ok(["apply", ...r])).toContain("! merged /etc/tool.conf")
    expect(fs.readFileSync(at("etc/tool.conf"), "utf8")).toBe(CONF.replace("www", "WWW").replace("port = 80", "port = 8080"))
    expect(verified(r)).toEqual(["..5....T. /etc/tool.conf"])
  })

  it("refuses a corrupted object in the store before the commit, writing nothing to the root", async () => {
    const { root, repo, r } = setupRoot()
    await buildAll(repo, [["tool", "1.0-1-1", toolTree("binary v1\n")]])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool", ...r])
    ok(["apply", ...r])
    ok(["desired", "remove", "tool", ...r])
    ok(["apply", ...r])
    // The erased contents are kept in the store; one of them rots.
    const sha = sha256("binary v1\n")
    const object = path.join(root, "var/lib/conary/store/objects", sha.slice(0, 2), sha.slice(2))
    fs.writeFileSync(object, "binary v0\n")
    const before = listTree(root)
    ok(["desired", "add", "tool", ...r])
    const failed = conary(["apply", ...r])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/^conary: apply failed at \/usr\/bin\/tool: its content [0-9a-f]{16} in the store is corrupt .*\n$/)
    expect(listTree(root)).toEqual(before)
    expect(JSON.parse(ok(["list", "--json", ...r])).troves).toEqual([])
    // The bad object was dropped: the next apply fetches it again from its source.
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("binary v1\n")
    expect(verified(r)).toEqual([])
  })

  it("flags a write that lands while apply runs, right after the rename", async () => {
    const { base, root, repo, r } = setupRoot()
    // The watched file is renamed first; a thousand more renames follow it,
    // so the write lands while apply is still at work.
    const tree = (v: number): TreeSpec => ({
      "a/tool": `binary v${v}\n`,
      ...Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`usr/share/many/f${i}`, `v${v} ${i}\n`])),
    })
    await buildAll(repo, [
      ["tool", "1.0-1-1", tree(1)],
      ["tool", "2.0-1-1", tree(2)],
    ])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    // A watcher on the target's directory rewrites the file (same size) the
    // moment the new version is renamed into place.
    const watcher = path.join(base, "watcher.cjs")
    fs.writeFileSync(
      watcher,
      `const fs = require("node:fs")
       const dir = process.argv[2]
       const w = fs.watch(dir, (event, name) => {
         if (event !== "rename" || name !== "tool") return
         fs.writeFileSync(dir + "/tool", "binary vX\\n")
         w.close()
         process.stdout.write("wrote\\n")
       })
       process.stdout.write("ready\\n")`,
    )
    const child = spawn(process.execPath, [watcher, path.join(root, "a")], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    const said = (word: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => (out.includes(word) ? resolve() : undefined)
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString()
          check()
        })
        child.on("exit", () => (out.includes(word) ? resolve() : reject(new Error(`watcher exited without '${word}': ${out}`))))
        check()
      })
    await said("ready")
    ok(["desired", "add", "tool=2.0", ...r])
    await okAsync(["apply", ...r])
    await said("wrote")
    expect(fs.readFileSync(path.join(root, "a/tool"), "utf8")).toBe("binary vX\n")
    // (T only if the write moved the mtime past the copy's.)
    expect(verified(r)).toEqual([expect.stringMatching(/^\.\.5\.\.\.\.[.T]\. \/a\/tool$/)])
  })
})

describe("what users do to their files never makes a root unmanageable", () => {
  it("updates and rolls back a trove whose config file the user deleted", async () => {
    const { root, repo, r } = setupRoot()
    await buildAll(repo, [
      ["tool", "1.0-1-1", toolTree("binary v1\n")],
      ["tool", "2.0-1-1", toolTree("binary v2\n", CONF.replace("port = 80", "port = 8080"))],
    ])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    fs.rmSync(path.join(root, "etc/tool.conf"))
    ok(["desired", "add", "tool=2.0", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("binary v2\n")
    expect(fs.existsSync(path.join(root, "etc/tool.conf"))).toBe(false)
    expect(verified(r)).toEqual(["missing /etc/tool.conf"])
    ok(["rollback", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("binary v1\n")
    expect(JSON.parse(ok(["list", "--json", ...r])).troves.map((t: { version: string }) => t.version)).toEqual(["1.0-1-1"])
    expect(verified(r)).toEqual(["missing /etc/tool.conf"])
    ok(["recover", ...r])
    // Converged: nothing to apply; the deleted config file is drift reported beside it.
    const status = conary(["status", "--json", ...r])
    expect(status.code).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ converged: true, drift: { drifted: 1, missing: 1, config: 1 } })
  })

  it("leaves a directory where a file belongs (and a file where a directory belongs) alone, says so, and goes on", async () => {
    const { root, repo, r } = setupRoot()
    await buildAll(repo, [
      ["tool", "1.0-1-1", toolTree("binary v1\n")],
      ["tool", "2.0-1-1", toolTree("binary v2\n", CONF, "docs v2\n")],
    ])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    const at = (p: string) => path.join(root, p)
    fs.rmSync(at("usr/bin/tool"))
    writeTree(root, { "usr/bin/tool/keep": "the admin's\n" })
    fs.rmSync(at("usr/share/doc/tool"), { recursive: true })
    fs.writeFileSync(at("usr/share/doc/tool"), "a file of the admin's\n")
    const blocked = [
      "! blocked /usr/bin/tool: a directory is in the way of the file; move it away and apply again",
      "! blocked /usr/share/doc/tool: a file is in the way of the directory; move it away and apply again",
      "! blocked /usr/share/doc/tool/README: /usr/share/doc/tool is not a directory on disk; move it away and apply again",
    ]
    const plan = conary(["plan", "--detailed-exitcode", ...r])
    expect(plan.stdout.trim().split("\n")).toEqual([...blocked, "No changes. Installed state matches desired state."])
    expect(plan.code).toBe(0)
    expect(JSON.parse(conary(["status", "--json", ...r]).stdout)).toMatchObject({ converged: false, pending: { blocked: 3 } })

    // An update goes on without the blocked paths; what the admin put there is untouched.
    fs.writeFileSync(at("usr/share/tool/data"), "data vX\n")
    ok(["desired", "add", "tool=2.0", ...r])
    const applied = ok(["apply", ...r])
    for (const line of blocked) expect(applied).toContain(line)
    expect(applied).toContain("! repair /usr/share/tool/data (content changed)")
    expect(fs.readFileSync(at("usr/bin/tool/keep"), "utf8")).toBe("the admin's\n")
    expect(fs.readFileSync(at("usr/share/doc/tool"), "utf8")).toBe("a file of the admin's\n")
    expect(fs.readFileSync(at("usr/share/tool/data"), "utf8")).toBe("data v1\n")
    expect(verified(r)).toEqual([".M5....T. /usr/bin/tool", ".M....... /usr/share/doc/tool", "missing /usr/share/doc/tool/README"])

    // Once the admin moves them away, apply repairs the paths.
    fs.rmSync(at("usr/bin/tool"), { recursive: true })
    fs.rmSync(at("usr/share/doc/tool"))
    ok(["apply", ...r])
    expect(fs.readFileSync(at("usr/bin/tool"), "utf8")).toBe("binary v2\n")
    expect(fs.readFileSync(at("usr/share/doc/tool/README"), "utf8")).toBe("docs v2\n")
    expect(verified(r)).toEqual([])
    expect(conary(["status", ...r]).code).toBe(0)
  })

  it("never reads through a config file the admin made a symlink, a fifo or a device: kept as it is, the package's beside it", async () => {
    const { base, root, repo, r } = setupRoot()
    const confs = (v: string): TreeSpec => ({ "etc/a.conf": `a ${v}\n`, "etc/b.conf": `b ${v}\n`, "etc/c.conf": `c ${v}\n` })
    await buildAll(repo, [
      ["tool", "1.0-1-1", confs("v1")],
      ["tool", "2.0-1-1", confs("v2")],
    ])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    const secret = path.join(base, "shadow")
    fs.writeFileSync(secret, "root:SECRET-HASH:19000::::::\n", { mode: 0o600 })
    const at = (p: string) => path.join(root, p)
    for (const p of ["etc/a.conf", "etc/b.conf", "etc/c.conf"]) fs.rmSync(at(p))
    fs.symlinkSync(secret, at("etc/a.conf"))
    fs.symlinkSync("/dev/zero", at("etc/b.conf"))
    execFileSync("mkfifo", [at("etc/c.conf")])
    ok(["desired", "add", "tool=2.0", ...r])
    // A read from the fifo would block forever, one from /dev/zero never end: bounded here.
    const run = spawnSync(process.execPath, [BIN, "apply", ...r], { encoding: "utf8", timeout: 15_000 })
    expect(run.signal).toBeNull()
    expect(run.stderr).toBe("")
    expect(run.status).toBe(0)
    expect(fs.readlinkSync(at("etc/a.conf"))).toBe(secret)
    expect(fs.readlinkSync(at("etc/b.conf"))).toBe("/dev/zero")
    expect(fs.lstatSync(at("etc/c.conf")).isFIFO()).toBe(true)
    expect(fs.readFileSync(secret, "utf8")).toBe("root:SECRET-HASH:19000::::::\n")
    for (const n of "abc") expect(fs.readFileSync(at(`etc/${n}.conf.conary-new`), "utf8")).toBe(`${n} v2\n`)
    // The secret's bytes are nowhere in the root.
    const leaked = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name)
        if (e.isDirectory()) return leaked(p)
        return e.isFile() && fs.readFileSync(p, "utf8").includes("SECRET-HASH") ? [p] : []
      })
    expect(leaked(root)).toEqual([])
  })
})

describe("the config-file table holds with and without --no-refresh", () => {
  it("gives the same outcome for every row in both modes", async () => {
    const base = tempDir()
    const repo = path.join(base, "repo")
    fs.mkdirSync(repo)
    const conf = (name: string) => CONF.replace("tool", name)
    const tree = (name: string, v: number, c = conf(name)): TreeSpec => ({ [`etc/${name}.conf`]: c, [`usr/share/${name}/data`]: `data v${v}\n` })
    // Rows: on update, a untouched, b changed locally only, c changed by both (clean merge),
    // d changed by both (conflict), e deleted; on erase, f untouched, g changed, h deleted.
    const changed = (name: string) => conf(name).replace("port = 80", "port = 8080")
    await buildAll(repo, [
      ...["a", "b", "c", "d", "e", "f", "g", "h"].map((n): [string, string, TreeSpec] => [n, "1.0-1-1", tree(n, 1)]),
      ["a", "2.0-1-1", tree("a", 2, changed("a"))],
      ["b", "2.0-1-1", tree("b", 2)],
      ["c", "2.0-1-1", tree("c", 2, changed("c"))],
      ["d", "2.0-1-1", tree("d", 2, changed("d"))],
      ["e", "2.0-1-1", tree("e", 2, changed("e"))],
    ])
    const run = (noRefresh: boolean) => {
      const root = path.join(base, noRefresh ? "no-refresh" : "refresh")
      fs.mkdirSync(root)
      const r = ["--root", root]
      ok(["init", ...r])
      ok(["source", "add", "local", repo, ...r])
      ok(["source", "sync", ...r])
      ok(["desired", "add", ..."abcdefgh".split("").map((n) => `${n}=1.0`), ...r])
      ok(["apply", ...r])
      const at = (n: string) => path.join(root, `etc/${n}.conf`)
      for (const n of ["b", "c", "g"]) fs.writeFileSync(at(n), conf(n).replace("user = www", "user = nginx"))
      fs.writeFileSync(at("d"), conf("d").replace("port = 80", "port = 1234"))
      for (const n of ["e", "h"]) fs.rmSync(at(n))
      ok(["desired", "add", ..."abcde".split("").map((n) => `${n}=2.0`), ...r])
      ok(["desired", "remove", "f", "g", "h", ...r])
      const out = ok(["apply", ...(noRefresh ? ["--no-refresh"] : []), ...r])
      return { root, r, out, tree: listTree(root) }
    }
    const refreshed = run(false)
    const trusted = run(true)
    expect(trusted.tree).toEqual(refreshed.tree)
    const notes = (out: string) => out.split("\n").filter((l) => l.startsWith("!"))
    expect(notes(trusted.out)).toEqual(notes(refreshed.out))
    expect(notes(trusted.out)).toEqual([
      "! merged /etc/c.conf (changed locally and by the package: 3-way merge was clean)",
      "! kept /etc/d.conf (changed locally and by the package, merge conflicts): the new version is /etc/d.conf.conary-new",
      "! save /etc/g.conf as /etc/g.conf.conary-save (changed locally)",
    ])
    const content = (p: string) => fs.readFileSync(path.join(trusted.root, p), "utf8")
    expect(content("etc/a.conf")).toBe(changed("a"))
    expect(content("etc/b.conf")).toBe(conf("b").replace("user = www", "user = nginx"))
    expect(content("etc/c.conf")).toBe(changed("c").replace("user = www", "user = nginx"))
    expect(content("etc/d.conf")).toBe(conf("d").replace("port = 80", "port = 1234"))
    expect(content("etc/d.conf.conary-new")).toBe(changed("d"))
    for (const gone of ["etc/e.conf", "etc/f.conf", "etc/g.conf", "etc/h.conf", "etc/h.conf.conary-save"])
      expect(fs.existsSync(path.join(trusted.root, gone))).toBe(false)
    expect(content("etc/g.conf.conary-save")).toBe(conf("g").replace("user = www", "user = nginx"))
    expect(verified(trusted.r)).toEqual(verified(refreshed.r))
  })

  it("refuses a saved plan that would overwrite a config file changed since it was made", async () => {
    const { base, root, repo, r } = setupRoot()
    await buildAll(repo, [
      ["tool", "1.0-1-1", toolTree("binary v1\n")],
      ["tool", "2.0-1-1", toolTree("binary v2\n", CONF.replace("port = 80", "port = 8080"))],
    ])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    ok(["desired", "add", "tool=2.0", ...r])
    const saved = path.join(base, "plan.json")
    ok(["plan", "--out", saved, ...r])
    const conf = path.join(root, "etc/tool.conf")
    fs.writeFileSync(conf, CONF.replace("user = www", "user = nginx"))
    const refused = conary(["apply", saved, ...r])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^conary: saved plan .* refused: .*\/etc\/tool\.conf.*\n$/)
    expect(fs.readFileSync(conf, "utf8")).toBe(CONF.replace("user = www", "user = nginx"))
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("binary v1\n")
    // Planned again, the edit is merged.
    expect(ok(["apply", ...r])).toContain("! merged /etc/tool.conf")
  })
})
