import { nodeCrypto } from "./builtin.js"

/** The hex sha256 of bytes (or a string's UTF-8): how contents, manifests and metadata are named. */
export const sha256Of = (data: string | Uint8Array): string => nodeCrypto().createHash("sha256").update(data).digest("hex")
