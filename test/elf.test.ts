import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { elfDeps } from "../src/source/elf.js"
import { parseDep } from "../src/model/trove.js"
import { buildLibs, hasBinutils } from "./elf-fixtures.js"
import { mustSkip } from "./helpers.js"

// The ELF reader against rpm's own elfdeps and binutils' readelf, on real
// files: the host's (read only) and shared objects built here with as and ld.

const ELFDEPS = "/usr/lib/rpm/elfdeps"
const hasElfdeps = fs.existsSync(ELFDEPS)
const skipBuild = mustSkip(hasBinutils, "ELF fixtures", "binutils (as, ld, readelf) is missing", "sh scripts/test-tools.sh (as root)")

/** The host's own ELF files: programs and libraries that every Debian has. */
const hostFiles = (): string[] => {
  const libs = ["libz.so.1", "libc.so.6", "libm.so.6", "libpthread.so.0", "libstdc++.so.6"].flatMap((l) =>
    ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64"].map((d) => path.join(d, l)),
  )
  return [...new Set([...libs, "/usr/bin/true", "/usr/bin/ls", "/usr/bin/bash", "/usr/bin/sh"].filter((f) => fs.existsSync(f)).map((f) => fs.realpathSync(f)))]
}

let dir: string
let built: string[] = []
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "conary-elf-"))
  if (hasBinutils) built = [32, 64].flatMap((bits) => Object.values(buildLibs(dir, bits as 32 | 64)))
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const depsOf = (file: string) => elfDeps(fs.readFileSync(file), fs.statSync(file).mode)

describe("ELF soname dependencies", () => {
  it.skipIf(mustSkip(hasElfdeps, "elfdeps comparison", "rpm's elfdeps is missing", "apt-get install rpm"))(
    "are what rpm's elfdeps finds, for the host's programs and libraries and for 32- and 64-bit objects built here",
    () => {
      const files = [...hostFiles(), ...built]
      expect(files.length).toBeGreaterThan(4)
      for (const file of files) {
        // rpm also invents a soname from the file name when there is none; conary provides DT_SONAME only.
        const ref = (flag: string) =>
          [...new Set(spawnSync(ELFDEPS, [flag, "--no-fake-soname", file], { encoding: "utf8" }).stdout.split("\n"))]
            .filter((l) => l !== "" && !l.startsWith("rtld("))
            .sort()
        const ours = depsOf(file)
        expect(ours, file).toBeDefined()
        expect([...ours!.provides].sort(), file).toEqual(ref("--provides"))
        expect([...ours!.requires].sort(), file).toEqual(ref("--requires"))
      }
    },
  )

  it.skipIf(skipBuild)("name DT_SONAME and DT_NEEDED as readelf -d does, marked by the ELF class, with symbol versions", () => {
    for (const file of [...hostFiles().slice(0, 2), ...built]) {
      const dynamic = spawnSync("readelf", ["-dW", file], { encoding: "utf8" }).stdout
      const names = (tag: string) => [...dynamic.matchAll(new RegExp(`\\(${tag}\\)\\s+.*\\[(.*)\\]`, "g"))].map((m) => m[1]!)
      const ours = depsOf(file)!
      // Without a symbol version: `libz.so.1()(64bit)`, or `libz.so.1` for a 32-bit object.
      const bare = (deps: ReadonlyArray<string>) => deps.filter((d) => !d.includes("(") || d.endsWith("()(64bit)")).map((d) => d.replace(/\(\)\(64bit\)$/, ""))
      expect(bare(ours.provides), file).toEqual(names("SONAME"))
      expect(bare(ours.requires).sort(), file).toEqual(names("NEEDED").sort())
    }
    const [bar32, foo32, bar64, foo64] = built.map(depsOf)
    expect(bar32).toEqual({ provides: ["libbar.so.2", "libbar.so.2(BAR_1)"], requires: [] })
    expect(foo32).toEqual({ provides: ["libfoo.so.1"], requires: ["libbar.so.2", "libbar.so.2(BAR_1)"] })
    expect(bar64).toEqual({ provides: ["libbar.so.2()(64bit)", "libbar.so.2(BAR_1)(64bit)"], requires: [] })
    expect(foo64).toEqual({ provides: ["libfoo.so.1()(64bit)"], requires: ["libbar.so.2()(64bit)", "libbar.so.2(BAR_1)(64bit)"] })
    // A library nothing can run or load needs nothing; one that can be loaded does, whatever its mode.
    expect(elfDeps(fs.readFileSync(built[1]!), 0o644)?.requires).toEqual(["libbar.so.2", "libbar.so.2(BAR_1)"])
  })

  it.skipIf(skipBuild)("are nothing for what is not a well-formed ELF object, however it is cut or corrupted", () => {
    const samples = [fs.readFileSync(built[3]!), fs.readFileSync("/usr/bin/true")]
    expect(elfDeps(Buffer.alloc(0), 0o755)).toBeUndefined()
    expect(elfDeps(Buffer.from("#!/bin/sh\necho hi\n"), 0o755)).toBeUndefined()
    for (const sample of samples) {
      // Every cut of the file: a valid result or none, never an exception or a dependency that does not parse.
      for (let n = 0; n < sample.length; n += Math.max(1, Math.floor(sample.length / 400))) check(sample.subarray(0, n))
      // Section headers claiming more entries than the file holds (extended numbering too).
      const huge = Buffer.from(sample)
      huge.writeUInt16LE(0, 0x3c)
      huge.writeBigUInt64LE(0xffffffffn, Number(huge.readBigUInt64LE(0x28)) + 32)
      expect(elfDeps(huge, 0o755)).toBeUndefined()
    }
    fc.assert(
      fc.property(
        fc.constantFrom(...samples),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (sample, flips) => {
          const bytes = Buffer.from(sample)
          for (const [at, value] of flips) bytes[at % Math.min(bytes.length, 8192)] = value
          check(bytes)
        },
      ),
      { numRuns: 500 },
    )
  })
})

const check = (bytes: Uint8Array) => {
  const deps = elfDeps(bytes, 0o755)
  if (deps === undefined) return
  for (const d of [...deps.provides, ...deps.requires]) expect(parseDep(`soname: ${d}`)?.class).toBe("soname")
}
