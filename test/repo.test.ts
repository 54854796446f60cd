import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, mustSkip, ok, okAsync, setupRoot, tempDir } from "./helpers.js"
import { hasNginx, requests, startNginx } from "./nginx.js"

const app = (text: string) => ({
  "usr/bin/app": { content: `#!/bin/sh\necho ${text}\n`, mode: 0o755 },
  "usr/share/app/data": "shared data\n".repeat(1000),
  "usr/share/doc/app/README": "docs\n",
})

describe("signed repositories over HTTP", () => {
  it.skipIf(mustSkip(hasNginx(), "repository through nginx", "nginx is not installed", "sudo sh scripts/test-tools.sh"))("installs and updates through nginx, fetching only new contents, and refuses tampering", async () => {
    const work = tempDir()
    const www = path.join(work, "www")
    const repoDir = path.join(www, "repo")
    const inputs = path.join(work, "inputs")
    fs.mkdirSync(inputs, { recursive: true })
    ok(["key", "generate", path.join(work, "fleet")])
    const key = path.join(work, "fleet.key")
    const pub = path.join(work, "fleet.pub")
    const build = (version: string, text: string) => buildTrove(inputs, "app", version, app(text))
    build("1.0-1-1", "one")
    const built = JSON.parse(ok(["repo", "build", repoDir, inputs, "--sign", key, "--json"]))
    expect(built).toMatchObject({ troves: 1, added: 1, objects: 3, signed: true })
    const nginx = await startNginx(path.join(work, "nginx"), www)
    const { root, r } = setupRoot()
    try {
      ok(["source", "add", "web", `${nginx.url}/repo`, "--trust", pub, ...r])
      expect(ok(["source", "sync", ...r])).toContain("web: 1 troves (1 new or changed, 0 gone)")
      ok(["desired", "add", "app", ...r])
      ok(["apply", ...r])
      expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toContain("one")
      const objectsFetched = () => requests(nginx).filter(([m, p, s]) => m === "GET" && p.startsWith("/repo/objects/") && s < 400)
      expect(objectsFetched()).toHaveLength(3)

      // An update moves only the changed file's content.
      build("1.1-1-1", "two")
      expect(JSON.parse(ok(["repo", "build", repoDir, inputs, "--sign", key, "--json"]))).toMatchObject({ troves: 2, added: 1, objects: 4 })
      ok(["source", "sync", ...r])
      expect(ok(["apply", ...r])).toContain("~ app 1.0-1-1 → 1.1-1-1")
      expect(objectsFetched()).toHaveLength(4)
      expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toContain("two")

      // A tampered index is refused; the old index stays in force.
      const index = path.join(repoDir, "index.json")
      const original = fs.readFileSync(index)
      fs.writeFileSync(index, original.toString().replace("1.1-1-1", "1.1-1-2"))
      const tampered = conary(["source", "sync", ...r])
      expect(tampered.code).toBe(1)
      expect(tampered.stderr.trim()).toBe(
        "conary: source web: the index signature does not verify against the trusted key (tampered, or signed by another key)",
      )
      fs.writeFileSync(index, original)
      // Signed by another key: refused too.
      ok(["key", "generate", path.join(work, "other")])
      ok(["repo", "build", repoDir, inputs, "--sign", path.join(work, "other.key")])
      expect(conary(["source", "sync", ...r]).stderr).toContain("signature does not verify")
      ok(["repo", "build", repoDir, inputs, "--sign", key])

      // A tampered object is refused before anything is written.
      build("1.2-1-1", "three")
      ok(["repo", "build", repoDir, inputs, "--sign", key])
      ok(["source", "sync", ...r])
      const plan = JSON.parse(ok(["plan", "--json", ...r]))
      const sha = plan.files.find((f: { path: string }) => f.path === "/usr/bin/app").sha256 as string
      fs.writeFileSync(path.join(repoDir, "objects", sha.slice(0, 2), sha.slice(2)), "evil")
      const before = listTree(root)
      const bad = conary(["apply", ...r])
      expect(bad.code).toBe(1)
      expect(bad.stderr.trim()).toBe(
        `conary: content ${sha.slice(0, 16)}: source web: ${nginx.url}/repo/objects/${sha.slice(0, 2)}/${sha.slice(2)} does not match its sha256 (tampered or corrupt)`,
      )
      expect(listTree(root)).toEqual(before)
    } finally {
      await nginx.stop()
    }

    // Unreachable: plan works from the synced state, and apply says what it cannot fetch;
    // what is local still applies, offline.
    const unreachable = /^conary: source web: fetching index\.json: cannot reach http:\/\/127\.0\.0\.1:\d+\/repo\/index\.json \(ECONNREFUSED\)$/m
    expect(ok(["plan", ...r])).toContain("~ app 1.1-1-1 → 1.2-1-1")
    expect(conary(["apply", ...r]).stderr).toMatch(/^conary: content [0-9a-f]{16}: source web: cannot reach http:\/\/127\.0\.0\.1:\d+\/repo\/objects\/\S+ \(ECONNREFUSED\)$/m)
    expect(conary(["source", "sync", ...r]).stderr).toMatch(unreachable)
    ok(["desired", "add", "app=1.0", ...r])
    expect(ok(["apply", ...r])).toContain("~ app 1.1-1-1 → 1.0-1-1")
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toContain("one")
  }, 120_000)

  it("retries a download that breaks off and resumes it with a range request", async () => {
    const work = tempDir()
    const inputs = path.join(work, "inputs")
    fs.mkdirSync(inputs)
    buildTrove(inputs, "big", "1.0-1-1", { "usr/share/big": "0123456789".repeat(200_000) })
    const repoDir = path.join(work, "repo")
    ok(["repo", "build", repoDir, inputs])
    // A server that cuts the first download of each object halfway, then honours ranges.
    const seen: string[] = []
    const cut = new Set<string>()
    const server = http.createServer((req, res) => {
      const file = path.join(repoDir, decodeURIComponent(req.url!.replace(/^\/repo\//, "")))
      if (!fs.existsSync(file)) return res.writeHead(404).end()
      const body = fs.readFileSync(file)
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? "")
      seen.push(`${req.url} ${range ? `from ${range[1]}` : "whole"}`)
      if (req.url!.includes("/objects/") && !cut.has(req.url!)) {
        cut.add(req.url!)
        res.writeHead(200, { "content-length": body.length })
        res.write(body.subarray(0, body.length >> 1), () => res.destroy())
        return
      }
      if (range) {
        const start = Number(range[1])
        res.writeHead(206, { "content-range": `bytes ${start}-${body.length - 1}/${body.length}`, "content-length": body.length - start })
        return res.end(body.subarray(start))
      }
      res.writeHead(200, { "content-length": body.length }).end(body)
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/repo`
    try {
      // The server lives in this process: the CLI must run without blocking it.
      const { root, r } = setupRoot()
      await okAsync(["source", "add", "flaky", url, ...r])
      await okAsync(["source", "sync", ...r])
      await okAsync(["desired", "add", "big", ...r])
      await okAsync(["apply", ...r])
      expect(fs.readFileSync(path.join(root, "usr/share/big"), "utf8")).toBe("0123456789".repeat(200_000))
      const object = seen.filter((s) => s.includes("/objects/"))
      expect(object).toHaveLength(2)
      expect(object[0]).toMatch(/ whole$/)
      expect(object[1]).toMatch(/ from [1-9]\d*$/)
    } finally {
      server.close()
    }
  })

  it("serves the same layout from a plain directory, and works offline once contents are local", () => {
    const work = tempDir()
    const inputs = path.join(work, "inputs")
    fs.mkdirSync(inputs)
    buildTrove(inputs, "app", "1.0-1-1", app("one"))
    buildTrove(inputs, "app", "1.1-1-1", app("two"))
    const repoDir = path.join(work, "repo")
    ok(["repo", "build", repoDir, inputs])
    const { root, r } = setupRoot()
    ok(["key", "generate", path.join(work, "k")])
    expect(conary(["source", "add", "bad", repoDir, "--trust", path.join(work, "k.pub"), ...r]).code).toBe(0)
    expect(conary(["source", "sync", "bad", ...r]).stderr).toContain("the index is not signed, and this source requires a signature")
    ok(["source", "remove", "bad", ...r])
    ok(["source", "add", "mirror", repoDir, ...r])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app=1.0", ...r])
    ok(["apply", ...r])
    ok(["desired", "add", "app=1.1", ...r])
    ok(["apply", ...r])
    fs.rmSync(repoDir, { recursive: true })
    // Both versions' contents are in the store: back and forth without the repository.
    ok(["desired", "add", "app=1.0", ...r])
    expect(ok(["apply", ...r])).toContain("~ app 1.1-1-1 → 1.0-1-1")
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toContain("one")
    const status = JSON.parse(ok(["status", "--json", ...r]))
    expect(status).toMatchObject({ formatVersion: 1, generation: 3, installed: 1, converged: true, drift: { drifted: 0 } })
    fs.writeFileSync(path.join(root, "usr/bin/app"), "drift")
    const drifted = conary(["status", "--json", ...r])
    expect(drifted.code).toBe(2)
    expect(JSON.parse(drifted.stdout)).toMatchObject({ converged: false, drift: { drifted: 1 }, pending: { repair: 1 } })
  })
})
