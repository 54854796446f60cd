import * as fs from "node:fs"
import * as path from "node:path"
import { execFileSync, spawnSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, ok, setupRoot } from "./helpers.js"

// Whatever sits at a stage path (`.conary-new.NAME`) before apply is not the
// file apply writes: a fifo must not hang apply, and a fifo or device must
// never be staged and renamed into place as a trove's file.

describe("apply with something planted at a stage path", () => {
  it("fails at once with one line and leaves the root as it was; then applies clean", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "t", "1-1-1", { "a/e1": "", "a/e2": "", "a/e3": "", "a/x": "content\n" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "t", ...r])
    fs.mkdirSync(path.join(root, "a"))
    const before = listTree(root)
    const refused = (planted: string, why: RegExp) => {
      const run = conary(["apply", ...r], { timeout: 30_000 })
      expect(run.code, `${planted}: ${run.stderr}`).toBe(1)
      expect(run.stderr).toMatch(new RegExp(`^conary: apply failed at /a/${planted}: ${why.source}\\n$`))
      // The plant (at apply's own stage name) is undone with the rest of the staging.
      expect(listTree(root)).toEqual(before)
    }
    // An empty file's stage path (created on the spot), then one a content read from the archive is written to.
    for (const name of ["e1", "x"]) {
      execFileSync("mkfifo", [path.join(root, "a", `.conary-new.${name}`)])
      refused(name, /no such device or address \(open\)/)
    }
    // A device opens without blocking: it must be refused, not renamed into place (where devices can be made: root, outside a restricted container).
    for (const name of ["e2", "x"]) {
      if (spawnSync("mknod", [path.join(root, "a", `.conary-new.${name}`), "c", "1", "3"]).status !== 0) break
      refused(name, /not a regular file \(open\)/)
    }
    ok(["apply", ...r])
    expect(fs.lstatSync(path.join(root, "a/e1")).isFile()).toBe(true)
    expect(fs.readFileSync(path.join(root, "a/x"), "utf8")).toBe("content\n")
    expect(ok(["verify", ...r])).toMatch(/no drift/)
  })
})
