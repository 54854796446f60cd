import * as fs from "node:fs"
import * as path from "node:path"
import type { RecordedFile, StatRefresh } from "../model/installed.js"
import type { FileKind } from "../model/trove.js"
import { hashFiles } from "../store/hash-pool.js"

// Drift: how the disk differs from what apply recorded. lstat first; where
// size, mtime, ctime, inode and mode equal the stat cache the file is clean
// without being read. Otherwise (or with `full`) regular files are hashed.

export interface Drift {
  readonly path: string
  readonly troveId: number
  readonly trove: string
  readonly config: boolean
  readonly missing: boolean
  /** rpm -V style: S size, M mode/type, 5 digest, D device, L link, U user, G group, T mtime, P caps */
  readonly flags: string
  /** sha256 of what is on disk now, when it was read */
  readonly localSha256: string | null
  /** what is at the path now; null when missing */
  readonly onDisk: FileKind | "other" | null
}

export interface Scan {
  readonly checked: number
  readonly hashed: number
  readonly drift: ReadonlyArray<Drift>
  readonly refresh: ReadonlyArray<StatRefresh>
}

const TYPE_BITS = 0o170000
const typeOf = (kind: FileKind) => (kind === "dir" ? 0o040000 : kind === "symlink" ? 0o120000 : 0o100000)
const kindOf = (mode: number): FileKind | "other" => {
  const type = mode & TYPE_BITS
  return type === 0o040000 ? "dir" : type === 0o120000 ? "symlink" : type === 0o100000 ? "file" : "other"
}

interface Pending {
  readonly file: RecordedFile
  readonly st: fs.BigIntStats
  readonly flags: string[]
}

const flagString = (flags: ReadonlyArray<string>) =>
  ["S", "M", "5", "D", "L", "U", "G", "T", "P"].map((f) => (flags.includes(f) ? f : ".")).join("")

/** lstat; undefined when nothing is there, also when a directory on the way was replaced by a file. */
const lstatOrMissing = (p: string): fs.BigIntStats | undefined => {
  try {
    return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined
    throw e
  }
}

export const scanDrift = async (root: string, files: Iterable<RecordedFile>, options: { readonly full: boolean }): Promise<Scan> => {
  const drift: Drift[] = []
  const refresh: StatRefresh[] = []
  const pending: Pending[] = []
  const toHash: Pending[] = []
  let checked = 0
  // One pass, one file at a time, in a plain synchronous loop: with the inodes
  // cached, lstat is a short system call, and a promise per file costs several
  // times more than the call itself (measured: 55 ms against 210 ms for
  // 10,000 files). Only what differs is kept.
  for (const file of files) {
    checked++
    const st = lstatOrMissing(path.join(root, file.path))
    if (st === undefined) {
      drift.push({ path: file.path, troveId: file.troveId, trove: file.trove, config: file.config, missing: true, flags: "missing", localSha256: null, onDisk: null })
      continue
    }
    const mode = Number(st.mode)
    const sameStat =
      st.mtimeNs === file.mtimeNs && st.ctimeNs === file.ctimeNs && st.ino === file.ino && (mode & 0o7777) === file.mode &&
      (mode & TYPE_BITS) === typeOf(file.kind) && (file.kind !== "file" || Number(st.size) === file.size)
    if (sameStat && !options.full) continue
    const flags: string[] = []
    const typeChanged = (mode & TYPE_BITS) !== typeOf(file.kind)
    if (typeChanged || (file.kind !== "symlink" && (mode & 0o7777) !== file.mode)) flags.push("M")
    if (Number(st.uid) !== file.uid) flags.push("U")
    if (Number(st.gid) !== file.gid) flags.push("G")
    if (st.mtimeNs !== file.mtimeNs && file.kind === "file") flags.push("T")
    const p: Pending = { file, st, flags }
    if (!typeChanged && file.kind === "symlink") {
      let target: string | null = null
      try {
        target = fs.readlinkSync(path.join(root, file.path))
      } catch {
        // vanished between lstat and readlink: the target differs
      }
      if (target !== file.target) flags.push("L")
    } else if (!typeChanged && file.kind === "file") {
      if (Number(st.size) !== file.size) flags.push("S", "5")
      else {
        toHash.push(p)
        continue
      }
    } else if (typeChanged && file.kind === "file") flags.push("5")
    pending.push(p)
  }
  const hashes = await hashFiles(toHash.map((p) => path.join(root, p.file.path)))
  const local = new Map<Pending, string | null>()
  toHash.forEach((p, i) => {
    local.set(p, hashes[i]!)
    if (hashes[i] !== p.file.sha256) p.flags.push("5")
    pending.push(p)
  })
  for (const p of pending) {
    const { file, st, flags } = p
    // Only the times moved (a touch): clean, and the cache is refreshed.
    if (flags.every((f) => f === "T")) {
      if (st.mtimeNs !== file.mtimeNs || st.ctimeNs !== file.ctimeNs || st.ino !== file.ino)
        refresh.push({ troveId: file.troveId, path: file.path, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino })
      continue
    }
    drift.push({
      path: file.path,
      troveId: file.troveId,
      trove: file.trove,
      config: file.config,
      missing: false,
      flags: flagString(flags),
      localSha256: local.get(p) ?? null,
      onDisk: kindOf(Number(st.mode)),
    })
  }
  drift.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { checked, hashed: toHash.length, drift, refresh }
}

/** Entries in owned directories that no installed trove owns (`verify --unowned`). */
export const findUnowned = (root: string, owned: ReadonlySet<string>, dirs: ReadonlyArray<string>, skip: string): string[] => {
  const out: string[] = []
  for (const dir of dirs) {
    let names: string[]
    try {
      names = fs.readdirSync(path.join(root, dir))
    } catch {
      continue
    }
    for (const name of names) {
      const p = dir === "/" ? `/${name}` : `${dir}/${name}`
      if (!owned.has(p) && p !== skip && !skip.startsWith(p + "/")) out.push(p)
    }
  }
  return out.sort()
}
