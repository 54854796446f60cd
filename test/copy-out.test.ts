import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { type CopyJob, type CopyResult, StageWaits, copyOutVerified } from "../src/store/copy-out.js"
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
