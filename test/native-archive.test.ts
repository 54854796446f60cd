import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { conary, listTree, ok, setupRoot, writeTree } from "./helpers.js"

describe("native archives built from a directory", () => {
  it("keep the directory's mtimes and hard links, and install them as cp -a would", () => {
    const { base, root, repo, r } = setupRoot()
    const dir = writeTree(path.join(base, "tree"), {
      "usr/bin/tool": { content: "#!/bin/sh\necho tool\n", mode: 0o755 },
      "usr/share/tool/data": "data\n",
      "usr/share/tool/link": { symlink: "data" },
    })
    fs.linkSync(path.join(dir, "usr/bin/tool"), path.join(dir, "usr/bin/tool-1.0"))
    fs.utimesSync(path.join(dir, "usr/bin/tool"), 1_600_000_000, 1_600_000_000)
    fs.utimesSync(path.join(dir, "usr/share/tool/data"), 1_500_000_000, 1_500_000_000)
    fs.lutimesSync(path.join(dir, "usr/share/tool/link"), 1_400_000_000, 1_400_000_000)
    ok(["trove", "build", dir, "--name", "tool", "--trove-version", "1.0-1-1", "--out", path.join(repo, "tool.ctrv")])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool", ...r])
    ok(["apply", ...r])
    const mine = listTree(root, undefined, { times: true })
    expect(mine).toEqual(listTree(dir, "\0", { times: true }))
    expect(mine["usr/bin/tool-1.0"]!.linkedTo).toBe("usr/bin/tool")
    expect(mine["usr/share/tool/data"]!.mtime).toBe(1_500_000_000)
    expect(conary(["verify", ...r]).code).toBe(0)
  })

  it("keep a name that starts with a byte order mark as it is", () => {
    const { base, root, repo, r } = setupRoot()
    // U+FEFF: a UTF-8 decoder drops it at the start of a text unless told not to.
    const dir = writeTree(path.join(base, "tree"), { "usr/share/\uFEFFbom": "bom\n", "\uFEFFtop/x": "x\n" })
    ok(["trove", "build", dir, "--name", "bom", "--trove-version", "1.0-1-1", "--out", path.join(repo, "bom.ctrv")])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "bom", ...r])
    ok(["apply", ...r])
    expect(listTree(root)).toEqual(listTree(dir, "\0"))
    expect(fs.readFileSync(path.join(root, "usr/share/\uFEFFbom"), "utf8")).toBe("bom\n")
    expect(conary(["verify", "--full", ...r]).code).toBe(0)
  })

  it("refuses a directory holding a name that is not UTF-8", () => {
    const { base, repo } = setupRoot()
    const dir = writeTree(path.join(base, "tree"), { "usr/share/ok": "x" })
    fs.writeFileSync(Buffer.from(`${dir}/usr/share/caf\xe9`, "latin1"), "x")
    const res = conary(["trove", "build", dir, "--name", "bad", "--trove-version", "1.0-1-1", "--out", path.join(repo, "bad.ctrv")])
    expect(res.code).toBe(1)
    expect(res.stderr.trim()).toMatch(/^conary: archive .*\/usr\/share\/caf.*: file name is not UTF-8$/)
    expect(fs.existsSync(path.join(repo, "bad.ctrv"))).toBe(false)
  })
})
