import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, ok, setupRoot } from "./helpers.js"

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
