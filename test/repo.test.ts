import { spawnSync } from "node:child_process"
import Database from "better-sqlite3"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { unzstd } from "../src/source/decompress.js"
import { signEnvelope } from "../src/source/repo-meta.js"
import { conary, listTree, mustSkip, ok, okAsync, setupRoot, sha256, tempDir, writeRawArchive } from "./helpers.js"
import { type Nginx, hasNginx, requests, startNginx } from "./nginx.js"
import { rawRpm } from "./rpm-helpers.js"

// Format version 2 repositories end to end: the real CLI against nginx on loopback.

const skipNginx = mustSkip(hasNginx(), "repository through nginx", "nginx is not installed", "sudo sh scripts/test-tools.sh")

/** Writes a native archive in-process (fast enough for dozens of troves), with a directory entry for every parent. */
const makeTrove = async (dir: string, name: string, version: string, files: Record<string, string | Buffer>, requires: string[] = []) => {
  const dirs = new Set<string>()
  for (const p of Object.keys(files)) for (let i = p.indexOf("/"); i > 0; i = p.indexOf("/", i + 1)) dirs.add(p.slice(0, i))
  const entry = { mode: 0o755, owner: "root", group: "root", size: 0, config: false, component: "runtime" }
  const objects: Record<string, Buffer | string> = {}
  const list: unknown[] = [...dirs].sort().map((d) => ({ ...entry, path: d, kind: "dir" }))
  for (const [p, content] of Object.entries(files)) {
    const sha = sha256(content)
    objects[`objects/${sha}`] = content
    list.push({ ...entry, path: p, kind: "file", mode: 0o644, sha256: sha, size: Buffer.byteLength(content) })
  }
  await writeRawArchive(path.join(dir, `${name}-${version}.ctrv`), { formatVersion: 1, name, version, flavor: "", requires, provides: [], files: list }, objects)
}

const zstd = (data: Buffer | string): Buffer => spawnSync("zstd", ["-q", "-c"], { input: data }).stdout
const topOf = (repo: string) => JSON.parse(unzstd(fs.readFileSync(path.join(repo, "repo.zst")), 1 << 26).toString())
const signedTop = (repo: string) => JSON.parse(topOf(repo).signed)
const objectFile = (repo: string, sha: string) => path.join(repo, "objects", sha.slice(0, 2), `${sha.slice(2)}.zst`)
const objectsIn = (repo: string) => new Set(fs.readdirSync(path.join(repo, "objects"), { recursive: true }).map(String).filter((f) => f.endsWith(".zst")))

/** Object requests nginx answered from index `from` of its log on. */
const objectGets = (nginx: Nginx, from = 0) => requests(nginx).slice(from).filter(([m, p, s]) => m === "GET" && p.startsWith("/repo/objects/") && s < 400)

const setup = async () => {
  const work = tempDir()
  const www = path.join(work, "www")
  const repo = path.join(www, "repo")
  const inputs = path.join(work, "inputs")
  fs.mkdirSync(inputs, { recursive: true })
  ok(["key", "generate", path.join(work, "k")])
  return { work, repo, inputs, key: path.join(work, "k.key"), pub: path.join(work, "k.pub"), www }
}

describe("format version 3 repositories over HTTP", () => {
  it.skipIf(skipNginx)("syncs metadata only, fetches a trove's manifest when a plan needs it, and re-syncs by one patch", async () => {
    const { work, repo, inputs, key, pub, www } = await setup()
    for (let i = 0; i < 40; i++) await makeTrove(inputs, `lib${i}`, "1.0-1-1", { [`usr/share/lib${i}/data`]: `lib ${i}\n`.repeat(50) })
    await makeTrove(inputs, "app", "1.0-1-1", { "usr/bin/app": "one\n" })
    expect(JSON.parse(ok(["repo", "build", repo, inputs, "--sign", key, "--json"]))).toMatchObject({ troves: 41, added: 41, version: 1, root: 1, signed: true })
    const parts = signedTop(repo).parts as Array<{ sha256: string }>
    const nginx = await startNginx(path.join(work, "nginx"), www)
    const { root, r } = setupRoot()
    // A second host, which syncs now and then only after two more builds.
    const later = setupRoot()
    try {
      ok(["source", "add", "web", `${nginx.url}/repo`, "--trust", pub, ...r])
      ok(["source", "add", "web", `${nginx.url}/repo`, "--trust", pub, ...later.r])
      ok(["source", "sync", ...later.r])
      const mark0 = requests(nginx).length
      expect(ok(["source", "sync", ...r])).toMatch(/^web: 41 troves \(41 new or changed, 0 gone\); metadata version 1, expires /m)
      // Metadata only: the parts, no manifest and no content.
      const objectPath = (sha: string) => `/repo/objects/${sha.slice(0, 2)}/${sha.slice(2)}.zst`
      expect(objectGets(nginx, mark0).map(([, p]) => p).sort()).toEqual(parts.map((p) => objectPath(p.sha256)).sort())
      const firstSyncBytes = objectGets(nginx, mark0).reduce((n, [, , , b]) => n + b, 0)

      ok(["desired", "add", "app", ...r])
      let mark = requests(nginx).length
      expect(ok(["plan", ...r])).toContain("+ app 1.0-1-1")
      expect(objectGets(nginx, mark)).toHaveLength(1) // app's manifest, nothing else
      mark = requests(nginx).length
      ok(["apply", ...r])
      expect(objectGets(nginx, mark)).toHaveLength(1) // its one content; the manifest is in the database
      expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("one\n")

      // One trove changes: a re-sync reads the top document and the one patch from the state it holds.
      await makeTrove(inputs, "app", "1.1-1-1", { "usr/bin/app": "two\n" })
      expect(JSON.parse(ok(["repo", "build", repo, inputs, "--sign", key, "--json"]))).toMatchObject({ troves: 42, added: 1, version: 2 })
      mark = requests(nginx).length
      expect(ok(["source", "sync", ...r])).toMatch(/^web: 42 troves \(1 new or changed, 0 gone\); metadata version 2/m)
      const resync = objectGets(nginx, mark)
      expect(resync.map(([, p]) => p)).toEqual([objectPath(signedTop(repo).patches[0].sha256)])
      expect(resync[0]![3]).toBeLessThan(firstSyncBytes / 4)
      expect(ok(["apply", ...r])).toContain("~ app 1.0-1-1 → 1.1-1-1")
      expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("two\n")
      const status = JSON.parse(conary(["status", "--json", ...r]).stdout)
      expect(status.sources).toContainEqual(expect.objectContaining({ name: "web", kind: "repo", version: 2, expires: signedTop(repo).expires, insecure: false }))
      expect(ok(["show", "lib7", "--files", ...r])).toContain("/usr/share/lib7/data")

      // Two builds later (a trove added, then only the expiry renewed): the other host reads one patch, from the
      // state it holds; this one reads nothing more than the top document.
      await makeTrove(inputs, "tool", "1.0-1-1", { "usr/bin/tool": "tool\n" })
      ok(["repo", "build", repo, inputs, "--sign", key])
      ok(["source", "sync", ...r])
      ok(["repo", "build", repo, "--sign", key])
      const patches = signedTop(repo).patches as Array<{ sha256: string }>
      expect(patches).toHaveLength(2)
      mark = requests(nginx).length
      expect(ok(["source", "sync", ...later.r])).toMatch(/^web: 43 troves \(2 new or changed, 0 gone\); metadata version 4/m)
      expect(objectGets(nginx, mark).map(([, p]) => p)).toEqual([objectPath(patches[1]!.sha256)])
      mark = requests(nginx).length
      expect(ok(["source", "sync", ...r])).toMatch(/^web: 43 troves \(0 new or changed, 0 gone\); metadata version 4/m)
      expect(objectGets(nginx, mark)).toEqual([])
      // Lines held of unknown state (a database that last synced format version 2): the parts, and the same troves.
      const db = new Database(path.join(later.root, "var/lib/conary/conary.db"))
      db.prepare("UPDATE available SET entry = NULL WHERE source = 'web' AND archive IN (SELECT archive FROM available LIMIT 3)").run()
      db.close()
      ok(["repo", "build", repo, "--sign", key])
      mark = requests(nginx).length
      expect(ok(["source", "sync", ...later.r])).toMatch(/^web: 43 troves \(0 new or changed, 0 gone\); metadata version 5/m)
      expect(objectGets(nginx, mark).map(([, p]) => p)).toEqual(signedTop(repo).parts.map((p: { sha256: string }) => objectPath(p.sha256)))
      expect(ok(["show", "tool", ...later.r])).toContain("1.0-1-1")
    } finally {
      await nginx.stop()
    }
    // Unreachable: a manifest that is not local cannot be planned; what is local still applies, offline.
    ok(["desired", "add", "lib3", ...r])
    expect(conary(["plan", ...r]).stderr).toMatch(/^conary: source web: fetching objects\/\S+\.zst: cannot reach http:\/\/127\.0\.0\.1:\d+\/repo\/objects\/\S+ \(ECONNREFUSED\)$/m)
    ok(["desired", "remove", "lib3", ...r])
    ok(["desired", "add", "app=1.0", ...r])
    expect(ok(["apply", ...r])).toContain("~ app 1.1-1-1 → 1.0-1-1")
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("one\n")
  }, 180_000)

  it.skipIf(skipNginx)("refuses tampered, wrong-key, rolled-back and expired metadata, and manifests and objects that do not match, applying nothing", async () => {
    const { work, repo, inputs, key, pub, www } = await setup()
    await makeTrove(inputs, "app", "1.0-1-1", { "usr/bin/app": "one\n" })
    ok(["repo", "build", repo, inputs, "--sign", key])
    const nginx = await startNginx(path.join(work, "nginx"), www)
    const { root, r } = setupRoot()
    const top = path.join(repo, "repo.zst")
    const refused = (args: string[], message: string) => {
      const run = conary([...args, ...r])
      expect(run.code).toBe(1)
      expect(run.stderr).toBe(`conary: ${message}\n`)
    }
    try {
      ok(["source", "add", "web", `${nginx.url}/repo`, "--trust", pub, ...r])
      ok(["source", "sync", ...r])
      ok(["desired", "add", "app", ...r])
      ok(["apply", ...r])
      const good = fs.readFileSync(top)

      // Tampered: the signed text changed under its signature.
      const env = topOf(repo)
      fs.writeFileSync(top, zstd(JSON.stringify({ ...env, signed: env.signed.replace(/"expires":"[^"]*"/, '"expires":"2999-01-01T00:00:00.000Z"') })))
      const badSignature =
        "source web: the metadata signature does not verify against the trusted keys (root 1): tampered, or signed by another or a revoked key"
      refused(["source", "sync"], badSignature)
      // Signed by another key.
      ok(["key", "generate", path.join(work, "other")])
      const other = path.join(work, "other-repo")
      ok(["repo", "build", other, inputs, "--sign", path.join(work, "other.key")])
      fs.copyFileSync(path.join(other, "repo.zst"), top)
      refused(["source", "sync"], badSignature)
      fs.writeFileSync(top, good)

      // Rolled back: version 1 again after version 2 was accepted. Nothing of it is applied.
      await makeTrove(inputs, "app", "1.1-1-1", { "usr/bin/app": "two\n" })
      ok(["repo", "build", repo, inputs, "--sign", key])
      ok(["source", "sync", ...r])
      ok(["desired", "add", "app=1.0", ...r])
      const second = fs.readFileSync(top)
      fs.writeFileSync(top, good)
      refused(["source", "sync"], "source web: the repository offers metadata version 1, older than version 2 already accepted (a rollback, or a stale mirror); refused")
      expect(JSON.parse(ok(["status", "--json", ...r])).sources.find((s: { name: string }) => s.name === "web").version).toBe(2)
      fs.writeFileSync(top, second)

      // Expired (a frozen mirror): refused, unless the lab says --allow-expired.
      ok(["repo", "build", repo, "--sign", key, "--expires", "0m"])
      const expires = signedTop(repo).expires
      refused(["source", "sync"], `source web: the repository's metadata (version 3) expired at ${expires} (a frozen or stale mirror; --allow-expired accepts it)`)
      expect(ok(["source", "sync", "--allow-expired", ...r])).toContain("metadata version 3")
      ok(["repo", "build", repo, "--sign", key])

      // A manifest whose bytes are not the ones its digest names: plan and apply refuse, the root stays.
      ok(["desired", "add", "app", ...r])
      const before = objectsIn(repo)
      await makeTrove(inputs, "app", "1.2-1-1", { "usr/bin/app": "three\n" })
      ok(["repo", "build", repo, inputs, "--sign", key])
      ok(["source", "sync", ...r])
      const manifest = [...objectsIn(repo)]
        .filter((f) => !before.has(f))
        .map((f) => path.join(repo, "objects", f))
        .find((f) => unzstd(fs.readFileSync(f), 1 << 20).toString().includes('"files":[{"path":"usr"'))!
      const realManifest = fs.readFileSync(manifest)
      fs.writeFileSync(manifest, zstd(unzstd(realManifest, 1 << 20).toString().replace("\"mode\":420", "\"mode\":493")))
      const tree = listTree(root)
      const sha = path.relative(path.join(repo, "objects"), manifest).replace("/", "").replace(".zst", "")
      refused(["plan"], `source web: manifest of app 1.2-1-1 ${sha.slice(0, 16)}: does not match its sha256 (tampered, truncated or corrupt)`)
      expect(conary(["apply", ...r]).code).toBe(1)
      expect(listTree(root)).toEqual(tree)
      fs.writeFileSync(manifest, realManifest)

      // A content object that does not match, then one cut short: apply refuses before anything is written.
      const content = sha256("three\n")
      const real = fs.readFileSync(objectFile(repo, content))
      const badObject = `content ${content.slice(0, 16)}: source web: ${nginx.url}/repo/objects/${content.slice(0, 2)}/${content.slice(2)}.zst does not match its sha256 (tampered, truncated or corrupt)`
      fs.writeFileSync(objectFile(repo, content), zstd("evil\n"))
      refused(["apply"], badObject)
      expect(listTree(root)).toEqual(tree)
      fs.writeFileSync(objectFile(repo, content), real.subarray(0, real.length - 4))
      refused(["apply"], badObject)
      expect(listTree(root)).toEqual(tree)
      fs.writeFileSync(objectFile(repo, content), real)
      expect(ok(["apply", ...r])).toContain("~ app 1.0-1-1 → 1.2-1-1")
      expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("three\n")
    } finally {
      await nginx.stop()
    }
  }, 180_000)

  it.skipIf(skipNginx)("follows a key rotation from the old key, and refuses what the revoked key signs afterwards", async () => {
    const { work, repo, inputs, key, pub, www } = await setup()
    await makeTrove(inputs, "app", "1.0-1-1", { "usr/bin/app": "one\n" })
    ok(["repo", "build", repo, inputs, "--sign", key])
    const nginx = await startNginx(path.join(work, "nginx"), www)
    const url = `${nginx.url}/repo`
    try {
      const a = setupRoot()
      ok(["source", "add", "web", url, "--trust", pub, ...a.r])
      ok(["source", "sync", ...a.r])
      ok(["key", "generate", path.join(work, "new")])
      expect(ok(["repo", "rotate-key", repo, "--old", key, "--new", path.join(work, "new.key")])).toContain("Root 2")
      // Building with the old key is refused now.
      expect(conary(["repo", "build", repo, "--sign", key]).stderr).toContain("is not a signing key of its root (version 2)")

      // A client that trusted the old key follows the chain; so does a new one given the old key, or the new key.
      ok(["source", "sync", ...a.r])
      expect(JSON.parse(ok(["source", "list", "--json", ...a.r])).sources.find((s: { name: string }) => s.name === "web")).toMatchObject({ rootVersion: 2, metaVersion: 2 })
      for (const trust of [pub, path.join(work, "new.pub")]) {
        const b = setupRoot()
        ok(["source", "add", "web", url, "--trust", trust, ...b.r])
        expect(ok(["source", "sync", ...b.r])).toContain("web: 1 troves (1 new or changed, 0 gone); metadata version 2")
      }

      // The revoked key signs newer metadata, or a root of its own: both refused.
      const forged = { ...JSON.parse(topOf(repo).signed), version: 99 }
      const oldKey = crypto.createPrivateKey(fs.readFileSync(key))
      const good = fs.readFileSync(path.join(repo, "repo.zst"))
      fs.writeFileSync(path.join(repo, "repo.zst"), zstd(signEnvelope(forged, [oldKey])))
      const sync = conary(["source", "sync", ...a.r])
      expect(sync.stderr).toBe(
        "conary: source web: the metadata signature does not verify against the trusted keys (root 2): tampered, or signed by another or a revoked key\n",
      )
      fs.writeFileSync(path.join(repo, "repo.zst"), good)
      const oldPub = fs.readFileSync(pub, "utf8").trim()
      fs.writeFileSync(path.join(repo, "root/3.json"), signEnvelope({ type: "root", formatVersion: 3, version: 3, keys: [oldPub], threshold: 1 }, [oldKey]))
      expect(conary(["source", "sync", ...a.r]).stderr).toBe("conary: source web: root 3 is not signed by the keys of root 2 (a forged or revoked key's root)\n")
      fs.rmSync(path.join(repo, "root/3.json"))
      ok(["source", "sync", ...a.r])
    } finally {
      await nginx.stop()
    }
  }, 180_000)
})

describe("repositories: trust, building, versions", () => {
  it("retries a download that breaks off and resumes it with a range request", async () => {
    const work = tempDir()
    const inputs = path.join(work, "inputs")
    fs.mkdirSync(inputs)
    // Random bytes: compressed, the object is still large enough to cut.
    const big = crypto.randomBytes(1 << 20)
    await makeTrove(inputs, "big", "1.0-1-1", { "usr/share/big": big })
    const repoDir = path.join(work, "repo")
    ok(["repo", "build", repoDir, inputs])
    // A server that cuts the first download of each large object halfway, then honours ranges.
    const seen: string[] = []
    const cut = new Set<string>()
    const server = http.createServer((req, res) => {
      const file = path.join(repoDir, decodeURIComponent(req.url!.replace(/^\/repo\//, "")))
      if (!fs.existsSync(file)) return res.writeHead(404).end()
      const body = fs.readFileSync(file)
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? "")
      if (body.length > 100_000) seen.push(`${req.url} ${range ? `from ${range[1]}` : "whole"}`)
      if (body.length > 100_000 && !cut.has(req.url!)) {
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
      await okAsync(["source", "add", "flaky", url, "--insecure", ...r])
      await okAsync(["source", "sync", ...r])
      await okAsync(["desired", "add", "big", ...r])
      await okAsync(["apply", ...r])
      expect(fs.readFileSync(path.join(root, "usr/share/big")).equals(big)).toBe(true)
      expect(seen).toHaveLength(2)
      expect(seen[0]).toMatch(/ whole$/)
      expect(seen[1]).toMatch(/ from [1-9]\d*$/)
    } finally {
      server.close()
    }
  })

  it("needs --trust or --insecure for a repository, checks the signing key before building, and leaves a repository whole when a build fails", async () => {
    const work = tempDir()
    const inputs = path.join(work, "inputs")
    fs.mkdirSync(inputs)
    await makeTrove(inputs, "app", "1.0-1-1", { "usr/bin/app": "one\n" })
    // A `file:` dependency resolves from the repository's metadata, before any manifest is fetched.
    await makeTrove(inputs, "shell", "1.0-1-1", { "usr/bin/sh": "#!shell\n" })
    await makeTrove(inputs, "script", "1.0-1-1", { "usr/share/script": "run\n" }, ["file: /usr/bin/sh"])
    // An rpm's %ghost file (owned, never shipped) goes through the repository's manifest as it is.
    const ghostFile = { path: "/var/log/logger.log", mode: 0o100644, flags: 1 << 6 }
    rawRpm(path.join(inputs, "logger.rpm"), { name: "logger", files: [{ path: "/usr/bin/logger", mode: 0o100755, data: Buffer.from("#!/bin/sh\n") }, ghostFile] })
    const repoDir = path.join(work, "repo")
    const { root, r } = setupRoot()

    const noTrust = conary(["source", "add", "web", "http://127.0.0.1:9/repo", ...r])
    expect(noTrust.code).toBe(1)
    expect(noTrust.stderr).toBe("conary: source web: a repository needs --trust KEY (its signing key's .pub), or --insecure to accept unsigned metadata\n")
    // A missing key: one line, and no repository half made.
    const missing = conary(["repo", "build", repoDir, inputs, "--sign", path.join(work, "missing.key")])
    expect(missing.stderr).toBe(`conary: signing key ${path.join(work, "missing.key")}: cannot read it (ENOENT)\n`)
    expect(fs.existsSync(repoDir)).toBe(false)

    ok(["repo", "build", repoDir, inputs])
    ok(["source", "add", "lab", repoDir, "--insecure", ...r])
    ok(["source", "sync", ...r])
    const status = conary(["status", ...r])
    expect(status.stdout).toMatch(/^source lab: metadata version 1, expires \S+ \(INSECURE: unsigned metadata accepted\)$/m)
    ok(["desired", "add", "app", "script", "logger", ...r])
    expect(ok(["apply", ...r])).toContain("+ shell 1.0-1-1 (dependency)")
    expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("one\n")
    expect(fs.readFileSync(path.join(root, "usr/bin/sh"), "utf8")).toBe("#!shell\n")
    expect(fs.readFileSync(path.join(root, "usr/bin/logger"), "utf8")).toBe("#!/bin/sh\n")
    expect(fs.existsSync(path.join(root, "var/log/logger.log"))).toBe(false)
    expect(ok(["show", "logger", "--files", ...r])).toContain("/var/log/logger.log (ghost: owned, not installed)")

    // A signed repository takes no unsigned build; a bad input fails the build and changes nothing.
    ok(["key", "generate", path.join(work, "k")])
    const signed = path.join(work, "signed")
    ok(["repo", "build", signed, inputs, "--sign", path.join(work, "k.key")])
    expect(conary(["repo", "build", signed, inputs]).stderr).toBe(`conary: repository ${signed}: is signed (root version 1): give --sign KEY\n`)
    const tree = listTree(signed)
    fs.writeFileSync(path.join(inputs, "broken.ctrv"), "not an archive")
    await makeTrove(inputs, "zzz", "1.0-1-1", { "usr/bin/zzz": "new content\n" })
    expect(conary(["repo", "build", signed, inputs, "--sign", path.join(work, "k.key")]).code).toBe(1)
    expect(listTree(signed)).toEqual(tree)

    // Format version 2 (the same troves, as that format kept them): refused by name; `repo build` rebuilds it in place.
    const top3 = signedTop(repoDir)
    const lines = top3.parts.flatMap((p: { sha256: string }) => unzstd(fs.readFileSync(objectFile(repoDir, p.sha256)), 1 << 26).toString().trim().split("\n"))
    const writeObject = (text: string) => {
      fs.mkdirSync(path.dirname(objectFile(repoDir, sha256(text))), { recursive: true })
      fs.writeFileSync(objectFile(repoDir, sha256(text)), zstd(text))
      return { sha256: sha256(text), size: Buffer.byteLength(text) }
    }
    const troves2 = lines.map((l: string) => {
      const t = JSON.parse(l)
      const manifest = unzstd(fs.readFileSync(objectFile(repoDir, t.manifest.sha256)), 1 << 26).toString()
      return { ...t, manifest: writeObject(manifest.replace('{"formatVersion":3,', '{"formatVersion":2,')) }
    })
    const part2 = JSON.stringify({ formatVersion: 2, troves: troves2 })
    writeObject(part2)
    const top2 = { type: "repo", formatVersion: 2, version: 7, expires: top3.expires, generatedAt: top3.generatedAt, buckets: 1, parts: [{ sha256: sha256(part2), size: part2.length }] }
    fs.writeFileSync(path.join(repoDir, "repo.zst"), zstd(signEnvelope(top2, [])))
    expect(conary(["source", "sync", "lab", ...r]).stderr).toBe(
      `conary: source lab: ${repoDir} is a format version 2 repository; this conary reads version 3: rebuild it with \`conary repo build\`\n`,
    )
    expect(JSON.parse(ok(["repo", "build", repoDir, "--json"]))).toMatchObject({ troves: lines.length, added: 0, version: 8 })
    expect(ok(["source", "sync", "lab", ...r])).toContain(`lab: ${lines.length} troves (0 new or changed, 0 gone); metadata version 8`)
    // Its version 2 manifests are read as they are.
    const fresh = setupRoot()
    ok(["source", "add", "lab", repoDir, "--insecure", ...fresh.r])
    ok(["source", "sync", ...fresh.r])
    expect(ok(["show", "app", "--files", ...fresh.r])).toContain("/usr/bin/app")

    // Format version 1 is named and refused.
    const v1 = path.join(work, "v1")
    fs.mkdirSync(v1)
    fs.writeFileSync(path.join(v1, "index.json"), '{"formatVersion":1,"generatedAt":"x","troves":[]}')
    expect(conary(["source", "add", "old", v1, "--insecure", ...r]).stderr).toBe(
      `conary: source old: ${v1} is a format version 1 repository (index.json); this conary reads version 3: rebuild it with \`conary repo build\`\n`,
    )
    expect(conary(["repo", "build", v1, inputs]).stderr).toBe(
      `conary: repository ${v1}: is a format version 1 repository (index.json); build version 3 into a new directory from the archives\n`,
    )
  }, 180_000)
})
