import { nodeCrypto } from "./builtin.js"

/** The hex sha256 of bytes (or a string's UTF-8): how contents, manifests and metadata are named. */
export const sha256Of = (data: string | Uint8Array): string => {
  const crypto = nodeCrypto()
  // One call, no Hash object, where node has it (20.12 and later).
  return typeof crypto.hash === "function" ? crypto.hash("sha256", data, "hex") : crypto.createHash("sha256").update(data).digest("hex")
}
