import { createHash } from "node:crypto"
import type { Inventory } from "./inventory.js"

// What both SBOM formats derive from the inventory alone, so two runs on the
// same state agree byte for byte.

/** A UUID (version 5 layout) from the sha256 of the inventory and the format. */
export const contentUuid = (inventory: Inventory, format: string): string => {
  const hash = createHash("sha256").update(format).update("\0").update(inventory.timestamp)
  for (const t of inventory.troves) {
    // One text per trove, files included: a hash update per file costs more than the text.
    hash.update("\0").update(JSON.stringify([t.ref, t.digest, t.license ?? null, t.reason, t.provenance, t.dependsOn, t.files ?? null]))
  }
  const h = hash.digest("hex")
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** The inventory's time, to the second (as SPDX wants it). */
export const documentTime = (inventory: Inventory): string => new Date(inventory.timestamp).toISOString().replace(/\.\d+Z$/, "Z")
