import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { readDeb } from "../src/source/deb.js"
import { dep5License } from "../src/source/copyright.js"
import { buildDeb } from "./deb-helpers.js"
import { conary, ok, tempDir, writeTree } from "./helpers.js"
import { readNativeManifest } from "../src/source/native.js"
import { toSpdx } from "../src/source/license.js"

const FIXTURES = path.resolve(import.meta.dirname, "fixtures/debs")

const DEP5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n"

describe("licences packages declare", () => {
  it("reads a .deb's licence from its machine-readable copyright file; a free-form one gives none", async () => {
    const licenses: Record<string, string | undefined> = {}
    for (const f of fs.readdirSync(FIXTURES).sort()) {
      const t = await readDeb(path.join(FIXTURES, f))
      licenses[t.name] = t.license
    }
    expect(licenses).toEqual({ hello: undefined, jq: "MIT", libjq1: "MIT", libonig5: "BSD-2-clause", nano: "GPL-3+", tree: "GPL-2+" })
  })

  it("takes the Files: * paragraph's License, else every License named; only DEP-5", () => {
    expect(dep5License(DEP5 + "Files: src/*\nCopyright: a\nLicense: GPL-2+\n\nFiles: *\nCopyright: b\nLicense: MIT or Apache-2.0\n text\n .\n more\n")).toBe("MIT or Apache-2.0")
    expect(dep5License(DEP5 + "Files: a.c\nLicense: Zlib\n\nFiles: b.c\nLicense: GPL-2+ with OpenSSL exception\n\nFiles: c.c\nLicense: Zlib\n")).toBe(
      "(GPL-2+ with OpenSSL exception) and Zlib",
    )
    expect(dep5License(DEP5 + "Files: *\r\nLicense: ISC\r\n")).toBe("ISC")
    expect(dep5License(DEP5 + "Comment: no files paragraphs\n")).toBeUndefined()
    expect(dep5License("Files: *\nLicense: MIT\n")).toBeUndefined() // no Format header: not machine-readable
    expect(dep5License("")).toBeUndefined()
    expect(dep5License("\0\xff garbage")).toBeUndefined()
  })

  it("ignores a copyright file that is too long, or another package's", async () => {
    const work = tempDir()
    const long = DEP5 + "Files: *\nLicense: MIT\n" + " x\n".repeat(600_000)
    const t1 = await readDeb(buildDeb(work, path.join(work, "a.deb"), { Package: "pa", Version: "1" }, { "usr/share/doc/pa/copyright": long }, { compression: "gzip" }))
    expect(t1.license).toBeUndefined()
    const other = DEP5 + "Files: *\nLicense: MIT\n"
    const t2 = await readDeb(buildDeb(work, path.join(work, "b.deb"), { Package: "pb", Version: "1" }, { "usr/share/doc/pc/copyright": other }, { compression: "gzip" }))
    expect(t2.license).toBeUndefined()
    const t3 = await readDeb(buildDeb(work, path.join(work, "c.deb"), { Package: "pc", Version: "1" }, { "usr/share/doc/pc/copyright": other }, { compression: "gzip" }))
    expect(t3.license).toBe("MIT")
  })

  it("records trove build --license in the manifest, in canonical SPDX form; refuses what is not SPDX", async () => {
    const work = tempDir()
    const dir = writeTree(path.join(work, "t"), { "usr/bin/t": "t" })
    const out = path.join(work, "t.ctrv")
    ok(["trove", "build", dir, "--name", "t", "--trove-version", "1-1-1", "--license", "MIT or (Apache-2.0 and ISC)", "--out", out])
    expect((await readNativeManifest(out)).license).toBe("MIT OR Apache-2.0 AND ISC")
    const bad = conary(["trove", "build", dir, "--name", "t", "--trove-version", "1-1-1", "--license", "GPL-2+", "--out", path.join(work, "u.ctrv")])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toBe("conary: --license 'GPL-2+' is not an SPDX licence expression (such as MIT, GPL-2.0-or-later, Apache-2.0 OR MIT)\n")
    expect(fs.existsSync(path.join(work, "u.ctrv"))).toBe(false)
  })

  it("maps Debian short names to SPDX where certain, and keeps other words as a name", async () => {
    expect(await toSpdx("GPL-2+")).toEqual({ expression: "GPL-2.0-or-later" })
    expect(await toSpdx("LGPL-2.1 and BSD-3-clause")).toEqual({ expression: "LGPL-2.1-only AND BSD-3-Clause" })
    expect(await toSpdx("Expat or GPL-3+")).toEqual({ expression: "MIT OR GPL-3.0-or-later" })
    expect(await toSpdx("Apache-2.0 OR MIT")).toEqual({ expression: "Apache-2.0 OR MIT" })
    expect(await toSpdx("GPL-2+ with OpenSSL exception")).toEqual({ name: "GPL-2+ with OpenSSL exception" })
    expect(await toSpdx("public-domain")).toEqual({ name: "public-domain" })
  })
})
