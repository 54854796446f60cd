import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { IO_CONCURRENCY, forEachBounded } from "../batch.js"
import type { Db } from "../db/connection.js"
import { type StatRow, recordGeneration } from "../db/state.js"
import { archivesOf, troveFilesLookup } from "../db/troves.js"
import { ApplyError, ArchiveError } from "../errors.js"
import { extractNativeObjects } from "../source/native.js"
import { type TroveFile, filesForComponents } from "../source/trove.js"
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
  // Archives are read in parallel: each is one stream, and creating the store
  // files is system-call bound.
  await forEachBounded(sources, 4, async (t) => {
    const wanted = new Set<string>()
    for (const f of filesOf(t.to!.troveId)) if (f.sha256 !== null && needed.has(f.sha256)) wanted.add(f.sha256)
    if (wanted.size > 0) {
      const archives = archivesOf(ctx.db, t.to!.troveId)
      if (archives.length === 0) throw new ArchiveError({ archive: t.name, reason: "no source offers this trove any more (run `conary source sync`)" })
      await extractNativeObjects(archives[0]!.archive, wanted, ctx.store)
    }
    ctx.report.tick()
  })
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

/**
 * Writes the file operations under the root: directories first, in path order
 * (parents before children); then files and symlinks in parallel batches,
 * each staged next to its target and renamed over it; removals last, with
 * directories deepest first and kept when anything else is still in them.
 */
const writeOps = async (ctx: ApplyContext, ops: ReadonlyArray<FileOp>) => {
  const asRoot = process.getuid?.() === 0
  const ids = idResolver(ctx.root)
  const guard = parentGuard(ctx.root)
  const fail = (op: FileOp, e: unknown): never => {
    if (e instanceof ApplyError) throw e
    throw new ApplyError({ path: op.path, reason: describeIo(e) })
  }
  const dirs = ops.filter((op) => op.kind === "dir" && op.op !== "remove")
  const leaves = ops.filter((op) => op.kind !== "dir" && op.op !== "remove")
  const removals = ops.filter((op) => op.op === "remove")
  ctx.report.start("write", ops.length)

  for (const op of dirs) {
    const target = path.join(ctx.root, op.path)
    try {
      const existing = lstatOrNull(target)
      if (existing && !existing.isDirectory()) throw new ApplyError({ path: op.path, reason: "exists and is not a directory" })
      guard(target, op.path)
      if (!existing) fs.mkdirSync(target)
      fs.chmodSync(target, op.mode)
      if (asRoot) fs.lchownSync(target, ids.uid(op.owner), ids.gid(op.group))
    } catch (e) {
      fail(op, e)
    }
    ctx.report.tick()
  }

  await forEachBounded(leaves, IO_CONCURRENCY, async (op) => {
    const target = path.join(ctx.root, op.path)
    try {
      guard(target, op.path)
      if (op.op === "chmod") {
        if (op.kind !== "symlink") await fsp.chmod(target, op.mode)
        if (asRoot) await fsp.lchown(target, ids.uid(op.owner), ids.gid(op.group))
      } else {
        // Staged in the target's own directory, so the rename is atomic.
        const stage = path.join(path.dirname(target), `.conary-stage.${process.pid}.${path.basename(target)}`)
        if (op.kind === "symlink") {
          await fsp.rm(stage, { force: true })
          await fsp.symlink(op.target!, stage)
        } else {
          await fsp.copyFile(ctx.store.pathOf(op.sha256!), stage)
          await fsp.chmod(stage, op.mode)
        }
        if (asRoot) await fsp.lchown(stage, ids.uid(op.owner), ids.gid(op.group))
        try {
          await fsp.rename(stage, target)
        } catch (e) {
          await fsp.rm(stage, { force: true })
          if ((e as NodeJS.ErrnoException).code === "EISDIR" || (e as NodeJS.ErrnoException).code === "ENOTEMPTY")
            throw new ApplyError({ path: op.path, reason: "is a directory, a file was expected" })
          throw e
        }
      }
    } catch (e) {
      fail(op, e)
    }
    ctx.report.tick()
  })

  await forEachBounded(
    removals.filter((op) => op.kind !== "dir"),
    IO_CONCURRENCY,
    async (op) => {
      try {
        await fsp.rm(path.join(ctx.root, op.path), { force: true })
      } catch (e) {
        fail(op, e)
      }
      ctx.report.tick()
    },
  )
  const removedDirs = removals.filter((op) => op.kind === "dir").map((op) => path.join(ctx.root, op.path))
  for (const dir of removedDirs.sort().reverse()) {
    try {
      fs.rmdirSync(dir)
    } catch {
      // not empty (foreign files, another trove's) or already gone: keep it
    }
    ctx.report.tick()
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
const statChanged = async (ctx: ApplyContext, plan: Plan): Promise<StatRow[]> => {
  const filesOf = troveFilesLookup(ctx.db)
  const owned: Array<{ troveId: number; file: TroveFile }> = []
  for (const t of plan.troves) {
    if (t.to) for (const file of filesForComponents(filesOf(t.to.troveId), t.to.components)) owned.push({ troveId: t.to.troveId, file })
  }
  const rows: StatRow[] = new Array(owned.length)
  await forEachBounded(owned, IO_CONCURRENCY, async ({ troveId, file }, i) => {
    const st = await fsp.lstat(path.join(ctx.root, file.path), { bigint: true })
    rows[i] = { troveId, file, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino }
  })
  return rows
}

export const applyPlan = async (ctx: ApplyContext, plan: Plan, command: string): Promise<ApplyResult> => {
  if (plan.troves.length === 0 && plan.files.length === 0) return { generation: null, plan }
  await fetchContents(ctx, plan)
  await writeOps(ctx, plan.files)
  const stats = await statChanged(ctx, plan)
  const generation = recordGeneration(ctx.db, { plan, command, now: ctx.now(), stats })
  return { generation, plan }
}
