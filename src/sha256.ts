import { nodeCrypto } from "./builtin.js"

/** The hex sha256 of bytes (or a string's UTF-8): how contents, manifests and metadata are named. */
export const sha256Of = (data: string | Uint8Array): string => {
  const crypto = nodeCrypto()
  // One call, no Hash object, where node has it (20.12 and later).
  return typeof crypto.hash === "function" ? crypto.hash("sha256", data, "hex") : crypto.createHash("sha256").update(data).digest("hex")
}

/** Each lowercase hex digit's value by its character code; -1 for any other character below 128. */
const NIBBLE = new Int8Array(128).fill(-1)
for (let d = 0; d < 16; d++) NIBBLE["0123456789abcdef".charCodeAt(d)] = d

/**
 * Reads a SHA-256 digest as conary writes them (64 lowercase hex digits)
 * into 32 bytes of `into` from `at`; false, with them partly written, for
 * any other string. One loop: apply looks up a digest about five times per
 * file, and a regular expression and then Buffer's hex decoding took four
 * times as long (~0.3 s of apply's main thread at 200,000 files).
 */
export const readDigest = (s: string, into: Uint8Array, at = 0): boolean => {
  if (s.length !== 64) return false
  for (let k = 0; k < 32; k++) {
    const high = NIBBLE[s.charCodeAt(2 * k)] ?? -1
    const low = NIBBLE[s.charCodeAt(2 * k + 1)] ?? -1
    if ((high | low) < 0) return false
    into[at + k] = (high << 4) | low
  }
  return true
}

const checked = new Uint8Array(32)
/** Whether a string is a SHA-256 digest as conary writes them: 64 lowercase hex digits. */
export const isDigest = (s: string): boolean => readDigest(s, checked)
