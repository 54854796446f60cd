import * as fs from "node:fs"
import * as path from "node:path"
import { Version } from "@cyclonedx/cyclonedx-library/Spec"
import { JsonStrictValidator } from "@cyclonedx/cyclonedx-library/Validation"
import { Ajv } from "ajv"
import formats from "ajv-formats"
import { PackageURL } from "packageurl-js"
import { beforeAll, describe, expect, it } from "vitest"
import { purlOf } from "../src/sbom/purl.js"
import { buildTrove, conary, ok, sha256 } from "./helpers.js"
import * as os from "node:os"

// SBOMs of a root with .deb fixtures and a native trove, checked against the
// official schemas and against what `show` says.

const FIXTURES = path.resolve(import.meta.dirname, "fixtures/debs")
const SPDX_SCHEMA = path.resolve(import.meta.dirname, "fixtures/spdx-2.3.schema.json")

let base: string
let root: string
let r: string[]

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "conary-sbom-"))
  root = path.join(base, "root")
  const repo = path.join(base, "repo")
  fs.mkdirSync(root)
  fs.mkdirSync(repo)
  r = ["--root", root]
  ok(["init", ...r])
  const dir = path.join(base, "greet-tree")
  fs.mkdirSync(path.join(dir, "usr/bin"), { recursive: true })
  fs.writeFileSync(path.join(dir, "usr/bin/greet"), "#!/bin/sh\necho hi\n")
  ok(["trove", "build", dir, "--name", "greet", "--trove-version", "1.0-1-1", "--requires", "jq (>= 1.6)", "--license", "MIT OR Apache-2.0", "--out", path.join(repo, "greet.ctrv")])
  buildTrove(repo, "odd", "2.0-1-1", { "etc/odd.conf": "x=1\n" }, { flavor: "ssl", requires: ["file: /usr/bin/tree"] })
  ok(["source", "add", "local", repo, ...r])
  ok(["source", "add", "debs", FIXTURES, ...r])
  ok(["source", "sync", ...r])
  ok(["provide", "add", "libc6", "libncursesw6", "libtinfo6", ...r])
  ok(["flavor", "add", "ssl", ...r])
  ok(["desired", "add", "greet", "nano", "tree", "hello", "odd", ...r])
  ok(["apply", ...r])
  return () => fs.rmSync(base, { recursive: true, force: true })
}, 120_000)

type Cdx = {
  serialNumber: string
  metadata: { timestamp: string }
  components: Array<{
    name: string
    version: string
    purl: string
    "bom-ref": string
    hashes?: Array<{ alg: string; content: string }>
    licenses?: Array<{ expression?: string; license?: { name?: string; id?: string } }>
    properties: Array<{ name: string; value: string }>
    components?: Array<{ name: string; hashes: Array<{ content: string }> }>
  }>
  dependencies: Array<{ ref: string; dependsOn?: string[] }>
}

const JQ = "pkg:deb/debian/jq@1.6-2.1%2Bdeb12u2?arch=amd64"

describe("conary sbom", () => {
  it("writes CycloneDX 1.6 that the official schema accepts, with purls, licences, hashes and the dependency graph as show gives them", async () => {
    const text = ok(["sbom", ...r])
    expect(await new JsonStrictValidator(Version.v1dot6).validate(text)).toBeNull()
    const bom = JSON.parse(text) as Cdx
    const byName = new Map(bom.components.map((c) => [c.name, c]))
    expect([...byName.keys()].sort()).toEqual(["greet", "hello", "jq", "libjq1", "libonig5", "nano", "odd", "tree"])
    const jq = byName.get("jq")!
    expect(jq.purl).toBe(JQ)
    expect(PackageURL.fromString(jq.purl).version).toBe("1.6-2.1+deb12u2")
    expect(jq.licenses).toEqual([{ expression: "MIT" }])
    expect(byName.get("tree")!.licenses).toEqual([{ expression: "GPL-2.0-or-later" }])
    expect(byName.get("hello")!.licenses).toBeUndefined()
    const greet = byName.get("greet")!
    const greetArchive = sha256(fs.readFileSync(path.join(base, "repo", "greet.ctrv")))
    expect(greet.purl).toBe(`pkg:generic/greet@1.0-1-1?checksum=sha256%3A${greetArchive}`)
    expect(greet.licenses).toEqual([{ expression: "MIT OR Apache-2.0" }])
    expect(byName.get("odd")!.purl).toMatch(/^pkg:generic\/odd@2.0-1-1\?checksum=sha256%3A[0-9a-f]{64}&flavor=ssl$/)
    // The dependency graph: which installed trove met each requirement.
    const deps = new Map(bom.dependencies.map((d) => [d.ref, d.dependsOn ?? []]))
    expect(deps.get(greet["bom-ref"])).toEqual([JQ])
    expect(deps.get(JQ)).toEqual(["pkg:deb/debian/libjq1@1.6-2.1%2Bdeb12u2?arch=amd64"])
    expect(deps.get("pkg:deb/debian/nano@7.2-1%2Bdeb12u1?arch=amd64")).toEqual([]) // its Depends are the base system's
    expect(deps.get(byName.get("odd")!["bom-ref"])).toEqual(["pkg:deb/debian/tree@2.1.0-1?arch=amd64"]) // file: met by the owner
    // Agrees with show --json (a .deb, a native trove and one with a flavor).
    for (const c of bom.components.filter((x) => ["jq", "greet", "odd"].includes(x.name))) {
      const shown = JSON.parse(ok(["show", c.name, "--json", ...r]))
      expect(c.version).toBe(shown.version)
      const prop = (n: string) => c.properties.find((p) => p.name === n)?.value
      expect(prop("conary:flavor")).toBe(shown.flavor)
      expect(c.hashes).toEqual([{ alg: "SHA-256", content: shown.provenance[0].archiveSha256 }])
      shown.provenance.forEach((p: Record<string, string | null>, i: number) => {
        for (const k of ["source", "origin", "archiveSha256", "importedAt"]) expect(prop(`conary:provenance:${i}:${k}`)).toBe(p[k])
      })
      expect(shown.license).toBe({ jq: "MIT", greet: "MIT OR Apache-2.0", odd: null }[c.name])
    }
    expect(greet.hashes![0]!.content).toBe(greetArchive)
    expect(ok(["show", "greet", ...r])).toContain("License:     MIT OR Apache-2.0")
  }, 60_000)

  it("lists every installed file's sha256 with --files; two runs agree byte for byte", async () => {
    const text = ok(["sbom", "--files", ...r])
    expect(ok(["sbom", "--files", ...r])).toBe(text)
    expect(await new JsonStrictValidator(Version.v1dot6).validate(text)).toBeNull()
    const bom = JSON.parse(text) as Cdx
    for (const name of ["nano", "greet"]) {
      const shown = JSON.parse(ok(["show", name, "--json", "--files", ...r])).files.filter((f: { kind: string }) => f.kind === "file")
      const listed = bom.components.find((c) => c.name === name)!.components!
      expect(listed.map((f) => [f.name, f.hashes[0]!.content]).sort()).toEqual(shown.map((f: { path: string; sha256: string }) => [f.path, f.sha256]).sort())
    }
    const onDisk = fs.readFileSync(path.join(root, "usr/bin/greet"))
    expect(bom.components.find((c) => c.name === "greet")!.components![0]!.hashes[0]!.content).toBe(sha256(onDisk))
    // The serial number and the time come from the content and the last generation, not the clock.
    const generation = JSON.parse(ok(["history", "--json", ...r])).generations.at(-1).createdAt
    expect(bom.metadata.timestamp).toBe(new Date(generation).toISOString().replace(/\.\d+Z$/, ".000Z"))
    expect(bom.serialNumber).not.toBe((JSON.parse(ok(["sbom", ...r])) as Cdx).serialNumber)
  }, 60_000)

  it("writes SPDX 2.3 JSON that its schema accepts, the same facts, files and relationships", () => {
    const out = path.join(base, "root.spdx.json")
    ok(["sbom", "--format", "spdx", "--files", "--out", out, ...r])
    const text = fs.readFileSync(out, "utf8")
    expect(ok(["sbom", "--format", "spdx", "--files", ...r])).toBe(text)
    const ajv = new Ajv({ strict: false, allErrors: true })
    formats.default(ajv)
    const validate = ajv.compile(JSON.parse(fs.readFileSync(SPDX_SCHEMA, "utf8")))
    const doc = JSON.parse(text)
    expect(validate(doc) ? [] : validate.errors).toEqual([])
    const pkg = (name: string) => doc.packages.find((p: { name: string }) => p.name === name)
    expect(pkg("jq").externalRefs[0].referenceLocator).toBe(JQ)
    expect(pkg("tree").licenseDeclared).toBe("GPL-2.0-or-later")
    expect(pkg("hello").licenseDeclared).toBe("NOASSERTION")
    expect(pkg("greet").licenseDeclared).toBe("MIT OR Apache-2.0")
    const shown = JSON.parse(ok(["show", "jq", "--json", ...r]))
    expect(pkg("jq").checksums).toEqual([{ algorithm: "SHA256", checksumValue: shown.provenance[0].archiveSha256 }])
    const rel = (type: string, from: string) =>
      doc.relationships.filter((x: { relationshipType: string; spdxElementId: string }) => x.relationshipType === type && x.spdxElementId === from).map((x: { relatedSpdxElement: string }) => x.relatedSpdxElement)
    expect(rel("DEPENDS_ON", pkg("jq").SPDXID)).toEqual([pkg("libjq1").SPDXID])
    expect(rel("DESCRIBES", "SPDXRef-DOCUMENT")).toHaveLength(doc.packages.length)
    const nanoFiles = rel("CONTAINS", pkg("nano").SPDXID)
    const installed = JSON.parse(ok(["show", "nano", "--json", "--files", ...r])).files.filter((f: { kind: string }) => f.kind === "file")
    expect(nanoFiles).toHaveLength(installed.length)
    const nanorc = doc.files.find((f: { fileName: string }) => f.fileName === "./etc/nanorc")
    expect(nanorc.checksums[0].checksumValue).toBe(installed.find((f: { path: string }) => f.path === "/etc/nanorc").sha256)
  }, 60_000)

  it("refuses an --out that is not a regular file, writing nothing", () => {
    const run = conary(["sbom", "--out", base, ...r])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^conary: .*exists and is not a regular file/)
    expect(conary(["sbom", "--format", "xml", ...r]).code).toBe(1)
  })

  it("maps each package format to its package URL", () => {
    expect(purlOf({ name: "jq", version: "1.6-2.1+deb12u2", flavor: "is: x86_64", format: "deb" })).toBe(JQ)
    expect(purlOf({ name: "base-files", version: "1:12.4", flavor: "", format: "deb" })).toBe("pkg:deb/debian/base-files@1:12.4?arch=all")
    expect(purlOf({ name: "bash", version: "5.2.037-1", flavor: "is: x86_64", format: "arch" })).toBe("pkg:alpm/arch/bash@5.2.037-1?arch=x86_64")
    expect(purlOf({ name: "lib32-z", version: "1.3-1", flavor: "is: x86", format: "arch" })).toBe("pkg:alpm/arch/lib32-z@1.3-1?arch=i686")
    expect(purlOf({ name: "tzdata", version: "2024a-1", flavor: "", format: "arch" })).toBe("pkg:alpm/arch/tzdata@2024a-1?arch=any")
    expect(purlOf({ name: "bash", version: "5.1-2.fc36", flavor: "", format: "rpm" })).toBe("pkg:rpm/bash@5.1-2.fc36?arch=noarch")
    expect(purlOf({ name: "glibc", version: "2.39-1.fc40", flavor: "is: x86", format: "rpm" })).toBe("pkg:rpm/glibc@2.39-1.fc40?arch=i686")
    expect(purlOf({ name: "greet", version: "1.0-1-1", flavor: "", format: "native" })).toBe("pkg:generic/greet@1.0-1-1")
    expect(purlOf({ name: "greet", version: "1.0-1-1", flavor: "ssl is: x86_64", format: "native", archiveSha256: "ab" })).toBe(
      "pkg:generic/greet@1.0-1-1?checksum=sha256%3Aab&flavor=ssl%20is%3A%20x86_64",
    )
  })
})
