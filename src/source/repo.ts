import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { NewTrove } from "../db/troves.js"
import { UsageError } from "../errors.js"
import { checkOutputFile, readInputFile, writeOutputFile } from "../files.js"
import { ContentStore } from "../store/store.js"
import { DEFAULT_DELTA_DEPTH } from "./delta-build.js"
import { RepoDeltas } from "./repo-deltas.js"
import { fetchFromArchive, isTroveArchive, readTroveArchive } from "./formats.js"
import type { ManifestFile } from "./native.js"
import {
  type Entry,
  FORMAT_VERSION,
  type ManifestDoc,
  Root,
  TOP,
  V1_INDEX,
  decodeJson,
  dependablePath,
  objectFile,
  expiryAfter,
  openEnvelope,
  publicKeyText,
  rootFile,
  signEnvelope,
} from "./repo-meta.js"
import { readPublished, writeMetadata } from "./repo-publish.js"
import { sha256Of } from "../sha256.js"

// Publishing a static repository of format version 2 (see repo-meta.ts for
// the layout). Any HTTP server, CDN or object store can serve it.

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

/** A signing key file (from `conary key generate`), checked before anything is written. */
export const readPrivateKey = (file: string): crypto.KeyObject => {
  const text = readInputFile(file, 64 * 1024, (reason) => new UsageError({ message: `signing key ${file}: ${reason}` }))
  try {
    const key = crypto.createPrivateKey(text)
    if (key.asymmetricKeyType !== "ed25519") throw new Error("not ed25519")
    return key
  } catch {
    throw new UsageError({ message: `signing key ${file} is not an ed25519 private key (a .key file from \`conary key generate\`)` })
  }
}

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

export interface BuildOptions {
  /** a private key file; the repository's root must list its public key (a new repository gets root 1 with it) */
  readonly signKey?: string
  /** how long the metadata stays valid: `7d`, `12h`, `90m` */
  readonly expires: string
  readonly now: string
  /** deltas against this many previous versions of each new trove (default 2; 0: none) */
  readonly deltas?: number
}

export interface BuildResult {
  readonly troves: number
  readonly added: number
  /** objects written (file contents, manifests and metadata parts new to the repository) */
  readonly objects: number
  /** deltas written (see RepoDeltas) */
  readonly deltas: number
  readonly version: number
  readonly expires: string
  readonly root: number | null
  readonly signed: boolean
}

const bad = (out: string) => (reason: string) => new UsageError({ message: `repository ${out}: ${reason}` })

/** The newest root of a repository on disk, if it has one. */
export const latestRoot = (out: string): Root | undefined => {
  let root: Root | undefined
  for (let v = 1; fs.existsSync(path.join(out, rootFile(v))); v++) {
    const env = openEnvelope(fs.readFileSync(path.join(out, rootFile(v))), bad(out))
    root = decodeJson(Root, env.signed, bad(out))
  }
  return root
}


const toManifestFile = (f: NewTrove["files"][number]): typeof ManifestFile.Type => ({
  path: f.path.slice(1),
  kind: f.kind,
  mode: f.mode,
  owner: f.owner,
  group: f.group,
  ...(f.sha256 === null ? {} : { sha256: f.sha256 }),
  size: f.size,
  ...(f.target === null ? {} : { target: f.target }),
  config: f.config,
  component: f.component,
  ...(f.mtime === undefined ? {} : { mtime: f.mtime }),
  ...(f.hardlink === undefined ? {} : { hardlink: f.hardlink.slice(1) }),
  ...(f.ghost ? { ghost: true } : {}),
})

/** The JSON of a trove's manifest object and its entry in a metadata part; `fetch`: its contents' object sizes and deltas. */
export const publishable = (t: NewTrove, fetch?: Pick<ManifestDoc, "packed" | "deltas">): { manifest: Buffer; entry: Entry } => {
  const doc: ManifestDoc = { formatVersion: FORMAT_VERSION, files: t.files.map(toManifestFile), scripts: t.scripts ?? {}, ...fetch }
  const manifest = Buffer.from(JSON.stringify(doc))
  const paths = t.files.filter((f) => f.kind !== "dir" && dependablePath(f.path)).map((f) => [f.path, f.component] as const)
  return {
    manifest,
    entry: {
      digest: t.digest,
      name: t.name,
      version: t.version,
      scheme: t.scheme,
      flavor: t.flavor,
      format: t.format as Entry["format"],
      requires: t.requires,
      provides: t.provides,
      conflicts: t.conflicts ?? [],
      breaks: t.breaks ?? [],
      replaces: t.replaces ?? [],
      optional: t.optional ?? [],
      components: [...new Set(t.files.map((f) => f.component))].sort(),
      fileCount: t.files.length,
      totalSize: t.files.reduce((n, f) => n + f.size, 0),
      scripts: Object.keys(t.scripts ?? {}).length > 0,
      manifest: { sha256: sha256Of(manifest), size: manifest.length },
      ...(paths.length > 0 ? { paths } : {}),
      ...(t.license === undefined ? {} : { license: t.license }),
      ...(t.members ? { members: t.members } : {}),
    },
  }
}

/**
 * Compresses files in place (FILE -> FILE.zst) with the zstd command, many
 * files per process; or, given `outDir`, keeps them and writes outDir/NAME.zst.
 * Parts are read by every client: they get a high level.
 */
export const compressAll = (files: ReadonlyArray<string>, level: number, listDir: string, outDir?: string) => {
  for (let i = 0; i < files.length; i += 10_000) {
    const list = path.join(listDir, "zstd-list")
    fs.writeFileSync(list, files.slice(i, i + 10_000).join("\n") + "\n")
    const where = outDir === undefined ? ["--rm"] : ["--output-dir-flat", outDir]
    const r = spawnSync("zstd", ["-q", "-f", ...where, `-${level}`, "--filelist", list], { encoding: "utf8" })
    if (r.error) throw new UsageError({ message: "conary needs the zstd command to compress (Debian: apt-get install zstd)" })
    if (r.status !== 0) throw new UsageError({ message: `zstd failed: ${(r.stderr || "").trim().split("\n")[0]}` })
  }
}

/** Files under a directory, recursively. */
const filesUnder = (dir: string): string[] =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name)) : []

/** Troves to publish: read from archives (contents into `store`), or given (the benchmark's synthetic ones). */
export type TroveInput = { readonly archive: string } | { readonly trove: NewTrove; readonly contents: (sha256: string) => Buffer }

/**
 * Publishes troves into a static repository, adding to what is there, and
 * signs a new metadata version. Everything new is made in a temp directory
 * inside OUTDIR first and moved in at the end, metadata last: a build that
 * fails (a bad archive, a missing key) leaves the repository as it was.
 */
export const buildRepo = async (
  out: string,
  inputs: ReadonlyArray<string>,
  options: BuildOptions,
  imported: ReadonlyArray<TroveInput> = [],
): Promise<BuildResult> => publish(out, [...inputs.flatMap(inputsOf).map((archive) => ({ archive })), ...imported], options)

export const publish = async (out: string, inputs: Iterable<TroveInput>, options: BuildOptions): Promise<BuildResult> => {
  const expires = expiryAfter(options.now, options.expires)
  if (expires === undefined) throw new UsageError({ message: `--expires '${options.expires}': give a number and d, h or m (7d, 12h, 90m)` })
  const key = options.signKey === undefined ? undefined : readPrivateKey(options.signKey)
  if (fs.existsSync(path.join(out, V1_INDEX)) && !fs.existsSync(path.join(out, TOP)))
    throw bad(out)(`is a format version 1 repository (${V1_INDEX}); build version ${FORMAT_VERSION} into a new directory from the archives`)
  const root = latestRoot(out)
  let newRoot: Root | undefined
  if (key) {
    const pub = publicKeyText(crypto.createPublicKey(key))
    if (!root) newRoot = { type: "root", formatVersion: FORMAT_VERSION, version: 1, keys: [pub], threshold: 1 }
    else if (!root.keys.includes(pub))
      throw bad(out)(`${options.signKey} is not a signing key of its root (version ${root.version}); change keys with \`conary repo rotate-key\``)
  } else if (root) throw bad(out)(`is signed (root version ${root.version}): give --sign KEY`)

  const old = readPublished(out, bad(out))
  const entries = new Map<string, string>(old?.lines)
  fs.mkdirSync(out, { recursive: true })
  const temp = path.join(out, `.conary-build-${process.pid}`)
  fs.rmSync(temp, { recursive: true, force: true })
  fs.mkdirSync(temp)
  try {
    const store = new ContentStore(temp)
    // Remembered: a distribution's files share contents, and each check is a stat.
    const known = new Set<string>()
    const present = (sha: string) => {
      if (known.has(sha)) return true
      if (!fs.existsSync(path.join(out, objectFile(sha))) && !store.has(sha)) return false
      known.add(sha)
      return true
    }
    const troves: NewTrove[] = []
    for (const input of inputs) {
      let trove: NewTrove
      if ("archive" in input) {
        trove = (await readTroveArchive(input.archive)).trove
        const wanted = new Set(trove.files.flatMap((f) => (f.sha256 && !present(f.sha256) ? [f.sha256] : [])))
        await fetchFromArchive(trove.format, input.archive, trove.files, wanted, store)
      } else {
        trove = input.trove
        for (const f of trove.files) if (f.sha256 && !present(f.sha256)) store.putBuffer(input.contents(f.sha256), f.sha256)
      }
      troves.push(trove)
    }
    // A trove the repository has keeps its entry (and manifest) as published.
    const seen = new Set<string>()
    const fresh = troves.filter((t) => !entries.has(t.digest) && !seen.has(t.digest) && seen.add(t.digest))
    const deltas = new RepoDeltas(out, temp, store, entries, fresh, options.deltas ?? DEFAULT_DELTA_DEPTH)
    compressAll(filesUnder(path.join(temp, "objects")), 3, temp)
    const manifests: string[] = []
    for (const trove of fresh) {
      const { manifest, entry } = publishable(trove, deltas.fetchInfo(trove))
      if (!present(entry.manifest.sha256)) {
        store.putBuffer(manifest, entry.manifest.sha256)
        manifests.push(store.pathOf(entry.manifest.sha256))
      }
      entries.set(trove.digest, JSON.stringify(entry))
    }
    const added = fresh.length
    compressAll(manifests, 3, temp)

    const { version, topFile } = writeMetadata(old, entries, { out, fail: bad(out), store, present, expires, now: options.now, key })
    compressAll([...filesUnder(path.join(temp, "objects"))].filter((f) => !f.endsWith(".zst")), 19, temp)
    compressAll([topFile], 19, temp)

    // Commit: objects first (content-addressed: harmless to the metadata in force), then the root, then the top document.
    let written = 0
    const deltaFiles = filesUnder(path.join(temp, "deltas"))
    for (const file of [...filesUnder(path.join(temp, "objects")), ...deltaFiles]) {
      const rel = path.relative(temp, file)
      fs.mkdirSync(path.join(out, path.dirname(rel)), { recursive: true })
      fs.renameSync(file, path.join(out, rel))
      written++
    }
    if (newRoot) {
      fs.mkdirSync(path.join(out, "root"), { recursive: true })
      writeAtomic(path.join(out, rootFile(newRoot.version)), signEnvelope(newRoot, [key!]))
    }
    fs.renameSync(`${topFile}.zst`, path.join(out, TOP))
    return {
      troves: entries.size,
      added,
      objects: written - deltaFiles.length,
      deltas: deltaFiles.length,
      version,
      expires,
      root: (newRoot ?? root)?.version ?? null,
      signed: key !== undefined,
    }
  } finally {
    fs.rmSync(temp, { recursive: true, force: true })
  }
}

/**
 * Replaces the repository's signing key: a new root listing only NEW, signed
 * by OLD (so clients that trust OLD follow) and by NEW, then the metadata
 * signed anew with NEW. A compromised key is revoked the same way: clients
 * that followed refuse anything it signs afterwards.
 */
export const rotateKey = async (out: string, oldKey: string, newKey: string, options: Omit<BuildOptions, "signKey">): Promise<{ root: number; version: number }> => {
  const previous = readPrivateKey(oldKey)
  const next = readPrivateKey(newKey)
  const root = latestRoot(out)
  if (!root) throw bad(out)(`has no root (it was built without --sign)`)
  if (!root.keys.includes(publicKeyText(crypto.createPublicKey(previous))))
    throw bad(out)(`${oldKey} is not a signing key of its root (version ${root.version})`)
  if (!fs.existsSync(path.join(out, TOP))) throw bad(out)(`has no ${TOP}`)
  const newRoot: Root = { type: "root", formatVersion: FORMAT_VERSION, version: root.version + 1, keys: [publicKeyText(crypto.createPublicKey(next))], threshold: 1 }
  // Checked before the root is written, so a failure leaves the old root in force.
  if (expiryAfter(options.now, options.expires) === undefined) throw new UsageError({ message: `--expires '${options.expires}': give a number and d, h or m (7d, 12h, 90m)` })
  writeAtomic(path.join(out, rootFile(newRoot.version)), signEnvelope(newRoot, [previous, next]))
  const r = await publish(out, [], { ...options, signKey: newKey })
  return { root: newRoot.version, version: r.version }
}

const writeAtomic = (file: string, data: Buffer) => {
  const temp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(temp, data)
  fs.renameSync(temp, file)
}
