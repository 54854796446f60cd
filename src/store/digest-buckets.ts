import { readDigest } from "../sha256.js"
import { digestHash } from "./digest-set.js"

/** The digests of numbered items (a plan's rows), where they are kept: DigestBuckets reads them there instead of holding copies. */
export interface Digests {
  /** item i's digest (32 bytes) into `into`; false when it has none */
  digestInto(i: number, into: Buffer): boolean
  /** whether item i's digest is the one in `words` (its 32 bytes as 8 words, in this machine's byte order) */
  hasDigest(i: number, words: Int32Array): boolean
}

/**
 * Numbered items (a plan's rows) found by their digests: in buckets by a
 * keyed hash of each digest (digestHash, so digests made to collide pile up
 * no more than others), their whole digests read where their owner keeps
 * them. 200,000 items take ~1.9 MB here, where a DigestSet of their digests
 * takes 8.6 MB and a Map of hex digests to arrays ~35 MB. Bucketed in two
 * passes, not sorted by hash (a sort with a comparator took ~0.1 s at
 * 200,000), and a lookup reads one bucket, not a bisection's ~18 scattered
 * entries.
 */
export class DigestBuckets {
  /** the items, by bucket, each bucket's in the order given */
  private readonly items: Int32Array
  /** each item's digestHash, in `items`' order */
  private readonly hashes: Uint32Array
  /** where each bucket's items start in `items` (and the next's, where it ends) */
  private readonly starts: Int32Array
  /** a hash's bucket is its top bits: 32 - shift of them */
  private readonly shift: number
  private readonly wanted = Buffer.alloc(32)
  private readonly wantedWords = new Int32Array(this.wanted.buffer, this.wanted.byteOffset, 8)

  /** The items `given` that have a digest. */
  constructor(
    private readonly digests: Digests,
    given: Iterable<number>,
  ) {
    const listed: number[] = []
    const hashOf: number[] = []
    for (const i of given) {
      if (!digests.digestInto(i, this.wanted)) continue
      listed.push(i)
      hashOf.push(digestHash(this.wantedWords, 0))
    }
    // About two items a bucket, at most 65,536 buckets (256 KiB of starts; ~3 items a bucket at 200,000).
    const bits = Math.min(16, Math.max(1, Math.ceil(Math.log2(listed.length + 1)) - 1))
    const shift = (this.shift = 32 - bits)
    const buckets = 1 << bits
    const starts = (this.starts = new Int32Array(buckets + 1))
    for (const h of hashOf) starts[(h >>> shift) + 1]!++
    for (let b = 0; b < buckets; b++) starts[b + 1]! += starts[b]!
    const fill = starts.slice(0, buckets)
    const items = (this.items = new Int32Array(listed.length))
    const hashes = (this.hashes = new Uint32Array(listed.length))
    for (let k = 0; k < listed.length; k++) {
      const at = fill[hashOf[k]! >>> shift]!++
      items[at] = listed[k]!
      hashes[at] = hashOf[k]!
    }
  }

  /**
   * Calls `visit` with each item whose digest is `sha256`, in the order they
   * were given, until it returns true. A string that is not 64 lowercase hex
   * digits has none.
   */
  find(sha256: string, visit: (i: number) => boolean | void): void {
    if (!readDigest(sha256, this.wanted)) return
    const h = digestHash(this.wantedWords, 0)
    const b = h >>> this.shift
    const { items, hashes, starts } = this
    for (let k = starts[b]!; k < starts[b + 1]!; k++) {
      if (hashes[k] !== h) continue
      const i = items[k]!
      if (this.digests.hasDigest(i, this.wantedWords) && visit(i) === true) return
    }
  }
}
