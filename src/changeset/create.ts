import * as fs from "node:fs"
import * as path from "node:path"
import * as Either from "effect/Either"
import type { KeyObject } from "node:crypto"
import { desiredRows } from "../db/desired.js"
import { groupMembers, troveFilesLookup, troveOrigins, troveScripts, trovesById } from "../db/troves.js"
import { parseFlavor } from "../desired/flavor.js"
import { toDocument } from "../desired/rows.js"
import { UsageError } from "../errors.js"
import { checkOutputFile, writeOutputFile } from "../files.js"
import type { InstalledTrove } from "../model/installed.js"
import type { FileOp, Plan } from "../model/plan-schema.js"
import { type TroveFile, filesForComponents, onDisk, troveLabel } from "../model/trove.js"
import { type ApplyContext, fetchContents } from "../reconcile/apply.js"
import { ensureTargetFiles, planInputWith, reservedPaths } from "../reconcile/load.js"
import { type DiffInput, plan as planOf } from "../reconcile/plan.js"
import { ensureManifests } from "../source/repo-client.js"
import { compressAll, publishable, readPrivateKey } from "../source/repo.js"
import { type Entry, signEnvelope } from "../source/repo-meta.js"
import { type Header, type ObjectRef, type TargetRef, preamble } from "./container.js"
import type { InstalledState } from "./state.js"
import { FileOps } from "../model/file-ops.js"

// `changeset create`: the plan from a root's installed state (or from
// nothing) to this host's desired state, with every trove and content that
// state lacks, in one file (see container.ts) that a root with no source
// reachable can verify and apply.

export interface CreateResult {
  readonly plan: Plan
  readonly madeFor: Header["madeFor"]
  readonly troves: number
  readonly contents: number
  /** uncompressed bytes of the contents carried, and the file's size */
  readonly contentBytes: number
  readonly bytes: number
  readonly signed: boolean
}

/** The installed troves a state lists, as this host's catalog knows them (by digest). */
const installedFrom = async (ctx: ApplyContext, state: InstalledState): Promise<InstalledTrove[]> => {
  const ids = new Map<string, number>()
  for (const [id, o] of troveOrigins(ctx.db)) ids.set(o.digest, id)
  const unknown = state.troves.filter((t) => !ids.has(t.digest))
  if (unknown.length > 0) {
    const t = unknown[0]!
    throw new UsageError({
      message: `the target's installed trove ${t.name}=${t.version} (digest ${t.digest.slice(0, 16)}) is unknown here: add and sync a source that offers it` +
        (unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ""),
    })
  }
  await ensureManifests(ctx.db, state.troves.map((t) => ids.get(t.digest)!))
  const metas = new Map(trovesById(ctx.db, [...new Set(state.troves.map((t) => ids.get(t.digest)!))]).map((m) => [m.id, m]))
  return state.troves.map((t) => ({
    trove: metas.get(ids.get(t.digest)!)!,
    components: t.components,
    reason: t.reason,
    ...(t.group === undefined ? {} : { group: t.group }),
  }))
}

/** The planner's view of a root that is not this one: its installed troves' files, nothing else on its disk. */
const diffInputFor = (ctx: ApplyContext, installed: ReadonlyArray<InstalledTrove>): DiffInput => {
  const filesOf = troveFilesLookup(ctx.db)
  const owners = new Map<string, Array<{ troveId: number; file: TroveFile }>>()
  for (const i of installed)
    for (const file of filesForComponents(filesOf(i.trove.id), i.components)) {
      if (!onDisk(file)) continue
      const list = owners.get(file.path)
      if (list) list.push({ troveId: i.trove.id, file })
      else owners.set(file.path, [{ troveId: i.trove.id, file }])
    }
  return { installed, filesOf, ownersOf: (p) => owners.get(p) ?? [], reserved: reservedPaths(ctx.root, ctx.dbPath) }
}

/** sha256 -> size of the contents the troves install (their components' regular files). */
const contentsOf = (filesOf: (id: number) => ReadonlyArray<TroveFile>, troves: ReadonlyArray<{ troveId: number; components: ReadonlyArray<string> }>) => {
  const out = new Map<string, { size: number; troveId: number; file: TroveFile }>()
  for (const t of troves)
    for (const file of filesForComponents(filesOf(t.troveId), t.components))
      if (onDisk(file) && file.kind === "file" && file.sha256 !== null && !out.has(file.sha256)) out.set(file.sha256, { size: file.size, troveId: t.troveId, file })
  return out
}

const writeAll = (fd: number, data: Buffer, length = data.length) => {
  for (let off = 0; off < length; ) off += fs.writeSync(fd, data, off, length - off)
}

/** Appends a file to an open descriptor through one buffer. */
const append = (fd: number, file: string, buf: Buffer) => {
  const src = fs.openSync(file, "r")
  try {
    for (let n; (n = fs.readSync(src, buf, 0, buf.length, null)) > 0; ) writeAll(fd, buf, n)
  } finally {
    fs.closeSync(src)
  }
}

export const createChangeset = async (
  ctx: ApplyContext,
  out: string,
  options: { readonly state?: InstalledState; readonly signKey?: string },
): Promise<CreateResult> => {
  // Everything that can be refused is, before any content is fetched or written.
  const key: KeyObject | undefined = options.signKey === undefined ? undefined : readPrivateKey(options.signKey)
  checkOutputFile(out)
  const db = ctx.db
  const state = options.state
  const installed = state ? await installedFrom(ctx, state) : []
  const diff = diffInputFor(ctx, installed)
  const inputOf = () => ({
    ...planInputWith(db, { refresh: false, restoreConfig: false }, diff),
    // A target resolves with its own flavor and provides; an absolute changeset with this host's.
    ...(state ? { systemFlavor: parseFlavor(state.flavor), provides: new Set(state.provides) } : {}),
  })
  const first = inputOf()
  const { resolution, fetched } = await ensureTargetFiles(db, first)
  // Fetched files can own paths `file:` requirements name: then the input is read and resolved afresh (as plan does).
  const result = fetched === 0 ? planOf(first, resolution) : planOf(inputOf())
  if (Either.isLeft(result)) throw result.left
  const plan = result.right

  const origins = troveOrigins(db)
  const installedIds = new Set(installed.map((i) => i.trove.id))
  const carried = plan.target.filter((t) => !installedIds.has(t.troveId))
  const filesOf = diff.filesOf
  const have = contentsOf(filesOf, installed.map((i) => ({ troveId: i.trove.id, components: i.components })))
  const wanted = [...contentsOf(filesOf, plan.target)].filter(([sha]) => !have.has(sha))
  const labels = new Map(plan.target.map((t) => [t.troveId, troveLabel(t)]))
  // Contents this host has not fetched yet come from its sources, as apply fetches them.
  const fetchOps: FileOp[] = wanted.map(([sha256, w]) => ({
    op: "add",
    path: w.file.path,
    kind: "file",
    troveId: w.troveId,
    trove: labels.get(w.troveId)!,
    sha256,
    size: w.size,
    mode: w.file.mode,
    owner: w.file.owner,
    group: w.file.group,
    target: null,
    config: false,
  }))
  await fetchContents(ctx, { ...plan, files: FileOps.from(fetchOps) })

  const members = groupMembers(db)
  const metas = new Map(trovesById(db, carried.map((t) => t.troveId)).map((m) => [m.id, m]))
  const published = carried.map((t) => {
    const m = metas.get(t.troveId)!
    const o = origins.get(t.troveId)!
    const group = members.get(t.troveId)
    return publishable({
      ...m,
      digest: o.digest,
      format: o.format,
      files: filesOf(t.troveId),
      scripts: troveScripts(db, t.troveId),
      ...(group ? { members: group } : {}),
    })
  })
  const target: TargetRef[] = plan.target.map((t) => ({
    digest: origins.get(t.troveId)!.digest,
    name: t.name,
    version: t.version,
    flavor: t.flavor,
    components: t.components,
    reason: t.reason,
    ...(t.group === undefined ? {} : { group: t.group }),
  }))
  const madeFor: Header["madeFor"] = state ? { rootId: state.rootId, generation: state.generation, state: state.digest } : null

  const scratch = `${out}.tmp-${process.pid}.d`
  fs.rmSync(scratch, { recursive: true, force: true })
  fs.mkdirSync(path.join(scratch, "raw"), { recursive: true })
  fs.mkdirSync(path.join(scratch, "zst"))
  try {
    // Each object once (troves without files share a manifest), from a file named so its compressed copy cannot clash with another's.
    const bySha = new Map<string, { sha256: string; size: number; file: string }>()
    for (const p of published) {
      const sha256 = p.entry.manifest.sha256
      if (bySha.has(sha256)) continue
      const file = path.join(scratch, "raw", sha256)
      fs.writeFileSync(file, p.manifest)
      bySha.set(sha256, { sha256, size: p.manifest.length, file })
    }
    for (const [sha256, w] of wanted) if (!bySha.has(sha256)) bySha.set(sha256, { sha256, size: w.size, file: ctx.store.pathOf(sha256) })
    const sources = [...bySha.values()]
    compressAll(sources.map((s) => s.file), 3, scratch, path.join(scratch, "zst"))
    const compressed = (s: { file: string }) => path.join(scratch, "zst", path.basename(s.file) + ".zst")
    const objects: ObjectRef[] = sources.map((s) => ({ sha256: s.sha256, size: s.size, length: fs.statSync(compressed(s)).size }))
    const header: Header = {
      kind: "conary-changeset",
      formatVersion: 1,
      createdAt: ctx.now(),
      madeFor,
      desired: JSON.stringify(toDocument(desiredRows(db))),
      target,
      troves: published.map((p): Entry => p.entry),
      objects,
    }
    const headerBytes = signEnvelope(header, key ? [key] : [])
    const bytes = await writeOutputFile(out, (temp) => {
      const fd = fs.openSync(temp, "w")
      try {
        writeAll(fd, preamble(headerBytes.length))
        writeAll(fd, headerBytes)
        const buf = Buffer.allocUnsafe(1 << 20)
        for (const s of sources) append(fd, compressed(s), buf)
        fs.fsyncSync(fd)
        return fs.fstatSync(fd).size
      } finally {
        fs.closeSync(fd)
      }
    })
    return {
      plan,
      madeFor,
      troves: published.length,
      contents: wanted.length,
      contentBytes: wanted.reduce((n, [, w]) => n + w.size, 0),
      bytes,
      signed: key !== undefined,
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}
