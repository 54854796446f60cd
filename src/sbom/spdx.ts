import { toSpdx } from "../source/license.js"
import { contentUuid, documentTime } from "./document.js"
import type { Inventory } from "./inventory.js"

// SPDX 2.3 JSON, written directly. One package per trove (its package URL as
// an external reference, the archive's sha256 as its checksum, its declared
// licence), DEPENDS_ON relationships for the dependency graph, and with
// --files one file per installed regular file (sha256 only: conary records no
// SHA-1, which SPDX 2.3 asks of files) that its package CONTAINS.
// A licence that is not an SPDX expression becomes a LicenseRef with its words.

const idPart = (text: string) => text.replace(/[^A-Za-z0-9.-]/g, "-")

export const spdx = async (inventory: Inventory, tool: { readonly version: string }): Promise<string> => {
  const uuid = contentUuid(inventory, "spdx-2.3")
  const extracted = new Map<string, { licenseId: string; name: string; extractedText: string }>()
  const declared = async (license: string | undefined): Promise<string> => {
    if (license === undefined) return "NOASSERTION"
    const mapped = await toSpdx(license)
    if ("expression" in mapped) return mapped.expression
    const licenseId = `LicenseRef-${idPart(mapped.name)}`
    extracted.set(licenseId, { licenseId, name: mapped.name, extractedText: `The package names its licence "${mapped.name}" (see its copyright file).` })
    return licenseId
  }
  const ids = new Map(inventory.troves.map((t, i) => [t.ref, `SPDXRef-Package-${i + 1}-${idPart(t.name)}`]))
  const packages: unknown[] = []
  const files: unknown[] = []
  const relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }> = []
  for (const [i, t] of inventory.troves.entries()) {
    const id = ids.get(t.ref)!
    const archive = t.provenance[0]?.archiveSha256
    packages.push({
      SPDXID: id,
      name: t.name,
      versionInfo: t.version,
      downloadLocation: "NOASSERTION",
      filesAnalyzed: false,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: await declared(t.license),
      copyrightText: "NOASSERTION",
      ...(archive ? { checksums: [{ algorithm: "SHA256", checksumValue: archive }] } : {}),
      externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: t.purl }],
      comment: `conary: format ${t.format}, flavor '${t.flavor}', ${t.reason}; digest ${t.digest}` +
        t.provenance.map((p) => `; from ${p.source}: ${p.origin} (sha256 ${p.archiveSha256}${p.signatureKey ? `, signed by ${p.signatureKey}` : ""}, ${p.importedAt})`).join(""),
    })
    relationships.push({ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: id })
    for (const d of t.dependsOn) relationships.push({ spdxElementId: id, relationshipType: "DEPENDS_ON", relatedSpdxElement: ids.get(d)! })
    let n = 0
    for (const [p, sha] of t.files ?? []) {
      const fileId = `SPDXRef-File-${i + 1}-${++n}`
      files.push({ SPDXID: fileId, fileName: `.${p}`, checksums: [{ algorithm: "SHA256", checksumValue: sha }] })
      relationships.push({ spdxElementId: id, relationshipType: "CONTAINS", relatedSpdxElement: fileId })
    }
  }
  const document = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `conary-root-${uuid.slice(0, 8)}`,
    documentNamespace: `urn:uuid:${uuid}`,
    creationInfo: { created: documentTime(inventory), creators: [`Tool: conary-${tool.version}`] },
    packages,
    ...(files.length > 0 ? { files } : {}),
    ...(extracted.size > 0 ? { hasExtractedLicensingInfos: [...extracted.values()].sort((a, b) => (a.licenseId < b.licenseId ? -1 : 1)) } : {}),
    relationships,
  }
  return JSON.stringify(document, null, 2) + "\n"
}
