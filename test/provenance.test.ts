import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildDeb } from "./deb-helpers.js"
import { buildTrove, conary, ok, setupRoot } from "./helpers.js"

// verify --provenance against real sources: a directory of archives, and a
// signed repository served from a directory, each changed under the root.

const FIXTURES = path.resolve(import.meta.dirname, "fixtures/debs")

type Report = {
  clean: boolean
  summary: Record<string, number>
  troves: Array<{ name: string; status: string; checks: Array<{ source: string; status: string; detail: string; currentSha256: string | null }> }>
}
const statuses = (report: Report) => Object.fromEntries(report.troves.map((t) => [t.name, t.status]))

describe("verify --provenance", () => {
  it("catches a republished package and a vanished one in a directory source, and reports unsigned ones", () => {
    const { base, repo, r } = setupRoot()
    for (const f of ["tree_2.1.0-1_amd64.deb", "libonig5_6.9.8-1_amd64.deb"]) fs.copyFileSync(path.join(FIXTURES, f), path.join(repo, f))
    buildTrove(repo, "greet", "1.0-1-1", { "usr/bin/greet": "hi\n" })
    ok(["source", "sync", ...r])
    ok(["provide", "add", "libc6", ...r])
    ok(["desired", "add", "tree", "libonig5", "greet", ...r])
    ok(["apply", ...r])
    const before = JSON.parse(conary(["verify", "--provenance", "--json", ...r]).stdout) as Report
    expect(statuses(before)).toEqual({ greet: "unsigned", libonig5: "unsigned", tree: "unsigned" })

    // Same name and version, other bytes; and an archive that is gone.
    buildDeb(base, path.join(repo, "tree_2.1.0-1_amd64.deb"), { Package: "tree", Version: "2.1.0-1" }, { "usr/bin/tree": "not the real tree" })
    fs.rmSync(path.join(repo, "libonig5_6.9.8-1_amd64.deb"))
    const run = conary(["verify", "--provenance", "--json", ...r])
    expect(run.code).toBe(2)
    const after = JSON.parse(run.stdout) as Report
    expect(after.clean).toBe(false)
    expect(statuses(after)).toEqual({ greet: "unsigned", libonig5: "vanished", tree: "republished" })
    expect(after.summary).toMatchObject({ troves: 3, verified: 0, unsigned: 1, vanished: 1, republished: 1 })
    const shown = JSON.parse(ok(["show", "tree", "--json", ...r]))
    const tree = after.troves.find((t) => t.name === "tree")!.checks[0]!
    expect(tree.currentSha256).not.toBe(shown.provenance[0].archiveSha256)
    expect(tree.detail).toContain("other bytes under the same name and version")

    const human = conary(["verify", "--provenance", ...r])
    expect(human.code).toBe(2)
    expect(human.stdout).toMatch(/^republished +tree=2\.1\.0-1\[is: x86_64\] +local: .*tree_2\.1\.0-1_amd64\.deb has other bytes/m)
    expect(human.stdout).toMatch(/^vanished +libonig5=6\.9\.8-1\[is: x86_64\] +local: .*libonig5_6\.9\.8-1_amd64\.deb is gone$/m)
    expect(human.stdout).toContain("Checked the provenance of 3 troves: 1 unsigned, 1 vanished, 1 republished.")
    // One trove by name; an unknown name is an error.
    expect(JSON.parse(conary(["verify", "--provenance", "--json", "greet", ...r]).stdout).summary.troves).toBe(1)
    expect(conary(["verify", "--provenance", "nosuch", ...r]).stderr).toBe("conary: no installed trove named nosuch\n")
    expect(conary(["verify", "--provenance", "--full", ...r])).toMatchObject({ code: 1, stderr: "conary: verify --provenance checks troves against their sources, not files: drop --full and --unowned\n" })
  }, 90_000)

  it("verifies troves of a signed repository; catches a republished trove, another key, a vanished and an unreachable source", () => {
    const { base, root, r } = setupRoot()
    const inputs = path.join(base, "inputs")
    const served = path.join(base, "served")
    fs.mkdirSync(inputs)
    ok(["key", "generate", path.join(base, "fleet")])
    ok(["key", "generate", path.join(base, "rogue")])
    buildTrove(inputs, "greet", "1.0-1-1", { "usr/bin/greet": "hi\n" })
    buildTrove(inputs, "other", "1.0-1-1", { "usr/bin/other": "other\n" })
    ok(["repo", "build", served, inputs, "--sign", path.join(base, "fleet.key")])
    ok(["source", "add", "web", served, "--trust", path.join(base, "fleet.pub"), ...r])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "greet", "other", ...r])
    ok(["apply", ...r])
    const clean = conary(["verify", "--provenance", ...r])
    expect(clean.stdout).toBe("Checked the provenance of 2 troves: 2 verified.\n")
    expect(clean.code).toBe(0)
    expect(conary(["verify", "--provenance", "--quiet", ...r]).stdout).toBe("")

    // The repository is published again: greet under the same version with other bytes, `other` dropped.
    fs.rmSync(served, { recursive: true })
    fs.rmSync(inputs, { recursive: true })
    fs.mkdirSync(inputs)
    buildTrove(inputs, "greet", "1.0-1-1", { "usr/bin/greet": "hi, republished\n" })
    ok(["repo", "build", served, inputs, "--sign", path.join(base, "fleet.key")])
    const republished = conary(["verify", "--provenance", "--json", ...r])
    expect(republished.code).toBe(2)
    expect(statuses(JSON.parse(republished.stdout))).toEqual({ greet: "republished", other: "vanished" })

    // Published anew by a key the source does not trust (a repository refuses a foreign key, so a new one).
    fs.rmSync(served, { recursive: true })
    ok(["repo", "build", served, inputs, "--sign", path.join(base, "rogue.key")])
    const rogue = JSON.parse(conary(["verify", "--provenance", "--json", ...r]).stdout) as Report
    expect(statuses(rogue)).toEqual({ greet: "untrusted", other: "untrusted" })
    expect(rogue.troves[0]!.checks[0]!.detail).toMatch(/the metadata signature does not verify against the trusted keys/)

    // The repository's directory is gone; then the source points where nothing answers.
    fs.rmSync(served, { recursive: true })
    expect(statuses(JSON.parse(conary(["verify", "--provenance", "--json", ...r]).stdout))).toEqual({ greet: "vanished", other: "vanished" })
    ok(["source", "remove", "web", ...r])
    expect(statuses(JSON.parse(conary(["verify", "--provenance", "--json", ...r]).stdout))).toEqual({ greet: "vanished", other: "vanished" })
    ok(["source", "add", "web", "http://127.0.0.1:9/repo", "--trust", path.join(base, "fleet.pub"), ...r])
    const offline = conary(["verify", "--provenance", ...r])
    expect(offline.code).toBe(2)
    expect(offline.stderr).toBe("")
    expect(offline.stdout).toMatch(/^unreachable +greet=1\.0-1-1 +web: source web: .*127\.0\.0\.1:9/m)
    expect(fs.existsSync(root)).toBe(true)
  }, 90_000)
})
