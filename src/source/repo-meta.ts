import * as crypto from "node:crypto"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { decodeOrProblem } from "../decode.js"
import { VERSION_SCHEMES } from "../model/trove.js"
import { FORMAT_NAMES } from "./formats.js"
import { GroupMembers } from "./group.js"
import { ManifestFile } from "./native.js"

// The documents of a format version 3 repository (README: Repositories).
//
//   root/N.json     the signing keys, N = 1, 2, …; root N+1 is signed by the
//                   keys of root N and by its own (key rotation, revocation)
//   repo.zst        the signed top document: format version, a `version`
//                   serial, `expires`, the digest of the state (every trove's
//                   metadata line), the parts by digest, and patches to this
//                   state from the states before it
//   objects/ab/cd….zst  content-addressed, zstd-compressed, keyed by the
//                   sha256 of the uncompressed bytes: metadata parts (one
//                   line per trove, the troves whose names hash to one
//                   bucket), patches (repo-state.ts), per-trove file
//                   manifests, and file contents
//
// Signed documents are an envelope: the signed JSON as a string (verified as
// the bytes it is, before it is parsed) and signatures by key id.

export const FORMAT_VERSION = 3
/** The version before: its metadata is read only to rebuild it as this version (roots did not change). */
export const PREVIOUS_FORMAT = 2
export const TOP = "repo.zst"
export const rootFile = (version: number) => `root/${version}.json`
export const objectFile = (sha256: string) => `objects/${sha256.slice(0, 2)}/${sha256.slice(2)}.zst`
/** A delta (see delta.ts), named by the sha256 of its own bytes: a zstd frame that needs the content it starts from. */
export const deltaFile = (sha256: string) => `deltas/${sha256.slice(0, 2)}/${sha256.slice(2)}.zst`
/** Where format version 1 kept everything: named when such a repository is refused. */
export const V1_INDEX = "index.json"

/** Most bytes a top document or a root may hold (a part or manifest is bounded by the size the top document names). */
export const MAX_META = 64 * 1024 * 1024

/** A sha256 in lowercase hex: every content, manifest, part and state is named by one. */
export const Sha256 = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
const Count = Schema.Int.pipe(Schema.nonNegative())

const Envelope = Schema.Struct({
  signed: Schema.String,
  signatures: Schema.Array(Schema.Struct({ keyid: Sha256, sig: Schema.String })),
})
type Envelope = typeof Envelope.Type

export const Root = Schema.Struct({
  type: Schema.Literal("root"),
  formatVersion: Schema.Literal(PREVIOUS_FORMAT, FORMAT_VERSION),
  version: Schema.Int.pipe(Schema.positive()),
  /** ed25519 public keys, each as the base64 text of a .pub file */
  keys: Schema.Array(Schema.String).pipe(Schema.minItems(1)),
  threshold: Schema.Int.pipe(Schema.positive()),
})
export type Root = typeof Root.Type

export const Part = Schema.Struct({ sha256: Sha256, size: Count })
export type Part = typeof Part.Type

/** A patch object: from the state `from` to the state the top document names. */
export const PatchRef = Schema.Struct({ from: Sha256, sha256: Sha256, size: Count })
export type PatchRef = typeof PatchRef.Type

export const Top = Schema.Struct({
  type: Schema.Literal("repo"),
  formatVersion: Schema.Literal(FORMAT_VERSION),
  version: Schema.Int.pipe(Schema.positive()),
  expires: Schema.String,
  generatedAt: Schema.String,
  /** the digest of the set of metadata lines the parts hold (repo-state.ts: stateDigest) */
  state: Sha256,
  /** how many buckets trove names hash into: kept while it fits, so a rebuild changes only the parts whose troves changed */
  buckets: Schema.Int.pipe(Schema.positive()),
  parts: Schema.Array(Part),
  /** from the last states before this one, newest first: a client at one of them reads one patch, not the parts */
  patches: Schema.Array(PatchRef),
})
export type Top = typeof Top.Type

/** Format version 2's top document and parts, as much as rebuilding it as version 3 reads. */
export const TopV2 = Schema.Struct({
  type: Schema.Literal("repo"),
  formatVersion: Schema.Literal(PREVIOUS_FORMAT),
  version: Schema.Int.pipe(Schema.positive()),
  expires: Schema.String,
  generatedAt: Schema.String,
  buckets: Schema.Int,
  parts: Schema.Array(Part),
})
export const PartV2 = Schema.Struct({ formatVersion: Schema.Literal(PREVIOUS_FORMAT), troves: Schema.Array(Schema.Unknown) })

/** The format version a signed document says it is, read before its schema: an older one is named, not a schema problem. */
export const formatVersionOf = (signed: string): unknown => {
  try {
    return (JSON.parse(signed) as { formatVersion?: unknown } | null)?.formatVersion
  } catch {
    return undefined
  }
}

/** What the planner needs of one trove, and where its files are. */
export const Entry = Schema.Struct({
  digest: Sha256,
  name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9+._-]*$/)),
  version: Schema.String.pipe(Schema.minLength(1)),
  scheme: Schema.Literal(...VERSION_SCHEMES),
  flavor: Schema.String,
  format: Schema.Literal(...FORMAT_NAMES),
  requires: Schema.Array(Schema.String),
  provides: Schema.Array(Schema.String),
  conflicts: Schema.Array(Schema.String),
  breaks: Schema.Array(Schema.String),
  replaces: Schema.Array(Schema.String),
  /** optional dependencies (recorded and shown, never resolved) */
  optional: Schema.Array(Schema.String),
  components: Schema.Array(Schema.String),
  fileCount: Count,
  totalSize: Count,
  scripts: Schema.Boolean,
  manifest: Part,
  /** [path, component] of the files \`file:\` dependencies usually name (see dependablePath), as rpm's primary metadata lists them */
  paths: Schema.optional(Schema.Array(Schema.Tuple(Schema.String, Schema.String))),
  /** the licence the package declares, for SBOMs */
  license: Schema.optional(Schema.String),
  /** a group's members */
  members: Schema.optional(GroupMembers),
})
export type Entry = typeof Entry.Type

/** A delta from one content to another (see delta.ts: DeltaRef). */
export const DeltaEntry = Schema.Struct({
  from: Sha256,
  to: Sha256,
  sha256: Sha256,
  size: Count,
  gzip: Schema.optional(
    Schema.Struct({ tool: Schema.Literal("zlib", "gzip"), level: Schema.Int.pipe(Schema.between(1, 9)), fromSize: Count, toSize: Count }),
  ),
})

/**
 * A trove's files as in a native archive's manifest (relative paths: checked
 * as an archive's are), and its maintainer scripts; the compressed size of
 * each content's object, and deltas to its contents from earlier versions'.
 */
export const ManifestDoc = Schema.Struct({
  // Unchanged in version 3: a version 2 repository rebuilt in place keeps its manifests.
  formatVersion: Schema.Literal(PREVIOUS_FORMAT, FORMAT_VERSION),
  files: Schema.Array(ManifestFile),
  scripts: Schema.Record({ key: Schema.String, value: Schema.String }),
  packed: Schema.optional(Schema.Record({ key: Sha256, value: Count })),
  deltas: Schema.optional(Schema.Array(DeltaEntry)),
})
export type ManifestDoc = typeof ManifestDoc.Type

/** Parses and decodes a JSON document; `fail` gets the first problem. */
export const decodeJson = <A, I>(schema: Schema.Schema<A, I>, bytes: Buffer | string, fail: (reason: string) => Error): A => {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString())
  } catch {
    throw fail("not valid JSON")
  }
  const decoded = decodeOrProblem(schema, json)
  if (Either.isLeft(decoded)) throw fail(decoded.left)
  return decoded.right
}

/**
 * Paths a \`file:\` dependency is likely to name, listed with a trove's
 * metadata so resolving needs no manifest: what rpm's primary metadata
 * lists (config files, programs). Others resolve once the manifest is local.
 */
export const dependablePath = (p: string) => p.startsWith("/etc/") || /\/s?bin\/[^/]+$/.test(p)

// ---- keys and signatures ------------------------------------------------------

/** The canonical text of an ed25519 public key: base64 of its DER (a .pub file's line). */
export const publicKeyText = (key: crypto.KeyObject) => (key.export({ type: "spki", format: "der" }) as Buffer).toString("base64")

export const keyId = (keyText: string) => crypto.createHash("sha256").update(Buffer.from(keyText, "base64")).digest("hex")

const publicKey = (keyText: string): crypto.KeyObject | undefined => {
  try {
    return crypto.createPublicKey({ key: Buffer.from(keyText, "base64"), format: "der", type: "spki" })
  } catch {
    return undefined
  }
}

/** An envelope around `doc` signed by each of `keys`. */
export const signEnvelope = (doc: unknown, keys: ReadonlyArray<crypto.KeyObject>): Buffer => {
  const signed = JSON.stringify(doc)
  const signatures = keys.map((k) => ({
    keyid: keyId(publicKeyText(crypto.createPublicKey(k))),
    sig: crypto.sign(null, Buffer.from(signed), k).toString("base64"),
  }))
  return Buffer.from(JSON.stringify({ signed, signatures } satisfies Envelope))
}

export const openEnvelope = (bytes: Buffer, fail: (reason: string) => Error): Envelope => decodeJson(Envelope, bytes, fail)

/** How many of `keys` signed the envelope (each counted once). */
export const validSignatures = (env: Envelope, keys: ReadonlyArray<string>): number => {
  const byId = new Map(keys.map((k) => [keyId(k), k]))
  const counted = new Set<string>()
  for (const s of env.signatures) {
    const text = byId.get(s.keyid)
    const key = text === undefined || counted.has(s.keyid) ? undefined : publicKey(text)
    if (key && crypto.verify(null, Buffer.from(env.signed), key, Buffer.from(s.sig, "base64"))) counted.add(s.keyid)
  }
  return counted.size
}

// ---- buckets ----------------------------------------------------------------

/**
 * Buckets for `troves` troves: about 1024 troves each, a power of two: parts
 * that compress well and few requests for a first sync (a re-sync reads a
 * patch, not parts). The count stays while a rebuild keeps between 128 and
 * 2048 troves a bucket, since changing it changes every part.
 */
export const TROVES_PER_PART = 1024
export const bucketCount = (troves: number, previous: number | undefined): number => {
  if (previous !== undefined && troves <= previous * TROVES_PER_PART * 2 && troves >= (previous * TROVES_PER_PART) / 8) return previous
  let n = 1
  while (n * TROVES_PER_PART < troves) n *= 2
  return n
}

/** The bucket of a trove name: every version and flavor of a name is in one part. */
export const bucketOf = (name: string, buckets: number): number => crypto.createHash("sha256").update(name).digest().readUInt32BE(0) % buckets

/** ISO time `spec` (`7d`, `12h`, `90m`) after `now`. */
export const expiryAfter = (now: string, spec: string): string | undefined => {
  const m = /^(\d+)([dhm])$/.exec(spec)
  if (!m) return undefined
  const ms = Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as "d" | "h" | "m"]
  return new Date(Date.parse(now) + ms).toISOString()
}
