import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { type CopyJob, type CopyResult, StageWaits, copyOutVerified, teeToStage } from "../src/store/copy-out.js"
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

describe("StageWaits", () => {
  const [a, b] = [sha256("a"), sha256("b")]

  it("hands each content's waiting paths over once, at most eight, and takes them back", () => {
    const waits = new StageWaits(40)
    for (let i = 0; i < 20; i++) waits.add(a, i)
    waits.add(b, 30)
    const forA = waits.take(a)!
    expect(forA.length).toBe(8)
    expect(new Set(forA).size).toBe(8)
    for (const i of forA) expect(i).toBeLessThan(20)
    expect(waits.take(a)).toBeUndefined()
    expect(waits.take(b)).toEqual([30])
    expect(waits.take(sha256("c"))).toBeUndefined()
    expect(waits.take("not a digest")).toBeUndefined()
    // Given back (another archive may bring the content yet): waiting again, the same paths.
    waits.giveBack(a, forA)
    expect(waits.take(a)!.sort((x, y) => x - y)).toEqual([...forA].sort((x, y) => x - y))
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
    const waits = new StageWaits(jobs.length)
    const written: number[] = []
    const taken: number[] = []
    const tee = teeToStage(waits, (i) => jobs[i]!, (i) => written.push(i), (i) => taken.push(i))
    // One of the paths is taken: the tee writes none, removes what it opened, and says which was taken.
    for (const i of [0, 1, 2]) waits.add(sha256(content), i)
    expect(tee.open(sha256(content))).toBeUndefined()
    expect(taken).toEqual([1])
    expect(fs.readdirSync(dir).sort()).toEqual(["admin", "link", "outside", "store"])
    expect(fs.readFileSync(path.join(dir, "admin"), "utf8")).toBe("the admin's\n")
    // A copy vouched for stays; one of the wrong size, or of bytes that proved wrong, is removed.
    for (const i of [0, 3]) waits.add(sha256(content), i)
    const copies = tee.open(sha256(content))!
    copies.write(content)
    copies.verified()
    expect(written).toEqual([0])
    expect(fs.readFileSync(path.join(dir, "a"))).toEqual(content)
    expect(fs.existsSync(path.join(dir, "short"))).toBe(false)
    waits.add(sha256(content), 2)
    const failing = tee.open(sha256(content))!
    failing.write(content)
    failing.failed()
    expect(fs.existsSync(path.join(dir, "b"))).toBe(false)
  })
})
