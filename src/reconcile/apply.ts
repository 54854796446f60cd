import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import { type StatRow, recordGeneration } from "../db/state.js"
import { archivesOf, troveFilesLookup } from "../db/troves.js"
import { ApplyError, ArchiveError } from "../errors.js"
import { extractNativeObjects } from "../source/native.js"
import { filesForComponents } from "../source/trove.js"
import type { ContentStore } from "../store/store.js"
import type { FileOp, Plan } from "./plan-schema.js"
import type { Report } from "./report.js"

export interface ApplyContext {
  readonly db: Db
  readonly root: string
  readonly store: ContentStore
  readonly report: Report
  readonly now: () => string
}

export interface ApplyResult {
  /** the new generation, or null when the plan changed nothing */
  readonly generation: number | null
  readonly plan: Plan
}

/** Fetches every content the plan writes into the store, verified, from the troves' archives. */
const fetchContents = async (ctx: ApplyContext, plan: Plan) => {
  const needed = new Set<string>()
  for (const op of plan.files) if (op.kind === "file" && (op.op === "add" || op.op === "replace")) needed.add(op.sha256!)
  for (const sha of [...needed]) if (ctx.store.has(sha)) needed.delete(sha)
  if (needed.size === 0) return
  const filesOf = troveFilesLookup(ctx.db)
  const sources = plan.troves.filter((t) => t.to !== undefined)
  ctx.report.start("fetch", sources.length)
  for (const t of sources) {
    const wanted = new Set<string>()
    for (const f of filesOf(t.to!.troveId)) if (f.sha256 !== null && needed.has(f.sha256)) wanted.add(f.sha256)
    if (wanted.size > 0) {
      const archives = archivesOf(ctx.db, t.to!.troveId)
      if (archives.length === 0) throw new ArchiveError({ archive: t.name, reason: "no source offers this trove any more (run `conary source sync`)" })
      await extractNativeObjects(archives[0]!.archive, wanted, ctx.store)
      for (const sha of wanted) needed.delete(sha)
    }
    ctx.report.tick()
  }
  ctx.report.done()
}

/** Resolves owner and group names as the root's own passwd/group files say. */
const idResolver = (root: string) => {
  const read = (file: string) => {
    const ids = new Map<string, number>([["root", 0]])
    try {
      for (const line of fs.readFileSync(path.join(root, file), "utf8").split("\n")) {
        const [name, , id] = line.split(":")
        if (name && id && /^\d+$/.test(id)) ids.set(name, Number(id))
      }
    } catch {
      // no passwd in the root yet: only root is known
    }
    return ids
  }
  const users = read("etc/passwd")
  const groups = read("etc/group")
  const lookup = (ids: Map<string, number>, name: string) => (/^\d+$/.test(name) ? Number(name) : (ids.get(name) ?? 0))
  return { uid: (n: string) => lookup(users, n), gid: (n: string) => lookup(groups, n) }
}

/**
 * Guards every write: the parent directory of a target, after resolving any
 * symlinks on the way, must still lie inside the root.
 */
const parentGuard = (root: string) => {
  const realRoot = fs.realpathSync(root)
  const checked = new Set<string>()
  return (target: string, rel: string) => {
    const parent = path.dirname(target)
    if (checked.has(parent)) return
    const real = fs.realpathSync(parent)
    if (real !== realRoot && !real.startsWith(realRoot + path.sep))
      throw new ApplyError({ path: rel, reason: `its directory resolves outside the root (${real})` })
    checked.add(parent)
  }
}

const writeOps = (ctx: ApplyContext, ops: ReadonlyArray<FileOp>) => {
  const asRoot = process.getuid?.() === 0
  const ids = idResolver(ctx.root)
  const guard = parentGuard(ctx.root)
  const removedDirs: string[] = []
  ctx.report.start("write", ops.length)
  for (const op of ops) {
    const target = path.join(ctx.root, op.path)
    try {
      if (op.op === "remove") {
        if (op.kind === "dir") removedDirs.push(target)
        else fs.rmSync(target, { force: true })
      } else if (op.op === "chmod") {
        if (op.kind !== "symlink") fs.chmodSync(target, op.mode)
        if (asRoot) fs.lchownSync(target, ids.uid(op.owner), ids.gid(op.group))
      } else if (op.kind === "dir") {
        const existing = lstatOrNull(target)
        if (existing && !existing.isDirectory()) throw new ApplyError({ path: op.path, reason: "exists and is not a directory" })
        guard(target, op.path)
        if (!existing) fs.mkdirSync(target)
        fs.chmodSync(target, op.mode)
      } else {
        guard(target, op.path)
        const existing = lstatOrNull(target)
        if (existing?.isDirectory()) throw new ApplyError({ path: op.path, reason: "is a directory, a file was expected" })
        // Stage next to the target so the rename is atomic on one filesystem.
        const stage = path.join(path.dirname(target), `.conary-stage.${process.pid}.${path.basename(target)}`)
        fs.rmSync(stage, { force: true })
        if (op.kind === "symlink") fs.symlinkSync(op.target!, stage)
        else {
          fs.copyFileSync(ctx.store.pathOf(op.sha256!), stage)
          fs.chmodSync(stage, op.mode)
        }
        if (asRoot) fs.lchownSync(stage, ids.uid(op.owner), ids.gid(op.group))
        fs.renameSync(stage, target)
      }
    } catch (e) {
      if (e instanceof ApplyError) throw e
      throw new ApplyError({ path: op.path, reason: describeIo(e) })
    }
    ctx.report.tick()
  }
  // Deepest first; a directory still holding anything (another trove's files,
  // foreign files) is kept.
  for (const dir of removedDirs.sort().reverse()) {
    try {
      fs.rmdirSync(dir)
    } catch {
      // not empty or already gone: keep it
    }
  }
  ctx.report.done()
}

const lstatOrNull = (p: string): fs.Stats | null => {
  try {
    return fs.lstatSync(p)
  } catch {
    return null
  }
}

const describeIo = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  if (err.code === "ENOSPC") return "no space left on device (disk full)"
  if (err.code === "EACCES" || err.code === "EPERM") return `permission denied (${err.syscall ?? "write"})`
  return err.message ?? String(e)
}

/** lstat of every file the changed troves now own: the stat cache verify uses. */
const statChanged = (ctx: ApplyContext, plan: Plan): StatRow[] => {
  const filesOf = troveFilesLookup(ctx.db)
  const rows: StatRow[] = []
  for (const t of plan.troves) {
    if (!t.to) continue
    for (const file of filesForComponents(filesOf(t.to.troveId), t.to.components)) {
      const st = fs.lstatSync(path.join(ctx.root, file.path), { bigint: true })
      rows.push({ troveId: t.to.troveId, file, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino })
    }
  }
  return rows
}

export const applyPlan = async (ctx: ApplyContext, plan: Plan, command: string): Promise<ApplyResult> => {
  if (plan.troves.length === 0 && plan.files.length === 0) return { generation: null, plan }
  await fetchContents(ctx, plan)
  writeOps(ctx, plan.files)
  const stats = statChanged(ctx, plan)
  const generation = recordGeneration(ctx.db, { plan, command, now: ctx.now(), stats })
  return { generation, plan }
}
