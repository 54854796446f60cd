import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, ok, sha256 } from "./helpers.js"

// Changeset files end to end: made on a host that reaches the sources,
// applied to roots that have none (the air gap), compared file by file with
// an online apply of the same desired state; and refused, whole, when
// damaged, untrusted or made for another state.

let base: string
let repo: string
let host: string[]
let key: string
let pub: string

const newRoot = (name: string, ...setup: string[][]): string[] => {
  const root = path.join(base, name)
  fs.mkdirSync(root)
  const r = ["--root", root]
  ok(["init", ...r])
  for (const args of setup) ok([...args, ...r])
  return r
}

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "conary-ccs-"))
  repo = path.join(base, "repo")
  fs.mkdirSync(repo)
  // Two troves without files: their manifests are the same object, carried once.
  buildTrove(repo, "text-common", "1.0-1-1", {})
  buildTrove(repo, "greet-common", "1.0-1-1", {})
  buildTrove(repo, "libtext", "1.0-1-1", { "usr/lib/libtext.so.1": "text library v1\n" }, { requires: ["text-common"] })
  const greet = {
    "usr/share/doc/greet/README": "read me\n",
    "usr/share/greet/words": { symlink: "../doc/greet/README" },
    "etc/greet.conf": "greeting = hello\n",
  }
  buildTrove(repo, "greet", "1.0-1-1", { ...greet, "usr/bin/greet": { content: "#!/bin/sh\necho hello\n", mode: 0o755 }, "usr/share/greet/old": "gone in 2.0\n" }, { requires: ["libtext", "greet-common"] })
  buildTrove(
    repo,
    "greet",
    "2.0-1-1",
    { ...greet, "usr/bin/greet": { content: "#!/bin/sh\necho hello, world\n", mode: 0o755 }, "etc/greet.conf": "greeting = hello, world\n", "usr/share/greet/new": "new in 2.0\n" },
    { requires: ["libtext", "greet-common"] },
  )
  key = path.join(base, "ops")
  ok(["key", "generate", key])
  pub = `${key}.pub`
  host = newRoot("host", ["source", "add", "local", repo], ["source", "sync"], ["desired", "add", "greet=1.0"])
})

afterAll(() => fs.rmSync(base, { recursive: true, force: true }))

/** The parts of a changeset file, to damage in tests. */
const parts = (file: string) => {
  const b = fs.readFileSync(file)
  const length = Number(b.readBigUInt64BE(12))
  const envelope = JSON.parse(b.subarray(20, 20 + length).toString()) as { signed: string; signatures: unknown[] }
  const header = JSON.parse(envelope.signed) as {
    createdAt: string
    troves: Array<{ name: string; manifest: { sha256: string; size: number } }>
    objects: Array<{ sha256: string; size: number; length: number }>
  }
  let at = 20 + length
  const objects = header.objects.map((o) => b.subarray(at, (at += o.length)))
  return { bytes: b, envelope, header, objects }
}

/** Writes a changeset from its parts, unsigned unless given the signatures. */
const assemble = (file: string, header: unknown, objects: ReadonlyArray<Buffer>, signatures: unknown[] = []) => {
  const envelope = Buffer.from(JSON.stringify({ signed: JSON.stringify(header), signatures }))
  const pre = Buffer.alloc(20)
  pre.write("CONARYCS")
  pre.writeUInt32BE(1, 8)
  pre.writeBigUInt64BE(BigInt(envelope.length), 12)
  fs.writeFileSync(file, Buffer.concat([pre, envelope, ...objects]))
  return file
}

/** Lets the event loop poll between runs of synchronous CLI calls, so vitest's worker channel gets its replies (see setup-yield.ts). */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 5))

const zstd = (data: Buffer) => spawnSync("zstd", ["-q", "-c"], { input: data }).stdout

describe("changeset files", () => {
  let absolute: string
  let update: string
  let target: string[]
  let online: string[]

  it("air gap: an absolute changeset installs on an empty root as an online apply does, file by file", () => {
    absolute = path.join(base, "absolute.ccs")
    const made = JSON.parse(ok(["changeset", "create", absolute, "--sign", `${key}.key`, "--json", ...host])) as { troves: number; contents: number; madeFor: unknown }
    expect(made).toMatchObject({ troves: 4, contents: 5, madeFor: null })

    // The target has no source at all; the online root reaches the repository.
    target = newRoot("target")
    online = newRoot("online", ["source", "add", "local", repo], ["source", "sync"], ["desired", "add", "greet=1.0"])
    expect(ok(["apply", absolute, "--trust", pub, ...target])).toContain("Applied generation 1: 4 installed")
    ok(["apply", ...online])
    expect(listTree(target[1]!, "var/lib/conary", { times: true })).toEqual(listTree(online[1]!, "var/lib/conary", { times: true }))

  }, 180_000)

  it("air gap: a changeset made for the target's state carries only what it lacks and updates it as an online apply does", () => {
    ok(["desired", "add", "greet", ...host])
    const state = path.join(base, "state.json")
    fs.writeFileSync(state, ok(["status", "--json", "--installed", ...target]))
    update = path.join(base, "update.ccs")
    const up = JSON.parse(ok(["changeset", "create", update, "--for", state, "--sign", `${key}.key`, "--json", ...host])) as {
      troves: number
      contents: number
      plan: { troves: Array<{ op: string; name: string }> }
    }
    // greet 2.0 only (libtext is installed); its new program, config and data file
    expect(up).toMatchObject({ troves: 1, contents: 3, plan: { troves: [{ op: "update", name: "greet" }] } })
    const shown = JSON.parse(ok(["changeset", "show", update, "--trust", pub, "--json", ...target])) as { verified: boolean; plan: { summary: unknown } }
    expect(shown).toMatchObject({ verified: true, plan: { summary: { install: 0, update: 1, erase: 0 } } })

    expect(ok(["apply", update, "--trust", pub, ...target])).toContain("~ greet 1.0-1-1 → 2.0-1-1")
    ok(["desired", "add", "greet", ...online])
    ok(["apply", ...online])
    expect(listTree(target[1]!, "var/lib/conary", { times: true })).toEqual(listTree(online[1]!, "var/lib/conary", { times: true }))
    // The target took the desired state it was made from (with none it would plan erasures): converged with no source, and clean.
    expect(conary(["plan", "--detailed-exitcode", ...target]).code).toBe(0)
    expect(conary(["verify", "--quiet", ...target]).code).toBe(0)

  }, 180_000)

  it("refuses a changeset made for another state, or signed by a key the root does not trust", () => {
    // Made for another state: the same target a generation later, and another root.
    const again = conary(["apply", update, "--trust", pub, ...target])
    expect(again.code).toBe(1)
    expect(again.stderr).toBe(
      `conary: changeset ${update} refused: the root moved to generation 2 since the changeset was made at generation 1; make it again from this root's \`conary status --json --installed\`\n`,
    )
    const other = newRoot("other")
    const elsewhere = conary(["apply", update, "--trust", pub, ...other])
    expect(elsewhere.code).toBe(1)
    expect(elsewhere.stderr).toMatch(/^conary: changeset .* refused: it was made for another state \(root [0-9a-f-]+ at generation 1\): this root's installed troves, flavor or provides differ; .*\n$/)
    // Signed, but not by a key this root trusts.
    const untrusted = conary(["apply", absolute, ...other])
    expect(untrusted.stderr).toBe(
      `conary: changeset ${absolute} refused: its signature does not verify against a trusted key (the keys of this root's repositories, or --trust PUB): tampered, or signed by another key\n`,
    )
    expect(fs.readdirSync(other[1]!)).toEqual(["var"])
  }, 180_000)

  it("hostile changesets: one clear line, exit 1, nothing applied", async () => {
    const { bytes, envelope, header, objects } = parts(absolute)
    const r = newRoot("hostile")
    const bad = (name: string) => path.join(base, `${name}.ccs`)
    const manifest = header.objects.findIndex((o) => o.sha256 === header.troves.find((t) => t.name === "greet")!.manifest.sha256)
    const content = header.objects.findIndex((o, i) => i !== manifest && !header.troves.some((t) => t.manifest.sha256 === o.sha256))

    fs.writeFileSync(bad("truncated"), bytes.subarray(0, bytes.length - 10))
    const flipped = Buffer.from(objects[content]!)
    flipped[flipped.length >> 1] ^= 0xff
    // the manifest names a content the file does not carry
    const lacking = { ...header, objects: header.objects.filter((_, i) => i !== content) }
    // a manifest with a path that climbs out of the root
    const doc = JSON.parse(
      spawnSync("zstd", ["-d", "-q", "-c"], { input: objects[manifest] }).stdout.toString(),
    ) as { files: Array<{ path: string }> }
    doc.files[0]!.path = "../../etc/evil"
    const evil = Buffer.from(JSON.stringify(doc))
    const climbing = structuredClone(header)
    const entry = climbing.troves.find((t) => t.name === "greet")!
    entry.manifest = { sha256: sha256(evil), size: evil.length }
    climbing.objects[manifest] = { sha256: sha256(evil), size: evil.length, length: zstd(evil).length }
    const oversized = Buffer.from(bytes.subarray(0, 20))
    oversized.writeBigUInt64BE(1n << 40n, 12)

    const cases: Array<[string, string[], RegExp]> = [
      [bad("truncated"), ["--trust", pub], /refused: truncated \(\d+ bytes; its objects need \d+\)$/],
      [
        assemble(bad("flipped"), header, objects.map((o, i) => (i === content ? flipped : o)), envelope.signatures),
        ["--trust", pub],
        /refused: object [0-9a-f]{16} does not match its sha256 \(tampered, truncated or corrupt\)$/,
      ],
      [
        assemble(bad("lacking"), lacking, objects.filter((_, i) => i !== content)),
        ["--insecure"],
        /refused: it lacks the content of \/\S+ of \S+ \([0-9a-f]{16}\), which this root's store does not hold either$/,
      ],
      [
        assemble(bad("resigned"), { ...header, createdAt: "2000-01-01T00:00:00.000Z" }, objects, envelope.signatures),
        ["--trust", pub],
        /refused: its signature does not verify against a trusted key/,
      ],
      [assemble(bad("unsigned"), header, objects), [], /refused: it is not signed \(give --insecure to apply an unsigned changeset\)$/],
      [
        (fs.writeFileSync(bad("oversized"), oversized), bad("oversized")),
        ["--insecure"],
        /refused: its header of 1099511627776 bytes is larger than the 67108864 bytes allowed$/,
      ],
      [
        assemble(bad("climbing"), climbing, objects.map((o, i) => (i === manifest ? zstd(evil) : o))),
        ["--insecure"],
        /refused: manifest of greet=1\.0-1-1: unsafe path '\.\.\/\.\.\/etc\/evil' \(absolute or with '\.\.'\)$/,
      ],
      [(fs.writeFileSync(bad("garbage"), "CONARYCS\0\0"), bad("garbage")), ["--insecure"], /refused: truncated \(10 bytes\)$/],
    ]
    for (const [file, trust, why] of cases) {
      const run = conary(["apply", file, ...trust, ...r])
      expect({ file, code: run.code, stdout: run.stdout }).toEqual({ file, code: 1, stdout: "" })
      expect(run.stderr.split("\n")).toHaveLength(2)
      expect(run.stderr.trim(), file).toMatch(why)
      await settle()
    }
    expect(fs.readdirSync(r[1]!)).toEqual(["var"])
    expect(JSON.parse(ok(["history", "--json", ...r]))).toMatchObject({ generations: [] })
  }, 180_000)
})
