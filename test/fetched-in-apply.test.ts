import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, ok, setupRoot, sha256 } from "./helpers.js"

// What an apply fetches from local archives is in the store for the rest of
// that apply, whichever fetch lane stored it: a config merge whose base the
// same apply brings merges, and a repository content whose delta base the
// same apply brings comes by its delta.

const CONF1 = "# tool\nport = 80\n\nuser = www\n\nlog = /var/log/tool\n"
const CONF2 = CONF1.replace("port = 80", "port = 8080")

describe("contents an apply fetched, later in the same apply", () => {
  it("are the base of a config file's merge", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "tool", "1.0-1-1", { "etc/tool.conf": CONF1, "usr/bin/tool": "v1\n" })
    // 1.1 changes the port and ships the old default as an example: the merge's base, again.
    buildTrove(repo, "tool", "1.1-1-1", { "etc/tool.conf": CONF2, "usr/bin/tool": "v2\n", "usr/share/tool/tool.conf.orig": CONF1 })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    const conf = path.join(root, "etc/tool.conf")
    fs.writeFileSync(conf, CONF1.replace("user = www", "user = nginx"))
    // The store lost the base (an earlier apply removed it as corrupt).
    const base = sha256(CONF1)
    fs.rmSync(path.join(root, "var/lib/conary/store/objects", base.slice(0, 2), base.slice(2)))
    ok(["desired", "add", "tool=1.1", ...r])
    expect(ok(["apply", ...r])).toContain("! merged /etc/tool.conf")
    expect(fs.readFileSync(conf, "utf8")).toBe(CONF2.replace("user = www", "user = nginx"))
  })

  it("are the base of a repository content's delta", () => {
    const { base, repo: local, r } = setupRoot()
    const old = Array.from({ length: 3000 }, (_, i) => `line ${i}: ${((i * 2654435761) >>> 0).toString(16)}\n`).join("")
    const inputs = path.join(base, "inputs")
    const published = path.join(base, "published")
    fs.mkdirSync(inputs)
    buildTrove(inputs, "tool", "1.0-1-1", { "usr/bin/tool": old })
    ok(["repo", "build", published, inputs])
    fs.rmSync(path.join(inputs, "tool-1.0-1-1.ctrv"))
    buildTrove(inputs, "tool", "1.1-1-1", { "usr/bin/tool": old.replace("line 1500:", "line 1500 (changed):") })
    expect(JSON.parse(ok(["repo", "build", published, inputs, "--json"])).deltas).toBe(1)
    // A local trove carries the old content: this apply stores it before it fetches from the repository.
    buildTrove(local, "keep", "1.0-1-1", { "usr/share/keep/tool.orig": old })
    ok(["source", "add", "lab", published, "--insecure", ...r])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.1", "keep", ...r])
    expect(JSON.parse(ok(["apply", "--json", ...r])).download).toMatchObject({ deltas: 1, full: 0 })
  })
})
