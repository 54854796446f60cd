import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type PackEntry, packNativeTrove } from "../src/source/native.js"
import { generateKey } from "../src/source/repo.js"
import { conary, listTree, mustSkip, ok, okAsync } from "./helpers.js"
import { hasNginx, startNginx } from "./nginx.js"

// Groups end to end with the real CLI: a group of native troves and .debs
// (with a nested group and an optional member) built like a lockfile,
// installed, updated in one changeset, overridden, reported, removed;
// hostile group files; promotion between two repositories behind nginx, and
// ten roots converging on the promoted group.

const FIXTURES = path.resolve(import.meta.dirname, "fixtures/debs")
const DEBS = ["tree_2.1.0-1_amd64.deb", "jq_1.6-2.1+deb12u2_amd64.deb", "libjq1_1.6-2.1+deb12u2_amd64.deb", "libonig5_6.9.8-1_amd64.deb"]

let work: string
/** troves and groups, a directory source */
let troves: string
/** a root that has the troves synced: group builds resolve against it (and the lifecycle test reuses it) */
let builder: string[]
let builderRoot: string

/** A small native trove: each file with the directories above it. */
const pack = (name: string, version: string, files: Record<string, string>, requires: string[] = []) => {
  const entries: PackEntry[] = []
  const dirs = new Set<string>()
  for (const rel of Object.keys(files).sort()) {
    const parts = rel.split("/")
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join("/")
      if (!dirs.has(d)) entries.push({ rel: d, kind: "dir", mode: 0o755 })
      dirs.add(d)
    }
    entries.push({ rel, kind: "file", mode: 0o644, data: () => Buffer.from(files[rel]!) })
  }
  return packNativeTrove(entries, { name, version, flavor: "", requires, provides: [] }, path.join(troves, `${name}-${version}.ctrv`))
}

const hostRoot = (source: string[] = ["local", troves], sync = true) => {
  const root = fs.mkdtempSync(path.join(work, "root-"))
  const r = ["--root", root]
  ok(["init", ...r])
  ok(["source", "add", ...source, ...r])
  ok(["provide", "add", "libc6", ...r])
  if (sync) ok(["source", "sync", ...r])
  return { root, r }
}

const json = (args: string[]) => JSON.parse(ok([...args, "--json"]))

/**
 * Lets the event loop poll between long runs of synchronous CLI calls, so
 * vitest's worker channel gets its replies (see setup-yield.ts).
 */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 5))

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "conary-groups-"))
  troves = path.join(work, "troves")
  fs.mkdirSync(troves)
  await Promise.all([
    pack("web", "1.0-1-1", { "usr/bin/web": "web 1\n" }, ["libweb"]),
    pack("web", "2.0-1-1", { "usr/bin/web": "web 2\n" }, ["libweb (>= 2.0-1-1)"]),
    pack("libweb", "1.0-1-1", { "usr/lib/libweb.so.1": "libweb 1\n" }),
    pack("libweb", "2.0-1-1", { "usr/lib/libweb.so.1": "libweb 2\n" }),
    pack("tool", "1.0-1-1", { "usr/bin/tool": "tool 1.0\n" }),
    pack("tool", "1.1-1-1", { "usr/bin/tool": "tool 1.1\n" }),
    pack("extras", "1.0-1-1", { "usr/share/extras/data": "extras\n" }),
    pack("base-files", "1.0-1-1", { "etc/issue": "conary\n" }),
    pack("clash", "1.0-1-1", { "usr/bin/web": "not web\n" }),
    pack("needy", "1.0-1-1", { "usr/bin/needy": "needy\n" }, ["nothere"]),
  ])
  for (const deb of DEBS) fs.copyFileSync(path.join(FIXTURES, deb), path.join(troves, deb))
  ;({ root: builderRoot, r: builder } = hostRoot())
  await settle()
  const build = (args: string[]) => ok(["group", "build", ...args, ...builder])
  build(["--name", "group-base", "--trove-version", "1-1-1", "--include", "base-files", "--include", "tree", "--out", path.join(troves, "group-base-1.cgrp")])
  ok(["source", "sync", ...builder])
  const web = ["--include", "group-base", "--include", "tool=1.0", "--include", "jq", "--optional", "extras"]
  build(["--name", "group-web", "--trove-version", "1-1-1", ...web, "--include", "web=1.0", "--include", "libweb=1.0", "--out", path.join(troves, "group-web-1.cgrp")])
  await settle()
  // Version 2 from a desired-state document, as `desired export` prints it.
  const doc = path.join(work, "desired.json")
  fs.writeFileSync(doc, JSON.stringify({ formatVersion: 1, troves: [{ name: "web", version: "2.0" }, { name: "libweb", version: "2.0" }] }))
  build(["--name", "group-web", "--trove-version", "2-1-1", "--from", doc, ...web, "--out", path.join(troves, "group-web-2.cgrp")])
  ok(["source", "sync", ...builder])
})

afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

describe("groups", () => {
  it("a built group pins exact members: the closure, nested groups as themselves, optional ones marked", async () => {
    const group = JSON.parse(fs.readFileSync(path.join(troves, "group-web-1.cgrp"), "utf8"))
    expect(group).toMatchObject({ formatVersion: 1, kind: "group", name: "group-web", version: "1-1-1", flavor: "" })
    const members = Object.fromEntries(group.members.map((m: { name: string; version: string; byDefault: boolean }) => [m.name, `${m.version}${m.byDefault ? "" : " optional"}`]))
    await settle()
    // jq's Depends are members too (a lockfile); tree and base-files are group-base's to pin.
    expect(members).toEqual({
      "group-base": "1-1-1",
      extras: "1.0-1-1 optional",
      jq: "1.6-2.1+deb12u2",
      libjq1: "1.6-2.1+deb12u2",
      libonig5: "6.9.8-1",
      libweb: "1.0-1-1",
      tool: "1.0-1-1",
      web: "1.0-1-1",
    })
    expect(JSON.parse(fs.readFileSync(path.join(troves, "group-web-2.cgrp"), "utf8")).members.find((m: { name: string }) => m.name === "web").version).toBe("2.0-1-1")

    await settle()
    // Building refuses what plan would refuse, in plan's words (the builder's own desired rows are not the group's).
    const r = builder
    const out = path.join(work, "refused.cgrp")
    for (const troveSet of [["web", "clash"], ["needy"]]) {
      const built = conary(["group", "build", "--name", "group-x", "--trove-version", "1-1-1", ...troveSet.flatMap((t) => ["--include", t]), "--out", out, ...builder])
      ok(["desired", "add", ...troveSet, ...r])
      const planned = conary(["plan", ...r])
      ok(["desired", "remove", ...troveSet, ...r])
      expect(built.code).toBe(1)
      expect(built.stderr).toMatch(/^conary: (file conflict|unresolvable): /)
      expect(built.stderr).toBe(planned.stderr)
      expect(fs.existsSync(out)).toBe(false)
    }
    expect(conary(["group", "build", "--name", "group-x", "--version", "1", "--include", "web", "--out", out, ...builder]).stderr.trim()).toBe(
      "conary: group build: the trove's version is given as --trove-version V (--version prints conary's)",
    )
  })

  it("installs, selects an optional member, overrides a pin, updates in one generation, and removes with autoremove", { timeout: 180_000 }, async () => {
    const [root, r] = [builderRoot, builder]
    ok(["desired", "add", "group-web=1", ...r])
    const plan = ok(["plan", ...r])
    for (const line of ["+ group-web 1-1-1\n", "+ group-base 1-1-1 (group-web)", "+ web 1.0-1-1 (group-web)", "+ tree 2.1.0-1 [is: x86_64] (group-base)", "+ libonig5 6.9.8-1 [is: x86_64] (group-web)"])
      expect(plan).toContain(line)
    expect(plan).not.toContain("extras")
    expect(plan).not.toContain("2.0-1-1") // web 2.0 is the newest, but the group pins 1.0
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/web"), "utf8")).toBe("web 1\n")
    expect(fs.existsSync(path.join(root, "usr/bin/tree"))).toBe(true)
    const listed = Object.fromEntries(
      json(["list", ...r]).troves.map((t: { name: string; reason: string; group: string | null }) => [t.name, `${t.reason} ${t.group ?? "-"}`]),
    )
    expect(listed).toMatchObject({ "group-web": "explicit -", "group-base": "group group-web", web: "group group-web", tree: "group group-base", "base-files": "group group-base" })
    const show = ok(["show", "group-web", ...r])
    expect(show).toMatch(/^web +1\.0-1-1 +runtime +yes +installed as pinned$/m)
    expect(show).toMatch(/^extras +1\.0-1-1 +runtime +no +optional, not selected$/m)

    await settle()
    // An optional member, asked for: the installed set differs from the group until applied.
    ok(["desired", "add", "group-web/extras", ...r])
    const verify = conary(["verify", ...r])
    expect(verify.code).toBe(2)
    expect(verify.stdout).toContain("group        group-web=1-1-1: extras=1.0-1-1 is not installed\n")
    const status = conary(["status", "--json", ...r])
    expect(status.code).toBe(2)
    expect(JSON.parse(status.stdout).groups).toEqual({
      installed: 2,
      differences: [{ group: "group-web=1-1-1", member: "extras", pinned: "extras=1.0-1-1", state: "missing", installed: [] }],
    })
    expect(ok(["apply", ...r])).toContain("+ extras 1.0-1-1 (group-web)")
    expect(conary(["verify", ...r]).code).toBe(0)

    await settle()
    // A desired row for a member overrides the group's pin, and plan says so.
    ok(["desired", "add", "tool=1.1", ...r])
    const overridden = ok(["plan", ...r])
    expect(overridden).toContain("~ tool 1.0-1-1 → 1.1-1-1\n")
    expect(overridden).toContain("! tool: a desired row overrides group-web's pin tool=1.0-1-1 (1.1-1-1 chosen)\n")
    ok(["apply", ...r])
    const noted = conary(["verify", ...r])
    expect(noted.code).toBe(0)
    expect(noted.stdout).toContain("group        group-web=1-1-1: tool=1.0-1-1 pinned, tool=1.1-1-1 installed (a desired row overrides the pin)\n")

    await settle()
    // A new group version moves every member in one changeset, one generation.
    ok(["desired", "add", "group-web=2", ...r])
    const update = ok(["apply", ...r])
    expect(update).toContain("~ group-web 1-1-1 → 2-1-1\n")
    expect(update).toContain("~ web 1.0-1-1 → 2.0-1-1 (group-web)\n")
    expect(update).toContain("~ libweb 1.0-1-1 → 2.0-1-1 (group-web)\n")
    expect(update).toContain("Applied generation 4: 0 installed, 3 updated, 0 erased")
    const gens = json(["history", ...r]).generations
    expect(gens).toHaveLength(4)
    expect(gens.at(-1).operations.map((o: { name: string }) => o.name).sort()).toEqual(["group-web", "libweb", "web"])
    expect(fs.readFileSync(path.join(root, "usr/bin/web"), "utf8")).toBe("web 2\n")
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("tool 1.1\n")

    await settle()
    // Dropping the override: the pin is drift until applied.
    ok(["desired", "remove", "tool", ...r])
    const differs = conary(["verify", ...r])
    expect(differs.code).toBe(2)
    expect(differs.stdout).toContain("group        group-web=2-1-1: tool=1.0-1-1 pinned, tool=1.1-1-1 installed\n")
    expect(ok(["apply", ...r])).toContain("~ tool 1.1-1-1 → 1.0-1-1 (group-web)")

    await settle()
    // Removing the group (and its member rows) erases what nothing else wants.
    ok(["desired", "add", "jq", ...r])
    ok(["desired", "remove", "group-web", ...r])
    const removal = ok(["apply", ...r])
    expect(removal).toContain("- group-web 2-1-1")
    expect(removal).toContain("- tree 2.1.0-1 [is: x86_64]")
    const listing = ok(["list", ...r])
    expect(listing).toMatch(/^NAME +VERSION +FLAVOR +COMPONENTS +REASON +GROUP\n/)
    expect(listing).toMatch(/^jq +1\.6-2\.1\+deb12u2 +is: x86_64 +\S+ +explicit +-$/m)
    expect(listing.trim().split("\n").slice(1).map((l) => l.split(" ")[0])).toEqual(["jq", "libjq1", "libonig5"])
    expect(fs.existsSync(path.join(root, "usr/bin/web"))).toBe(false)
    expect(fs.existsSync(path.join(root, "etc/issue"))).toBe(false)
  })

  it("refuses hostile group files, missing members, cycles and bad member rows, naming what is wrong", { timeout: 120_000 }, async () => {
    const dir = path.join(work, "hostile")
    fs.mkdirSync(dir)
    const write = (file: string, doc: unknown) => fs.writeFileSync(path.join(dir, file), typeof doc === "string" ? doc : JSON.stringify(doc))
    const group = (name: string, members: unknown[]) => ({ formatVersion: 1, kind: "group", name, version: "1-1-1", flavor: "", members })
    const m = (name: string, version = "1-1-1", extra = {}) => ({ name, version, flavor: "", components: [], byDefault: true, ...extra })
    write("bad-version.cgrp", group("group-bad", [m("web", "1.0 -1")]))
    write("bad-flavor.cgrp", group("group-flavor", [m("web", "1.0-1-1", { flavor: "is:  x86_64" })]))
    write("self.cgrp", group("group-self", [m("web", "1.0-1-1"), m("group-self")]))
    write("twice.cgrp", group("group-twice", [m("web", "1.0-1-1"), m("web", "2.0-1-1")]))
    write("empty.cgrp", group("group-empty", []))
    write("extra.cgrp", { ...group("group-extra", [m("web", "1.0-1-1")]), files: [] })
    write("text.cgrp", "not json")
    write("ghost.cgrp", group("group-ghost", [m("web", "1.0-1-1"), m("ghost", "1.0-1-1")]))
    write("a.cgrp", group("group-a", [m("group-b")]))
    write("b.cgrp", group("group-b", [m("group-a")]))
    const { r } = hostRoot(["hostile", dir], false)
    ok(["source", "add", "local", troves, ...r])
    const sync = conary(["source", "sync", ...r])
    await settle()
    expect(sync.code).toBe(1)
    const at = (f: string) => `conary: archive ${path.join(dir, f)}: bad group: `
    expect(sync.stderr.split("\n").filter((l) => l).sort()).toEqual(
      [
        `${at("bad-version.cgrp")}members.0.version: Expected a string matching the pattern ^[A-Za-z0-9][A-Za-z0-9.+~:_-]*$, actual "1.0 -1"`,
        `${at("bad-flavor.cgrp")}members.0.flavor: not in canonical form (write 'is: x86_64')`,
        `${at("self.cgrp")}members.1: the group group-self includes itself`,
        `${at("twice.cgrp")}members.0 and members.1: web[] is a member twice`,
        `${at("empty.cgrp")}members: Expected an array of at least 1 item(s), actual []`,
        `${at("extra.cgrp")}files: is unexpected, expected: "formatVersion" | "kind" | "name" | "version" | "flavor" | "members"`,
        `conary: archive ${path.join(dir, "text.cgrp")}: not valid JSON (Unexpected token 'o', "not json" is not valid JSON)`,
      ].sort(),
    )
    ok(["desired", "add", "group-ghost", "group-a", "group-b/nginx", "group-ghost/nginx", "group-web/extras", ...r])
    const p = conary(["plan", ...r])
    expect(p.code).toBe(1)
    expect(p.stderr).toBe(
      [
        "conary: unresolvable: group-a includes itself: group-a includes group-b includes group-a",
        "conary: unresolvable: group-ghost=1-1-1: member ghost=1.0-1-1 is not offered by any source",
        "conary: unresolvable: group-b/nginx: group-b=1-1-1 has no member nginx",
        "conary: unresolvable: group-ghost/nginx: group-ghost=1-1-1 has no member nginx",
        "conary: unresolvable: group-web/extras: no group group-web is desired (add it, or a group that includes it)",
        "conary: 5 unresolvable; nothing was planned",
        "",
      ].join("\n"),
    )
    expect(conary(["desired", "add", "group-web/extras=1.0", ...r]).stderr.trim()).toBe(
      "conary: bad trove spec 'group-web/extras=1.0': a group's member takes no component, version or flavor (the group pins them): write group-web/extras",
    )
  })

  it.skipIf(mustSkip(hasNginx(), "group promotion through nginx", "nginx is not installed", "sudo sh scripts/test-tools.sh"))(
    "promotes a group with every member from staging to production, and ten roots converge on it to identical trees",
    async () => {
      const www = path.join(work, "www")
      await generateKey(path.join(work, "staging"))
      await generateKey(path.join(work, "prod"))
      ok(["repo", "build", path.join(www, "staging"), troves, "--sign", path.join(work, "staging.key")])
      const nginx = await startNginx(path.join(work, "nginx"), www)
      try {
        // From staging over HTTP, its index checked against staging's key; signed for production.
        const promote = (trust: string) =>
          conary(["repo", "build", path.join(www, "prod"), "--from", `${nginx.url}/staging`, "--trove", "group-web=1-1-1", "--trust", trust, "--sign", path.join(work, "prod.key")])
        expect(promote(path.join(work, "prod.pub")).stderr).toContain("no root of the repository lists the trusted key")
        expect(fs.existsSync(path.join(www, "prod"))).toBe(false)
        const promoted = promote(path.join(work, "staging.pub"))
        expect(promoted.stderr).toBe("")
        expect(promoted.stdout).toContain("11 troves (11 new)")
        // What production's metadata lists (every part, decompressed with the zstd tool).
        const unzstd = (rel: string) => execFileSync("zstd", ["-dc", path.join(www, "prod", rel)]).toString()
        const top = JSON.parse(JSON.parse(unzstd("repo.zst")).signed) as { parts: Array<{ sha256: string }> }
        const listed = top.parts.flatMap(
          (p) => unzstd(`objects/${p.sha256.slice(0, 2)}/${p.sha256.slice(2)}.zst`).trim().split("\n").map((l) => JSON.parse(l) as { name: string; version: string }),
        )
        expect(listed.map((t) => `${t.name}=${t.version}`).sort()).toEqual([
          "base-files=1.0-1-1",
          "extras=1.0-1-1",
          "group-base=1-1-1",
          "group-web=1-1-1",
          "jq=1.6-2.1+deb12u2",
          "libjq1=1.6-2.1+deb12u2",
          "libonig5=6.9.8-1",
          "libweb=1.0-1-1",
          "tool=1.0-1-1",
          "tree=2.1.0-1",
          "web=1.0-1-1",
        ])
        // Every content is there: the ten roots below fetch them all from production.

        // One root set up against production, copied ten times; each converges on the group.
        const template = hostRoot(["prod", `${nginx.url}/prod`, "--trust", path.join(work, "prod.pub")])
        ok(["desired", "add", "group-web", ...template.r])
        const roots = Array.from({ length: 10 }, (_, i) => {
          const root = path.join(work, `host${i}`)
          execFileSync("cp", ["-a", template.root, root])
          return root
        })
        await Promise.all(roots.map((root) => okAsync(["apply", "--root", root])))
        const first = listTree(roots[0]!)
        expect(first["usr/bin/web"]).toBeDefined()
        expect(first["usr/bin/tree"]).toBeDefined()
        for (const root of roots.slice(1)) expect(listTree(root)).toEqual(first)
        expect(JSON.parse(ok(["status", "--json", "--root", roots[9]!])).converged).toBe(true)
      } finally {
        await nginx.stop()
      }
    },
    180_000,
  )
})
