import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { spawn, spawnSync } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { unzstd } from "../src/source/decompress.js"
import { FORMAT_VERSION, signEnvelope } from "../src/source/repo-meta.js"
import { buildTrove, conaryAsync, mustSkip, ok, okAsync, setupRoot, sha256 } from "./helpers.js"
import { hasNginx, requests, startNginx } from "./nginx.js"

// A repository behind a server that stalls, lies, sends endless bodies,
// redirects and rate-limits. Each server is a node:http server in this
// process; the CLI runs as a subprocess with short timeouts.

const TIMEOUT = "0.5"
const env = { CONARY_HTTP_TIMEOUT: TIMEOUT }
const run = (args: ReadonlyArray<string>) => conaryAsync(args, { env })
const must = (args: ReadonlyArray<string>) => okAsync(args, { env })

let work: string
let repoDir: string
let pub: string
let key: crypto.KeyObject
/** the trove's objects, by the path of the file that holds each; url is the compressed object's */
let objects: Map<string, { sha: string; size: number; url: string; compressed: number }>
let server: http.Server
let base: string

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, serve: () => void) => void
let handler: Handler
/** every request: path (with its mirror prefix), Range header, arrival time */
let seen: Array<{ path: string; range: string | undefined; at: number }> = []

/** Serves the repository under any first path segment (`/good/repo.zst`), with ranges. */
const serve = (req: http.IncomingMessage, res: http.ServerResponse) => {
  const rel = new URL(req.url!, base).pathname.split("/").slice(2).join("/")
  const file = path.join(repoDir, rel)
  if (!rel || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) return res.writeHead(404).end()
  const body = fs.readFileSync(file)
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "")
  if (!range) return res.writeHead(200, { "content-length": body.length }).end(body)
  const start = Number(range[1])
  if (start >= body.length) return res.writeHead(416, { "content-range": `bytes */${body.length}` }).end()
  res.writeHead(206, { "content-range": `bytes ${start}-${body.length - 1}/${body.length}`, "content-length": body.length - start }).end(body.subarray(start))
}

// Contents that do not compress to nothing: downloads of them can be cut and resumed.
const noise = (n: number) => crypto.randomBytes(n).toString("hex")
const files = {
  "usr/bin/app": { content: "#!/bin/sh\necho one\n", mode: 0o755 },
  "usr/share/app/a": noise(20_000),
  "usr/share/app/b": noise(20_001),
  "usr/share/app/c": noise(20_002),
  "usr/share/app/d": noise(20_003),
  "usr/share/app/e": noise(20_004),
  "usr/share/app/f": noise(20_005),
}
const content = (file: string) => {
  const spec = files[file.replace(/^\//, "") as keyof typeof files]
  return typeof spec === "string" ? spec : spec.content
}
const TOP = "repo.zst"
const zstd = (data: Buffer | string): Buffer => spawnSync("zstd", ["-q", "-c"], { input: data }).stdout

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "conary-http-"))
  const inputs = path.join(work, "inputs")
  fs.mkdirSync(inputs)
  buildTrove(inputs, "app", "1.0-1-1", files)
  ok(["key", "generate", path.join(work, "k")])
  pub = path.join(work, "k.pub")
  key = crypto.createPrivateKey(fs.readFileSync(path.join(work, "k.key")))
  repoDir = path.join(work, "repo")
  ok(["repo", "build", repoDir, inputs, "--sign", path.join(work, "k.key")])
  objects = new Map(
    Object.keys(files).map((f) => {
      const sha = sha256(content(f))
      const url = `/objects/${sha.slice(0, 2)}/${sha.slice(2)}.zst`
      return [`/${f}`, { sha, size: Buffer.byteLength(content(f)), url, compressed: fs.statSync(path.join(repoDir, url)).size }]
    }),
  )
  server = http.createServer((req, res) => {
    seen.push({ path: req.url!, range: req.headers.range, at: Date.now() })
    handler(req, res, () => serve(req, res))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(() => {
  server.closeAllConnections()
  server.close()
  fs.rmSync(work, { recursive: true, force: true })
})

const object = (file: string) => objects.get(file)!
/** a file content's object (not a metadata part or manifest) */
const isContent = (p: string) => [...objects.values()].some((o) => p.endsWith(o.url))
const requestsTo = (prefix: string) => seen.filter((s) => s.path.startsWith(prefix))

/** A root with repository source NAME at base/PREFIX (and mirrors), synced, desiring app. */
const rootWith = async (sources: Record<string, string[]>) => {
  const { root, r } = setupRoot()
  for (const [name, urls] of Object.entries(sources)) await must(["source", "add", name, ...urls, "--trust", pub, ...r])
  await must(["source", "sync", ...r])
  await must(["desired", "add", "app", ...r])
  return { root, r }
}

describe("a hostile repository server", () => {
  it("bounds every wait and every body, resumes and restarts downloads, and honours Retry-After; plan asks nothing", async () => {
    handler = (_req, _res, serve) => serve()
    const { root, r } = await rootWith({ s: [`${base}/s`] })
    const a = object("/usr/share/app/a")
    const b = object("/usr/share/app/b")

    // plan works from the synced state and the manifests it fetched once: it asks the server nothing more.
    await must(["plan", ...r])
    handler = (_req, res) => res.writeHead(503).end()
    seen = []
    expect(await must(["plan", ...r])).toContain("+ app 1.0-1-1")
    expect(seen).toEqual([])

    // Headers that never come: four attempts, then one line naming the URL.
    handler = (req, _res, serve) => (req.url!.endsWith(`/${TOP}`) ? undefined : serve())
    const stalled = await run(["source", "sync", ...r])
    expect(stalled.stderr).toBe(`conary: source s: fetching ${TOP}: ${base}/s/${TOP} sent nothing for ${TIMEOUT} s\n`)
    expect(requestsTo(`/s/${TOP}`)).toHaveLength(4)

    // Metadata that never ends: refused at 64 MiB, not read into memory past that.
    handler = (req, res, serve) => {
      if (!req.url!.endsWith(`/${TOP}`)) return serve()
      const chunk = Buffer.alloc(1 << 20, 0x20)
      res.writeHead(200)
      const more = () => {
        while (!res.destroyed && res.write(chunk));
      }
      res.on("drain", more)
      more()
    }
    const endless = await run(["source", "sync", ...r])
    expect(endless.stderr).toBe(`conary: source s: fetching ${TOP}: ${base}/s/${TOP} sent more than the ${64 << 20} bytes allowed for it\n`)

    // A body that stops halfway and never ends: apply fails before writing anything.
    const half = (res: http.ServerResponse) => {
      const body = fs.readFileSync(path.join(repoDir, a.url))
      res.writeHead(200, { "content-length": body.length })
      res.write(body.subarray(0, body.length >> 1))
    }
    handler = (req, res, serve) => (req.url === `/s${a.url}` ? half(res) : serve())
    const stalledBody = await run(["apply", ...r])
    expect(stalledBody.stderr).toBe(`conary: content ${a.sha.slice(0, 16)}: source s: ${base}/s${a.url} sent nothing for ${TIMEOUT} s\n`)
    expect(fs.existsSync(path.join(root, "usr/share/app"))).toBe(false)
    // (the other objects did come: forget them, so the next step starts from an empty store again)
    const store = path.join(root, "var/lib/conary/store")
    fs.rmSync(path.join(store, "objects"), { recursive: true })

    // An object with bytes after its own: cut off at what zstd can need for the size its metadata names.
    handler = (req, res, serve) => {
      if (req.url !== `/s${b.url}`) return serve()
      res.writeHead(200)
      res.write(fs.readFileSync(path.join(repoDir, b.url)))
      res.end(Buffer.alloc(1 << 20))
    }
    const long = await run(["apply", ...r])
    expect(long.stderr).toMatch(
      new RegExp(`^conary: content ${b.sha.slice(0, 16)}: source s: ${base}/s${b.url} sent more than the \\d+ bytes a compressed object of ${b.size} bytes can take\n$`),
    )
    expect(fs.existsSync(path.join(root, "usr/share/app"))).toBe(false)
    fs.rmSync(path.join(store, "objects"), { recursive: true })

    // Downloads in the store's tmp/, as a killed apply leaves them.
    const tmp = path.join(store, "tmp")
    fs.rmSync(tmp, { recursive: true })
    fs.mkdirSync(tmp)
    const part = (file: string, bytes: Buffer | string) => fs.writeFileSync(path.join(tmp, `${object(file).sha}.part`), bytes)
    const compressed = (file: string) => fs.readFileSync(path.join(repoDir, object(file).url))
    const d = object("/usr/share/app/d")
    part("/usr/share/app/c", compressed("/usr/share/app/c")) // complete: used without a request
    part("/usr/share/app/d", "x".repeat(d.compressed)) // complete but wrong: its resumption is refused (416), downloaded again
    part("/usr/share/app/e", "x".repeat(1000)) // started wrong: resumed, fails verification, downloaded again
    part("/usr/share/app/f", compressed("/usr/share/app/f").subarray(0, 1000)) // the server refuses to resume it (416)

    // Retry-After is honoured, in seconds or as a date, up to the timeout (2 s here).
    const app = object("/usr/bin/app")
    const first = new Set<string>()
    handler = (req, res, serve) => {
      const url = req.url!
      const once = !first.has(url)
      first.add(url)
      if (once && url.endsWith(`/${TOP}`)) return res.writeHead(503, { "retry-after": "1" }).end()
      if (once && url === `/s${app.url}`) return res.writeHead(429, { "retry-after": new Date(Date.now() + 3000).toUTCString() }).end()
      if (once && url === `/s${b.url}`) return res.writeHead(503, { "retry-after": "3600" }).end()
      if (once && url === `/s${a.url}`) return half(res) // stalls once, then resumes
      if (url === `/s${object("/usr/share/app/f").url}` && req.headers.range) return res.writeHead(416).end()
      serve()
    }
    seen = []
    const patient = { CONARY_HTTP_TIMEOUT: "2" }
    await okAsync(["source", "sync", ...r], { env: patient })
    await okAsync(["apply", ...r], { env: patient })
    for (const f of Object.keys(files)) expect(fs.readFileSync(path.join(root, f), "utf8")).toBe(content(`/${f}`))
    const gap = (url: string) => {
      const [x, y] = requestsTo(url)
      return y!.at - x!.at
    }
    expect(gap(`/s/${TOP}`)).toBeGreaterThanOrEqual(1000)
    expect(gap(`/s${app.url}`)).toBeGreaterThanOrEqual(1500)
    const ranges = (file: string) => requestsTo(`/s${object(file).url}`).map((s) => s.range ?? "whole")
    expect(ranges("/usr/share/app/a")).toEqual(["whole", `bytes=${object("/usr/share/app/a").compressed >> 1}-`])
    expect(ranges("/usr/share/app/b")).toEqual(["whole", "whole"]) // an hour was not waited
    expect(ranges("/usr/share/app/c")).toEqual([])
    expect(ranges("/usr/share/app/d")).toEqual([`bytes=${d.compressed}-`, "whole"])
    expect(ranges("/usr/share/app/e")).toEqual(["bytes=1000-", "whole"])
    expect(ranges("/usr/share/app/f")).toEqual(["bytes=1000-", "whole"])
    expect(fs.readdirSync(tmp)).toEqual([])
  }, 60_000)

  it("gives up on a server that never completes a connection, naming the URL, with nothing written", async () => {
    // A listener whose process is stopped: the kernel queues connections up to the backlog and then drops the
    // SYNs of more, so a connect stalls as it does to a host that has gone away.
    const child = spawn(process.execPath, ["-e", "require('net').createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, function () { console.log(this.address().port) })"])
    const fillers: net.Socket[] = []
    try {
      const port = Number(await new Promise<string>((resolve) => child.stdout.once("data", (d: Buffer) => resolve(d.toString()))))
      child.kill("SIGSTOP")
      for (let i = 0; i < 4; i++) fillers.push(net.connect(port, "127.0.0.1").on("error", () => {}))
      await new Promise((resolve) => setTimeout(resolve, 200))
      const { r } = setupRoot()
      await must(["source", "add", "s", `http://127.0.0.1:${port}/repo`, "--trust", pub, ...r])
      const listed = async () => JSON.parse(await must(["source", "list", "--json", ...r])).sources.find((x: { name: string }) => x.name === "s")
      const before = await listed()
      const stalled = await run(["source", "sync", ...r])
      expect(stalled.code).toBe(1)
      expect(stalled.stderr).toBe(`conary: source s: fetching root/1.json: cannot connect to http://127.0.0.1:${port}/repo/root/1.json within ${TIMEOUT} s\n`)
      expect(await listed()).toEqual(before)
    } finally {
      for (const f of fillers) f.destroy()
      child.kill("SIGKILL")
    }
  }, 30_000)

  it("falls back to another source offering the same content, and names each when all fail", async () => {
    handler = (_req, _res, serve) => serve()
    const { root, r } = await rootWith({ a: [`${base}/a`], b: [`${base}/b`] })
    const failing = new Set(["a", "b"])
    handler = (req, res, serve) => {
      const mirror = req.url!.split("/")[1]!
      if (!isContent(req.url!) || !failing.has(mirror)) return serve()
      if (mirror === "a") return res.writeHead(500).end()
      res.writeHead(404).end()
    }
    const bad = await run(["apply", ...r])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(
      new RegExp(`^conary: content [0-9a-f]{16}: source a: ${base}/a/objects/\\S+ answered 500; source b: ${base}/b/objects/\\S+ answered 404\n$`),
    )
    failing.delete("b")
    seen = []
    await must(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe(files["usr/bin/app"].content)
    expect(seen.filter((s) => s.path.startsWith("/b/") && isContent(s.path))).toHaveLength(objects.size)
  }, 30_000)

  it("follows at most 5 redirects, only to http(s), and records where they led", async () => {
    handler = (req, res, serve) => {
      const [, mirror, ...rest] = req.url!.split("/")
      if (mirror === "moved") return res.writeHead(302, { location: `/good/${rest.join("/")}` }).end()
      if (mirror === "loop") return res.writeHead(301, { location: req.url! }).end()
      if (mirror === "file") return res.writeHead(302, { location: "file:///etc/passwd" }).end()
      serve()
    }
    const { r } = setupRoot()
    expect((await run(["source", "add", "bad", "http://", ...r])).stderr).toBe("conary: source bad: 'http://' is not a valid URL\n")
    for (const name of ["moved", "loop", "file"]) await must(["source", "add", name, `${base}/${name}`, "--trust", pub, ...r])
    seen = []
    const loop = await run(["source", "sync", "loop", ...r])
    expect(loop.stderr).toBe(`conary: source loop: fetching root/1.json: ${base}/loop/root/1.json: more than 5 redirects\n`)
    expect(requestsTo("/loop/")).toHaveLength(6)
    const file = await run(["source", "sync", "file", ...r])
    expect(file.stderr).toBe(`conary: source file: fetching root/1.json: ${base}/file/root/1.json redirects to file: (only http and https are followed)\n`)
    await must(["source", "sync", "moved", ...r])
    const show = JSON.parse(await must(["show", "app", "--json", ...r]))
    expect(show.provenance.map((p: { source: string; origin: string }) => [p.source, p.origin])).toEqual([["moved", `${base}/good`]])
  }, 30_000)

  it("syncs from the first mirror with good metadata, says why the others were skipped, and fetches objects there first", async () => {
    const signed = JSON.parse(JSON.parse(unzstd(fs.readFileSync(path.join(repoDir, TOP)), 1 << 26).toString()).signed)
    // The real metadata signed by a key the source does not trust; metadata the trusted key signed that does not decode.
    const forged = zstd(signEnvelope(signed, [crypto.generateKeyPairSync("ed25519").privateKey]))
    const broken = zstd(signEnvelope({ formatVersion: FORMAT_VERSION }, [key]))
    handler = (req, res, serve) => {
      const [, mirror, rel] = req.url!.split("/")
      if (mirror === "forged" && rel === TOP) return res.end(forged)
      if (mirror === "broken" && rel === TOP) return res.end(broken)
      if (mirror === "good" && isContent(req.url!)) return res.writeHead(503).end()
      serve()
    }
    const down = "http://127.0.0.1:1/repo"
    const { root, r } = setupRoot()
    const urls = [down, `${base}/forged`, `${base}/broken`, `${base}/good`]
    await must(["source", "add", "m", urls[0]!, urls[1]!, "--mirror", urls[2]!, "--mirror", urls[3]!, "--trust", pub, ...r])
    const sync = (await must(["source", "sync", "m", ...r])).split("\n")
    // (one line per mirror skipped, with why, then the result)
    expect(sync[0]).toBe(`m: skipped mirror ${down}: fetching root/1.json: cannot reach ${down}/root/1.json (ECONNREFUSED)`)
    expect(sync[1]).toBe(
      `m: skipped mirror ${base}/forged: the metadata signature does not verify against the trusted keys (root 1): tampered, or signed by another or a revoked key`,
    )
    expect(sync[2]).toMatch(new RegExp(`^m: skipped mirror ${base}/broken: bad ${TOP}: `))
    expect(sync[3]).toMatch(new RegExp(`^m: 1 troves \\(1 new or changed, 0 gone\\) from ${base}/good; metadata version 1, `))
    expect(await must(["source", "list", ...r])).toContain(`mirror ${base}/good (synced from)`)
    const status = JSON.parse((await run(["status", "--json", ...r])).stdout)
    expect(status.sources.filter((s: { name: string }) => s.name === "m")).toEqual([
      expect.objectContaining({ name: "m", location: down, mirrors: urls.slice(1), syncedFrom: `${base}/good`, version: 1 }),
    ])

    // Objects: the mirror that served the metadata first; it fails, so the others in order.
    seen = []
    await must(["desired", "add", "app", ...r])
    await must(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe(files["usr/bin/app"].content)
    const app = object("/usr/bin/app").url
    expect(seen.filter((s) => s.path.endsWith(app)).map((s) => s.path.split("/")[1])).toEqual(["good", "good", "good", "good", "forged"])

    // No mirror serves good metadata: the error names each one's reason.
    const mirrors = handler
    handler = (req, res, serve) => (req.url === `/good/${TOP}` ? res.writeHead(404).end() : mirrors(req, res, serve))
    const none = await run(["source", "sync", "m", ...r])
    expect(none.stderr).toMatch(
      new RegExp(
        `^conary: source m: no mirror served good metadata: ${down}: fetching root/2.json: cannot reach ${down}/root/2.json \\(ECONNREFUSED\\); ` +
          `${base}/forged: the metadata signature does not verify [^;]+; ${base}/broken: bad ${TOP}: [^;]+; ${base}/good: ${base}/good has no ${TOP}\n$`,
      ),
    )
  }, 60_000)
})

describe("mirrors and conditional sync through nginx", () => {
  it.skipIf(mustSkip(hasNginx(), "mirrors through nginx", "nginx is not installed", "sudo sh scripts/test-tools.sh"))(
    "skips a mirror with broken metadata, fetches objects from the good one, and downloads unchanged metadata once",
    async () => {
      const www = path.join(work, "www")
      fs.cpSync(repoDir, path.join(www, "good"), { recursive: true })
      fs.cpSync(repoDir, path.join(www, "stale"), { recursive: true })
      fs.writeFileSync(path.join(www, "stale", TOP), "{ truncated")
      // Built a minute ago: a copy served in the second it changed carries no validators to re-sync with.
      const built = new Date(Date.now() - 60_000)
      fs.utimesSync(path.join(www, "good", TOP), built, built)
      const nginx = await startNginx(path.join(work, "nginx"), www)
      try {
        const { root, r } = setupRoot()
        await must(["source", "add", "web", `${nginx.url}/stale`, "--mirror", `${nginx.url}/good`, "--trust", pub, ...r])
        expect(await must(["source", "sync", ...r])).toContain(`web: 1 troves (1 new or changed, 0 gone) from ${nginx.url}/good`)
        await must(["desired", "add", "app", ...r])
        await must(["apply", ...r])
        expect(fs.readFileSync(path.join(root, "usr/share/app/a"), "utf8")).toBe(content("usr/share/app/a"))
        const log = () => requests(nginx).map(([m, p, s, b]) => `${m} ${p} ${s} ${b}`)
        expect(log().filter((l) => isContent(l.split(" ")[1]!)).sort()).toEqual(
          [...objects.values()].map((o) => `GET /good${o.url} 200 ${o.compressed}`).sort(),
        )
        // Again: the good mirror's metadata is unchanged (304, no body); plan asks nothing.
        const before = log().length
        expect(await must(["source", "sync", ...r])).toContain(`web: 1 troves (metadata unchanged from ${nginx.url}/good)`)
        const resync = log().slice(before)
        expect(resync).toContain(`GET /good/${TOP} 304 0`)
        expect(resync.filter((l) => l.startsWith(`GET /good/${TOP} 200`) || l.includes("/objects/"))).toEqual([])
        const synced = log().length
        await must(["plan", ...r])
        expect(log().length).toBe(synced)
      } finally {
        await nginx.stop()
      }
    },
    30_000,
  )
  it("keeps no validators of metadata served in the second it changed: a change in that same second is not taken for the old", async () => {
    // A server whose top document's validators say nothing of its content (nginx's ETag is the mtime in
    // seconds and the size: a renewal within the same second, of the same size, has the same one).
    const own = path.join(work, "same-second")
    fs.cpSync(repoDir, own, { recursive: true })
    let changedAgo = 0
    handler = (req, res) => {
      const file = path.join(own, new URL(req.url!, base).pathname.split("/").slice(2).join("/"))
      if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) return res.writeHead(404).end()
      const now = Date.now()
      const headers = { etag: '"same"', "last-modified": new Date(now - changedAgo).toUTCString(), date: new Date(now).toUTCString() }
      if (req.headers["if-none-match"] === '"same"') return res.writeHead(304, headers).end()
      res.writeHead(200, headers).end(fs.readFileSync(file))
    }
    const synced = async (r: string[]) => (await must(["source", "sync", "s", ...r])).trim()
    const renew = () => ok(["repo", "build", own, "--sign", path.join(work, "k.key")])
    // Changed the second it is served: read whole again, and the renewal is seen.
    const racing = setupRoot()
    await must(["source", "add", "s", `${base}/s`, "--trust", pub, ...racing.r])
    expect(await synced(racing.r)).toMatch(/^s: 1 troves \(1 new or changed, 0 gone\); metadata version 1,/)
    renew()
    expect(await synced(racing.r)).toMatch(/^s: 1 troves \(0 new or changed, 0 gone\); metadata version 2,/)
    // Changed a minute before: its validators are kept, and an unchanged document is not sent again.
    changedAgo = 60_000
    const settled = setupRoot()
    await must(["source", "add", "s", `${base}/s`, "--trust", pub, ...settled.r])
    expect(await synced(settled.r)).toMatch(/^s: 1 troves \(1 new or changed, 0 gone\); metadata version 2,/)
    expect(await synced(settled.r)).toMatch(/^s: 1 troves \(metadata unchanged\); metadata version 2,/)
  })
})
