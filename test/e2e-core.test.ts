import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, ok, setupRoot } from "./helpers.js"

const helloTree = (text: string) => ({
  "usr/bin/hello": { content: `#!/bin/sh\necho ${text}\n`, mode: 0o755 },
  "usr/bin/hi": { symlink: "hello" },
  "etc/hello.conf": "greeting=hello\n",
  "usr/share/doc/hello/README": "hello docs\n",
  "usr/share/locale/de/LC_MESSAGES/hello.mo": "hallo\n",
  "usr/lib/libhello.so.1.0": "elf\n",
  "usr/lib/libhello.so.1": { symlink: "libhello.so.1.0" },
  "usr/include/hello.h": "int hello(void);\n",
})

describe("core loop end to end", () => {
  it("installs, plans no changes, updates touching only changed files, erases", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "hello", "1.0-1-1", helloTree("one"), { requires: ["libc6"] })
    ok(["source", "sync", ...r])
    ok(["provide", "add", "libc6", ...r])
    ok(["desired", "add", "hello", ...r])

    const plan = conary(["plan", "--detailed-exitcode", ...r])
    expect(plan.code).toBe(2)
    expect(plan.stdout).toContain("+ hello 1.0-1-1")
    expect(plan.stdout).toMatch(/Plan: 1 to install, 0 to update, 0 to erase; \d+ files, .* to write\./)

    const applied = ok(["apply", ...r])
    expect(applied).toContain("Applied generation 1")
    const tree = listTree(root)
    expect(tree["usr/bin/hello"]).toMatchObject({ type: "file", mode: 0o755 })
    expect(tree["usr/bin/hi"]).toEqual({ type: "symlink", mode: 0, target: "hello" })
    expect(fs.readFileSync(path.join(root, "etc/hello.conf"), "utf8")).toBe("greeting=hello\n")

    const again = conary(["plan", "--detailed-exitcode", ...r])
    expect(again.code).toBe(0)
    expect(again.stdout.trim()).toBe("No changes. Installed state matches desired state.")
    expect(ok(["apply", ...r]).trim()).toBe("No changes. Installed state matches desired state.")
    expect(JSON.parse(ok(["history", "--json", ...r])).generations).toHaveLength(1)

    // Update: only the changed file is rewritten; the others keep their inode.
    const inoDoc = fs.statSync(path.join(root, "usr/share/doc/hello/README")).ino
    const inoBin = fs.statSync(path.join(root, "usr/bin/hello")).ino
    buildTrove(repo, "hello", "1.1-1-1", helloTree("two"), { requires: ["libc6"] })
    ok(["source", "sync", ...r])
    const up = JSON.parse(ok(["plan", "--json", ...r]))
    expect(up.formatVersion).toBe(1)
    expect(up.troves).toEqual([expect.objectContaining({ op: "update", name: "hello", from: expect.objectContaining({ version: "1.0-1-1" }), to: expect.objectContaining({ version: "1.1-1-1" }) })])
    expect(up.files.map((f: { op: string; path: string }) => `${f.op} ${f.path}`)).toEqual(["replace /usr/bin/hello"])
    expect(ok(["plan", ...r])).toContain("~ hello 1.0-1-1 → 1.1-1-1")
    ok(["apply", ...r])
    expect(fs.statSync(path.join(root, "usr/share/doc/hello/README")).ino).toBe(inoDoc)
    expect(fs.statSync(path.join(root, "usr/bin/hello")).ino).not.toBe(inoBin)
    expect(fs.readFileSync(path.join(root, "usr/bin/hello"), "utf8")).toContain("two")

    // Erase: files and the directories the trove created go; the root is empty again.
    fs.writeFileSync(path.join(root, "usr/foreign"), "not ours")
    ok(["desired", "remove", "hello", ...r])
    expect(ok(["plan", ...r])).toContain("- hello 1.1-1-1")
    ok(["apply", ...r])
    expect(Object.keys(listTree(root)).sort()).toEqual(["usr", "usr/foreign"])
    const history = JSON.parse(ok(["history", "--json", ...r])).generations
    expect(history.map((g: { operations: { op: string }[] }) => g.operations[0]!.op)).toEqual(["install", "update", "erase"])
  })

  it("installs one component when a row names it, and pulls in dependencies", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "hello", "1.0-1-1", helloTree("one"), { requires: ["libgreet (>= 2.0)"] })
    buildTrove(repo, "libgreet", "1.0-1-1", { "usr/lib/libgreet.so.1": "old" })
    buildTrove(repo, "libgreet", "2.1-1-1", { "usr/lib/libgreet.so.2": "new" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "hello:doc", ...r])
    const plan = ok(["plan", ...r])
    expect(plan).toContain("+ hello 1.0-1-1")
    expect(plan).toContain("+ libgreet 2.1-1-1 (dependency)")
    ok(["apply", ...r])
    const paths = Object.keys(listTree(root))
    expect(paths).toContain("usr/share/doc/hello/README")
    expect(paths).toContain("usr/lib/libgreet.so.2")
    expect(paths).not.toContain("usr/bin/hello")
    const list = JSON.parse(ok(["list", "--json", ...r])).troves
    expect(list).toEqual([
      expect.objectContaining({ name: "hello", components: ["doc"], reason: "explicit" }),
      expect.objectContaining({ name: "libgreet", version: "2.1-1-1", reason: "dependency" }),
    ])
    const show = JSON.parse(ok(["show", "hello", "--json", "--files", ...r]))
    expect(show.reason).toBe("explicit")
    expect(show.provenance[0].origin).toContain("hello-1.0-1-1.ctrv")
    expect(show.files.filter((f: { kind: string }) => f.kind !== "dir").every((f: { component: string }) => f.component === "doc")).toBe(true)

    // Dropping the only trove that needs it removes the dependency too.
    ok(["desired", "remove", "hello", ...r])
    const erase = ok(["plan", ...r])
    expect(erase).toContain("- hello 1.0-1-1")
    expect(erase).toContain("- libgreet 2.1-1-1")
  })

  it("pins versions, and replaces the desired set atomically from JSON", () => {
    const { repo, r } = setupRoot()
    buildTrove(repo, "tool", "1.0-1-1", { "usr/bin/tool": "1" })
    buildTrove(repo, "tool", "1.10-1-1", { "usr/bin/tool": "10" })
    buildTrove(repo, "tool", "1.9-1-1", { "usr/bin/tool": "9" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool", ...r])
    expect(ok(["plan", ...r])).toContain("+ tool 1.10-1-1")
    ok(["desired", "add", "tool=1.9", ...r])
    expect(ok(["plan", ...r])).toContain("+ tool 1.9-1-1")

    const doc = { formatVersion: 1, troves: [{ name: "tool", version: "1.0-1-1" }, { name: "other" }] }
    ok(["desired", "set", "--file", "-", ...r], { input: JSON.stringify(doc) })
    expect(JSON.parse(ok(["desired", "export", ...r]))).toEqual({
      formatVersion: 1,
      troves: [{ name: "other" }, { name: "tool", version: "1.0-1-1" }],
    })
    const bad = conary(["desired", "set", "--file", "-", ...r], {
      input: JSON.stringify({ formatVersion: 1, troves: [{ name: "ok" }, { name: "bad name!" }] }),
    })
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("troves.1")
    const wrongType = conary(["desired", "set", "--file", "-", ...r], { input: JSON.stringify({ formatVersion: 1, troves: [{ name: 3 }] }) })
    expect(wrongType.stderr).toMatch(/troves\.0\.name/)
    // Nothing was half-written.
    expect(JSON.parse(ok(["desired", "export", ...r])).troves).toHaveLength(2)

    const unresolvable = conary(["plan", ...r])
    expect(unresolvable.code).toBe(1)
    expect(unresolvable.stderr.trim()).toBe("conary: unresolvable: other: no source provides it")
  })
})
