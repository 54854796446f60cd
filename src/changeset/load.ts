import { createHash } from "node:crypto"
import { listSources } from "../db/sources.js"
import { installedTroves } from "../db/state.js"
import { type NewTrove, lazyTroves, troveOrigins, trovesById, upsertTrove } from "../db/troves.js"
import { type DesiredRow, fromDocument } from "../desired/rows.js"
import { ChangesetError, StoreError, UsageError } from "../errors.js"
import type { Plan, TargetTrove } from "../model/plan-schema.js"
import { type TroveFile, type TroveMeta, troveLabel } from "../model/trove.js"
import { type ApplyContext, writesContent } from "../reconcile/apply.js"
import { type RefreshOptions, planInstalled } from "../reconcile/load.js"
import { planTo } from "../reconcile/plan.js"
import { movedSince } from "../reconcile/saved-plan.js"
import { CorruptError } from "../source/decompress.js"
import { checkManifest, checkedEntry } from "../source/repo-client.js"
import { type Entry, MAX_META, validSignatures } from "../source/repo-meta.js"
import { type OpenedChangeset, objectStream, openChangeset } from "./container.js"
import { installedState } from "./state.js"
import { sha256Of } from "../sha256.js"

// `apply FILE.ccs` and `changeset show FILE.ccs` on the target: everything in
// the file is checked (frame, signature, the state it was made for, every
// manifest) and the plan to its trove set is made from this root, as
// rollback plans to a generation's set, before anything is written. Apply
// then streams each content into the store (verified), records the troves
// new to this database and applies the plan as any apply.

/** Which changesets this root accepts: signed by one of these keys, or any with --insecure. */
export interface Trust {
  readonly keys: ReadonlyArray<string>
  readonly insecure: boolean
}

/** The keys this root already trusts: those its repositories are signed with (the --trust key, and the root it followed). */
export const sourceKeys = (ctx: Pick<ApplyContext, "db">): string[] =>
  listSources(ctx.db).flatMap((s) => [
    ...(s.trustKey ? [s.trustKey] : []),
    ...(s.rootKeys ? (JSON.parse(s.rootKeys) as { keys: string[] }).keys : []),
  ])

export interface LoadedChangeset {
  readonly cs: OpenedChangeset
  /** the plan to the changeset's trove set; troves new to this database have provisional (negative) ids */
  readonly plan: Plan
  /** the desired document it was made from, and its rows */
  readonly desired: string
  readonly rows: ReadonlyArray<DesiredRow>
  /** whether a trusted key's signature was verified (false: accepted --insecure) */
  readonly verified: boolean
  /** troves to record, by provisional id */
  readonly troves: ReadonlyMap<number, NewTrove>
  /** manifests read and checked already */
  readonly manifests: ReadonlySet<string>
}


/** An object's bytes, held whole (a manifest: bounded by the header's figures), checked against its digest. */
const readObject = async (cs: OpenedChangeset, sha256: string, refuse: (reason: string) => Error): Promise<Buffer> => {
  const chunks: Buffer[] = []
  try {
    for await (const chunk of objectStream(cs, sha256)) chunks.push(chunk)
  } catch (e) {
    if (e instanceof CorruptError) throw refuse(`object ${sha256.slice(0, 16)} does not match its sha256 (tampered, truncated or corrupt)`)
    throw e
  }
  const bytes = Buffer.concat(chunks)
  if (sha256Of(bytes) !== sha256) throw refuse(`object ${sha256.slice(0, 16)} does not match its sha256 (tampered, truncated or corrupt)`)
  return bytes
}

/** Why the root is not in the state the changeset was made for, if it is not. */
const staleReason = (ctx: ApplyContext, madeFor: NonNullable<OpenedChangeset["header"]["madeFor"]>): string | undefined => {
  const now = installedState(ctx.db)
  if (now.digest === madeFor.state) return undefined
  const again = "make it again from this root's `conary status --json --installed`"
  if (now.rootId !== madeFor.rootId)
    return `it was made for another state (root ${madeFor.rootId} at generation ${madeFor.generation}): this root's installed troves, flavor or provides differ; ${again}`
  if (now.generation !== madeFor.generation) return `${movedSince(now.generation, madeFor.generation, "changeset")}; ${again}`
  return `the system flavor or provides changed since the changeset was made; ${again}`
}

const metaOf = (id: number, e: Entry): TroveMeta => ({
  id,
  name: e.name,
  version: e.version,
  scheme: e.scheme,
  flavor: e.flavor,
  components: e.components,
  requires: e.requires,
  provides: e.provides,
  conflicts: e.conflicts,
  breaks: e.breaks,
  replaces: e.replaces,
  optional: e.optional,
  fileCount: e.fileCount,
  totalSize: e.totalSize,
  hasScripts: e.scripts,
  ...(e.license === undefined ? {} : { license: e.license }),
})

export const loadChangeset = async (ctx: ApplyContext, file: string, trust: Trust, options: RefreshOptions): Promise<LoadedChangeset> => {
  const refuse = (reason: string) => new ChangesetError({ file, reason })
  const cs = openChangeset(file, refuse)
  const { header, envelope } = cs
  if (!trust.insecure) {
    if (envelope.signatures.length === 0) throw refuse("it is not signed (give --insecure to apply an unsigned changeset)")
    if (validSignatures(envelope, trust.keys) < 1)
      throw refuse("its signature does not verify against a trusted key (the keys of this root's repositories, or --trust PUB): tampered, or signed by another key")
  }
  if (header.madeFor) {
    const stale = staleReason(ctx, header.madeFor)
    if (stale) throw refuse(stale)
  }
  let rows: DesiredRow[]
  try {
    rows = fromDocument(header.desired, "its desired state")
  } catch (e) {
    if (e instanceof UsageError) throw refuse(e.message)
    throw e
  }

  // Each trove of the set: installed here, known to this database with its files, or carried by the changeset.
  const installed = new Map(installedTroves(ctx.db).map((i) => [i.trove.id, i.trove]))
  const origins = troveOrigins(ctx.db)
  const known = new Map<string, number>()
  for (const [id, o] of origins) known.set(o.digest, id)
  const lazy = new Set(lazyTroves(ctx.db, [...known.values()]).map((t) => t.id))
  const entries = new Map<string, Entry>()
  for (const e of header.troves) {
    if (entries.has(e.digest)) throw refuse(`trove ${e.name} ${e.version} is listed twice`)
    entries.set(e.digest, checkedEntry(e, (reason) => refuse(`trove ${e.name} ${e.version}: ${reason}`)))
  }
  const target: TargetTrove[] = []
  const metas: TroveMeta[] = []
  const troves = new Map<number, NewTrove>()
  const files = new Map<number, ReadonlyArray<TroveFile>>()
  const manifests = new Set<string>()
  const seen = new Set<string>()
  for (const ref of header.target) {
    const label = troveLabel(ref)
    if (seen.has(ref.digest)) throw refuse(`its trove set lists ${label} twice`)
    seen.add(ref.digest)
    const here = known.get(ref.digest)
    let id: number
    if (here !== undefined && !lazy.has(here)) {
      id = here
      const meta = installed.get(here) ?? trovesById(ctx.db, [here])[0]!
      metas.push(meta)
      if (meta.name !== ref.name || meta.version !== ref.version) throw refuse(`its trove set names ${label}, which is ${troveLabel(meta)} here`)
    } else {
      const e = entries.get(ref.digest)
      if (!e) throw refuse(`its trove set names ${label}, which this root does not have and the changeset does not carry`)
      if (e.name !== ref.name || e.version !== ref.version || e.flavor !== ref.flavor) throw refuse(`its trove set names ${label}, which it carries as ${troveLabel(e)}`)
      const listed = cs.at.get(e.manifest.sha256)
      if (!listed || listed.size !== e.manifest.size) throw refuse(`it lacks the manifest of ${label}`)
      if (listed.size > MAX_META) throw refuse(`the manifest of ${label} is larger than the ${MAX_META} bytes allowed`)
      const { doc, files: list } = checkManifest(await readObject(cs, e.manifest.sha256, refuse), e, (reason) => refuse(`manifest of ${label}: ${reason}`))
      manifests.add(e.manifest.sha256)
      id = -(troves.size + 1)
      metas.push(metaOf(id, e))
      files.set(id, list)
      troves.set(id, { ...e, files: list, scripts: doc.scripts })
    }
    const { digest: _, ...rest } = ref
    target.push({ ...rest, troveId: id })
  }

  const plan = await planInstalled(ctx.db, ctx.root, ctx.dbPath, options, (input) =>
    planTo({ ...input, filesOf: (id) => files.get(id) ?? input.filesOf(id) }, target, metas),
  )
  // The plan names only contents this root's store holds or the changeset carries.
  for (const op of plan.files)
    if (writesContent(op) && !ctx.store.has(op.sha256!) && !cs.at.has(op.sha256!))
      throw refuse(`it lacks the content of ${op.path} of ${op.trove} (${op.sha256!.slice(0, 16)}), which this root's store does not hold either`)
  return { cs, plan, desired: header.desired, rows, verified: !trust.insecure, troves, manifests }
}

/**
 * Checks every object of the changeset against its digest, streaming the
 * contents the plan writes into the store (which verifies them on the way).
 * Memory stays bounded: one object at a time, in slices.
 */
export const verifyObjects = async (ctx: ApplyContext, loaded: LoadedChangeset, options: { readonly store: boolean }): Promise<void> => {
  const refuse = (reason: string) => new ChangesetError({ file: loaded.cs.file, reason })
  const wanted = new Set(loaded.plan.files.filter(writesContent).map((op) => op.sha256!))
  const objects = loaded.cs.header.objects.filter((o) => !loaded.manifests.has(o.sha256) || wanted.has(o.sha256))
  const bad = (sha256: string) => refuse(`object ${sha256.slice(0, 16)} does not match its sha256 (tampered, truncated or corrupt)`)
  ctx.report.start("verify", objects.length)
  for (const o of objects) {
    if (options.store && wanted.has(o.sha256) && !ctx.store.has(o.sha256)) {
      try {
        await ctx.store.putStream(objectStream(loaded.cs, o.sha256), o.sha256)
      } catch (e) {
        if (e instanceof StoreError || e instanceof CorruptError) throw bad(o.sha256)
        throw e
      }
    } else {
      const hash = createHash("sha256")
      try {
        for await (const chunk of objectStream(loaded.cs, o.sha256)) hash.update(chunk)
      } catch (e) {
        if (e instanceof CorruptError) throw bad(o.sha256)
        throw e
      }
      if (hash.digest("hex") !== o.sha256) throw bad(o.sha256)
    }
    ctx.report.tick()
  }
  ctx.report.done()
}

/** Records the troves new to this database (one transaction) and gives the plan their ids. */
export const recordTroves = (ctx: ApplyContext, loaded: LoadedChangeset): Plan => {
  const ids = new Map<number, number>()
  // Immediate: it reads before it writes (see connection.ts).
  ctx.db.transaction(() => {
    for (const [provisional, trove] of loaded.troves) ids.set(provisional, upsertTrove(ctx.db, trove))
  }).immediate()
  const id = (n: number) => ids.get(n) ?? n
  const plan = loaded.plan
  return {
    ...plan,
    troves: plan.troves.map((t) => (t.to ? { ...t, to: { ...t.to, troveId: id(t.to.troveId) } } : t)),
    files: plan.files.mapOps((f) => ({ ...f, troveId: id(f.troveId) })),
    target: plan.target.map((t) => ({ ...t, troveId: id(t.troveId) })),
  }
}
