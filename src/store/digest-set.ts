import { nodeCrypto } from "../builtin.js"
import { readDigest } from "../sha256.js"

// A set of SHA-256 digests, each held as its 32 bytes in one open-addressed
// table (linear probing, at most 4/5 full): 200,000 digests take 8.6 MB
// where a Set of their hex strings takes ~25 MB.
// Slots are found by a hash keyed per process (digestHash).

const WORDS = 8

/** sha256 of no bytes. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/** Made at the first digest hashed: a store only looked at (as by `list`) loads no crypto. */
let seed: Int32Array | undefined

/**
 * A 32-bit hash of the digest in `words` (8 of them, from `at`), keyed per
 * process and mixing every byte: digests made to share bytes (a manifest
 * names digests before any content proves them) share a hash no more often
 * than any others, so they cannot pile into one run of a table.
 */
export const digestHash = (words: Int32Array, at: number): number => {
  if (seed === undefined) {
    const random = nodeCrypto().randomBytes(4 * (WORDS + 1))
    seed = Int32Array.from({ length: WORDS + 1 }, (_, k) => random.readInt32LE(4 * k))
  }
  // MurmurHash3's 32-bit rounds, one per word (its rotations carry high bits down), each word keyed.
  let h = seed[WORDS]!
  for (let k = 0; k < WORDS; k++) {
    let w = Math.imul(words[at + k]! ^ seed[k]!, 0xcc9e2d51)
    w = Math.imul((w << 15) | (w >>> 17), 0x1b873593)
    h ^= w
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** A set of digests. */
export class DigestSet {
  private keys = new Int32Array(0)
  private used = new Uint8Array(0)
  private count = 0
  private readonly scratch = Buffer.alloc(32)
  private readonly word = new Int32Array(this.scratch.buffer, this.scratch.byteOffset, WORDS)

  get size(): number {
    return this.count
  }

  /** Whether `sha256` (64 lowercase hex digits; anything else is never in the set) is in the set. */
  has(sha256: string): boolean {
    return this.parse(sha256) && this.find() >= 0
  }

  /** Adds `sha256`; one that is not 64 lowercase hex digits is not taken (false). */
  add(sha256: string): boolean {
    if (!this.parse(sha256)) return false
    if (this.find() >= 0) return true
    if (5 * (this.count + 1) > 4 * this.used.length) this.grow()
    this.put(this.word)
    return true
  }

  delete(sha256: string): boolean {
    if (!this.parse(sha256)) return false
    let hole = this.find()
    if (hole < 0) return false
    // Backward-shift deletion: entries after the hole that would probe past it move into it.
    const mask = this.used.length - 1
    this.used[hole] = 0
    this.count--
    for (let i = (hole + 1) & mask; this.used[i] === 1; i = (i + 1) & mask) {
      const home = this.slotOf(this.keys, i * WORDS)
      // Moved when its home is not cyclically within (hole, i].
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        this.keys.copyWithin(hole * WORDS, i * WORDS, i * WORDS + WORDS)
        this.used[hole] = 1
        this.used[i] = 0
        hole = i
      }
    }
    return true
  }

  /** Reads a digest into `word`; false when it is not 64 lowercase hex digits. */
  private parse(sha256: string): boolean {
    return readDigest(sha256, this.scratch)
  }

  private slotOf(words: Int32Array, at: number): number {
    return digestHash(words, at) & (this.used.length - 1)
  }

  /** The slot holding `word`, or -1. */
  private find(): number {
    if (this.count === 0) return -1
    const mask = this.used.length - 1
    const w = this.word
    for (let i = this.slotOf(w, 0); this.used[i] === 1; i = (i + 1) & mask) {
      const at = i * WORDS
      const k = this.keys
      if (k[at] === w[0] && k[at + 1] === w[1] && k[at + 2] === w[2] && k[at + 3] === w[3] && k[at + 4] === w[4] && k[at + 5] === w[5] && k[at + 6] === w[6] && k[at + 7] === w[7])
        return i
    }
    return -1
  }

  /** Puts a digest known to be absent into a free slot. */
  private put(words: Int32Array, from = 0): void {
    const mask = this.used.length - 1
    let i = this.slotOf(words, from)
    while (this.used[i] === 1) i = (i + 1) & mask
    this.keys.set(words.subarray(from, from + WORDS), i * WORDS)
    this.used[i] = 1
    this.count++
  }

  private grow() {
    const [keys, used] = [this.keys, this.used]
    const slots = Math.max(1024, 2 * used.length)
    this.keys = new Int32Array(slots * WORDS)
    this.used = new Uint8Array(slots)
    this.count = 0
    for (let i = 0; i < used.length; i++) if (used[i] === 1) this.put(keys, i * WORDS)
  }
}
