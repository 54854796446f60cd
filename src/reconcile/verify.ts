import * as fs from "node:fs"
import * as path from "node:path"
import type { RecordedRows } from "../db/state.js"
import type { StatRefresh } from "../model/installed.js"
import type { FileKind } from "../model/trove.js"
import { type Moved, type ScanOptions, checkRows } from "./scan.js"

// Drift: how the disk differs from what apply recorded. lstat first; where
// size, mtime, ctime, inode and mode equal the stat cache the file is clean
// without being read. Otherwise (or with `full`) regular files are hashed
// (see scan.ts for the disk side).

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
  /** clean files whose stat moved (a touch, or a rename by apply): their cache rows went to `keep` */
  readonly refreshed: number
}

export interface DriftOptions extends ScanOptions {
  /** takes the cache rows of clean files whose stat moved, a batch at a time as they are found */
  readonly keep?: (rows: ReadonlyArray<StatRefresh>) => void
}

/** Cache rows handed to `keep` at once: the first scan after an apply moves every row, and 200,000 held at once took ~45 MB. */
const REFRESH_BATCH = 1024

const TYPE_BITS = 0o170000
const typeOf = (kind: FileKind) => (kind === "dir" ? 0o040000 : kind === "symlink" ? 0o120000 : 0o100000)
const kindOf = (mode: number): FileKind | "other" => {
  const type = mode & TYPE_BITS
  return type === 0o040000 ? "dir" : type === 0o120000 ? "symlink" : type === 0o100000 ? "file" : "other"
}

const flagString = (flags: ReadonlyArray<string>) =>
  ["S", "M", "5", "D", "L", "U", "G", "T", "P"].map((f) => (flags.includes(f) ? f : ".")).join("")

/**
 * Scans recorded rows against the disk: the stat cache
 * decides what is clean unless `full`, and the rest is judged by what
 * checkRows read there. Drift comes out by path (for one path: missing, then
 * judged without reading, then hashed, each in row order).
 */
export const scanDrift = async (
  root: string,
  recorded: RecordedRows,
  options: DriftOptions,
): Promise<Scan> => {
  const found: Array<{ readonly drift: Drift; readonly rank: number }> = []
  let refresh: StatRefresh[] = []
  const keep = options.keep
  const onMoved =
    keep &&
    (({ paths, stats }: Moved) => {
      for (let i = 0; i < paths.length; i++) {
        refresh.push({ troveId: Number(stats[4 * i]), path: paths[i]!, mtimeNs: stats[4 * i + 1]!, ctimeNs: stats[4 * i + 2]!, ino: stats[4 * i + 3]! })
        if (refresh.length === REFRESH_BATCH) {
          keep(refresh)
          refresh = []
        }
      }
    })
  let hashed = 0
  const { checked, cleanHashed, moved } = await checkRows(root, recorded, options, (row, seen) => {
    const file = recorded.file(row)
    if (seen === "missing") {
      const drift = { path: file.path, troveId: file.troveId, trove: file.trove, config: file.config, missing: true, flags: "missing", localSha256: null, onDisk: null }
      found.push({ rank: 0, drift })
      return
    }
    const flags: string[] = []
    const typeChanged = (seen.mode & TYPE_BITS) !== typeOf(file.kind)
    if (typeChanged || (file.kind !== "symlink" && (seen.mode & 0o7777) !== file.mode)) flags.push("M")
    if (seen.uid !== file.uid) flags.push("U")
    if (seen.gid !== file.gid) flags.push("G")
    if (seen.mtimeNs !== file.mtimeNs && file.kind === "file") flags.push("T")
    let read = false
    if (!typeChanged && file.kind === "symlink") {
      if (seen.target !== file.target) flags.push("L")
    } else if (!typeChanged && file.kind === "file") {
      if (seen.size !== file.size) flags.push("S", "5")
      else {
        hashed++
        read = true
        if (seen.sha256 !== file.sha256) flags.push("5")
      }
    } else if (typeChanged && file.kind === "file") flags.push("5")
    // No row comes here with its times alone moved: checkRows judged those clean (see Moved).
    const drift = {
      path: file.path,
      troveId: file.troveId,
      trove: file.trove,
      config: file.config,
      missing: false,
      flags: flagString(flags),
      localSha256: read ? (seen.sha256 ?? null) : null,
      onDisk: kindOf(seen.mode),
    }
    found.push({ rank: read ? 2 : 1, drift })
  }, onMoved)
  if (refresh.length > 0) keep?.(refresh)
  found.sort((a, b) => (a.drift.path < b.drift.path ? -1 : a.drift.path > b.drift.path ? 1 : a.rank - b.rank))
  return { checked, hashed: hashed + cleanHashed, drift: found.map((f) => f.drift), refreshed: moved }
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
