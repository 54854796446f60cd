import { ComponentType, HashAlgorithm } from "@cyclonedx/cyclonedx-library/Enums"
import * as Models from "@cyclonedx/cyclonedx-library/Models"
import { JSON as Json } from "@cyclonedx/cyclonedx-library/Serialize"
import { Spec1dot6 } from "@cyclonedx/cyclonedx-library/Spec"
import { toSpdx } from "../source/license.js"
import { contentUuid, documentTime } from "./document.js"
import type { Inventory, SbomTrove } from "./inventory.js"

// CycloneDX 1.6 JSON, built with the CycloneDX library. Each trove is a
// library component (bom-ref = its package URL) with its licence, the sha256
// of its archive, conary's facts as `conary:*` properties (flavor, format,
// why installed, each provenance record as `show` gives it), its files as
// nested file components (--files), and the dependency graph.

const properties = (t: SbomTrove): Models.Property[] => [
  new Models.Property("conary:digest", t.digest),
  new Models.Property("conary:flavor", t.flavor),
  new Models.Property("conary:format", t.format),
  new Models.Property("conary:reason", t.reason),
  ...t.provenance.flatMap((p, i) => [
    new Models.Property(`conary:provenance:${i}:source`, p.source),
    new Models.Property(`conary:provenance:${i}:origin`, p.origin),
    new Models.Property(`conary:provenance:${i}:archiveSha256`, p.archiveSha256),
    ...(p.signatureKey === null ? [] : [new Models.Property(`conary:provenance:${i}:signatureKey`, p.signatureKey)]),
    new Models.Property(`conary:provenance:${i}:importedAt`, p.importedAt),
  ]),
]

export const cyclonedx = async (inventory: Inventory, tool: { readonly version: string }): Promise<string> => {
  const bom = new Models.Bom({ serialNumber: `urn:uuid:${contentUuid(inventory, "cyclonedx-1.6")}` })
  bom.metadata.timestamp = new Date(documentTime(inventory))
  bom.metadata.tools.components.add(new Models.Component(ComponentType.Application, "conary", { version: tool.version }))
  const byRef = new Map<string, Models.Component>()
  for (const t of inventory.troves) {
    const license = t.license === undefined ? undefined : await toSpdx(t.license)
    const hashes = new Models.HashDictionary()
    const archive = t.provenance[0]?.archiveSha256
    if (archive) hashes.set(HashAlgorithm["SHA-256"], archive)
    const component = new Models.Component(ComponentType.Library, t.name, {
      bomRef: t.ref,
      version: t.version,
      purl: t.purl,
      hashes,
      licenses: new Models.LicenseRepository(
        license === undefined ? [] : ["expression" in license ? new Models.LicenseExpression(license.expression) : new Models.NamedLicense(license.name)],
      ),
      properties: new Models.PropertyRepository(properties(t)),
    })
    byRef.set(t.ref, component)
    bom.components.add(component)
  }
  for (const t of inventory.troves) {
    const component = byRef.get(t.ref)!
    for (const d of t.dependsOn) component.dependencies.add(byRef.get(d)!.bomRef)
  }
  const normalized = new Json.Normalize.Factory(Spec1dot6).makeForBom().normalize(bom, { sortLists: true })
  // Files are added to the normalized document as plain data: as library
  // models, 200,000 of them took ten times as long to sort and normalize.
  // Each has a set bom-ref (the trove's ref and the path, as a purl subpath).
  const files = new Map(inventory.troves.map((t) => [t.ref, t.files]))
  for (const c of normalized.components ?? []) {
    const list = files.get(c["bom-ref"] ?? "")
    if (list && list.length > 0)
      c.components = list.map(([p, sha]) => ({ type: ComponentType.File, name: p, "bom-ref": `${c["bom-ref"]}#${p.slice(1)}`, hashes: [{ alg: HashAlgorithm["SHA-256"], content: sha }] }))
  }
  return JSON.stringify(normalized, null, 2) + "\n"
}
