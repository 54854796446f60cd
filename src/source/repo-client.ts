import { forEachBounded } from "../batch.js"
import type { Db } from "../db/connection.js"
import { type IndexValidator, type SourceRow, indexValidator, recordRepoSync } from "../db/sources.js"
import { fillTroveFiles, lazyTroves, upsertLazyTrove } from "../db/troves.js"
import { recordFetchInfo } from "../db/deltas.js"
import { normalizeFlavor } from "../desired/flavor.js"
import { ArchiveError, SourceError } from "../errors.js"
import { DEP_KINDS, parseDepGroup } from "../model/trove.js"
import { unzstd } from "./decompress.js"
import { membersProblem } from "./group.js"
import { checkManifestFiles } from "./native.js"
import { rootedPath } from "./rooted-path.js"
import { cachedObject, keepObject } from "../store/metadata-cache.js"
import { readRepoDocument, readRepoFile } from "./remote.js"
import {
  Entry,
  FORMAT_VERSION,
  MAX_META,
  ManifestDoc,
  Root,
  TOP,
  Top,
  V1_INDEX,
  decodeJson,
  formatVersionOf,
  objectFile,
  openEnvelope,
  rootFile,
  validSignatures,
} from "./repo-meta.js"
import { applyPatch, decodePatch, lineHash, linesOf, stateDigest } from "./repo-state.js"
import { sha256Of } from "../sha256.js"

// The client side of a format version 3 repository: follow the root chain
// from the trusted key, accept only fresh metadata signed by the root's keys,
// bring the troves' metadata lines to the state it names (by one patch from
// the state held, or from the parts), and fetch trove manifests when a plan
// needs them. Every byte is checked against a digest or a signature first.

const CONCURRENCY = 8
/** The most roots one sync follows: a server cannot keep it walking forever. */
const MAX_ROOTS = 1000

export interface RepoSyncOptions {
  /** accept expired metadata (labs; README: freshness) */
  readonly allowExpired?: boolean
}

export interface RepoSyncResult {
  /** the top document was the one already accepted (ETag, Last-Modified): nothing else was read */
  readonly unchanged: boolean
  readonly troves: number
  readonly added: number
  readonly removed: number
  readonly version: number
  readonly expires: string
}

interface Trust {
  readonly version: number
  readonly keys: ReadonlyArray<string>
  readonly threshold: number
}


/** Reads a content-addressed object of the repository: decompressed within its size, and checked against its digest. */
export const readObject = async (source: SourceRow, base: string, what: string, sha256: string, size: number): Promise<Buffer> => {
  const fail = (reason: string) => new SourceError({ source: source.name, reason: `${what} ${sha256.slice(0, 16)}: ${reason}` })
  const cached = cachedObject(sha256, size)
  if (cached) return cached
  const compressed = await readRepoFile(source.name, base, objectFile(sha256))
  if (compressed === undefined) throw fail("missing from the repository")
  let bytes: Buffer
  try {
    bytes = unzstd(compressed, size)
  } catch {
    throw fail("does not match its sha256 (tampered, truncated or corrupt)")
  }
  if (bytes.length !== size || sha256Of(bytes) !== sha256) throw fail("does not match its sha256 (tampered, truncated or corrupt)")
  keepObject(bytes, sha256)
  return bytes
}

/**
 * Follows the repository's roots from what the source trusts: root N+1 must
 * carry the signatures of root N's keys (threshold) and of its own. Before
 * any root was accepted, the first root that lists the --trust key and is
 * signed by it is where the chain starts (a client given a key of root 3
 * starts there).
 */
const followRoots = async (source: SourceRow, base: string): Promise<Trust> => {
  const err = (reason: string) => new SourceError({ source: source.name, reason })
  let trust: Trust | undefined = source.rootVersion > 0 ? { version: source.rootVersion, ...storedKeys(source.rootKeys!) } : undefined
  for (let v = (trust?.version ?? 0) + 1, walked = 0; walked < MAX_ROOTS; v++, walked++) {
    const bytes = await readRepoFile(source.name, base, rootFile(v))
    if (bytes === undefined) break
    const env = openEnvelope(bytes, (r) => err(`bad ${rootFile(v)}: ${r}`))
    const root = decodeJson(Root, env.signed, (r) => err(`bad ${rootFile(v)}: ${r}`))
    if (root.version !== v) throw err(`${rootFile(v)} says it is version ${root.version}`)
    if (trust) {
      if (validSignatures(env, trust.keys) < trust.threshold)
        throw err(`root ${v} is not signed by the keys of root ${trust.version} (a forged or revoked key's root)`)
      if (validSignatures(env, root.keys) < root.threshold) throw err(`root ${v} is not signed by its own keys`)
    } else if (!root.keys.includes(source.trustKey!) || validSignatures(env, [source.trustKey!]) < 1 || validSignatures(env, root.keys) < root.threshold)
      continue
    trust = { version: root.version, keys: root.keys, threshold: root.threshold }
  }
  if (!trust) throw err("no root of the repository lists the trusted key (revoked long ago, or another repository)")
  return trust
}

/** The keys of the root a source follows, as stored: `{"keys": [...], "threshold": n}`. */
const storedKeys = (text: string): { keys: string[]; threshold: number } => JSON.parse(text) as { keys: string[]; threshold: number }
const keysText = (trust: Trust) => JSON.stringify({ keys: trust.keys, threshold: trust.threshold })

/** Refuses expired metadata (a freeze attack), unless --allow-expired. */
const checkFresh = (source: SourceRow, version: number, expires: string, now: string, options: RepoSyncOptions) => {
  const at = Date.parse(expires)
  if (Number.isNaN(at)) throw new SourceError({ source: source.name, reason: `bad ${TOP}: expires '${expires}' is not a time` })
  if (at <= Date.parse(now) && !options.allowExpired)
    throw new SourceError({
      source: source.name,
      reason: `the repository's metadata (version ${version}) expired at ${expires} (a frozen or stale mirror; --allow-expired accepts it)`,
    })
}

type TopRead =
  | { readonly unchanged: true }
  | { readonly unchanged: false; readonly top: Top; readonly url: string; readonly validator: IndexValidator }

/**
 * The signed top document from one base location, checked: signature,
 * format, version against the last one accepted, expiry. Given the
 * validator of the one accepted, an unchanged document is not sent again.
 */
const readTop = async (
  source: SourceRow,
  base: string,
  trust: Trust | undefined,
  lastVersion: number,
  now: string,
  options: RepoSyncOptions,
  validator: IndexValidator | null,
): Promise<TopRead> => {
  const err = (reason: string) => new SourceError({ source: source.name, reason })
  const doc = await readRepoDocument(source.name, base, TOP, validator)
  if (doc.status === "unchanged") return { unchanged: true }
  if (doc.status === "missing") {
    if ((await readRepoFile(source.name, base, V1_INDEX)) !== undefined)
      throw err(`${base} is a format version 1 repository (${V1_INDEX}); this conary reads version ${FORMAT_VERSION}: rebuild it with \`conary repo build\``)
    throw err(`${base} has no ${TOP}`)
  }
  let bytes: Buffer
  try {
    bytes = unzstd(doc.body, MAX_META)
  } catch (e) {
    throw err(`bad ${TOP}: ${(e as Error).message}`)
  }
  const env = openEnvelope(bytes, (r) => err(`bad ${TOP}: ${r}`))
  if (trust && validSignatures(env, trust.keys) < trust.threshold)
    throw err(`the metadata signature does not verify against the trusted keys (root ${trust.version}): tampered, or signed by another or a revoked key`)
  const format = formatVersionOf(env.signed)
  if (typeof format === "number" && format !== FORMAT_VERSION)
    throw err(`${base} is a format version ${format} repository; this conary reads version ${FORMAT_VERSION}: rebuild it with \`conary repo build\``)
  const top = decodeJson(Top, env.signed, (r) => err(`bad ${TOP}: ${r}`))
  if (top.version < lastVersion)
    throw err(`the repository offers metadata version ${top.version}, older than version ${lastVersion} already accepted (a rollback, or a stale mirror); refused`)
  checkFresh(source, top.version, top.expires, now, options)
  return { unchanged: false, top, url: doc.url, validator: doc.validator }
}

/** Checks what a part says of a trove beyond its schema: the same checks an archive's metadata gets. */
const checkEntry = (source: SourceRow, e: Entry): Entry =>
  checkedEntry(e, (reason) => new SourceError({ source: source.name, reason: `trove ${e.name} ${e.version}: ${reason}` }))

/** A repository's (or a changeset's) entry for a trove, checked; its flavor made canonical. */
export const checkedEntry = (e: Entry, bad: (reason: string) => Error): Entry => {
  // Optional dependencies are text to show (`name: why`), never resolved.
  for (const kind of DEP_KINDS) if (kind !== "optional") for (const dep of e[kind]) if (parseDepGroup(dep) === undefined) throw bad(`bad dependency '${dep}'`)
  for (const [p] of e.paths ?? []) if (!p.startsWith("/") || rootedPath(p.slice(1)) !== p) throw bad(`unsafe path '${p}'`)
  if (e.members) {
    const problem = membersProblem(e.name, e.members)
    if (problem !== undefined) throw bad(problem)
  }
  let flavor: string
  try {
    flavor = normalizeFlavor(e.flavor)
  } catch (x) {
    throw bad((x as Error).message)
  }
  return flavor === e.flavor ? e : { ...e, flavor }
}

/** A metadata line of the repository, decoded and checked. */
const entryOf = (source: SourceRow, line: string): Entry =>
  checkEntry(source, decodeJson(Entry, line, (r) => new SourceError({ source: source.name, reason: `bad metadata line: ${r}` })))

/** Every line the parts hold, by hash (the parts fetched 8 at a time, each checked by digest), which must make up the state the top document names. */
const readParts = async (source: SourceRow, base: string, top: Top): Promise<Map<string, string>> => {
  const lines = new Map<string, string>()
  await forEachBounded(top.parts, CONCURRENCY, async (p) => {
    const bytes = await readObject(source, base, "metadata part", p.sha256, p.size)
    for (const line of linesOf(bytes.toString())) lines.set(lineHash(line), line)
  })
  if (stateDigest(lines.keys()) !== top.state) throw new SourceError({ source: source.name, reason: `bad ${TOP}: its parts do not make up the state it names` })
  return lines
}

/**
 * What changes from the lines held (by hash) to the state the top document
 * names: the patch from the state held, when the top document lists one and
 * it leads there; otherwise what differs from the parts. `complete`: the
 * lines held are a state (not rows of an older format).
 */
const changesTo = async (
  source: SourceRow,
  base: string,
  top: Top,
  held: ReadonlySet<string>,
  complete: boolean,
): Promise<{ remove: ReadonlyArray<string>; add: ReadonlyArray<string> }> => {
  const from = complete ? stateDigest(held) : undefined
  if (from === top.state) return { remove: [], add: [] }
  const ref = top.patches.find((p) => p.from === from)
  if (ref) {
    const bytes = await readObject(source, base, "metadata patch", ref.sha256, ref.size)
    const patch = decodePatch(bytes, (r) => new SourceError({ source: source.name, reason: `bad metadata patch ${ref.sha256.slice(0, 16)}: ${r}` }))
    // One that does not lead there (the lines held are not that state after all) is passed over for the parts.
    if (patch.from === from && stateDigest(applyPatch(held, patch)) === top.state) return patch
  }
  const lines = await readParts(source, base, top)
  return { remove: [...held].filter((h) => !lines.has(h)), add: [...lines].filter(([h]) => !held.has(h)).map(([, line]) => line) }
}

/**
 * Indexes a format version 3 repository: metadata only. Brings the lines
 * held to the state the top document names (one patch, or the parts), and
 * records the version it accepted, all in one transaction.
 */
export const syncRepoV2 = async (db: Db, source: SourceRow, base: string, now: string, options: RepoSyncOptions): Promise<RepoSyncResult> => {
  if (!source.trustKey && !source.insecure)
    throw new SourceError({
      source: source.name,
      reason: "no trusted key: remove it and add it again with --trust KEY (or --insecure to accept unsigned metadata)",
    })
  const trust = source.insecure ? undefined : await followRoots(source, base)
  // New keys start a new count: a revoked key may have pushed the version up (a fast-forward) before it was revoked.
  const keysChanged = trust !== undefined && source.rootKeys !== keysText(trust)
  const validator = keysChanged ? null : indexValidator(db, source.name)
  const read = await readTop(source, base, trust, keysChanged ? 0 : source.metaVersion, now, options, validator)
  if (read.unchanged) {
    // The top document accepted before, as the server says: still fresh, and nothing else to read.
    checkFresh(source, source.metaVersion, source.metaExpires!, now, options)
    recordRepoSync(db, source.name, now, base, validator)
    const troves = db.prepare("SELECT count(*) FROM available WHERE source = ?").pluck().get(source.name) as number
    return { unchanged: true, troves, added: 0, removed: 0, version: source.metaVersion, expires: source.metaExpires! }
  }
  const top = read.top
  // Provenance names where the metadata really came from: the base a redirect led to.
  const origin = read.url.endsWith(`/${TOP}`) ? read.url.slice(0, -TOP.length - 1) : base
  const rows = db.prepare("SELECT entry FROM available WHERE source = ?").pluck().all(source.name) as Array<string | null>
  const held = new Set(rows.filter((h): h is string => h !== null))
  const changes = await changesTo(source, base, top, held, held.size === rows.length)
  const entries = changes.add.map((line) => ({ hash: lineHash(line), entry: entryOf(source, line) }))
  const offered = db.prepare("SELECT trove_id FROM available WHERE source = ?").pluck()
  let before = new Set<number>()
  let after = new Set<number>()
  // Immediate: it reads first (see connection.ts).
  db.transaction(() => {
    before = new Set(offered.all(source.name) as number[])
    db.prepare("DELETE FROM available WHERE source = ? AND (entry IS NULL OR entry IN (SELECT value FROM json_each(?)))").run(
      source.name,
      JSON.stringify(changes.remove),
    )
    const avail = db.prepare(
      `INSERT OR REPLACE INTO available (source, trove_id, archive, archive_sha256, archive_size, archive_mtime, entry) VALUES (?, ?, ?, ?, 0, 0, ?)`,
    )
    const prov = db.prepare(
      `INSERT OR IGNORE INTO provenance (trove_id, source, origin, archive_sha256, signature_key, imported_at) VALUES (?, ?, ?, ?, ?, ?)`,
    )
    for (const { hash, entry } of entries) {
      const id = upsertLazyTrove(db, {
        ...entry,
        hasScripts: entry.scripts,
        manifest: entry.manifest,
      })
      avail.run(source.name, id, entry.digest, entry.digest, hash)
      prov.run(id, source.name, origin, entry.digest, trust ? trust.keys.join(" ") : null, now)
    }
    db.prepare(
      `UPDATE sources SET synced_at = ?, meta_version = ?, meta_expires = ?, root_version = ?, root_keys = ? WHERE name = ?`,
    ).run(now, top.version, top.expires, trust?.version ?? 0, trust ? keysText(trust) : null, source.name)
    recordRepoSync(db, source.name, now, base, read.validator)
    after = new Set(offered.all(source.name) as number[])
  }).immediate()
  const added = [...after].filter((id) => !before.has(id)).length
  const removed = [...before].filter((id) => !after.has(id)).length
  return { unchanged: false, troves: after.size, added, removed, version: top.version, expires: top.expires }
}

/**
 * A trove's manifest from a repository: checked against its digest, its paths
 * as an archive's are, and against what the metadata said of it (the planner
 * chose by those figures).
 */
export const readManifest = async (
  source: SourceRow,
  base: string,
  t: Pick<Entry, "name" | "version" | "fileCount" | "totalSize" | "components" | "manifest">,
): Promise<{ doc: ManifestDoc; files: ReturnType<typeof checkManifestFiles> }> => {
  const bytes = await readObject(source, base, `manifest of ${t.name} ${t.version}`, t.manifest.sha256, t.manifest.size)
  return checkManifest(bytes, t, (reason) => new SourceError({ source: source.name, reason: `manifest of ${t.name} ${t.version}: ${reason}` }))
}

/** A trove's manifest (bytes already checked against its digest): its paths as an archive's, and agreeing with the trove's entry. */
export const checkManifest = (
  bytes: Buffer,
  t: Pick<Entry, "fileCount" | "totalSize" | "components">,
  bad: (reason: string) => Error,
): { doc: ManifestDoc; files: ReturnType<typeof checkManifestFiles> } => {
  const doc = decodeJson(ManifestDoc, bytes, bad)
  const files = checkManifestFiles(doc.files, bad)
  const components = JSON.stringify([...new Set(files.map((f) => f.component))].sort())
  if (files.length !== t.fileCount || files.reduce((n, f) => n + f.size, 0) !== t.totalSize || components !== JSON.stringify(t.components))
    throw bad("does not agree with the repository's metadata (file count, size or components)")
  return { doc, files }
}

/**
 * Makes sure the database holds the files of these troves: fetches the
 * manifests of repository troves that lack them (in parallel, each checked
 * against its digest, its paths as an archive's), and records them.
 */
export const ensureManifests = async (db: Db, troveIds: ReadonlyArray<number>): Promise<number> => {
  const lazy = lazyTroves(db, troveIds)
  if (lazy.length === 0) return 0
  const where = db.prepare(
    // From the mirror that served the metadata.
    `SELECT s.name, coalesce(s.synced_from, s.location) AS location FROM available a JOIN sources s ON s.name = a.source
     WHERE a.trove_id = ? AND s.kind = 'repo' ORDER BY s.name LIMIT 1`,
  )
  const meta = db.prepare("SELECT name, version, file_count AS fileCount, total_size AS totalSize, components FROM troves WHERE id = ?")
  const fetched: Array<{ id: number; doc: ManifestDoc; files: ReturnType<typeof checkManifestFiles> }> = []
  await forEachBounded(lazy, CONCURRENCY, async (t) => {
    const src = where.get(t.id) as { name: string; location: string } | undefined
    const m = meta.get(t.id) as { name: string; version: string; fileCount: number; totalSize: number; components: string }
    if (!src) throw new ArchiveError({ archive: `${m.name} ${m.version}`, reason: "its files are not known and no repository offers it any more" })
    const source = { name: src.name, location: src.location } as SourceRow
    const expected = { ...m, components: JSON.parse(m.components) as string[], manifest: { sha256: t.manifest, size: t.manifestSize } }
    fetched.push({ id: t.id, ...(await readManifest(source, src.location, expected)) })
  })
  db.transaction(() => {
    for (const f of fetched) {
      fillTroveFiles(db, f.id, f.files, f.doc.scripts)
      recordFetchInfo(db, f.id, new Set(f.files.flatMap((x) => (x.sha256 ? [x.sha256] : []))), f.doc)
    }
  })()
  return fetched.length
}

/** What a repository offers now at one location, read without changing anything (verify --provenance). */
export interface RepoOffer {
  readonly entries: ReadonlyArray<Entry>
  /** the metadata verified against the keys the source follows (false: an --insecure source) */
  readonly signed: boolean
  readonly version: number
}

/**
 * Reads every trove a repository lists now, with the same checks as a sync
 * (root chain, signature, digests) but accepting an older or expired
 * document: the caller reports those rather than refusing to look.
 * Undefined when the location has no repository any more.
 */
export const readRepoOffer = async (source: SourceRow, base: string, now: string): Promise<RepoOffer | undefined> => {
  // Gone (no top document) is an answer of its own, not a failure.
  if ((await readRepoDocument(source.name, base, TOP)).status === "missing") return undefined
  const trust = source.insecure ? undefined : await followRoots(source, base)
  const read = await readTop(source, base, trust, 0, now, { allowExpired: true }, null)
  if (read.unchanged) throw new SourceError({ source: source.name, reason: `${base} answered 304 to an unconditional request` })
  const entries = [...(await readParts(source, base, read.top)).values()].map((line) => entryOf(source, line))
  return { entries, signed: trust !== undefined, version: read.top.version }
}
