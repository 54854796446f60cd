import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { NewTrove } from "../db/troves.js"
import { decodeOrProblem } from "../decode.js"
import { SourceError, UsageError } from "../errors.js"
import { checkOutputFile, readInputFile, writeOutputFile } from "../files.js"
import { ContentStore } from "../store/store.js"
import { VERSION_SCHEMES } from "../model/trove.js"
import { FORMAT_NAMES, fetchFromArchive, isTroveArchive, readTroveArchive } from "./formats.js"
import { GroupMembers, membersProblem } from "./group.js"

// A static repository: `index.json` (every trove's metadata and file
// manifest), `index.json.sig` (ed25519, when signed) and `objects/ab/cdef…`
// (each content once, by sha256). Any HTTP server or object store can serve it.

export const INDEX = "index.json"
export const SIGNATURE = "index.json.sig"

const File = Schema.Struct({
  path: Schema.String.pipe(Schema.startsWith("/")),
  kind: Schema.Literal("file", "dir", "symlink"),
  mode: Schema.Int,
  owner: Schema.String,
  group: Schema.String,
  sha256: Schema.NullOr(Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))),
  size: Schema.Int,
  target: Schema.NullOr(Schema.String),
  config: Schema.Boolean,
  component: Schema.String,
  mtime: Schema.optional(Schema.Int),
  hardlink: Schema.optional(Schema.String.pipe(Schema.startsWith("/"))),
  ghost: Schema.optional(Schema.Boolean),
})

const Trove = Schema.Struct({
  digest: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  name: Schema.String,
  version: Schema.String,
  scheme: Schema.Literal(...VERSION_SCHEMES),
  flavor: Schema.String,
  format: Schema.Literal(...FORMAT_NAMES),
  requires: Schema.Array(Schema.String),
  provides: Schema.Array(Schema.String),
  conflicts: Schema.Array(Schema.String),
  breaks: Schema.Array(Schema.String),
  replaces: Schema.Array(Schema.String),
  // indexes written before optional dependencies were recorded lack it
  optional: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  scripts: Schema.Record({ key: Schema.String, value: Schema.String }),
  files: Schema.Array(File),
  license: Schema.optional(Schema.String),
  members: Schema.optional(GroupMembers),
})

export const RepoIndex = Schema.Struct({
  formatVersion: Schema.Literal(1),
  generatedAt: Schema.String,
  troves: Schema.Array(Trove),
})
export type RepoIndex = typeof RepoIndex.Type

const toEntry = (t: NewTrove): RepoIndex["troves"][number] => ({
  digest: t.digest,
  name: t.name,
  version: t.version,
  scheme: t.scheme,
  flavor: t.flavor,
  format: t.format,
  requires: t.requires,
  provides: t.provides,
  conflicts: t.conflicts ?? [],
  breaks: t.breaks ?? [],
  replaces: t.replaces ?? [],
  optional: t.optional ?? [],
  scripts: t.scripts ?? {},
  files: t.files,
  ...(t.license === undefined ? {} : { license: t.license }),
  ...(t.members ? { members: t.members } : {}),
})

export const fromEntry = (e: RepoIndex["troves"][number]): NewTrove => ({ ...e, files: e.files })

/** Decodes an index; the error names the first bad field. */
export const decodeIndex = (bytes: Buffer, where: string): RepoIndex => {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString("utf8"))
  } catch {
    throw new SourceError({ source: where, reason: "index.json is not valid JSON" })
  }
  const decoded = decodeOrProblem(RepoIndex, json)
  if (Either.isLeft(decoded)) throw new SourceError({ source: where, reason: `bad index.json: ${decoded.left}` })
  for (const [i, t] of decoded.right.troves.entries()) {
    const problem = t.members && membersProblem(t.name, t.members)
    if (problem) throw new SourceError({ source: where, reason: `bad index.json: troves.${i}.${problem}` })
  }
  return decoded.right
}

// ---- keys -------------------------------------------------------------------

/** Writes NAME.key (private, PEM) and NAME.pub (the public key as one base64 line). */
export const generateKey = async (prefix: string): Promise<{ privateKey: string; publicKey: string }> => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ed25519")
  const priv = `${prefix}.key`
  const pub = `${prefix}.pub`
  // Both checked first: a refused name leaves no half of a pair.
  checkOutputFile(priv)
  checkOutputFile(pub)
  await writeOutputFile(priv, (temp) => fs.writeFileSync(temp, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 }))
  await writeOutputFile(pub, (temp) => fs.writeFileSync(temp, publicKeyText(publicKey) + "\n"))
  return { privateKey: priv, publicKey: pub }
}

const publicKeyText = (key: crypto.KeyObject) => (key.export({ type: "spki", format: "der" }) as Buffer).toString("base64")

/** A trust key given as a file or as the base64 text itself. */
export const readPublicKey = (spec: string): crypto.KeyObject => {
  // A key file is one short line: /dev/zero given as one is refused, not read forever.
  const readKey = () => readInputFile(spec, 4096, (reason) => new UsageError({ message: `trust key ${spec}: ${reason}` }))
  const text = (fs.existsSync(spec) ? readKey() : spec).trim()
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(text, "base64"), format: "der", type: "spki" })
    if (key.asymmetricKeyType !== "ed25519") throw new Error("not ed25519")
    return key
  } catch {
    throw new UsageError({ message: `trust key '${spec.length > 60 ? spec.slice(0, 60) + "…" : spec}' is not an ed25519 public key (a .pub file or its base64 text)` })
  }
}

/** The canonical text of a trust key, as stored with a source. */
export const publicKeyString = (spec: string): string => publicKeyText(readPublicKey(spec))

export const verifySignature = (index: Buffer, signature: Buffer, trust: string): boolean =>
  crypto.verify(null, index, readPublicKey(trust), Buffer.from(signature.toString("utf8").trim(), "base64"))

// ---- building ---------------------------------------------------------------

const inputsOf = (input: string): string[] => {
  const st = fs.statSync(input, { throwIfNoEntry: false })
  if (!st) throw new UsageError({ message: `input ${input} does not exist` })
  if (!st.isDirectory()) return [input]
  return fs
    .readdirSync(input)
    .filter(isTroveArchive)
    .sort()
    .map((n) => path.join(input, n))
}

export interface BuildResult {
  readonly troves: number
  readonly added: number
  readonly objects: number
  readonly signed: boolean
}

/**
 * Publishes troves into a static repository, adding to what is there: each
 * input's metadata goes into the index and its contents into objects/; so do
 * troves `imported` from another repository (promotion, ./promote.ts).
 */
export const buildRepo = async (
  out: string,
  inputs: ReadonlyArray<string>,
  signKey: string | undefined,
  now: string,
  imported?: { readonly entries: ReadonlyArray<RepoIndex["troves"][number]>; readonly fetch: (store: ContentStore) => Promise<void> },
): Promise<BuildResult> => {
  fs.mkdirSync(out, { recursive: true })
  const indexPath = path.join(out, INDEX)
  const existing = fs.existsSync(indexPath) ? decodeIndex(fs.readFileSync(indexPath), out).troves : []
  const byDigest = new Map(existing.map((t) => [t.digest, t]))
  const store = new ContentStore(out)
  let added = 0
  for (const file of inputs.flatMap(inputsOf)) {
    const { trove } = await readTroveArchive(file)
    const shas = new Set(trove.files.flatMap((f) => (f.sha256 ? [f.sha256] : [])))
    await fetchFromArchive(trove.format, file, trove.files, shas, store)
    if (!byDigest.has(trove.digest)) added++
    byDigest.set(trove.digest, toEntry(trove))
  }
  if (imported) {
    await imported.fetch(store)
    for (const entry of imported.entries) {
      if (!byDigest.has(entry.digest)) added++
      byDigest.set(entry.digest, entry)
    }
  }
  const index: RepoIndex = {
    formatVersion: 1,
    generatedAt: now,
    troves: [...byDigest.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.digest < b.digest ? -1 : 1)),
  }
  const bytes = Buffer.from(JSON.stringify(index))
  // The signature is written before the index it signs, and both by rename, so a
  // reader never sees a new index with an old signature that happens to exist.
  if (signKey) {
    const key = crypto.createPrivateKey(fs.readFileSync(signKey))
    writeAtomic(path.join(out, SIGNATURE), Buffer.from(crypto.sign(null, bytes, key).toString("base64") + "\n"))
  } else fs.rmSync(path.join(out, SIGNATURE), { force: true })
  writeAtomic(indexPath, bytes)
  fs.rmSync(path.join(out, "tmp"), { recursive: true, force: true })
  const objects = new Set(index.troves.flatMap((t) => t.files.flatMap((f) => (f.sha256 ? [f.sha256] : [])))).size
  return { troves: index.troves.length, added, objects, signed: signKey !== undefined }
}

const writeAtomic = (file: string, data: Buffer) => {
  const temp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(temp, data)
  fs.renameSync(temp, file)
}
