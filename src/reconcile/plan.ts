import * as Either from "effect/Either"
import { FileConflictError, UnresolvableError } from "../errors.js"
import { satisfiesRelation } from "../desired/version.js"
import { type TroveFile, type TroveMeta, filesForComponents, parseDepGroup, troveLabel } from "../source/trove.js"
import {
  type FileOp,
  PLAN_FORMAT_VERSION,
  type Plan,
  type Reason,
  type TargetTrove,
  type TroveOp,
} from "./plan-schema.js"
import { type ResolveInput, resolve } from "./resolve.js"
import type { Drift } from "./verify.js"

// plan(desired, system flavor, available, installed) -> Plan. Pure: every
// input is a value or a deterministic lookup, and nothing is written.

export interface InstalledTrove {
  readonly trove: TroveMeta
  readonly components: ReadonlyArray<string>
  readonly reason: Reason
}

/** What diffing a target trove set against the installed state needs. */
export interface DiffInput {
  readonly installed: ReadonlyArray<InstalledTrove>
  /** the files of a trove (all components) */
  readonly filesOf: (troveId: number) => ReadonlyArray<TroveFile>
  /** installed troves owning a path, with their entry for it */
  readonly ownersOf: (path: string) => ReadonlyArray<{ readonly troveId: number; readonly file: TroveFile }>
  /** drift found on disk; without it no repairs are planned */
  readonly drift?: ReadonlyArray<Drift>
  /** recreate config files the user deleted */
  readonly restoreConfig?: boolean
}

export interface PlanInput extends ResolveInput, DiffInput {}

/** What a repair restores, from a drift entry's flags. */
const driftNote = (d: Drift): string => {
  if (d.missing) return "missing"
  const what: string[] = []
  if (d.flags.includes("5") || d.flags.includes("S")) what.push("content changed")
  if (d.flags.includes("L")) what.push("link changed")
  if (d.flags.includes("M")) what.push("mode changed")
  if (d.flags.includes("U") || d.flags.includes("G")) what.push("owner changed")
  return what.join(", ") || "changed"
}

const sameComponents = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && [...a].sort().every((c, i) => c === [...b].sort()[i])

/** Same bytes and type on disk: replacing one with the other writes nothing. */
const sameContent = (a: TroveFile, b: TroveFile) => a.kind === b.kind && a.sha256 === b.sha256 && a.target === b.target

const sameAttrs = (a: TroveFile, b: TroveFile) => a.mode === b.mode && a.owner === b.owner && a.group === b.group

/** Two troves may both own a path when they agree on it (shared directories, identical files). */
const compatible = (a: TroveFile, b: TroveFile) => (a.kind === "dir" && b.kind === "dir") || (sameContent(a, b) && sameAttrs(a, b))

interface Owned {
  readonly file: TroveFile
  readonly troveId: number
  readonly label: string
}

const fileOp = (op: FileOp["op"], { file, troveId, label }: Owned, extra: Partial<FileOp> = {}): FileOp => ({
  op,
  path: file.path,
  kind: file.kind,
  troveId,
  trove: label,
  sha256: file.sha256,
  size: file.size,
  mode: file.mode,
  owner: file.owner,
  group: file.group,
  target: file.target,
  config: file.config,
  ...extra,
})

/**
 * Files of the components a trove installs, keyed by path. Two troves that
 * disagree on a path conflict, unless one declares it Replaces the other
 * (Debian's way of moving files between packages): then its file wins.
 */
const collect = (
  into: Map<string, Owned>,
  files: ReadonlyArray<TroveFile>,
  components: ReadonlyArray<string>,
  troveId: number,
  label: string,
  replaces: (a: number, b: number) => boolean = () => false,
) => {
  for (const file of filesForComponents(files, components)) {
    const prior = into.get(file.path)
    if (prior === undefined || (!compatible(prior.file, file) && replaces(troveId, prior.troveId)))
      into.set(file.path, { file, troveId, label })
    else if (!compatible(prior.file, file) && !replaces(prior.troveId, troveId))
      throw new FileConflictError({ path: file.path, troves: [prior.label, label] })
  }
}

/** Whether trove a declares that it replaces trove b (name and version). */
const replacesOf = (metaById: ReadonlyMap<number, TroveMeta>) => (a: number, b: number): boolean => {
  const ma = metaById.get(a)
  const mb = metaById.get(b)
  if (!ma || !mb || ma.replaces.length === 0) return false
  return ma.replaces.some((rel) =>
    (parseDepGroup(rel) ?? []).some(
      (d) => d.name === mb.name && (!d.relation || satisfiesRelation(mb.scheme, mb.version, d.relation, d.version!)),
    ),
  )
}

const byPath = (a: FileOp, b: FileOp) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

const catching = <A>(f: () => A): Either.Either<A, UnresolvableError | FileConflictError> => {
  try {
    return Either.right(f())
  } catch (e) {
    if (e instanceof UnresolvableError || e instanceof FileConflictError) return Either.left(e)
    throw e
  }
}

/** The plan that brings the installed state to the desired state. */
export const plan = (input: PlanInput): Either.Either<Plan, UnresolvableError | FileConflictError> =>
  catching(() => diff(input, resolve(input), input.available))

/** The plan that brings the installed state to an exact trove set (rollback). */
export const planTo = (
  input: DiffInput,
  target: ReadonlyArray<TargetTrove>,
  metas: ReadonlyArray<TroveMeta>,
): Either.Either<Plan, FileConflictError | UnresolvableError> => catching(() => diff(input, target, metas))

const diff = (input: DiffInput, target: ReadonlyArray<TargetTrove>, metas: ReadonlyArray<TroveMeta>): Plan => {
  const metaById = new Map(metas.map((t) => [t.id, t]))
  for (const i of input.installed) metaById.set(i.trove.id, i.trove)

  // Pair each target trove with what is installed: the same trove, else the
  // same name (preferring the same flavor) as an update.
  const installedLeft = new Map(input.installed.map((i) => [i.trove.id, i]))
  const pairs: Array<{ from?: InstalledTrove; to?: TargetTrove }> = []
  const unmatched: TargetTrove[] = []
  for (const t of target) {
    const same = installedLeft.get(t.troveId)
    if (same) {
      installedLeft.delete(t.troveId)
      pairs.push({ from: same, to: t })
    } else unmatched.push(t)
  }
  for (const t of unmatched) {
    const sameName = [...installedLeft.values()].filter((i) => i.trove.name === t.name)
    const from = sameName.find((i) => i.trove.flavor === t.flavor) ?? sameName[0]
    if (from) installedLeft.delete(from.trove.id)
    pairs.push({ ...(from ? { from } : {}), to: t })
  }
  for (const from of installedLeft.values()) pairs.push({ from })

  const replaces = replacesOf(metaById)
  const troveOps: TroveOp[] = []
  const oldFiles = new Map<string, Owned>()
  const newFiles = new Map<string, Owned>()
  const leaving = new Set<number>()
  for (const { from, to } of pairs) {
    if (from && to && from.trove.id === to.troveId && sameComponents(from.components, to.components)) continue
    if (from) {
      leaving.add(from.trove.id)
      collect(oldFiles, input.filesOf(from.trove.id), from.components, from.trove.id, troveLabel(from.trove))
    }
    const toMeta = to ? metaById.get(to.troveId)! : undefined
    if (to) collect(newFiles, input.filesOf(to.troveId), to.components, to.troveId, troveLabel(to), replaces)
    const ref = (t: { trove: TroveMeta; components: ReadonlyArray<string> }) => ({
      troveId: t.trove.id,
      version: t.trove.version,
      flavor: t.trove.flavor,
      components: [...t.components],
    })
    troveOps.push({
      op: from && to ? "update" : to ? "install" : "erase",
      name: (to ?? from!.trove).name,
      reason: to?.reason ?? from!.reason,
      ...(from ? { from: ref(from) } : {}),
      ...(to ? { to: ref({ trove: toMeta!, components: to.components }) } : {}),
      scripts: (toMeta ?? from!.trove).hasScripts,
    })
  }
  troveOps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

  // Owners of a path that stay installed untouched.
  const staying = (path: string) => input.ownersOf(path).filter((o) => !leaving.has(o.troveId))
  const labelOf = (id: number) => {
    const meta = metaById.get(id)
    return meta ? troveLabel(meta) : `trove #${id}`
  }

  // Drift the disk scan found, by path: locally changed config files are the
  // user's, everything else is restored.
  const driftAt = new Map((input.drift ?? []).map((d) => [d.path, d]))
  const locallyChanged = (path: string) => {
    const d = driftAt.get(path)
    return d !== undefined && d.config && (d.missing || d.flags.includes("5"))
  }

  const fileOps: FileOp[] = []
  for (const [path, next] of newFiles) {
    for (const other of staying(path)) {
      if (!compatible(other.file, next.file))
        throw new FileConflictError({ path, troves: [labelOf(other.troveId), next.label] })
    }
    const prev = oldFiles.get(path)
    if (prev) {
      if (!sameContent(prev.file, next.file)) {
        if (prev.file.config && next.file.config && locallyChanged(path)) {
          // Deleted by the user: stays deleted unless asked. Edited: merged.
          if (!driftAt.get(path)!.missing)
            fileOps.push(fileOp("merge", next, { note: "changed locally and by the package", baseSha256: prev.file.sha256! }))
          else if (input.restoreConfig) fileOps.push(fileOp("replace", next))
        } else fileOps.push(fileOp("replace", next))
      } else if (!sameAttrs(prev.file, next.file)) fileOps.push(fileOp("chmod", next))
    } else if (staying(path).length === 0) fileOps.push(fileOp("add", next))
  }
  for (const [path, prev] of oldFiles) {
    if (newFiles.has(path) || staying(path).length > 0) continue
    if (prev.file.config && locallyChanged(path) && !driftAt.get(path)!.missing)
      fileOps.push(fileOp("save", prev, { note: "changed locally" }))
    else fileOps.push(fileOp("remove", prev))
  }

  // Repairs: drifted files whose trove keeps them unchanged.
  const touched = new Set(fileOps.map((op) => op.path))
  for (const d of input.drift ?? []) {
    if (touched.has(d.path)) continue
    const owner =
      newFiles.get(d.path) ??
      staying(d.path).map((o): Owned => ({ file: o.file, troveId: o.troveId, label: labelOf(o.troveId) }))[0]
    if (!owner) continue
    if (owner.file.config && !(d.missing && input.restoreConfig)) continue
    fileOps.push(fileOp("repair", owner, { note: driftNote(d) }))
  }
  fileOps.sort(byPath)

  let bytes = 0
  let files = 0
  for (const op of fileOps) {
    if (op.op !== "remove" && op.op !== "chmod" && op.op !== "save") bytes += op.size
    files++
  }
  const count = (op: TroveOp["op"]) => troveOps.filter((t) => t.op === op).length
  return {
    formatVersion: PLAN_FORMAT_VERSION,
    troves: troveOps,
    files: fileOps,
    target: [...target],
    summary: {
      install: count("install"),
      update: count("update"),
      erase: count("erase"),
      repair: fileOps.filter((op) => op.op === "repair").length,
      files,
      bytes,
    },
  }
}
