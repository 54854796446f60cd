import type { Db } from "../db/connection.js"
import { cyclonedx } from "./cyclonedx.js"
import { takeInventory } from "./inventory.js"
import { spdx } from "./spdx.js"

// `conary sbom`: loaded by a dynamic import, so the CycloneDX library and
// the SPDX licence list cost nothing to the commands that do not need them.

export const SBOM_FORMATS = ["cyclonedx", "spdx"] as const
export type SbomFormat = (typeof SBOM_FORMATS)[number]

export const sbom = async (db: Db, options: { readonly format: SbomFormat; readonly files: boolean; readonly version: string }): Promise<string> => {
  const inventory = takeInventory(db, { files: options.files })
  return options.format === "spdx" ? spdx(inventory, options) : cyclonedx(inventory, options)
}
