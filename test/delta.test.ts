import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { linesOf } from "../src/source/repo-state.js"
import { unzstd } from "../src/source/decompress.js"
import { DeltaError, type DeltaRef, applyDelta, compressWithBase, makeDelta } from "../src/source/delta.js"
import { REPO, listTree, mustSkip, ok, sha256 } from "./helpers.js"
import { type Nginx, hasNginx, requests, startNginx } from "./nginx.js"

// Binary deltas in repositories, with real Debian update pairs (test/fixtures/delta):
// an update through nginx moves the deltas, not the contents, and every way
// a delta can fail falls back to the full object.

const skip = mustSkip(hasNginx() && spawnSync("dpkg-deb", ["--version"]).status === 0, "delta updates through nginx", "nginx or dpkg-deb is not installed", "sudo sh scripts/test-tools.sh")

const FIXTURES = path.join(REPO, "test/fixtures/delta")
const OLD = ["expat_2.5.0-1+deb12u2_amd64.deb", "libexpat1_2.5.0-1+deb12u2_amd64.deb"]
const NEW = ["expat_2.5.0-1+deb12u5_amd64.deb", "libexpat1_2.5.0-1+deb12u5_amd64.deb"]

interface Delta {
  from: string
  to: string
  sha256: string
  size: number
  gzip?: { tool: string }
}
interface Manifest {
  files: Array<{ path: string; sha256?: string; size: number }>
  deltas?: Delta[]
  packed?: Record<string, number>
}

const object = (repo: string, sha: string, size: number) => unzstd(fs.readFileSync(path.join(repo, "objects", sha.slice(0, 2), `${sha.slice(2)}.zst`)), size)

/** The manifest of each trove the repository lists, by `name version`. */
const manifests = (repo: string): Map<string, Manifest> => {
  const top = JSON.parse(JSON.parse(unzstd(fs.readFileSync(path.join(repo, "repo.zst")), 1 << 26).toString()).signed)
  const out = new Map<string, Manifest>()
  for (const part of top.parts)
    for (const t of linesOf(object(repo, part.sha256, part.size).toString()).map((l) => JSON.parse(l)))
      out.set(`${t.name} ${t.version}`, JSON.parse(object(repo, t.manifest.sha256, t.manifest.size).toString()))
  return out
}

/** The tree dpkg-deb -x makes of the packages. */
const extracted = (dir: string, debs: ReadonlyArray<string>) => {
  fs.mkdirSync(dir)
  for (const d of debs) expect(spawnSync("dpkg-deb", ["-x", path.join(FIXTURES, d), dir]).status).toBe(0)
  return listTree(dir)
}

/** A root's tree without the directories conary's own state lives in. */
const treeOf = (root: string) => {
  const t = listTree(root)
  delete t["var"]
  delete t["var/lib"]
  return t
}

describe.skipIf(skip)("deltas in a repository", () => {
  let work: string
  let www: string
  let repo: string
  let nginx: Nginx
  const roots: Record<string, string[]> = {}
  let built: { deltas: number }

  const root = (name: string, troves: string[]) => {
    const dir = path.join(work, name)
    fs.mkdirSync(dir)
    const r = ["--root", dir]
    ok(["init", ...r])
    ok(["source", "add", "web", `${nginx.url}/repo`, "--insecure", ...r])
    ok(["source", "sync", ...r])
    ok(["provide", "add", "libc6", "debconf", "debconf-2.0", ...r])
    ok(["desired", "add", ...troves, ...r])
    ok(["apply", ...r])
    roots[name] = r
    return dir
  }

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "conary-delta-"))
    www = path.join(work, "www")
    repo = path.join(www, "repo")
    ok(["repo", "build", repo, ...OLD.map((d) => path.join(FIXTURES, d))])
    nginx = await startNginx(path.join(work, "nginx"), www)
    root("a", ["expat", "libexpat1"])
    root("b", ["expat", "libexpat1"])
    built = JSON.parse(ok(["repo", "build", repo, ...NEW.map((d) => path.join(FIXTURES, d)), "--json"]))
  }, 180_000)

  afterAll(async () => {
    await nginx?.stop()
    if (work) fs.rmSync(work, { recursive: true, force: true })
  })

  it("builds deltas against the previous version, each clearly smaller than the full object, gzip'd files in their inner form", () => {
    const m = manifests(repo)
    const lib = m.get("libexpat1 2.5.0-1+deb12u5")!
    const expat = m.get("expat 2.5.0-1+deb12u5")!
    const old = new Set(m.get("libexpat1 2.5.0-1+deb12u2")!.files.map((f) => f.sha256))
    for (const man of [lib, expat])
      for (const d of man.deltas ?? []) {
        expect(d.size).toBeLessThanOrEqual(man.packed![d.to]! * 0.8)
        expect(fs.statSync(path.join(repo, "deltas", d.sha256.slice(0, 2), `${d.sha256.slice(2)}.zst`)).size).toBe(d.size)
      }
    expect(lib.deltas!.length + expat.deltas!.length).toBe(6)
    expect(built.deltas).toBe(6)
    // The shared library's delta starts at the old version's library.
    const so = lib.files.find((f) => f.path === "lib/x86_64-linux-gnu/libexpat.so.1.8.10")!
    expect(old.has(lib.deltas!.find((d) => d.to === so.sha256)!.from)).toBe(true)
    // Debian's gzip -9n man page is recreated exactly: its delta is between the gunzipped forms.
    const man = expat.files.find((f) => f.path === "usr/share/man/man1/xmlwf.1.gz")!
    expect(expat.deltas!.find((d) => d.to === man.sha256)?.gzip).toMatchObject({ tool: "gzip" })
    // The first versions have no earlier version: no deltas.
    expect(m.get("expat 2.5.0-1+deb12u2")!.deltas).toBeUndefined()
  })

  it("updates through nginx by deltas: plan names the bytes, only deltas are served for changed contents, the tree is dpkg-deb's", () => {
    const r = roots["a"]!
    ok(["source", "sync", ...r])
    const plan = JSON.parse(ok(["plan", "--json", ...r]))
    expect(plan.download.full).toBe(0)
    expect(plan.download.deltas).toBe(6)
    expect(ok(["plan", ...r])).toMatch(/ to download \(\d+ deltas, 0 full\), [\d.]+ \w+ to write\./)
    const before = requests(nginx).length
    const applied = JSON.parse(ok(["apply", "--json", ...r]))
    expect(applied.download).toMatchObject({ deltas: plan.download.deltas, full: 0, fallbacks: [] })
    const served = requests(nginx).slice(before).filter(([m, , s]) => m === "GET" && s < 400)
    const deltaBytes = served.filter(([, p]) => p.startsWith("/repo/deltas/")).reduce((n, [, , , b]) => n + b, 0)
    expect(deltaBytes).toBe(plan.download.bytes)
    expect(deltaBytes).toBe(applied.download.bytes)
    // Besides deltas, only metadata (parts, manifests) was fetched: no content object.
    const contents = new Set([...manifests(repo).values()].flatMap((m) => m.files.flatMap((f) => (f.sha256 ? [f.sha256] : []))))
    const objects = served.filter(([, p]) => p.startsWith("/repo/objects/")).map(([, p]) => p.replace(/^\/repo\/objects\/(..)\/(.*)\.zst$/, "$1$2"))
    expect(objects.filter((sha) => contents.has(sha))).toEqual([])
    // Far less than the new .debs.
    expect(deltaBytes).toBeLessThan(NEW.reduce((n, d) => n + fs.statSync(path.join(FIXTURES, d)).size, 0) * 0.6)
    expect(treeOf(path.join(work, "a"))).toEqual(extracted(path.join(work, "ref-a"), NEW))
  })

  it("falls back to the full object for a corrupt delta, a base the client no longer holds, and a delta that expands to the wrong sha256", () => {
    const r = roots["b"]!
    const dir = path.join(work, "b")
    const store = path.join(dir, "var/lib/conary/store/objects")
    const m = manifests(repo)
    const oldLib = m.get("libexpat1 2.5.0-1+deb12u2")!
    const newLib = m.get("libexpat1 2.5.0-1+deb12u5")!
    const newExpat = m.get("expat 2.5.0-1+deb12u5")!
    const deltaTo = (man: Manifest, p: string) => man.deltas!.find((d) => d.to === man.files.find((f) => f.path === p)!.sha256)!
    const storeFile = (sha: string) => path.join(store, sha.slice(0, 2), sha.slice(2))

    // Corrupt: the served delta of xmlwf has other bytes (same length).
    const corrupt = deltaTo(newExpat, "usr/bin/xmlwf")
    const file = path.join(repo, "deltas", corrupt.sha256.slice(0, 2), `${corrupt.sha256.slice(2)}.zst`)
    fs.writeFileSync(file, Buffer.alloc(corrupt.size, 0x5a))
    // No base: the old libexpat is gone from the store and changed on disk.
    const gone = deltaTo(newLib, "lib/x86_64-linux-gnu/libexpat.so.1.8.10")
    fs.rmSync(storeFile(gone.from))
    fs.appendFileSync(path.join(dir, "lib/x86_64-linux-gnu/libexpat.so.1.8.10"), "changed")
    // Wrong result: the store's old libexpatw has other bytes under its name (same length), so the delta expands to something else.
    const wrong = deltaTo(newLib, "usr/lib/x86_64-linux-gnu/libexpatw.so.1.8.10")
    expect(oldLib.files.some((f) => f.sha256 === wrong.from)).toBe(true)
    const base = fs.readFileSync(storeFile(wrong.from))
    for (let i = 4096; i < base.length; i += 97) base[i] = base[i]! ^ 0xff
    fs.chmodSync(storeFile(wrong.from), 0o644)
    fs.writeFileSync(storeFile(wrong.from), base)

    ok(["source", "sync", ...r])
    const before = requests(nginx).length
    const applied = JSON.parse(ok(["apply", "--json", ...r]))
    const fallbacks = new Map((applied.download.fallbacks as Array<{ sha256: string; reason: string }>).map((f) => [f.sha256, f.reason]))
    expect(fallbacks.get(corrupt.to)).toMatch(/does not match its sha256/)
    expect(fallbacks.get(gone.to)).toMatch(/is no longer held/)
    expect(fallbacks.get(wrong.to)).toMatch(/patched content does not match its sha256|corrupt delta/)
    expect(fallbacks.size).toBe(3)
    expect(applied.download.full).toBe(3)
    expect(applied.download.deltas).toBeGreaterThan(0)
    // The three came as full objects.
    const objects = requests(nginx).slice(before).filter(([m, p, s]) => m === "GET" && s === 200 && p.startsWith("/repo/objects/")).map(([, p]) => p)
    for (const sha of [corrupt.to, gone.to, wrong.to]) expect(objects).toContain(`/repo/objects/${sha.slice(0, 2)}/${sha.slice(2)}.zst`)
    expect(treeOf(dir)).toEqual(extracted(path.join(work, "ref-b"), NEW))
  })
})

describe("delta frames", () => {
  const old = Buffer.from(Array.from({ length: 4000 }, (_, i) => `line ${i} of the old version\n`).join(""))
  const next = Buffer.from(old.toString().replace("line 1234 ", "line 1234 changed ").replace("line 3000 ", "line three thousand "))
  const refOf = (bytes: Buffer, extra: Partial<DeltaRef> = {}): DeltaRef => ({ from: sha256(old), to: sha256(next), sha256: sha256(bytes), size: bytes.length, ...extra })

  it("make the new content from the old, in a few bytes", () => {
    const d = makeDelta(old, next)!
    expect(d.gzip).toBeUndefined()
    expect(d.bytes.length).toBeLessThan(200)
    expect(applyDelta(old, d.bytes, refOf(d.bytes), next.length).equals(next)).toBe(true)
  })

  it("refuse a frame that names another size, a wrong base's result, and bytes that are not the delta listed", () => {
    const d = makeDelta(old, next)!
    expect(() => applyDelta(old, d.bytes, refOf(d.bytes), next.length + 1)).toThrow(DeltaError)
    const other = Buffer.from(old)
    other.fill(0x41, 100, 200)
    expect(() => applyDelta(other, d.bytes, refOf(d.bytes), next.length)).toThrow(/does not match its sha256/)
    expect(() => applyDelta(old, d.bytes, { ...refOf(d.bytes), sha256: sha256("x") }, next.length)).toThrow(/does not match its sha256/)
    // A frame of another content with a digest that matches what is listed: the result is checked.
    const lie = compressWithBase(old, Buffer.alloc(next.length, 1))
    expect(() => applyDelta(old, lie, refOf(lie), next.length)).toThrow(/patched content does not match/)
  })

  it("patch a gzip -9n file in its inner form and recreate it byte for byte", () => {
    const gz = (b: Buffer) => spawnSync("gzip", ["-9n", "-c"], { input: b }).stdout as Buffer
    const d = makeDelta(gz(old), gz(next))!
    // zlib makes the same bytes as gzip for some inputs (not for Debian's real man pages: see the repository test).
    expect(d.gzip).toMatchObject({ level: 9, fromSize: old.length, toSize: next.length })
    expect(d.bytes.length).toBeLessThan(200)
    const ref = { ...refOf(d.bytes), from: sha256(gz(old)), to: sha256(gz(next)), gzip: d.gzip }
    expect(applyDelta(gz(old), d.bytes, ref, gz(next).length).equals(gz(next))).toBe(true)
  })
})
