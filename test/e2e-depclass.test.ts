import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildLibs, hasBinutils } from "./elf-fixtures.js"
import { conary, mustSkip, ok, setupRoot } from "./helpers.js"

// Dependency classes through the real CLI: trove build finds the soname deps
// of the ELF files it packs, show lists them by class, plan names the class of
// what it cannot resolve until a provide or a trove satisfies it, and a file:
// dependency is met by the trove owning the path on a merged-/usr root.

/** Packs `files` (path in the trove -> file to copy) with the real CLI; returns its JSON summary. */
const build = (base: string, out: string, name: string, files: Record<string, string>, extra: string[] = []) => {
  const dir = fs.mkdtempSync(path.join(base, `tree-${name}-`))
  for (const [rel, from] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
    fs.copyFileSync(from, path.join(dir, rel))
  }
  const json = ok(["trove", "build", dir, "--name", name, "--trove-version", "1.0-1-1", "--out", path.join(out, `${name}.ctrv`), "--json", ...extra])
  return JSON.parse(json) as { requires: string[]; provides: string[] }
}

describe("dependency classes end to end", () => {
  it.skipIf(mustSkip(hasBinutils, "dependency classes e2e", "binutils (as, ld) is missing", "sh scripts/test-tools.sh (as root)"))(
    "builds soname deps from ELF files, shows them by class, and resolves file: and soname: deps or names their class",
    () => {
      const { base, root, repo, r } = setupRoot()
      // A merged-/usr root: /bin/sh is /usr/bin/sh.
      fs.mkdirSync(path.join(root, "usr/bin"), { recursive: true })
      fs.symlinkSync("usr/bin", path.join(root, "bin"))
      const { bar, foo } = buildLibs(base, 64)
      const sh = path.join(base, "sh")
      fs.writeFileSync(sh, "#!/bin/true\n")
      const later = path.join(base, "later")
      fs.mkdirSync(later)

      const app = build(base, repo, "app", { "usr/lib/libfoo.so.1": foo }, ["--requires", "file:/bin/sh"])
      expect(app.requires).toEqual(["file: /bin/sh", "soname: libbar.so.2()(64bit)", "soname: libbar.so.2(BAR_1)(64bit)"])
      expect(app.provides).toEqual(["soname: libfoo.so.1()(64bit)"])
      // A library's own soname satisfies the trove's other files; --no-auto-deps adds nothing.
      const both = build(base, later, "both", { "usr/lib/libfoo.so.1": foo, "usr/lib/libbar.so.2": bar })
      expect(both.requires).toEqual([])
      expect(both.provides).toEqual(["soname: libbar.so.2()(64bit)", "soname: libbar.so.2(BAR_1)(64bit)", "soname: libfoo.so.1()(64bit)"])
      expect(build(base, later, "plain", { "usr/lib/libfoo.so.1": foo }, ["--no-auto-deps"])).toMatchObject({ requires: [], provides: [] })

      ok(["source", "sync", ...r])
      ok(["desired", "add", "app", ...r])
      const shown = ok(["show", "app", ...r])
      expect(shown).not.toMatch(/^(Requires|Provides):/m)
      expect(shown).toMatch(/^Requires file:\s+\/bin\/sh$/m)
      expect(shown).toMatch(/^Requires soname:\s+libbar\.so\.2\(\)\(64bit\)\n\s+libbar\.so\.2\(BAR_1\)\(64bit\)$/m)
      expect(shown).toMatch(/^Provides soname:\s+libfoo\.so\.1\(\)\(64bit\)$/m)
      expect(JSON.parse(ok(["show", "app", "--json", ...r]))).toMatchObject({
        requiresByClass: { name: [], file: ["file: /bin/sh"], soname: ["soname: libbar.so.2()(64bit)", "soname: libbar.so.2(BAR_1)(64bit)"], mixed: [] },
        providesByClass: { soname: ["soname: libfoo.so.1()(64bit)"] },
      })

      const unresolved = conary(["plan", ...r])
      expect(unresolved.code).toBe(1)
      const lines = unresolved.stderr.split("\n")
      expect(lines).toContain("conary: unresolvable: app=1.0-1-1 needs file: /bin/sh, which no trove owns and no provide gives")
      expect(lines).toContain("conary: unresolvable: app=1.0-1-1 needs soname: libbar.so.2()(64bit), which no trove provides")

      // The base system provides them: written loosely, stored canonically.
      expect(conary(["provide", "add", "file: bin/sh", ...r]).stderr).toMatch(/^conary: bad provide 'file: bin\/sh': /)
      ok(["provide", "add", "file:/bin/sh", "soname: libbar.so.2()(64bit)", "soname:libbar.so.2(BAR_1)(64bit)", ...r])
      expect(ok(["provide", "list", ...r]).split("\n")).toEqual(
        expect.arrayContaining(["file: /bin/sh", "soname: libbar.so.2()(64bit)", "soname: libbar.so.2(BAR_1)(64bit)"]),
      )
      expect(ok(["plan", ...r])).toMatch(/Plan: 1 to install/)

      // Troves satisfy them instead: one shipping /usr/bin/sh owns /bin/sh on this root.
      ok(["provide", "remove", "file: /bin/sh", "soname: libbar.so.2()(64bit)", "soname: libbar.so.2(BAR_1)(64bit)", ...r])
      build(base, repo, "dash", { "usr/bin/sh": sh })
      build(base, repo, "libbar", { "usr/lib/libbar.so.2": bar })
      ok(["source", "sync", ...r])
      ok(["apply", ...r])
      const installed = JSON.parse(ok(["list", "--json", ...r])).troves.map((t: { name: string; reason: string }) => `${t.name} ${t.reason}`)
      expect(installed).toEqual(["app explicit", "dash dependency", "libbar dependency"])
      expect(fs.readFileSync(path.join(root, "bin/sh"), "utf8")).toBe("#!/bin/true\n")
    },
  )
})
