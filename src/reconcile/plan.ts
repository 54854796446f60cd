import * as Either from "effect/Either"
import { FileConflictError, PathError, UnresolvableError } from "../errors.js"
import { satisfiesRelation } from "../desired/version.js"
import { type TroveFile, type TroveMeta, filesForComponents, onDisk, parseDepGroup, troveLabel } from "../model/trove.js"
import {
  type Displaced,
  type Blocked,
  type FileOp,
  PLAN_FORMAT_VERSION,
  type Plan,
  type TargetTrove,
  type TroveOp,
} from "../model/plan-schema.js"
import { type FileOps, FileOpsBuilder } from "../model/file-ops.js"
import type { Foreign, InstalledTrove } from "../model/installed.js"
import { type DiskKind, type RootLayout, aliasesOf, emptyLayout } from "./layout.js"
import { type Resolution, type ResolveInput, resolve } from "./resolve.js"
import type { Drift } from "./verify.js"

// plan(desired, system flavor, available, installed) -> Plan. Pure: every
// input is a value or a deterministic lookup, and nothing is written.

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
  /** what the root has on disk (directory symlinks, files no trove owns); without it, nothing */
  readonly layout?: RootLayout
  /** what was there before troves came, by canonical path: kept directories, displaced files */
  readonly foreignAt?: (path: string) => Foreign | undefined
  /** conary's own paths in the root (database, lock, store): no trove may ship them */
  readonly reserved?: ReadonlyArray<string>
}

export interface PlanInput extends ResolveInput, DiffInput {}

type PlanFailure = UnresolvableError | FileConflictError | PathError

/** Names apply writes beside targets (staging, kept and saved config files): no trove may ship them. */
const RESERVED_NAME = /(^\.conary-|\.conary-(new|save)$)/

/** The longest file name the kernel takes (NAME_MAX). */
const NAME_MAX = 255

/**
 * Why a file's name is too long for the names apply writes beside it
 * (`.conary-new.NAME`; for a config file also `.conary-new.NAME.conary-new`),
 * if it is: refused at plan, not half-way through staging.
 */
export const tooLongToStage = (file: { path: string; kind: TroveFile["kind"]; config: boolean }): string | undefined => {
  if (file.kind === "dir") return undefined
  const limit = NAME_MAX - ".conary-new.".length - (file.config ? ".conary-new".length : 0)
  const name = file.path.slice(file.path.lastIndexOf("/") + 1)
  if (Buffer.byteLength(name) <= limit) return undefined
  return `its name is too long to stage beside it (${limit} bytes at most${file.config ? " for a config file" : ""})`
}

/** Why a path a trove ships cannot go into the root, if it cannot. */
export const unsafePath = (p: string, reserved: ReadonlyArray<string>): string | undefined => {
  const parts = p.split("/")
  if (parts[0] !== "" || parts.length < 2 || parts.slice(1).some((s) => s === "" || s === "." || s === ".." || s.includes("\0")))
    return "not a plain absolute path (empty, '.' or '..' components)"
  if (RESERVED_NAME.test(parts[parts.length - 1]!)) return "names starting with .conary- or ending in .conary-new or .conary-save are conary's own"
  // `r.` covers the temporary names conary writes beside its files (lock.holder.PID, root-id.tmp-PID).
  if (reserved.some((r) => p === r || p.startsWith(r + "/") || p.startsWith(r + "."))) return "it is conary's own (database, lock or content store)"
  return undefined
}

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

const sameComponents = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => {
  if (a.length !== b.length) return false
  const x = [...a].sort()
  const y = [...b].sort()
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

/** What two entries for one path are compared by: a trove's file, or the row of a file operation. */
type Entry = Pick<TroveFile, "kind" | "sha256" | "target" | "mode" | "owner" | "group">

/** Same bytes and type on disk: replacing one with the other writes nothing. */
const sameContent = (a: Entry, b: Entry) => a.kind === b.kind && a.sha256 === b.sha256 && a.target === b.target

const sameAttrs = (a: Entry, b: Entry) => a.mode === b.mode && a.owner === b.owner && a.group === b.group

/** Two troves may both own a path when they agree on it (shared directories, identical files). */
const compatible = (a: Entry, b: Entry) => (a.kind === "dir" && b.kind === "dir") || (sameContent(a, b) && sameAttrs(a, b))

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
 * Files of the components a trove installs, keyed by path, each a row of the
 * plan's operations (`rows`) that an operation may take. Two troves that
 * disagree on a path conflict, unless one declares it Replaces the other
 * (Debian's way of moving files between packages): then its file wins.
 */
const collect = (
  rows: FileOpsBuilder,
  into: Map<string, number>,
  key: (file: TroveFile, label: string) => string,
  files: ReadonlyArray<TroveFile>,
  components: ReadonlyArray<string>,
  troveId: number,
  label: string,
  replaces: (a: number, b: number) => boolean = () => false,
) => {
  for (const file of filesForComponents(files, components)) {
    if (!onDisk(file)) continue
    const k = key(file, label)
    const at = into.get(k)
    const prior = at === undefined ? undefined : rows.at(at)
    // the key is most often the path itself: one string for both
    if (prior === undefined || (!compatible(prior, file) && replaces(troveId, prior.troveId)))
      into.set(k === file.path ? file.path : k, rows.add(fileOp("add", { file, troveId, label })))
    else if (!compatible(prior, file) && !replaces(prior.troveId, troveId))
      throw new FileConflictError({ path: prior.path === file.path ? file.path : `${prior.path} (= ${file.path})`, troves: [prior.trove, label] })
  }
}

/** Whether trove a declares that it replaces trove b (name and version). */
const replacesOf = (metaById: ReadonlyMap<number, TroveMeta>) => (a: number, b: number): boolean => {
  const ma = metaById.get(a)
  const mb = metaById.get(b)
  if (!ma || !mb || ma.replaces.length === 0) return false
  return ma.replaces.some((rel) =>
    (parseDepGroup(rel) ?? []).some(
      (d) => d.class === "name" && d.name === mb.name && (!d.relation || satisfiesRelation(mb.scheme, mb.version, d.relation, d.version!)),
    ),
  )
}

/** Puts back the file a trove displaced when it was installed. */
const restoreOp = (file: FileOp, d: Displaced): FileOp => ({
  op: "restore",
  path: file.path,
  kind: d.kind,
  troveId: file.troveId,
  trove: file.trove,
  sha256: d.sha256,
  size: d.size,
  mode: d.mode,
  owner: String(d.uid),
  group: String(d.gid),
  target: d.target,
  config: file.config,
  note: "was there before the trove",
})

const catching = <A>(f: () => A): Either.Either<A, PlanFailure> => {
  try {
    return Either.right(f())
  } catch (e) {
    if (e instanceof UnresolvableError || e instanceof FileConflictError || e instanceof PathError) return Either.left(e)
    throw e
  }
}

/** The plan that brings the installed state to the desired state; `resolved` is resolve(input) when the caller has it already. */
export const plan = (input: PlanInput, resolved?: Resolution): Either.Either<Plan, PlanFailure> =>
  catching(() => {
    const { target, overrides } = resolved ?? resolve(input)
    return { ...diff(input, target, input.available), overrides }
  })

/** The plan that brings the installed state to an exact trove set (rollback). */
export const planTo = (
  input: DiffInput,
  target: ReadonlyArray<TargetTrove>,
  metas: ReadonlyArray<TroveMeta>,
): Either.Either<Plan, PlanFailure> => catching(() => diff(input, target, metas))

/**
 * Operations on paths where the disk has a directory in place of a file (or
 * the reverse) are set aside: conary neither deletes nor moves what someone
 * put there, and the rest of the plan goes on without them. Below a directory
 * that is not one on disk nothing can be written either.
 */
const setAsideBlocked = (fileOps: FileOps, drift: ReadonlyArray<Drift>): { ops: FileOps; blocked: Blocked[] } => {
  const onDisk = new Map(drift.filter((d) => d.onDisk !== null).map((d) => [d.path, d.onDisk!]))
  if (onDisk.size === 0) return { ops: fileOps, blocked: [] }
  // Nothing can be written below what is not a directory on disk.
  const notDirs = [...onDisk].filter(([, kind]) => kind !== "dir").map(([p]) => p)
  const blocked: Blocked[] = []
  const ops = fileOps.filter((op) => {
    const there = onDisk.get(op.path)
    const parent = notDirs.find((d) => op.path.startsWith(d + "/"))
    const reason =
      parent !== undefined
        ? `${parent} is not a directory on disk`
        : there === "dir" && op.kind !== "dir"
          ? `a directory is in the way of the ${op.kind === "symlink" ? "symlink" : "file"}`
          : there !== undefined && there !== "dir" && op.kind === "dir"
            ? `a ${there === "other" ? "special file" : there} is in the way of the directory`
            : undefined
    if (reason === undefined) return true
    blocked.push({ path: op.path, trove: op.trove, reason: `${reason}; move it away and apply again` })
    return false
  })
  return { ops, blocked }
}

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
  const layout = input.layout ?? emptyLayout
  const reserved = input.reserved ?? []
  // Files are keyed by where they land on disk: with `bin -> usr/bin`,
  // /bin/x and /usr/bin/x are one file, whichever trove names it which way.
  const canonical =
    (action: PathError["action"]) =>
    (file: TroveFile, label: string): string => {
      const c = layout.canonical(file.path)
      if (c === undefined) throw new PathError({ path: file.path, trove: label, action, reason: "its directory resolves outside the root" })
      return c
    }
  const installed = canonical("remove")
  const shipped = (file: TroveFile, label: string): string => {
    const why = unsafePath(file.path, reserved) ?? tooLongToStage(file)
    if (why) throw new PathError({ path: file.path, trove: label, reason: why })
    return canonical("install")(file, label)
  }
  const troveOps: TroveOp[] = []
  // Every file of a leaving or coming trove is a row, by its path on disk; the file operations are rows chosen.
  const rows = new FileOpsBuilder()
  const oldFiles = new Map<string, number>()
  const newFiles = new Map<string, number>()
  const leaving = new Set<number>()
  for (const { from, to } of pairs) {
    if (from && to && from.trove.id === to.troveId && sameComponents(from.components, to.components)) continue
    if (from) {
      leaving.add(from.trove.id)
      collect(rows, oldFiles, installed, input.filesOf(from.trove.id), from.components, from.trove.id, troveLabel(from.trove))
    }
    const toMeta = to ? metaById.get(to.troveId)! : undefined
    if (to) collect(rows, newFiles, shipped, input.filesOf(to.troveId), to.components, to.troveId, troveLabel(to), replaces)
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
      ...((to ? to.group : from!.group) === undefined ? {} : { group: (to ? to.group : from!.group)! }),
      ...(from ? { from: ref(from) } : {}),
      ...(to ? { to: ref({ trove: toMeta!, components: to.components }) } : {}),
      scripts: (toMeta ?? from!.trove).hasScripts,
    })
  }
  troveOps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

  // Owners of a path (under any of its names) that stay installed untouched.
  const staying = (canonicalPath: string) =>
    aliasesOf(canonicalPath, layout.dirLinks()).flatMap((p) => input.ownersOf(p).filter((o) => !leaving.has(o.troveId)))
  const labelOf = (id: number) => {
    const meta = metaById.get(id)
    return meta ? troveLabel(meta) : `trove #${id}`
  }
  const foreignAt = input.foreignAt ?? (() => undefined)

  // Drift the disk scan found, by path: locally changed config files are the
  // user's, everything else is restored.
  const driftAt = new Map((input.drift ?? []).map((d) => [d.path, d]))
  const locallyChanged = (path: string) => {
    const d = driftAt.get(path)
    return d !== undefined && d.config && (d.missing || d.flags.includes("5"))
  }

  // Every new file under a symlink the final layout has but the disk does not
  // yet: apply would write through a link that is not there (or leads elsewhere).
  for (const [key, at] of newFiles) {
    for (let i = key.lastIndexOf("/"); i > 0; i = key.lastIndexOf("/", i - 1)) {
      const link = newFiles.get(key.slice(0, i))
      if (link === undefined || rows.kind(link) !== "symlink") continue
      const { path, trove } = rows.at(link)
      if (layout.at(path) !== "dirlink") {
        const next = rows.at(at)
        throw new PathError({ path: next.path, trove: next.trove, reason: `it would be written through the symlink ${path} of ${trove}` })
      }
    }
  }

  /** A path no installed trove owns: what the disk has there decides how it is added. */
  const addOver = (at: number, next: FileOp): void => {
    const disk: DiskKind | null = layout.at(next.path)
    const inTheWay = (what: string) => new PathError({ path: next.path, trove: next.trove, reason: `${what} is in the way on disk` })
    if (disk === "blocked") throw inTheWay("a file on its way")
    if (next.kind === "dir") {
      if (disk === "dir" || disk === "dirlink") return rows.choose(at, "add", { kept: true })
      if (disk !== null) throw inTheWay("a file")
      return rows.choose(at, "add")
    }
    if (disk === "dir" || disk === "dirlink") throw inTheWay("a directory")
    if (disk === "other") throw inTheWay("a device, fifo or socket")
    if (disk === null) return rows.choose(at, "add")
    // The admin's file: a config file stays and the package's goes beside it
    // as .conary-new; anything else is saved into the store and replaced.
    if (next.config) return rows.choose(at, "merge", { unowned: true, note: "not owned by any trove: kept" })
    return rows.choose(at, "add", { unowned: true, note: "replaces unowned" })
  }

  for (const [key, at] of newFiles) {
    const next = rows.at(at)
    const others = staying(key)
    const takesOver: Array<{ troveId: number; path: string }> = []
    for (const other of others) {
      if (compatible(other.file, next)) continue
      if (replaces(next.troveId, other.troveId)) takesOver.push({ troveId: other.troveId, path: other.file.path })
      else throw new FileConflictError({ path: next.path, troves: [labelOf(other.troveId), next.trove] })
    }
    const prevAt = oldFiles.get(key)
    if (prevAt !== undefined) {
      const prev = rows.at(prevAt)
      if (!sameContent(prev, next)) {
        if (prev.config && next.config && locallyChanged(prev.path)) {
          // Deleted by the user: stays deleted unless asked. Edited: merged.
          if (!driftAt.get(prev.path)!.missing) rows.choose(at, "merge", { note: "changed locally and by the package", baseSha256: prev.sha256! })
          else if (input.restoreConfig) rows.choose(at, "replace")
        } else rows.choose(at, "replace")
      } else if (!sameAttrs(prev, next) && !(next.kind === "dir" && foreignAt(key)?.kind === "dir")) rows.choose(at, "chmod")
    } else if (takesOver.length > 0) {
      // Debian's Replaces with the replaced trove staying: the file passes to this one, as dpkg does.
      rows.choose(at, "replace", { takesOver, note: `taken over from ${takesOver.map((t) => labelOf(t.troveId)).join(", ")}` })
    } else if (others.length === 0) addOver(at, next)
  }
  for (const [key, at] of oldFiles) {
    if (newFiles.has(key) || staying(key).length > 0) continue
    const prev = rows.at(at)
    const foreign = foreignAt(key)
    // What was there first comes back; a directory that was there first stays.
    if (foreign?.kind === "dir" && prev.kind === "dir") continue
    if (foreign && foreign.kind !== "dir") {
      // A config file the admin changed since is theirs as it is.
      if (!(prev.config && locallyChanged(prev.path) && !driftAt.get(prev.path)!.missing)) rows.push(restoreOp(prev, foreign))
    } else if (prev.config && locallyChanged(prev.path) && !driftAt.get(prev.path)!.missing) rows.choose(at, "save", { note: "changed locally" })
    else rows.choose(at, "remove")
  }

  // Repairs: drifted files whose trove keeps them unchanged.
  const touched = input.drift?.length ? rows.chosenPaths() : new Set<string>()
  for (const d of input.drift ?? []) {
    if (touched.has(d.path)) continue
    const key = layout.canonical(d.path) ?? d.path
    const at = newFiles.get(key)
    const note = driftNote(d)
    if (at !== undefined) {
      if (!rows.at(at).config || (d.missing && input.restoreConfig)) rows.choose(at, "repair", { note })
      continue
    }
    const owner = staying(key)[0]
    if (!owner || (owner.file.config && !(d.missing && input.restoreConfig))) continue
    rows.push(fileOp("repair", { file: owner.file, troveId: owner.troveId, label: labelOf(owner.troveId) }, { note }))
  }
  const { ops, blocked } = setAsideBlocked(rows.build().sortedByPath(), input.drift ?? [])

  let bytes = 0
  let files = 0
  let repair = 0
  for (const op of ops) {
    if (op.op !== "remove" && op.op !== "chmod" && op.op !== "save" && op.op !== "restore") bytes += op.size
    if (op.op === "repair") repair++
    files++
  }
  const count = (op: TroveOp["op"]) => troveOps.filter((t) => t.op === op).length
  return {
    formatVersion: PLAN_FORMAT_VERSION,
    troves: troveOps,
    files: ops,
    target: [...target],
    blocked,
    overrides: [],
    summary: {
      install: count("install"),
      update: count("update"),
      erase: count("erase"),
      repair,
      files,
      bytes,
    },
  }
}
