import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { StoreError } from "../src/errors.js"
import { ContentStore, writeBehind } from "../src/store/store.js"
import { ok, setupRoot, sha256, tempDir } from "./helpers.js"

// How the store writes: each object is written beside where it goes and
// renamed within its directory (not through one shared tmp/, whose lock every
// thread and process writing would wait on), and gc removes what an
// interrupted write left there without counting it as an object. The disk
// is flushed meanwhile by one shell, not by a spawn of this process per tick.

const FIXTURES = path.resolve(import.meta.dirname, "fixtures/debs")

/** Names under the store's objects/ that are not objects (`ab/<62 hex digits>`). */
const strays = (store: string): string[] => {
  const objects = path.join(store, "objects")
  return fs.readdirSync(objects).flatMap((prefix) => fs.readdirSync(path.join(objects, prefix)).filter((n) => !/^[0-9a-f]{62}$/.test(n)).map((n) => `${prefix}/${n}`))
}

/** Pids of this process's children whose command line holds `text`. */
const childrenWith = (text: string): number[] =>
  fs.readdirSync("/proc").flatMap((pid) => {
    if (!/^\d+$/.test(pid)) return []
    try {
      const ppid = Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ")[1])
      return ppid === process.pid && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text) ? [Number(pid)] : []
    } catch {
      return [] // gone meanwhile
    }
  })

describe("store writes", () => {
  it("leave nothing but objects, and gc removes a write's leftover without counting it", () => {
    const { root, repo, r } = setupRoot()
    fs.copyFileSync(path.join(FIXTURES, "tree_2.1.0-1_amd64.deb"), path.join(repo, "tree_2.1.0-1_amd64.deb"))
    ok(["source", "sync", ...r])
    const store = path.join(root, "var/lib/conary/store")
    expect(strays(store)).toEqual([])
    expect(fs.existsSync(path.join(store, "tmp")) ? fs.readdirSync(path.join(store, "tmp")) : []).toEqual([])
    ok(["provide", "add", "libc6", ...r])
    ok(["desired", "add", "tree", ...r])
    ok(["apply", ...r])
    expect(strays(store)).toEqual([])

    // What a killed write leaves: a temp file beside the objects.
    const prefix = fs.readdirSync(path.join(store, "objects"))[0]!
    fs.writeFileSync(path.join(store, "objects", prefix, ".123-0a1b2c3d4e5f-7.tmp"), "half an object")
    expect(ok(["gc", ...r])).toMatch(/^Removed 0 generations and 0 store objects, /)
    expect(strays(store)).toEqual([])
  })

  it("flushes the disk meanwhile from one shell, which ends at stop", async () => {
    const dir = tempDir()
    const stop = writeBehind(dir)
    const seen = new Set<number>()
    // Several quarter-seconds: a spawn per tick would show as several children.
    for (let i = 0; i < 12; i++) {
      for (const pid of childrenWith(dir)) seen.add(pid)
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(seen.size).toBe(1)
    const [shell] = [...seen]
    expect(fs.readFileSync(`/proc/${shell}/cmdline`, "utf8").split("\0")).toContain(dir)
    stop()
    for (let i = 0; i < 50 && childrenWith(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 100))
    expect(childrenWith(dir)).toEqual([])
  })

  it("file a content taken piece by piece only when it hashes right, given its size or not", () => {
    const store = new ContentStore(tempDir())
    const data = Buffer.from("hello, store\n")
    const sha = sha256(data)
    const take = (pieces: Buffer[], size?: number) => {
      const into = store.incoming(sha, size)
      try {
        for (const p of pieces) into.write(p)
        into.finish()
      } catch (e) {
        into.abort()
        throw e
      }
    }
    const refused = (pieces: Buffer[], size?: number) => {
      expect(() => take(pieces, size)).toThrow(StoreError)
      expect(store.has(sha)).toBe(false)
      expect(strays(store.dir)).toEqual([])
    }
    // Whole in one piece (hashed in one call), then more; other bytes of the same size; pieces of other bytes.
    refused([data, Buffer.from("x")], data.length)
    refused([Buffer.from("HELLO, STORE\n")], data.length)
    refused([data.subarray(0, 5), Buffer.from("X"), data.subarray(6)], data.length)
    refused([data, data])
    for (const [pieces, size] of [[[data], data.length], [[data.subarray(0, 5), data.subarray(5)], data.length], [[data], undefined]] as const) {
      take([...pieces], size)
      expect(fs.readFileSync(store.pathOf(sha)).equals(data)).toBe(true)
      store.remove(sha)
    }
    expect(strays(store.dir)).toEqual([])
  })
})
