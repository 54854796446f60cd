import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, conaryAsync, listTree, mustSkip, ok, okAsync, sha256, tempDir } from "./helpers.js"
import { type Nginx, hasNginx, requests, startNginx } from "./nginx.js"

// Roots sharing one content store (--store, CONARY_STORE): the real CLI against nginx on loopback
// (and a proxy in this process: commands run without blocking its event loop).

const skipNginx = mustSkip(hasNginx(), "shared content store through nginx", "nginx is not installed", "sudo sh scripts/test-tools.sh")

const objectPath = (sha: string) => `/repo/objects/${sha.slice(0, 2)}/${sha.slice(2)}.zst`
const storeHas = (store: string, content: string) => fs.existsSync(path.join(store, "objects", sha256(content).slice(0, 2), sha256(content).slice(2)))

/** How often nginx served each of these contents (successful GETs from log index `from` on). */
const servedCounts = (nginx: Nginx, contents: ReadonlyArray<string>, from = 0) => {
  const gets = requests(nginx)
    .slice(from)
    .filter(([m, , s]) => m === "GET" && s < 400)
    .map(([, p]) => p)
  return contents.map((c) => gets.filter((p) => p === objectPath(sha256(c))).length)
}

/** A proxy in front of nginx that can hold one request until the test lets it through. */
const gatedProxy = async (target: string) => {
  let gate: { path: string; arrived: () => void; open: Promise<void> } | undefined
  const server = http.createServer(async (req, res) => {
    if (gate && req.url === gate.path) {
      gate.arrived()
      await gate.open
    }
    const up = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers)
      r.pipe(res)
    })
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Holds the next request for `p`: resolves `arrived` when it comes; `release` lets it through. */
    hold(p: string) {
      let arrived!: () => void
      let release!: () => void
      const came = new Promise<void>((r) => (arrived = r))
      const open = new Promise<void>((r) => (release = r))
      gate = { path: p, arrived, open }
      return { came, release }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

describe("roots sharing a content store", () => {
  it("refuses a store that cannot be one with one line, creating nothing", () => {
    const base = tempDir()
    const root = path.join(base, "root")
    fs.mkdirSync(root)
    fs.writeFileSync(path.join(base, "file"), "x")
    fs.mkdirSync(path.join(base, "full"))
    fs.writeFileSync(path.join(base, "full", "precious"), "x")
    const refused = (store: string, reason: string, env?: Record<string, string>) => {
      const r = conary(["init", "--root", root, ...(env ? [] : ["--store", store])], { env })
      expect(r.code).toBe(1)
      expect(r.stderr).toBe(`conary: store ${store}: ${reason}\n`)
      expect(fs.readdirSync(root)).toEqual([])
    }
    refused(path.join(base, "file"), "is not a directory")
    refused(path.join(root, "var/store"), `is inside the root ${root}, where troves install files; put the store outside the roots that use it`)
    refused(base, `contains the root ${root}; put the store beside the roots that use it`)
    refused(path.join(base, "full"), "is not empty and is no conary store (it has no conary-store file); name an empty or new directory")
    refused(path.join(base, "no/such"), "is not usable: no such file or directory (mkdir)", { CONARY_STORE: path.join(base, "no/such") })
    refused("''", "is empty; name a directory (a script's unset variable?)", { CONARY_STORE: "" })
    expect(fs.readdirSync(path.join(base, "full"))).toEqual(["precious"])
  })

  it("moves a root to another store with what it needs, and keeps using the store it recorded", () => {
    const base = tempDir()
    const [root, repo, store] = ["root", "repo", "shared"].map((d) => path.join(base, d)) as [string, string, string]
    fs.mkdirSync(root)
    fs.mkdirSync(repo)
    const r = ["--root", root]
    buildTrove(repo, "app", "1.0-1-1", { "usr/bin/app": "one\n" })
    buildTrove(repo, "app", "2.0-1-1", { "usr/bin/app": "two\n" })
    ok(["init", ...r])
    ok(["source", "add", "local", repo, ...r])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app=1.0", ...r])
    ok(["apply", ...r])
    ok(["desired", "add", "app=2.0", ...r])
    const moved = conary(["apply", "--store", store, ...r])
    expect(moved.code).toBe(0)
    expect(moved.stderr).toBe(`conary: this root now uses the store ${store} (1 object it needs copied from ${root}/var/lib/conary/store)\n`)
    expect(storeHas(store, "one\n") && storeHas(store, "two\n")).toBe(true)
    expect(fs.readdirSync(path.join(store, "roots"))).toHaveLength(1)
    expect(fs.readdirSync(path.join(root, "var/lib/conary/store/roots"))).toEqual([])
    // Without the archives, rollback takes app 1.0 from the store the root recorded.
    fs.rmSync(repo, { recursive: true })
    ok(["rollback", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("one\n")
    expect(JSON.parse(ok(["status", "--json", ...r])).store).toEqual({ path: store, shared: true })
  })

  it.skipIf(skipNginx)(
    "fetches each object once for all roots, also applying at once; gc of one root keeps what the others need, waits for their applies, and drops a vanished root",
    async () => {
      const work = tempDir()
      const inputs = path.join(work, "inputs")
      const www = path.join(work, "www")
      fs.mkdirSync(inputs)
      const content = {
        app1: "app one\n",
        app2: "app two\n",
        lib: "lib data\n".repeat(100),
        extra: "extra\n",
        lonely: "only root c has this\n",
        slow: "fetched while a gc waits\n",
      }
      buildTrove(inputs, "app", "1.0-1-1", { "usr/bin/app": content.app1, "usr/share/lib/data": content.lib })
      buildTrove(inputs, "app", "2.0-1-1", { "usr/bin/app": content.app2, "usr/share/lib/data": content.lib })
      buildTrove(inputs, "extra", "1.0-1-1", { "usr/bin/extra": content.extra })
      buildTrove(inputs, "lonely", "1.0-1-1", { "usr/bin/lonely": content.lonely })
      buildTrove(inputs, "slow", "1.0-1-1", { "usr/bin/slow": content.slow })
      ok(["key", "generate", path.join(work, "k")])
      ok(["repo", "build", path.join(www, "repo"), inputs, "--sign", path.join(work, "k.key")])
      const store = path.join(work, "store")
      const nginx = await startNginx(path.join(work, "nginx"), www)
      const proxy = await gatedProxy(nginx.url)
      const roots = Object.fromEntries(["a", "b", "c", "d"].map((n) => [n, path.join(work, n)]))
      const r = (n: string) => ["--root", roots[n]!]
      try {
        await Promise.all(
          ["a", "b", "c", "d"].map(async (n) => {
            fs.mkdirSync(roots[n]!)
            // d takes the store from the environment, and its repository through the proxy.
            if (n === "d") await okAsync(["init", ...r(n)], { env: { CONARY_STORE: store } })
            else await okAsync(["init", ...r(n), "--store", store])
            await okAsync(["source", "add", "web", `${n === "d" ? proxy.url : nginx.url}/repo`, "--trust", path.join(work, "k.pub"), ...r(n)])
            await okAsync(["source", "sync", ...r(n)])
            await okAsync(["desired", "add", "app=1.0", ...(n === "c" ? ["lonely"] : []), ...r(n)])
          }),
        )
        // An unowned file where extra installs one: b's apply saves it into the shared store.
        fs.mkdirSync(path.join(roots.b!, "usr/bin"), { recursive: true })
        fs.writeFileSync(path.join(roots.b!, "usr/bin/extra"), "the admin's own\n")

        // Four roots apply at once: all succeed, and nginx serves each content once.
        await Promise.all(["a", "b", "c", "d"].map((n) => okAsync(["apply", ...r(n)])))
        expect(servedCounts(nginx, [content.app1, content.lib, content.lonely])).toEqual([1, 1, 1])
        const tree = listTree(roots.a!)
        expect(fs.readFileSync(path.join(roots.a!, "usr/bin/app"), "utf8")).toBe(content.app1)
        for (const n of ["b", "d"]) expect(listTree(roots[n]!)).toEqual({ ...tree, ...(n === "b" ? { "usr/bin/extra": expect.anything() } : {}) })
        expect(fs.readFileSync(path.join(roots.c!, "usr/bin/lonely"), "utf8")).toBe(content.lonely)
        expect(JSON.parse(await okAsync(["status", "--json", ...r("d")])).store).toEqual({ path: store, shared: true })
        expect(fs.existsSync(path.join(roots.a!, "var/lib/conary/store/objects"))).toBe(false)

        // One after another: what a has fetched, b does not fetch again.
        await okAsync(["desired", "add", "app=2.0", ...r("a")])
        await okAsync(["apply", ...r("a")])
        let mark = requests(nginx).length
        await okAsync(["desired", "add", "extra", ...r("b")])
        await okAsync(["apply", ...r("b")])
        expect(servedCounts(nginx, [content.extra], mark)).toEqual([1])
        mark = requests(nginx).length
        await okAsync(["desired", "add", "app=2.0", ...r("b")])
        await okAsync(["apply", ...r("b")])
        expect(servedCounts(nginx, [content.app2], mark)).toEqual([0])
        await okAsync(["desired", "add", "app=1.0", ...r("b")])
        await okAsync(["apply", ...r("b")])

        // gc of a while d's apply is fetching: refused at once, or waited for; d's contents stay.
        await okAsync(["desired", "add", "slow", ...r("d")])
        const held = proxy.hold(objectPath(sha256(content.slow)))
        const applying = okAsync(["apply", ...r("d")])
        await held.came
        const busy = await conaryAsync(["gc", ...r("a")])
        expect(busy.code).toBe(1)
        expect(busy.stderr).toMatch(/^conary: store \S+: is in use \(an apply of a root sharing it, or another gc\); gave up after 0 s \(see --lock-timeout\)\n$/)
        const collecting = okAsync(["gc", "--keep", "1", "--lock-timeout", "60", ...r("a")])
        await new Promise((resolve) => setTimeout(resolve, 1000))
        held.release()
        await applying
        // What it frees are metadata objects the roots read through the store (parts, manifests: their databases keep them).
        expect(await collecting).toMatch(/^Store \S+ is shared with 3 other roots: what they need was kept\.\nRemoved 1 generation and \d+ store objects/)
        expect(fs.readFileSync(path.join(roots.d!, "usr/bin/slow"), "utf8")).toBe(content.slow)
        for (const c of Object.values(content)) expect(storeHas(store, c)).toBe(true)
      } finally {
        await proxy.close()
        await nginx.stop()
      }

      // Offline from here: what b needs comes from the shared store alone. a no longer references app 1.0.
      fs.writeFileSync(path.join(roots.b!, "usr/bin/app"), "drifted\n")
      expect(ok(["apply", ...r("b")])).toContain("! repair /usr/bin/app")
      expect(fs.readFileSync(path.join(roots.b!, "usr/bin/app"), "utf8")).toBe(content.app1)
      ok(["verify", ...r("b")])
      // Back before extra: its file goes, and the admin's own comes back from the store.
      ok(["rollback", "1", ...r("b")])
      expect(fs.readFileSync(path.join(roots.b!, "usr/bin/extra"), "utf8")).toBe("the admin's own\n")

      // A root that vanished is dropped from the registry, and what only it needed is freed.
      fs.rmSync(roots.c!, { recursive: true })
      const gc = conary(["gc", ...r("a")])
      expect(gc.code).toBe(0)
      expect(gc.stderr).toBe(`conary: store ${store}: dropped root ${roots.c} (its database ${roots.c}/var/lib/conary/conary.db is gone) from its registry\n`)
      // lonely's content, and b's saved file (on disk again since the rollback): as a root's own gc would
      expect(gc.stdout).toMatch(/is shared with 2 other roots[^]*Removed 0 generations and 2 store objects/)
      expect(storeHas(store, content.lonely)).toBe(false)
      expect(storeHas(store, "the admin's own\n")).toBe(false)
      expect(fs.readdirSync(path.join(store, "roots"))).toHaveLength(3)
      expect(ok(["rollback", ...r("d")])).toContain("- slow 1.0-1-1")
    },
    300_000,
  )
})
