import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { type CopyJob, type CopyResult, StageWaits, copyOutVerified, teeToStage } from "../src/store/copy-out.js"
import type { Digests } from "../src/store/digest-buckets.js"
import { EMPTY_SHA256 } from "../src/store/digest-set.js"
import { sha256, tempDir } from "./helpers.js"

// Copies out of the store (src/store/copy-out.ts): few and small are copied
// on this thread, more in worker threads; both must verify every byte alike.
// And the stage paths waiting for each content the store lacks (StageWaits).

describe("copyOutVerified", () => {
  // 87 of the 130 jobs below name its size: 38 MB in all, enough to be copied in workers.
  const good = Buffer.from("good bytes\n".repeat(40_000))
  const jobs = (n: number): CopyJob[] => {
    const dir = tempDir()
    const store = path.join(dir, "store")
    const into = path.join(dir, "into")
    fs.mkdirSync(store)
    fs.mkdirSync(into)
    const object = (name: string, data: Buffer) => {
      fs.writeFileSync(path.join(store, name), data)
      return path.join(store, name)
    }
    const goodObject = object("good", good)
    // An object whose bytes are not what its name says.
    const corrupt = object("corrupt", Buffer.from("tampered"))
    return Array.from({ length: n }, (_, i) => {
      const kind = i % 3
      return {
        from: kind === 2 ? path.join(store, "missing") : kind === 1 ? corrupt : goodObject,
        sha256: sha256(good),
        size: kind === 1 ? 8 : good.length,
        to: path.join(into, `f${i}`),
        mode: 0o640,
        owner: null,
        mtime: 1_000_000_000 + i,
      }
    })
  }
  const run = async (list: CopyJob[]) => {
    const results: CopyResult[] = []
    let batched = 0
    const bytes = list.reduce((n, j) => n + j.size, 0)
    await copyOutVerified(list.length, bytes, (i) => list[i]!, (i, r) => (results[i] = r), (n) => (batched += n))
    expect(batched).toBe(list.length)
    return results
  }

  it.each([
    ["on this thread", 5],
    ["in workers", 130],
  ])("copies good objects, refuses corrupt ones and reports missing ones, %s", async (where, n) => {
    const list = jobs(n)
    const results = await run(list)
    for (let i = 0; i < n; i++) {
      const r = results[i]!
      const to = list[i]!.to
      if (i % 3 === 0) {
        expect(r.ok, `${where} ${i}`).toBe(true)
        const st = fs.statSync(to, { bigint: true })
        expect(fs.readFileSync(to).equals(good)).toBe(true)
        expect(Number(st.mode & 0o777n)).toBe(0o640)
        expect(st.mtimeNs).toBe(BigInt(1_000_000_000 + i) * 1_000_000_000n)
        // The stat it returns is the file's as it was left.
        expect(r).toEqual({ ok: true, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs })
      } else if (i % 3 === 1) {
        expect(r).toEqual({ ok: false, actual: sha256("tampered") })
      } else {
        expect(r.ok).toBe(false)
        expect(r).toMatchObject({ error: { code: "ENOENT", syscall: "open" } })
        expect(fs.existsSync(to)).toBe(false)
      }
    }
  })

  it("knows the digest of no bytes", () => {
    expect(EMPTY_SHA256).toBe(sha256(""))
  })
})

/** Paths' digests as the plan keeps them (none for a path without a digest). */
const digests = (shas: ReadonlyArray<string | undefined>): Digests => ({
  digestInto: (i, into) => shas[i] !== undefined && (into.write(shas[i]!, 0, "hex"), true),
  hasDigest: (i, words) => shas[i] !== undefined && Buffer.from(shas[i]!, "hex").equals(Buffer.from(words.buffer, words.byteOffset, 32)),
})

describe("StageWaits", () => {
  const [a, b, c] = [sha256("a"), sha256("b"), sha256("c")]
  // Another content whose digest shares a's first four bytes (a manifest may name any digest): found apart from a's.
  const twin = a.slice(0, 8) + [...a.slice(8)].reverse().join("")

  it("hands each content's waiting paths over once, its first eight, and takes them back", () => {
    const shas = Array.from({ length: 40 }, (_, i) => (i < 20 ? (i % 2 === 0 ? a : twin) : i === 30 ? b : i === 31 ? undefined : c))
    const waits = new StageWaits(digests(shas), shas.length, [...shas.keys()].filter((i) => i < 20 || i === 30 || i === 31))
    const forA = waits.take(a)!
    expect(forA).toEqual([0, 2, 4, 6, 8, 10, 12, 14])
    expect(waits.take(a)).toBeUndefined()
    expect(waits.take(twin)).toEqual([1, 3, 5, 7, 9, 11, 13, 15])
    expect(waits.take(b)).toEqual([30])
    // c's paths were not waiting; a path without a digest never waits; a malformed digest finds nothing.
    expect(waits.take(c)).toBeUndefined()
    expect(waits.take("not a digest")).toBeUndefined()
    // Given back (another archive may bring the content yet): waiting again, the same paths.
    waits.giveBack(a, forA)
    expect(waits.take(a)).toEqual(forA)
  })
})

// A stage path is only ever a file apply creates: whatever is there already
// (the admin's file, a symlink out of the root) is never opened, truncated or
// removed, and a copy the tee made but could not vouch for is removed, so the
// copy out of the store can create it anew.
describe("stage paths already taken", () => {
  const content = Buffer.from("the package's\n")
  const setup = () => {
    const dir = tempDir()
    const store = path.join(dir, "store")
    fs.mkdirSync(store)
    fs.writeFileSync(path.join(store, "object"), content)
    fs.writeFileSync(path.join(dir, "admin"), "the admin's\n")
    fs.writeFileSync(path.join(dir, "outside"), "outside\n")
    fs.symlinkSync(path.join(dir, "outside"), path.join(dir, "link"))
    const job = (name: string, size = content.length): CopyJob => ({
      from: path.join(store, "object"),
      sha256: sha256(content),
      size,
      to: path.join(dir, name),
      mode: 0o644,
      owner: null,
      mtime: null,
    })
    return { dir, job }
  }

  it("are refused by the copy out of the store, untouched", async () => {
    const { dir, job } = setup()
    const list = [job("admin"), job("link"), job("free")]
    const results: CopyResult[] = []
    await copyOutVerified(list.length, 3 * content.length, (i) => list[i]!, (i, r) => (results[i] = r))
    expect(results[0]).toMatchObject({ ok: false, error: { code: "EEXIST", syscall: "open" } })
    expect(results[1]).toMatchObject({ ok: false, error: { code: "EEXIST", syscall: "open" } })
    expect(results[2]!.ok).toBe(true)
    expect(fs.readFileSync(path.join(dir, "admin"), "utf8")).toBe("the admin's\n")
    expect(fs.readlinkSync(path.join(dir, "link"))).toBe(path.join(dir, "outside"))
    expect(fs.readFileSync(path.join(dir, "outside"), "utf8")).toBe("outside\n")
  })

  it("are refused by the tee, which removes only the copies it made", () => {
    const { dir, job } = setup()
    const jobs = [job("a"), job("admin"), job("b"), job("short", 3)]
    const written: number[] = []
    const taken: number[] = []
    const all = digests(jobs.map(() => sha256(content)))
    const tee = (waiting: number[]) => teeToStage(new StageWaits(all, jobs.length, waiting), (i) => jobs[i]!, (i) => written.push(i), (i) => taken.push(i))
    // One of the paths is taken: the tee writes none, removes what it opened, and says which was taken.
    expect(tee([0, 1, 2]).open(sha256(content))).toBeUndefined()
    expect(taken).toEqual([1])
    expect(fs.readdirSync(dir).sort()).toEqual(["admin", "link", "outside", "store"])
    expect(fs.readFileSync(path.join(dir, "admin"), "utf8")).toBe("the admin's\n")
    // A copy vouched for stays; one of the wrong size, or of bytes that proved wrong, is removed.
    const copies = tee([0, 3]).open(sha256(content))!
    copies.write(content)
    copies.verified()
    expect(written).toEqual([0])
    expect(fs.readFileSync(path.join(dir, "a"))).toEqual(content)
    expect(fs.existsSync(path.join(dir, "short"))).toBe(false)
    const again = tee([2])
    const failing = again.open(sha256(content))!
    failing.write(content)
    failing.failed()
    expect(fs.existsSync(path.join(dir, "b"))).toBe(false)
    // Given back: the next archive bringing the content writes it.
    const retry = again.open(sha256(content))
    expect(retry).toBeDefined()
    retry!.failed()
  })
})
