import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { IO_CONCURRENCY, forEachBounded } from "../batch.js"
import type { Db } from "../db/connection.js"
import { type Journal, beginJournal, clearJournal, markCommitting } from "../db/journal.js"
import { type StatRow, cachedStatsLookup, installedOwnersLookup, recordGeneration } from "../db/state.js"
import { listSources } from "../db/sources.js"
import { type ArchiveRef, archivesOf, troveFileLookup, troveFilesReader, troveHardLinks, troveMtimeLookup } from "../db/troves.js"
import { ApplyError, ArchiveError, describeIo } from "../errors.js"
import { type RepoRef, basesOf, fetchObjects } from "../source/remote.js"
import { type TroveFile, filesForComponents, onDisk } from "../model/trove.js"
import { type StageTarget, StageWaits, copyOutVerified, teeToStage, writeEmpty } from "../store/copy-out.js"
import { type DeltaReport, fetchByDeltas } from "./fetch-deltas.js"
import { type Staging, fetchFromLocalArchives } from "./fetch-local.js"
import { type ContentStore, writeBehind } from "../store/store.js"
import { EMPTY_SHA256 } from "../store/digest-set.js"
import { diskLayout } from "./layout.js"
import { reservedPaths } from "./load.js"
import type { Displaced, FileOp, Plan } from "../model/plan-schema.js"
import type { FileOps } from "../model/file-ops.js"
import { tooLongToStage, unsafePath } from "./plan.js"
import type { Report } from "../model/report.js"
import { forEachInWorkers } from "../worker-pool.js"
import { merge as diff3 } from "node-diff3"

// apply moves the root from one generation to the next as one step:
//   1. fetch: every new content into the store, verified; replaced contents kept there too
//   2. journal (staging): the plan and the directories about to be created
//   3. stage: new contents copied out of the store beside their targets,
//      verified as they are copied, then synced to disk
//   4. journal (committing): from here on recovery finishes instead of undoing
//   5. commit: renames, mode changes, removals; synced
//   6. one SQLite transaction: the new generation, installed rows, journal cleared
// A crash before 4 leaves the old generation (recovery removes the staged
// files); after 4, recovery redoes 5 and 6, which are idempotent.

export interface ApplyContext {
  readonly db: Db
  readonly dbPath: string
  readonly root: string
  readonly store: ContentStore
  readonly report: Report
  readonly now: () => string
}

export interface ApplyResult {
  /** the new generation, or null when the plan changed nothing */
  readonly generation: number | null
  readonly plan: Plan
  /** config files changed both locally and by the package */
  readonly merges: ReadonlyArray<MergeOutcome>
  /** what was fetched from repositories: by delta, full objects, and deltas that fell back to the full object */
  readonly download?: Downloaded
}

export type Downloaded = DeltaReport & { readonly full: number }

const isLeaf = (op: FileOp) => op.kind !== "dir"

const NEW_SUFFIX = ".conary-new"
const SAVE_SUFFIX = ".conary-save"

const STAGE_PREFIX = ".conary-new."

/** Where a new content waits for its rename: beside the target (a plain absolute path), on the same filesystem. */
export const stagePath = (target: string) => {
  const slash = target.lastIndexOf("/")
  return `${target.slice(0, slash + 1)}${STAGE_PREFIX}${target.slice(slash + 1)}`
}

/** Something not apply's at a stage path: refused before staging (checkTargets), or at the open if it came since. */
const inTheWay = (root: string, rel: string, staged: string) =>
  new ApplyError({ path: rel, reason: `${path.relative(root, staged)} is in the way: apply writes the new file under that name; move it away, then apply again` })

/** Every name apply may stage an operation's new content at: a merge's conflict waits beside the name it keeps. */
const stagePaths = (op: Pick<FileOp, "op">, target: string) => (op.op === "merge" ? [stagePath(target), stagePath(target + NEW_SUFFIX)] : [stagePath(target)])

// A plan's paths are plain and absolute (checkTargets refuses any other), and
// the root is resolved: joined and split as strings, not by path.join's
// normalising, which costs per file.

/** A plan's path inside the root. */
const inRoot = (root: string, p: string) => (root.endsWith("/") ? root + p.slice(1) : root + p)

/** The directory of a plain absolute path, as path.dirname says. */
const dirOf = (abs: string) => {
  const slash = abs.lastIndexOf("/")
  return slash <= 0 ? "/" : abs.slice(0, slash)
}

/** Operations that write a content from the store. */
export const writesContent = (op: Pick<FileOp, "kind" | "op">) => writes(op.kind, op.op)

const writes = (kind: FileOp["kind"], op: FileOp["op"]) => kind === "file" && (op === "add" || op === "replace" || op === "repair" || op === "merge")

/**
 * Operations writing a content the store lacks (their indices in the plan),
 * by trove. Empty when everything is local: then apply (and rollback) work
 * offline. Indices, not digests: a digest is made only while its trove is fetched.
 */
const missingContents = (ctx: Pick<ApplyContext, "store">, plan: Plan): Map<number, Int32Array> => {
  const wanted = new Map<number, number[]>()
  const ops = plan.files
  for (let i = 0; i < ops.length; i++) {
    if (!writes(ops.kind(i), ops.op(i)) || ctx.store.has(ops.sha256(i)!)) continue
    const troveId = ops.troveId(i)
    let list = wanted.get(troveId)
    if (!list) wanted.set(troveId, (list = []))
    list.push(i)
  }
  // Kept through the fetch as typed arrays: as arrays of numbers, 200,000 rows took ~2.8 MB at apply's peak.
  return new Map([...wanted].map(([troveId, list]) => [troveId, Int32Array.from(list)]))
}

/**
 * Fetches every content the plan writes into the store, verified, and
 * (`staging`) to the stage paths waiting for it. A trove's archives in
 * directory sources are read first (they are local); what is
 * still missing comes from every repository that offers the trove, each
 * from the mirror that served its index first, then the others.
 */
export const fetchContents = async (ctx: ApplyContext, plan: Plan, staging?: Staging): Promise<Downloaded | undefined> => {
  const wanted = missingContents(ctx, plan)
  if (wanted.size === 0) return undefined
  const refs = new Map([...wanted.keys()].map((troveId) => [troveId, archivesOf(ctx.db, troveId)]))
  const { fetched, tried } = await fetchFromLocalArchives(
    ctx,
    plan,
    [...wanted].flatMap(([troveId, ops]) => (refs.get(troveId)!.some((r) => r.kind !== "repo") ? [[troveId, ops, refs.get(troveId)!] as const] : [])),
    staging,
  )
  // What the store takes from repositories goes to its stage paths too.
  if (staging) ctx.store.tee = teeToStage(staging.waits, staging.target, staging.onWritten, staging.onTaken)
  try {
    return await fetchFromRepos(ctx, plan, wanted, refs, fetched, tried)
  } finally {
    ctx.store.tee = undefined
  }
}

/** What the local archives did not give, from the repositories that offer it (by deltas where they can). */
const fetchFromRepos = async (
  ctx: ApplyContext,
  plan: Plan,
  wanted: Map<number, Int32Array>,
  refs: ReadonlyMap<number, ReadonlyArray<ArchiveRef>>,
  fetched: ReadonlySet<number>,
  tried: ReadonlyMap<string, string[]>,
): Promise<Downloaded | undefined> => {
  const sources = new Map(listSources(ctx.db).map((s) => [s.name, s]))
  const objects = new Map<string, { sha256: string; size: number; repos: RepoRef[]; tried: string[] }>()
  for (const [troveId, ops] of wanted) {
    if (fetched.has(troveId)) continue
    const repos = refs.get(troveId)!.filter((r) => r.kind === "repo").map((r) => ({ source: r.source, bases: basesOf(sources.get(r.source)!) }))
    for (const i of ops) {
      const sha256 = plan.files.sha256(i)!
      if (ctx.store.has(sha256)) continue
      const size = plan.files.size(i)
      const entry = objects.get(sha256) ?? { sha256, size, repos: [], tried: tried.get(sha256) ?? [] }
      for (const repo of repos) if (!entry.repos.some((r) => r.source === repo.source)) entry.repos.push(repo)
      objects.set(sha256, entry)
    }
  }
  for (const o of objects.values())
    if (o.repos.length === 0 && o.tried.length === 0) {
      const label = plan.files.find((op) => op.sha256 === o.sha256)!.trove
      throw new ArchiveError({ archive: label, reason: "content is not in the store and no source offers this trove any more" })
    }
  if (objects.size === 0) return undefined
  const byDelta = await fetchByDeltas(ctx.db, ctx.store, ctx.root, [...objects.values()], ctx.report)
  const full = await fetchObjects([...objects.values()], ctx.store, ctx.report)
  return { ...byDelta, full }
}

/** Largest file in the root apply reads to merge or parse: bigger is not a config file. */
const TEXT_MAX = 16 << 20

/**
 * The bytes of a regular file in the root, or undefined when something else
 * is there: never through a symlink (it may lead out of the root) and never
 * from a fifo or device (a read could block forever or never end).
 */
export const readRegular = (abs: string, maxSize = Infinity): Buffer | undefined => {
  let fd: number
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.size > maxSize) return undefined
    return fs.readFileSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Keeps the contents the plan replaces or removes in the store, so rollback
 * and recovery need no source. Only a file that still matches what was
 * installed is kept; a locally changed one is the user's (drift).
 */
const preserveReplaced = (ctx: ApplyContext, plan: Plan) => {
  const owners = installedOwnersLookup(ctx.db)
  const ops = plan.files
  for (let i = 0; i < ops.length; i++) {
    const what = ops.op(i)
    if (ops.kind(i) !== "file" || (what !== "replace" && what !== "remove" && what !== "save")) continue
    const op = ops.at(i)
    for (const { file } of owners(op.path)) {
      if (file.sha256 === null || ctx.store.has(file.sha256)) continue
      // missing, or no longer a regular file: nothing to keep
      const data = readRegular(path.join(ctx.root, op.path))
      if (data && createHash("sha256").update(data).digest("hex") === file.sha256) ctx.store.putBuffer(data, file.sha256)
    }
  }
}

/**
 * Saves into the store every file no trove owns that the plan replaces, and
 * notes it in the plan (which the journal then carries), so erase and
 * rollback can put it back.
 */
const saveUnowned = (ctx: ApplyContext, plan: Plan): Plan => {
  if (plan.files.where((i) => plan.files.flag(i, "unowned")).length === 0) return plan
  const files = plan.files.mapOps((op): FileOp => {
    if (!op.unowned) return op
    const target = path.join(ctx.root, op.path)
    let saved: Displaced
    try {
      const st = fs.lstatSync(target)
      if (st.isSymbolicLink()) saved = { kind: "symlink", sha256: null, size: 0, mode: 0o777, uid: st.uid, gid: st.gid, target: fs.readlinkSync(target) }
      else if (st.isFile()) {
        const data = readRegular(target)
        if (!data) throw new ApplyError({ path: op.path, reason: "is no longer a file or symlink; plan again" })
        const sha256 = createHash("sha256").update(data).digest("hex")
        ctx.store.putBuffer(data, sha256)
        saved = { kind: "file", sha256, size: data.length, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, target: null }
      } else throw new ApplyError({ path: op.path, reason: "is no longer a file or symlink; plan again" })
    } catch (e) {
      return wrap(op, e)
    }
    return { ...op, saved }
  })
  return { ...plan, files }
}

/** Resolves owner and group names as the root's own passwd/group files say. */
const idResolver = (root: string) => {
  const read = (file: string) => {
    const ids = new Map<string, number>([["root", 0]])
    // no passwd in the root yet (or not a regular file): only root is known
    const text = readRegular(path.join(root, file), TEXT_MAX)?.toString("utf8") ?? ""
    for (const line of text.split("\n")) {
      const [name, , id] = line.split(":")
      if (name && id && /^\d+$/.test(id)) ids.set(name, Number(id))
    }
    return ids
  }
  const users = read("etc/passwd")
  const groups = read("etc/group")
  // Owners are `name`, `id` or `name:id` (Debian packages carry both): a name
  // the root knows wins, then the package's id; an unknown bare name is root.
  const lookup = (ids: Map<string, number>, spec: string) => {
    const [name, id] = spec.split(":")
    if (/^\d+$/.test(name!)) return Number(name)
    return ids.get(name!) ?? (id !== undefined && /^\d+$/.test(id) ? Number(id) : 0)
  }
  // A few owners name every file: each resolved once.
  const memo = (ids: Map<string, number>) => {
    const known = new Map<string, number>()
    return (spec: string) => {
      let n = known.get(spec)
      if (n === undefined) known.set(spec, (n = lookup(ids, spec)))
      return n
    }
  }
  return { uid: memo(users), gid: memo(groups) }
}

/**
 * Guards every write: the parent directory of a target, after resolving any
 * symlinks on the way, must still lie inside the root.
 */
const parentGuard = (root: string) => {
  const realRoot = fs.realpathSync.native(root)
  const checked = new Set<string>()
  return (target: string, rel: string) => {
    const parent = dirOf(target)
    if (checked.has(parent)) return
    // realpath(3): Node's own realpathSync lstats each component in JavaScript, twice as slow (~0.1 s of a pass over 10,000 directories).
    const real = fs.realpathSync.native(parent)
    if (real !== realRoot && !real.startsWith(realRoot + path.sep))
      throw new ApplyError({ path: rel, reason: `its directory resolves outside the root (${real})` })
    checked.add(parent)
  }
}

/** lstat, or null when nothing is there (also when a directory on the way became a file). */
const lstatOrNull = (p: string): fs.Stats | null => {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return null
    throw e
  }
}

const wrap = (op: { readonly path: string }, e: unknown): never => {
  if (e instanceof ApplyError) throw e
  throw new ApplyError({ path: op.path, reason: describeIo(e) })
}

/** Mount points, from the kernel's table (octal escapes decoded); empty where /proc is missing. */
const mountPoints = (): Set<string> => {
  let text = ""
  try {
    text = fs.readFileSync("/proc/self/mountinfo", "utf8")
  } catch {
    // no /proc: the st_dev comparison still finds mounts of other filesystems
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return new Set(text.split("\n").flatMap((line) => (line ? [unescape(line.split(" ")[4] ?? "")] : [])))
}

/**
 * Whether the kernel refuses to change this inode (chattr +i or +a): node
 * cannot read the flags (FS_IOC_GETFLAGS), so set the mode it already has,
 * which such an inode refuses and which otherwise moves only its ctime.
 * Meaningful only for root or the owner; symbolic links carry no flags.
 */
const refusesChanges = (abs: string, st: fs.Stats): boolean => {
  if (st.isSymbolicLink() || (process.geteuid?.() !== 0 && st.uid !== process.geteuid?.())) return false
  try {
    fs.chmodSync(abs, st.mode & 0o7777)
    return false
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EPERM") return true
    throw e
  }
}

/** From this many files staged in one directory, checkTargets reads it rather than lstat each stage name. */
const READ_DIR_FROM = 8

const IMMUTABLE = "is immutable or append-only (chattr +i/+a); clear the flag with chattr -i -a, then apply again"

/**
 * Refuses, before anything is touched, what staging or the commit could not
 * carry out, across the whole plan on the layout it leaves (a failure once
 * staging has started would leave the root half-changed): a target of the
 * wrong type, a reserved or unsafe path, a parent that is neither a directory
 * inside the root nor one the plan makes, a directory in the way of the names
 * apply writes beside a target, a mount point, or an inode (or its directory)
 * the kernel will not let change. Returns the directories staging creates.
 */
const checkTargets = (ctx: ApplyContext, plan: Plan): string[] => {
  const created: string[] = []
  let mounts: Set<string> | undefined
  const reserved = reservedPaths(ctx.root, ctx.dbPath)
  const guard = parentGuard(ctx.root)
  // Paths as they land on disk (through the root's directory symlinks), as the planner keys them.
  const layout = diskLayout(ctx.root)
  const landing = (op: FileOp) => {
    const c = layout.canonical(op.path)
    if (c === undefined) throw new ApplyError({ path: op.path, reason: "its directory resolves outside the root" })
    return c
  }
  const makes = new Set(plan.files.where((i) => plan.files.kind(i) === "dir" && plan.files.op(i) !== "remove").map(landing))
  // Nothing is in a directory that is missing: one lstat for it, not one per file (an empty root).
  const missingDirs = new Map<string, boolean>()
  const missing = (dir: string) => {
    let m = missingDirs.get(dir)
    if (m === undefined) missingDirs.set(dir, (m = lstatOrNull(dir) === null))
    return m
  }
  // Where staging writes, the parent must be a directory inside the root, or one the plan makes.
  const ready = new Set<string>()
  // By the plan's own directory too: a path lands where its directory lands, so most paths need no landing worked out.
  const readyAsPlanned = new Set<string>()
  // Missing directories the plan makes, each up to one that exists (and was guarded): a deeper one stops there (an empty root's tree).
  const madeUpToExisting = new Set<string>()
  const parentReady = (op: FileOp) => {
    const planned = dirOf(op.path)
    if (readyAsPlanned.has(planned)) return
    const parent = path.posix.dirname(landing(op))
    if (!ready.has(parent)) {
      const made: string[] = []
      let dir = parent
      while (dir !== "/" && !madeUpToExisting.has(dir) && missing(path.join(ctx.root, dir))) {
        if (!makes.has(dir)) throw new ApplyError({ path: op.path, reason: `its directory ${dir} neither exists nor is made by the plan` })
        made.push(dir)
        dir = path.posix.dirname(dir)
      }
      if (!madeUpToExisting.has(dir)) guard(path.join(ctx.root, dir, "x"), op.path)
      for (const d of made) madeUpToExisting.add(d)
      ready.add(parent)
    }
    readyAsPlanned.add(planned)
  }
  // Directories entries are renamed into or removed from; undefined: staging creates it.
  const parents = new Map<string, { st: fs.Stats; real: string } | undefined>()
  const parentOf = (op: FileOp, abs: string) => {
    const dir = dirOf(abs)
    if (parents.has(dir)) return parents.get(dir)
    const st = lstatOrNull(dir) && fs.statSync(dir)
    const p = st ? { st, real: fs.realpathSync.native(dir) } : undefined
    if (st && refusesChanges(dir, st)) throw new ApplyError({ path: path.posix.dirname(op.path), reason: IMMUTABLE })
    parents.set(dir, p)
    return p
  }
  // Stage names taken. A directory many files are staged in is read once
  // (readdir costs a ninth of an lstat a name); one with few, or none yet, is
  // asked per name.
  const stagedIn = new Map<string, number>()
  for (let i = 0; i < plan.files.length; i++) {
    if (!stagesContentAt(plan.files, i)) continue
    const dir = dirOf(plan.files.path(i))
    stagedIn.set(dir, (stagedIn.get(dir) ?? 0) + 1)
  }
  const namesIn = new Map<string, Set<string> | null>()
  const stageNamesIn = (dir: string, staged: number): Set<string> | null => {
    if (staged < READ_DIR_FROM) return null
    try {
      return new Set(fs.readdirSync(dir).filter((name) => name.startsWith(STAGE_PREFIX)))
    } catch {
      // not a directory, or unreadable: asked per name, and refused for what it is
      return null
    }
  }
  const stageTaken = (op: FileOp, abs: string): string | undefined => {
    const dir = dirOf(abs)
    if (missing(dir)) return undefined
    let names = namesIn.get(dir)
    if (names === undefined) namesIn.set(dir, (names = stageNamesIn(dir, stagedIn.get(dirOf(op.path)) ?? 0)))
    return stagePaths(op, abs).find((p) => (names ? names.has(p.slice(dir.length + 1)) : lstatOrNull(p) !== null))
  }
  for (const op of plan.files) {
    try {
      const why = unsafePath(op.path, reserved) ?? (stagesContent(op) ? tooLongToStage(op) : undefined)
      if (why) throw new ApplyError({ path: op.path, reason: why })
      const abs = inRoot(ctx.root, op.path)
      const existing = missing(dirOf(abs)) ? null : lstatOrNull(abs)
      if (op.kind === "dir") {
        // removed only when empty: best effort; kept: the disk's as it is
        if (op.op === "remove" || op.kept) continue
        if (existing && !existing.isDirectory()) throw new ApplyError({ path: op.path, reason: "exists and is not a directory" })
        parentReady(op)
        if (!existing) created.push(op.path)
        else if (refusesChanges(abs, existing)) throw new ApplyError({ path: op.path, reason: IMMUTABLE })
        continue
      }
      if (existing?.isDirectory())
        throw new ApplyError({
          path: op.path,
          reason: op.op === "remove" ? "is now a directory, where conary installed a file; move it away, then apply again" : "is a directory, a file was expected",
        })
      // Names the commit renames to beside a target: a directory there would
      // fail it past the commit point. (A stage path in the way fails staging,
      // which undoes itself.)
      const asides = op.op === "merge" ? [abs + NEW_SUFFIX] : op.op === "save" ? [abs + SAVE_SUFFIX] : []
      for (const aside of asides) {
        if (lstatOrNull(aside)?.isDirectory())
          throw new ApplyError({ path: op.path, reason: `${path.relative(ctx.root, aside)} is a directory in the way of the names apply writes beside it` })
      }
      // What sits at a name apply stages at is not apply's (recovery removed a
      // crashed apply's): the admin's, kept.
      if (stagesContent(op)) {
        const taken = stageTaken(op, abs)
        if (taken) throw inTheWay(ctx.root, op.path, taken)
      }
      if (op.op === "add" && !op.unowned && existing)
        throw new ApplyError({ path: op.path, reason: "a file no trove owns appeared there since the plan was made; plan again" })
      if (op.op === "restore" && op.kind === "file" && !ctx.store.has(op.sha256!))
        throw new ApplyError({ path: op.path, reason: "what was there before the trove is missing from the content store" })
      if (stagesContent(op)) parentReady(op)
      // Every leaf operation but chmod renames into, or removes from, its directory.
      const parent = op.op === "chmod" ? undefined : parentOf(op, abs)
      if (!existing) continue
      mounts ??= mountPoints()
      if (parent && (existing.dev !== parent.st.dev || mounts.has(path.join(parent.real, path.basename(abs)))))
        throw new ApplyError({ path: op.path, reason: "is a mount point; unmount it, then apply again" })
      if (refusesChanges(abs, existing)) throw new ApplyError({ path: op.path, reason: IMMUTABLE })
    } catch (e) {
      wrap(op, e)
    }
  }
  return created
}

/** What apply did with a config file changed both locally and by the package. */
export interface MergeOutcome {
  readonly path: string
  readonly merged: boolean
}

/**
 * 3-way merge of a config file: the user's copy, the package's old version
 * (its base) and the new one. Undefined when it conflicts, when the base
 * is gone, when the user's copy is not a regular file, or any side is not text.
 */
const mergeConfig = (ctx: ApplyContext, op: FileOp): Buffer | undefined => {
  if (!op.baseSha256 || !ctx.store.has(op.baseSha256)) return undefined
  // A symlink, fifo or device the admin put there is theirs: not merged, left as it is.
  const local = readRegular(path.join(ctx.root, op.path), TEXT_MAX)
  if (!local) return undefined
  const base = readVerified(ctx, op, op.baseSha256)
  const next = readVerified(ctx, op, op.sha256!)
  if ([local, base, next].some((b) => b.includes(0))) return undefined
  const m = diff3(local.toString("utf8"), base.toString("utf8"), next.toString("utf8"), { stringSeparator: "\n" })
  return m.conflict ? undefined : Buffer.from(m.result.join("\n"))
}

const stagesContent = (op: FileOp) => stages(op.kind, op.op)

const stagesContentAt = (ops: FileOps, i: number) => stages(ops.kind(i), ops.op(i))

const stages = (kind: FileOp["kind"], op: FileOp["op"]) =>
  kind !== "dir" && (op === "add" || op === "replace" || op === "repair" || op === "merge" || op === "restore")

/** A plan's file's mtime as its trove lists it (the archive's; not in the plan): read per file, nothing kept. */
const mtimeOf = (ctx: ApplyContext) => {
  const lookup = troveMtimeLookup(ctx.db)
  return (op: Pick<FileOp, "troveId" | "path">): number | undefined => lookup(op.troveId, op.path)
}

/**
 * The staged file a hard link in the plan shares its inode with: the one of
 * the same trove and content staged in the same plan. Without one (the
 * original is unchanged, or was merged) the link is written as a copy.
 */
const hardLinkTargets = (ctx: ApplyContext, leaves: FileOps): Map<string, string> => {
  const targets = new Map<string, string>()
  const key = (troveId: number, p: string) => `${troveId}\0${p}`
  // Links are few: read them alone, not every file of every trove.
  const troves = new Set<number>()
  for (let i = 0; i < leaves.length; i++) troves.add(leaves.troveId(i))
  const linkOf = new Map(troveHardLinks(ctx.db, [...troves]).map(([t, p, link]) => [key(t, p), link]))
  if (linkOf.size === 0) return targets
  // Only the files some link names: not every staged file.
  const named = new Set([...linkOf].map(([k, link]) => key(Number(k.slice(0, k.indexOf("\0"))), link)))
  const staged = new Map<string, FileOp>()
  for (const op of leaves) if (op.kind === "file" && op.op !== "merge" && named.has(key(op.troveId, op.path))) staged.set(key(op.troveId, op.path), op)
  for (const op of leaves) {
    const link = op.kind === "file" && op.op !== "merge" ? linkOf.get(key(op.troveId, op.path)) : undefined
    const original = link === undefined ? undefined : staged.get(key(op.troveId, link))
    if (original && original.sha256 === op.sha256 && !linkOf.has(key(original.troveId, original.path))) targets.set(op.path, original.path)
  }
  return targets
}

/** The stat of a file apply wrote, taken from the descriptor that wrote it (see copy-out.ts). */
export interface WrittenStat {
  readonly ino: bigint
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
}

/** The stat of each file apply wrote, by path. */
interface WrittenLookup {
  readonly get: (path: string) => WrittenStat | undefined
}

/** Stats in numbered slots: typed arrays, not an object per file; sized for `expected` slots, grown past them. */
class StatSlots {
  private times: BigInt64Array
  private inos: BigUint64Array
  private filled: Uint8Array
  constructor(expected = 0) {
    this.times = new BigInt64Array(2 * expected)
    this.inos = new BigUint64Array(expected)
    this.filled = new Uint8Array(expected)
  }
  set(i: number, s: WrittenStat) {
    if (i >= this.inos.length) {
      const grow = Math.max(1024, 2 * i)
      const times = new BigInt64Array(2 * grow)
      times.set(this.times)
      const inos = new BigUint64Array(grow)
      inos.set(this.inos)
      const filled = new Uint8Array(grow)
      filled.set(this.filled)
      this.times = times
      this.inos = inos
      this.filled = filled
    }
    this.times[2 * i] = s.mtimeNs
    this.times[2 * i + 1] = s.ctimeNs
    this.inos[i] = s.ino
    this.filled[i] = 1
  }
  has(i: number): boolean {
    return this.filled[i] === 1
  }
  get(i: number): WrittenStat | undefined {
    return this.filled[i] === 1 ? { ino: this.inos[i]!, mtimeNs: this.times[2 * i]!, ctimeNs: this.times[2 * i + 1]! } : undefined
  }
}

/** Stats by any key. */
class WrittenStats implements WrittenLookup {
  private readonly index = new Map<string, number>()
  private readonly slots = new StatSlots()
  set(key: string, s: WrittenStat) {
    const i = this.index.get(key) ?? this.index.size
    this.index.set(key, i)
    this.slots.set(i, s)
  }
  get(key: string): WrittenStat | undefined {
    const i = this.index.get(key)
    return i === undefined ? undefined : this.slots.get(i)
  }
}

/** Stats of the copies staging made, by the copy's place among them (sorted by path): found by bisection, no map of paths. */
class CopiedStats implements WrittenLookup {
  private readonly slots: StatSlots
  constructor(private readonly copies: FileOps) {
    this.slots = new StatSlots(copies.length)
  }
  set(i: number, s: WrittenStat) {
    this.slots.set(i, s)
  }
  has(i: number): boolean {
    return this.slots.has(i)
  }
  get(path: string): WrittenStat | undefined {
    const i = this.copies.indexOfPath(path)
    return i < 0 ? undefined : this.slots.get(i)
  }
}

/** The owner apply gives a file: the trove's, resolved in the root; without root privileges, apply's own. */
const ownerFor = (ids: ReturnType<typeof idResolver>, asRoot: boolean) => (file: { owner: string; group: string }) =>
  asRoot ? { uid: ids.uid(file.owner), gid: ids.gid(file.group) } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }

/** Reads a store object, refusing it unless it hashes to its name. */
const readVerified = (ctx: ApplyContext, op: FileOp, sha256: string): Buffer => {
  const data = fs.readFileSync(ctx.store.pathOf(sha256))
  const actual = createHash("sha256").update(data).digest("hex")
  if (actual !== sha256) corruptObject(ctx, op, sha256, actual)
  return data
}

/**
 * A store object whose bytes no longer hash to its name: removed, so the next
 * apply fetches it again from its source, and this apply fails before the commit.
 */
const corruptObject = (ctx: ApplyContext, op: FileOp, sha256: string, actual: string): never => {
  ctx.store.remove(sha256)
  throw new ApplyError({
    path: op.path,
    reason: `its content ${sha256.slice(0, 16)} in the store is corrupt (it hashes to ${actual.slice(0, 16)}); removed it, apply again to fetch it anew`,
  })
}

/**
 * Creates the new directories, fetches the contents the store lacks and
 * writes every new content to its stage path. A content read from an
 * archive or a download is written to its stage paths as it is stored (one
 * write from the source, verified: see teeToStage); the rest is copied out
 * of the store, verified. Returns the merge outcomes, what was downloaded,
 * and, by path, the stat of each file written verified: the only stats the
 * cache may take.
 */
const stage = async (
  ctx: ApplyContext,
  plan: Plan,
  created: ReadonlyArray<string>,
  taken: Set<string>,
): Promise<{ merges: MergeOutcome[]; written: WrittenLookup; download: Downloaded | undefined }> => {
  const asRoot = process.getuid?.() === 0
  const ids = idResolver(ctx.root)
  const ownerOf = ownerFor(ids, asRoot)
  const guard = parentGuard(ctx.root)
  const mtimeOfOp = mtimeOf(ctx)
  const leaves = plan.files.where((i) => stagesContentAt(plan.files, i))
  const links = hardLinkTargets(ctx, leaves)
  const merges: MergeOutcome[] = []
  // A stage path the open found taken (it came after checkTargets) is not
  // apply's: noted so undoStaging keeps it, and refused naming it.
  const failed = (rel: string, staged: string, e: unknown): never => {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") return wrap({ path: rel }, e)
    taken.add(staged)
    throw inTheWay(ctx.root, rel, staged)
  }
  const dirOps = new Map(plan.files.where((i) => plan.files.kind(i) === "dir").map((op) => [op.path, op]))
  for (const p of created) {
    const op = dirOps.get(p)!
    const target = path.join(ctx.root, p)
    try {
      guard(target, p)
      fs.mkdirSync(target, { mode: 0o700 })
      if (asRoot) fs.lchownSync(target, ids.uid(op.owner), ids.gid(op.group))
      fs.chmodSync(target, op.mode)
    } catch (e) {
      wrap(op, e)
    }
  }
  // Contents written straight to their stage paths: what `target` says of each.
  const copies = leaves.where((i) => leaves.kind(i) === "file" && leaves.op(i) !== "merge" && !links.has(leaves.path(i)))
  for (let i = 0; i < copies.length; i++) {
    const p = copies.path(i)
    try {
      guard(inRoot(ctx.root, p), p)
    } catch (e) {
      wrap({ path: p }, e)
    }
  }
  // Read from the plan's columns: no operation made per file.
  const target = (i: number): StageTarget => {
    const p = copies.path(i)
    return {
      to: stagePath(inRoot(ctx.root, p)),
      size: copies.size(i),
      mode: copies.mode(i),
      owner: asRoot ? ownerOf(copies.at(i)) : null,
      // the archive's mtime, as dpkg keeps it
      mtime: mtimeOfOp({ troveId: copies.troveId(i), path: p }) ?? null,
    }
  }
  const written = new CopiedStats(copies)
  // An empty file holds what its digest names once created: no store object or worker is needed for the many a tree has.
  for (let i = 0; i < copies.length; i++) {
    if (copies.size(i) !== 0 || copies.sha256(i) !== EMPTY_SHA256) continue
    const job = target(i)
    try {
      written.set(i, writeEmpty(job))
    } catch (e) {
      failed(copies.path(i), job.to, e)
    }
  }
  // Every content the plan writes into the store (merged config files' too), the copies' to their stage paths as they come.
  const download = await fetchContents(ctx, plan, {
    waits: waitingCopies(ctx, copies, written),
    target,
    onWritten: (i, st) => written.set(i, st),
    onTaken: (i) => taken.add(target(i).to),
  })
  crashPoint("fetched")
  ctx.report.start("stage", leaves.length)
  // The rest straight from the store: copied and hashed on every core (a few small ones on this thread).
  const rest: number[] = []
  let restBytes = 0
  for (let i = 0; i < copies.length; i++) {
    if (written.has(i)) continue
    rest.push(i)
    restBytes += copies.size(i)
  }
  ctx.report.tick(copies.length - rest.length)
  await copyOutVerified(
    rest.length,
    restBytes,
    (r) => {
      const i = rest[r]!
      return { ...target(i), from: ctx.store.pathOf(copies.sha256(i)!), sha256: copies.sha256(i)! }
    },
    (r, result) => {
      const i = rest[r]!
      if (result.ok) return written.set(i, result)
      const op = copies.at(i)
      if ("actual" in result) corruptObject(ctx, op, op.sha256!, result.actual)
      else failed(op.path, target(i).to, Object.assign(new Error(result.error.message), result.error))
    },
    (n) => ctx.report.tick(n),
  )
  // Symlinks and merged config files: few, written here.
  await forEachBounded(
    leaves.where((i) => leaves.kind(i) !== "file" || leaves.op(i) === "merge").toArray(),
    IO_CONCURRENCY,
    async (op) => {
      const target = path.join(ctx.root, op.path)
      let staged = stagePath(target)
      try {
        guard(target, op.path)
        if (op.kind === "symlink") {
          await fsp.symlink(op.target!, staged)
          if (asRoot) await fsp.lchown(staged, ownerOf(op).uid, ownerOf(op).gid)
          const mtime = mtimeOfOp(op)
          if (mtime !== undefined) await fsp.lutimes(staged, mtime, mtime)
        } else {
          const merged = mergeConfig(ctx, op)
          merges.push({ path: op.path, merged: merged !== undefined })
          // A conflict keeps the user's file and puts the new one beside it.
          if (!merged) staged = stagePath(target + NEW_SUFFIX)
          await fsp.writeFile(staged, merged ?? readVerified(ctx, op, op.sha256!), { flag: "wx", mode: 0o600 })
          if (asRoot) await fsp.lchown(staged, ownerOf(op).uid, ownerOf(op).gid)
          await fsp.chmod(staged, op.mode)
          // A merged file is new content; the package's own version keeps the archive's mtime.
          const mtime = merged ? undefined : mtimeOfOp(op)
          if (mtime !== undefined) await fsp.lutimes(staged, mtime, mtime)
        }
      } catch (e) {
        failed(op.path, staged, e)
      }
      ctx.report.tick()
    },
  )
  // Hard links last, once the file they share an inode with is complete.
  for (const [at, original] of links) {
    const target = path.join(ctx.root, at)
    try {
      guard(target, at)
      await fsp.link(stagePath(path.join(ctx.root, original)), stagePath(target))
    } catch (e) {
      failed(at, stagePath(target), e)
    }
    ctx.report.tick()
  }
  ctx.report.done()
  return { merges: merges.sort((a, b) => (a.path < b.path ? -1 : 1)), written, download }
}

/** The copies not yet written whose contents the store lacks: written as they are fetched. */
const waitingCopies = (ctx: ApplyContext, copies: FileOps, written: CopiedStats): StageWaits => {
  const waiting: number[] = []
  for (let i = 0; i < copies.length; i++) if (!written.has(i) && !ctx.store.has(copies.sha256(i)!)) waiting.push(i)
  return new StageWaits(copies, copies.length, waiting)
}

/**
 * Removes what staging wrote: staged files, then the directories it created.
 * Never fails: what it cannot remove stays. Stage paths checkTargets found
 * free before the journal began, so what is there is apply's, but for those
 * `taken` names (found taken at the open: the admin's).
 */
const undoStaging = (root: string, plan: Plan, created: ReadonlyArray<string>, taken: ReadonlySet<string> = new Set()) => {
  const rm = (p: string) => {
    if (taken.has(p)) return
    try {
      fs.rmSync(p, { force: true })
    } catch {
      // its directory became something else: nothing of ours is there
    }
  }
  for (const op of plan.files) if (stagesContent(op)) for (const staged of stagePaths(op, path.join(root, op.path))) rm(staged)
  for (const dir of [...created].sort().reverse()) {
    try {
      fs.rmdirSync(path.join(root, dir))
    } catch {
      // not empty or already gone
    }
  }
}

/**
 * rename that counts a missing source as done: recovery may run a commit twice.
 * Self-contained (its own `fs`): the commit's workers run its source text (RENAME).
 */
function renameIfPresent(fs: typeof import("node:fs"), from: string, to: string): boolean {
  try {
    fs.renameSync(from, to)
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
    return false
  }
}

/** A path the commit could not change: the disk keeps what was there, reported as drift. */
export interface CommitFailure {
  readonly path: string
  readonly reason: string
}

// A rename from a stage path (renameIfPresent) in a worker: null when done, else the failure.
const RENAME = `
const fs = require("node:fs")
const renameIfPresent = ${renameIfPresent.toString()}
function run([from, to]) {
  try {
    renameIfPresent(fs, from, to)
  } catch (e) {
    return { code: e.code, syscall: e.syscall, message: e.message }
  }
  return null
}
`

/** From this many renames from stage paths the commit makes them on every core: fewer take less time than a worker takes to start. */
const RENAMES_IN_WORKERS = 16384

/**
 * Carries out the renames, mode changes and removals. Idempotent: a rename
 * whose staged file is gone was done already, so recovery can run it again.
 * Past the commit point there is no going back, so a step that fails (what
 * checkTargets could not foresee) is recorded and the rest carried out.
 * The renames from stage paths (a staged file to its target, most of a commit) are
 * independent of each other and of the rest (no other operation names their
 * paths): a big commit makes them on every core.
 */
const commit = async (ctx: ApplyContext, plan: Plan): Promise<CommitFailure[]> => {
  const asRoot = process.getuid?.() === 0
  const ids = idResolver(ctx.root)
  const at = (op: FileOp) => inRoot(ctx.root, op.path)
  const failed: CommitFailure[] = []
  // Plain system calls in a loop: a rename is short, and a promise per file
  // would cost a thread-pool hand-off each.
  const step = (rel: string, f: () => unknown) => {
    try {
      f()
    } catch (e) {
      failed.push({ path: rel, reason: describeIo(e) })
    }
    ctx.report.tick()
  }
  ctx.report.start("commit", plan.files.length)
  const files = plan.files
  // Most leaves are renamed from their stage path: read from the plan's columns, no operation made.
  const fromStage: number[] = []
  for (let i = 0; i < files.length; i++) {
    const kind = files.kind(i)
    const what = files.op(i)
    if (kind === "dir" || what === "remove") continue
    if (what !== "chmod" && what !== "save" && what !== "merge") {
      fromStage.push(i)
      continue
    }
    const op = files.at(i)
    step(op.path, () => {
      if (op.op === "chmod") {
        if (asRoot) fs.lchownSync(at(op), ids.uid(op.owner), ids.gid(op.group))
        if (op.kind !== "symlink") fs.chmodSync(at(op), op.mode)
      } else if (op.op === "save") {
        renameIfPresent(fs, at(op), at(op) + SAVE_SUFFIX)
      } else if (!renameIfPresent(fs, stagePath(at(op)), at(op))) {
        renameIfPresent(fs, stagePath(at(op) + NEW_SUFFIX), at(op) + NEW_SUFFIX)
      }
    })
  }
  const renames = async (here: boolean, tick: (n: number) => void) => {
    const failures: CommitFailure[] = []
    await forEachInWorkers<[string, string], { code?: string; syscall?: string; message: string } | null>(
      RENAME,
      fromStage.length,
      (k) => {
        const abs = inRoot(ctx.root, files.path(fromStage[k]!))
        return [stagePath(abs), abs]
      },
      (k, error) => {
        if (error) failures.push({ path: files.path(fromStage[k]!), reason: describeIo(Object.assign(new Error(error.message), error)) })
      },
      tick,
      here,
    )
    return failures
  }
  try {
    failed.push(...(await renames(fromStage.length < RENAMES_IN_WORKERS, (n) => ctx.report.tick(n))))
  } catch {
    // A worker that could not start or stopped (out of descriptors, of memory) must not stop a commit halfway:
    // every rename from a stage path again on this thread, where those done already find their stage paths gone.
    failed.push(...(await renames(true, () => {})))
  }
  // A directory that was there first keeps its mode and owner.
  for (const op of files.where((i) => files.kind(i) === "dir" && files.op(i) !== "remove" && !files.flag(i, "kept"))) {
    step(op.path, () => {
      if (asRoot) fs.lchownSync(at(op), ids.uid(op.owner), ids.gid(op.group))
      fs.chmodSync(at(op), op.mode)
    })
  }
  const removals = files.where((i) => files.op(i) === "remove")
  for (const op of removals) if (isLeaf(op)) step(op.path, () => fs.rmSync(at(op), { force: true }))
  // Deepest first; a directory still holding anything (another trove's files,
  // foreign files) is kept.
  for (const op of removals.filter((o) => !isLeaf(o)).toArray().reverse()) {
    try {
      fs.rmdirSync(at(op))
    } catch {
      // not empty, or already gone: keep it
    }
    ctx.report.tick()
  }
  ctx.report.done()
  return failed.sort((a, b) => (a.path < b.path ? -1 : 1))
}

/** Makes what was written durable: one syncfs per filesystem instead of an fsync per file. */
const syncToDisk = (...dirs: string[]) => {
  const synced = new Set<number>()
  for (const dir of dirs) {
    try {
      // The store of a root whose troves had no regular files is made here.
      fs.mkdirSync(dir, { recursive: true })
      // The store usually shares the root's filesystem: one syncfs covers both.
      const dev = fs.statSync(dir).dev
      if (synced.has(dev)) continue
      synced.add(dev)
      execFileSync("sync", ["-f", dir], { stdio: ["ignore", "ignore", "pipe"] })
    } catch (e) {
      const why = (e as { stderr?: Buffer }).stderr?.toString().trim().split("\n")[0]
      throw new ApplyError({ path: dir, reason: `cannot sync it to disk (${why || describeIo(e)})` })
    }
  }
}

/** A cache row that matches no file: verify hashes the file, and refreshes the row if it is clean. */
const UNCACHED = { ino: 0n, mtimeNs: 0n, ctimeNs: 0n }

/**
 * Installed rows of every file the changed troves (and repairs) now own.
 * Expected owner, group and mode come from the trove, never from the disk;
 * the stat cache vouches only for bytes apply verified: the stat of a file it
 * wrote in this run (`written`), or an unchanged file's row carried over from
 * the trove that owned the same content before. Everything else (merged or
 * kept config files, files recovery finished, dirs, symlinks, and paths the
 * commit failed to change) starts uncached, so verify reads it.
 */
function* statChanged(ctx: ApplyContext, plan: Plan, vouched: (file: TroveFile) => WrittenStat | undefined, failed: ReadonlySet<string>): Generator<StatRow> {
  const ownerOf = ownerFor(idResolver(ctx.root), process.getuid?.() === 0)
  const fileOf = troveFileLookup(ctx.db)
  const row = (troveId: number, file: TroveFile): StatRow => {
    const stat = (failed.has(file.path) ? undefined : vouched(file)) ?? UNCACHED
    const { uid, gid } = ownerOf(file)
    return { troveId, file, uid, gid, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs, ino: stat.ino }
  }
  for (const [troveId, file] of filesOfChanged(ctx, plan)) yield row(troveId, file)
  // Repaired files of troves that did not change get a fresh row too.
  const changed = new Set(plan.troves.flatMap((t) => (t.to ? [t.to.troveId] : [])))
  const ops = plan.files
  for (let i = 0; i < ops.length; i++) {
    if (ops.op(i) !== "repair" || changed.has(ops.troveId(i))) continue
    const file = fileOf(ops.troveId(i), ops.path(i))
    if (file) yield row(ops.troveId(i), file)
  }
}

/** The on-disk files of the troves a plan installs, a trove at a time: never every file of every trove at once. */
function* filesOfChanged(ctx: ApplyContext, plan: Plan): Generator<[number, TroveFile]> {
  const filesOf = troveFilesReader(ctx.db)
  for (const t of plan.troves) {
    if (t.to) for (const file of filesForComponents(filesOf(t.to.troveId), t.to.components)) if (onDisk(file)) yield [t.to.troveId, file]
  }
}

/**
 * The stats statChanged may give: those of the files written in this run,
 * and, for an unchanged file apply did not write, the row of the trove that
 * owned the same content before, read now (recording the generation drops
 * that trove's rows before it writes the new ones).
 */
const vouchedStats = (ctx: ApplyContext, plan: Plan, written: WrittenLookup): ((file: TroveFile) => WrittenStat | undefined) => {
  const cached = cachedStatsLookup(ctx.db)
  if (!cached.any) return (file) => written.get(file.path)
  // by path and the content the row vouches for
  const key = (f: { kind: string; sha256: string | null; target: string | null }, p: string) => `${f.kind}\0${f.sha256}\0${f.target}\0${p}`
  const carried = new WrittenStats()
  const writes = new Set<string>()
  for (let i = 0; i < plan.files.length; i++) if (stagesContentAt(plan.files, i)) writes.add(plan.files.path(i))
  for (const [, file] of filesOfChanged(ctx, plan)) {
    if (writes.has(file.path)) continue
    const c = cached(file.path).find((c) => c.kind === file.kind && c.sha256 === file.sha256 && c.target === file.target)
    if (c) carried.set(key(file, file.path), c)
  }
  return (file) => written.get(file.path) ?? carried.get(key(file, file.path))
}

/** The command names under which a generation also restores its desired state (a changeset carries the one it was made from). */
export const ROLLBACK = "rollback"
export const APPLY_CHANGESET = "apply-changeset"

/**
 * Steps 5 and 6: shared by apply and by recovery of a committing journal.
 * Always ends with the new generation recorded; paths the commit could not
 * change are returned (their staged files removed once the record is made).
 */
const finish = async (
  ctx: ApplyContext,
  plan: Plan,
  command: string,
  desired: string,
  written: WrittenLookup = new Map(),
): Promise<{ generation: number; failed: CommitFailure[] }> => {
  const failed = await commit(ctx, plan)
  try {
    syncToDisk(ctx.root)
  } catch {
    // recorded anyway: the kernel writes the data back on its own
  }
  const stats = statChanged(ctx, plan, vouchedStats(ctx, plan, written), new Set(failed.map((f) => f.path)))
  const generation = recordGeneration(ctx.db, { plan, command, now: ctx.now(), stats, desired, restoreDesired: command === ROLLBACK || command === APPLY_CHANGESET })
  if (failed.length > 0) undoStaging(ctx.root, { ...plan, files: plan.files.filter((op) => failed.some((f) => f.path === op.path)) }, [])
  return { generation, failed }
}

/** The error for an apply that made its generation but left paths unchanged. */
const partialFailure = (generation: number, failed: ReadonlyArray<CommitFailure>) =>
  new ApplyError({
    path: failed[0]!.path,
    reason:
      `${failed[0]!.reason}; generation ${generation} was recorded with ` +
      `${failed.length === 1 ? "this path" : `${failed.length} paths`} left as they were (see \`conary verify\`)`,
  })

/** Test hook: stop (as if killed) once this step is reached. */
const crashPoint = (step: string) => {
  if (process.env.CONARY_TEST_CRASH_AT === step) process.kill(process.pid, "SIGKILL")
}

export const applyPlan = async (ctx: ApplyContext, plan: Plan, command: string, desired: string): Promise<ApplyResult> => {
  if (plan.troves.length === 0 && plan.files.length === 0) return { generation: null, plan, merges: [] }
  // The disk is checked as close to staging as can be; nothing above touched the root.
  const created = checkTargets(ctx, plan)
  preserveReplaced(ctx, plan)
  plan = saveUnowned(ctx, plan)
  beginJournal(ctx.db, { command, plan, desired, startedAt: ctx.now(), pid: process.pid, dirs: created })
  let staged: Awaited<ReturnType<typeof stage>>
  const taken = new Set<string>()
  try {
    // The staged contents go out to disk while more are staged: the syncfs below finds less to write.
    const stopWriteBehind = writeBehind(ctx.root)
    try {
      staged = await stage(ctx, plan, created, taken)
    } finally {
      stopWriteBehind()
    }
    crashPoint("staged")
    // The store too: what the commit replaces must be kept durably before it goes.
    syncToDisk(ctx.root, ctx.store.dir)
    markCommitting(ctx.db)
  } catch (e) {
    undoStaging(ctx.root, plan, created, taken)
    try {
      clearJournal(ctx.db)
    } catch {
      // the journal says staging: the next command undoes the same again
    }
    throw e
  }
  crashPoint("committing")
  const { generation, failed } = await finish(ctx, plan, command, desired, staged.written)
  if (failed.length > 0) throw partialFailure(generation, failed)
  return { generation, plan, merges: staged.merges, ...(staged.download ? { download: staged.download } : {}) }
}

export interface Recovery {
  readonly action: "rolled-back" | "rolled-forward"
  readonly command: string
  readonly startedAt: string
  readonly pid: number
  /** the generation the root is at now */
  readonly generation: number
  /** paths a finished apply could not change: drift now */
  readonly failed: ReadonlyArray<CommitFailure>
}

/** Settles an interrupted apply: undo it if it was staging, finish it if it was committing. */
export const recoverJournal = async (ctx: ApplyContext, journal: Journal, currentGeneration: () => number): Promise<Recovery> => {
  const base = { command: journal.command, startedAt: journal.startedAt, pid: journal.pid }
  if (journal.state === "staging") {
    undoStaging(ctx.root, journal.plan, journal.dirs)
    try {
      syncToDisk(ctx.root)
    } catch {
      // cleared anyway: at worst a staged file comes back after a crash, unowned
    }
    clearJournal(ctx.db)
    return { ...base, action: "rolled-back", generation: currentGeneration(), failed: [] }
  }
  const { generation, failed } = await finish(ctx, journal.plan, journal.command, journal.desired)
  return { ...base, action: "rolled-forward", generation, failed }
}
