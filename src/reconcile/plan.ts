import * as Either from "effect/Either"
import { FileConflictError, UnresolvableError } from "../errors.js"
import { type TroveFile, type TroveMeta, filesForComponents, troveLabel } from "../source/trove.js"
import {
  type FileOp,
  PLAN_FORMAT_VERSION,
  type Plan,
  type Reason,
  type TargetTrove,
  type TroveOp,
} from "./plan-schema.js"
import { type ResolveInput, resolve } from "./resolve.js"

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
}

export interface PlanInput extends ResolveInput, DiffInput {}

const sameComponents = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && [...a].sort().every((c, i) => c === [...b].sort()[i])

/** Same bytes and type on disk: replacing one with the other writes nothing. */
const sameContent = (a: TroveFile, b: TroveFile) => a.kind === b.kind && a.sha256 === b.sha256 && a.target === b.target

const sameAttrs = (a: TroveFile, b: TroveFile) => a.mode === b.mode && a.owner === b.owner && a.group === b.group

/** Two troves may both own a path when they agree on it (shared directories, identical files). */
const compatible = (a: TroveFile, b: TroveFile) => (a.kind === "dir" && b.kind === "dir") || (sameContent(a, b) && sameAttrs(a, b))

interface Owned {
  readonly file: TroveFile
  readonly label: string
}

const fileOp = (op: FileOp["op"], { file, label }: Owned): FileOp => ({
  op,
  path: file.path,
  kind: file.kind,
  trove: label,
  sha256: file.sha256,
  size: file.size,
  mode: file.mode,
  owner: file.owner,
  group: file.group,
  target: file.target,
  config: file.config,
})

/** Files of the components a trove installs, keyed by path. */
const collect = (
  into: Map<string, Owned>,
  files: ReadonlyArray<TroveFile>,
  components: ReadonlyArray<string>,
  label: string,
) => {
  for (const file of filesForComponents(files, components)) {
    const prior = into.get(file.path)
    if (prior === undefined) into.set(file.path, { file, label })
    else if (!compatible(prior.file, file)) throw new FileConflictError({ path: file.path, troves: [prior.label, label] })
  }
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

  const troveOps: TroveOp[] = []
  const oldFiles = new Map<string, Owned>()
  const newFiles = new Map<string, Owned>()
  const leaving = new Set<number>()
  for (const { from, to } of pairs) {
    if (from && to && from.trove.id === to.troveId && sameComponents(from.components, to.components)) continue
    if (from) {
      leaving.add(from.trove.id)
      collect(oldFiles, input.filesOf(from.trove.id), from.components, troveLabel(from.trove))
    }
    const toMeta = to ? metaById.get(to.troveId)! : undefined
    if (to) collect(newFiles, input.filesOf(to.troveId), to.components, troveLabel(to))
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

  const fileOps: FileOp[] = []
  for (const [path, next] of newFiles) {
    for (const other of staying(path)) {
      if (!compatible(other.file, next.file))
        throw new FileConflictError({ path, troves: [labelOf(other.troveId), next.label] })
    }
    const prev = oldFiles.get(path)
    if (prev) {
      if (!sameContent(prev.file, next.file)) fileOps.push(fileOp("replace", next))
      else if (!sameAttrs(prev.file, next.file)) fileOps.push(fileOp("chmod", next))
    } else if (staying(path).length === 0) fileOps.push(fileOp("add", next))
  }
  for (const [path, prev] of oldFiles) {
    if (!newFiles.has(path) && staying(path).length === 0) fileOps.push(fileOp("remove", prev))
  }
  fileOps.sort(byPath)

  let bytes = 0
  let files = 0
  for (const op of fileOps) {
    if (op.op === "add" || op.op === "replace") bytes += op.size
    files++
  }
  const count = (op: TroveOp["op"]) => troveOps.filter((t) => t.op === op).length
  return {
    formatVersion: PLAN_FORMAT_VERSION,
    troves: troveOps,
    files: fileOps,
    target: [...target],
    summary: { install: count("install"), update: count("update"), erase: count("erase"), files, bytes },
  }
}
