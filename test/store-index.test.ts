import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { readDigest } from "../src/sha256.js"
import { DigestSet, digestHash } from "../src/store/digest-set.js"
import { ContentStore } from "../src/store/store.js"
import { tempDir } from "./helpers.js"

// The content store's in-memory index of its objects (src/store/digest-set.ts):
// digests as 32 bytes in one table. It must answer exactly as a Set of the
// digests would, through growth and deletions, take nothing but digests, and
// a store's index may be stale only in the safe direction.

const sha = (s: string) => createHash("sha256").update(s).digest("hex")

/** Deterministic pseudo-random digests (a linear congruential walk), no hashing needed. */
const digests = (n: number, seed: number): string[] => {
  let x = seed >>> 0
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0)
  return Array.from({ length: n }, () => Array.from({ length: 8 }, () => next().toString(16).padStart(8, "0")).join(""))
}

describe("DigestSet", () => {
  it("answers as a Set of the digests would through adds, deletions and growth", () => {
    const set = new DigestSet()
    const model = new Set<string>()
    const pool = digests(6000, 1)
    // Digests that share their first 16 hex digits: slots come from a keyed hash, so they need not collide,
    // but lookups must still tell them apart by every byte.
    const near = Array.from({ length: 200 }, (_, i) => pool[0]!.slice(0, 56) + i.toString(16).padStart(8, "0"))
    const all = [...pool, ...near]
    let x = 7
    const pick = () => all[(x = (Math.imul(x, 1103515245) + 12345) >>> 0) % all.length]!
    // Disagreements, counted (an expect per step would cost more than the steps).
    let wrong = 0
    for (let step = 0; step < 40_000; step++) {
      const d = pick()
      const what = step % 5
      if (what < 3) {
        if (!set.add(d)) wrong++
        model.add(d)
      } else if (what === 3) {
        if (set.delete(d) !== model.delete(d)) wrong++
      } else if (set.has(d) !== model.has(d)) wrong++
      if (set.size !== model.size) wrong++
    }
    expect(wrong).toBe(0)
    for (const d of all) expect(set.has(d)).toBe(model.has(d))
    // Emptied completely, then filled again.
    for (const d of all) set.delete(d)
    expect(set.size).toBe(0)
    for (const d of all) expect(set.has(d)).toBe(false)
    for (const d of near) set.add(d)
    for (const d of all) expect(set.has(d)).toBe(near.includes(d))
  })

  it("takes only 64 lowercase hex digits", () => {
    const set = new DigestSet()
    const d = sha("x")
    for (const bad of [d.toUpperCase(), d.slice(1), d + "0", `${d.slice(0, 63)}g`, "../".repeat(21) + "x", "", `${d.slice(0, 62)}\n0`]) {
      expect(set.add(bad)).toBe(false)
      expect(set.has(bad)).toBe(false)
      expect(set.delete(bad)).toBe(false)
    }
    expect(set.size).toBe(0)
    expect(set.add(d)).toBe(true)
    expect(set.has(d.toUpperCase())).toBe(false)
    expect(set.has(d)).toBe(true)
  })
})

describe("readDigest", () => {
  it("reads 64 lowercase hex digits as Buffer's hex decoding does, and refuses anything else", () => {
    const into = Buffer.alloc(40)
    for (const d of [...digests(200, 7), "0".repeat(64), "f".repeat(64)]) {
      expect(readDigest(d, into, 8)).toBe(true)
      expect(into.subarray(8, 40).equals(Buffer.from(d, "hex"))).toBe(true)
    }
    const d = sha("y")
    // Each character next to a digit's range (/ : ` g), an uppercase one, and characters whose low byte is a digit's.
    for (const c of ["/", ":", "`", "g", "A", "F", " ", "\0", "\u0130", "\u0161", "\u0430", "\uff10"])
      for (let k = 0; k < 64; k += 7) expect(readDigest(d.slice(0, k) + c + d.slice(k + 1), into)).toBe(false)
    for (const bad of [d.slice(1), d + "0", "", d.toUpperCase()]) expect(readDigest(bad, into)).toBe(false)
  })
})

describe("digestHash", () => {
  it("mixes every byte: digests that share all but four bytes (a manifest names digests before content proves them) do not share hashes", () => {
    const words = (hex: string) => {
      const bytes = Buffer.from(hex, "hex")
      return new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 32))
    }
    const base = sha("base")
    for (const at of [0, 28, 56]) {
      const hashes = new Set(Array.from({ length: 2000 }, (_, i) => digestHash(words(base.slice(0, at) + i.toString(16).padStart(8, "0") + base.slice(at + 8)), 0)))
      // 2,000 random 32-bit hashes share one about once in a thousand draws.
      expect(hashes.size).toBeGreaterThanOrEqual(1998)
    }
  })
})

describe("content store index", () => {
  const objectFile = (store: string, d: string) => path.join(store, "objects", d.slice(0, 2), d.slice(2))

  it("knows what this process stores and removes; is stale only toward storing again", async () => {
    const dir = tempDir()
    const store = new ContentStore(dir)
    const [a, b] = ["a", "b"].map((s) => Buffer.from(s))
    const [shaA, shaB] = [sha("a"), sha("b")]
    expect(store.has(shaA)).toBe(false)
    store.putBuffer(a!, shaA)
    expect(store.has(shaA)).toBe(true)
    expect(fs.readFileSync(objectFile(dir, shaA), "utf8")).toBe("a")
    // Another process (another instance) sees it when it first reads that fan-out directory.
    expect(new ContentStore(dir).has(shaA)).toBe(true)
    // An object another process adds after this one listed the directory: not seen, so at worst stored again.
    const other = new ContentStore(dir)
    expect(other.has(shaB)).toBe(false)
    new ContentStore(dir).putBuffer(b!, shaB)
    expect(fs.existsSync(objectFile(dir, shaB))).toBe(true)
    expect(other.has(shaB)).toBe(false)
    other.putBuffer(b!, shaB)
    expect(other.has(shaB)).toBe(true)
    expect(fs.readFileSync(objectFile(dir, shaB), "utf8")).toBe("b")
    // fetchOnce asks the disk under its lock: another process's object is found, not fetched again.
    const late = sha("late")
    const stale = new ContentStore(dir)
    expect(stale.has(late)).toBe(false)
    new ContentStore(dir).putBuffer(Buffer.from("late"), late)
    let fetched = false
    expect(await stale.fetchOnce(late, async () => void (fetched = true))).toBe(false)
    expect(fetched).toBe(false)
    expect(stale.has(late)).toBe(true)
    store.remove(shaA)
    expect(store.has(shaA)).toBe(false)
    expect(fs.existsSync(objectFile(dir, shaA))).toBe(false)
    store.putBuffer(a!, shaA)
    expect(store.has(shaA)).toBe(true)
  })

  it("takes no name in objects/ for an object unless it is a digest, and looks nothing up for a non-digest", () => {
    const dir = tempDir()
    const d = sha("content")
    const fan = path.join(dir, "objects", d.slice(0, 2))
    fs.mkdirSync(fan, { recursive: true })
    // Another tool's files, a name in capitals, a digest with a suffix, a stray temp name.
    const upper = d.slice(2).toUpperCase()
    for (const name of [upper, `${d.slice(2)}.part`, "README", d.slice(2, 40)]) fs.writeFileSync(path.join(fan, name), "junk")
    fs.mkdirSync(path.join(dir, "objects", "AB"))
    fs.writeFileSync(path.join(dir, "objects", "AB", upper), "junk")
    const store = new ContentStore(dir)
    expect(store.has(d)).toBe(false)
    expect(store.has(d.slice(0, 2) + upper)).toBe(false)
    expect(store.has(`AB${upper}`)).toBe(false)
    expect(store.has(`${d}.part`)).toBe(false)
    // A "digest" that would climb out of objects/ is no digest: nothing is read for it.
    expect(store.has(`../${d.slice(3)}`)).toBe(false)
    store.putBuffer(Buffer.from("content"), d)
    expect(store.has(d)).toBe(true)
    expect(fs.readFileSync(path.join(fan, d.slice(2)), "utf8")).toBe("content")
    // The other names are left as they were.
    expect(fs.readdirSync(fan).sort()).toEqual([upper, `${d.slice(2)}.part`, "README", d.slice(2, 40), d.slice(2)].sort())
    // A fresh instance lists the directory with them in it and finds only the object.
    const fresh = new ContentStore(dir)
    expect(fresh.has(d)).toBe(true)
    expect(fresh.has(d.slice(0, 2) + upper)).toBe(false)
  })
})
