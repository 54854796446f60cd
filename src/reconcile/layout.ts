import * as fs from "node:fs"
import * as path from "node:path"

// What the root already has on disk where troves want to put things, as the
// planner sees it. dpkg follows a directory symlink the root has (merged /usr:
// `bin -> usr/bin`) and leaves it alone; so do we, as long as it stays inside
// the root. Paths are as troves name them: absolute within the root (`/usr/bin/x`).

/**
 * What lies at a path: `dirlink` is a symlink to a directory inside the root;
 * `blocked`, that something on the way there is not a directory.
 */
export type DiskKind = "dir" | "dirlink" | "file" | "symlink" | "other" | "blocked"

export interface RootLayout {
  /** the path with every directory on the way resolved as the disk has it; undefined when that leads outside the root */
  readonly canonical: (p: string) => string | undefined
  /** what is on disk at a path (its last component not followed), or null */
  readonly at: (p: string) => DiskKind | null
  /** the root's directory symlinks found so far: link path -> canonical target */
  readonly dirLinks: () => ReadonlyMap<string, string>
}

/** A layout with nothing on disk: what the planner assumes without one. */
export const emptyLayout: RootLayout = { canonical: (p) => p, at: () => null, dirLinks: () => new Map() }

const OUTSIDE = Symbol("outside")

/**
 * The layout of a real root, read lazily and memoized: one realpath per
 * directory that troves touch. The top level and /usr are read up front so
 * that aliases through merged-/usr links are known before any path under
 * them is asked about.
 */
export const diskLayout = (root: string): RootLayout => {
  const realRoot = fs.realpathSync(root)
  const links = new Map<string, string>()
  const dirs = new Map<string, string | typeof OUTSIDE>([["", ""]])
  // Directories found missing: nothing is at a path under them (no lstat per new file of an empty root).
  const missing = new Set<string>()
  const inside = (real: string): string | typeof OUTSIDE =>
    real === realRoot ? "" : real.startsWith(realRoot + path.sep) ? real.slice(realRoot.length + 1) : OUTSIDE

  const lstat = (p: string): fs.Stats | undefined | "blocked" => {
    try {
      return fs.lstatSync(path.join(realRoot, p), { throwIfNoEntry: false })
    } catch (e) {
      // Something on the way is not a directory: nothing is there (at() says what blocks it).
      if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return "blocked"
      throw e
    }
  }

  const dir = (d: string): string | typeof OUTSIDE => {
    const known = dirs.get(d)
    if (known !== undefined) return known
    const parent = dir(path.posix.dirname(d) === "." ? "" : path.posix.dirname(d))
    let result: string | typeof OUTSIDE
    if (parent === OUTSIDE) result = OUTSIDE
    else {
      const here = parent === "" ? path.posix.basename(d) : `${parent}/${path.posix.basename(d)}`
      const st = missing.has(parent) ? undefined : lstat(here)
      if (st !== undefined && st !== "blocked" && st.isSymbolicLink()) {
        let real: string | undefined
        try {
          real = fs.realpathSync(path.join(realRoot, here))
        } catch {
          real = undefined // dangling: it cannot hold anything
        }
        result = real === undefined ? OUTSIDE : inside(real)
        if (result !== OUTSIDE && fs.statSync(real!).isDirectory()) links.set(here, result)
      } else {
        result = here
        if (st === undefined) missing.add(here)
      }
    }
    dirs.set(d, result)
    return result
  }

  // Internally paths are relative (`usr/bin/x`); outside they are rooted.
  const relative = (p: string): string | undefined => {
    const rel = p.replace(/^\/+/, "")
    const parent = path.posix.dirname(rel)
    const d = dir(parent === "." ? "" : parent)
    if (d === OUTSIDE) return undefined
    return d === "" ? path.posix.basename(rel) : `${d}/${path.posix.basename(rel)}`
  }
  const canonical = (p: string): string | undefined => {
    const c = relative(p)
    return c === undefined ? undefined : `/${c}`
  }

  const at = (p: string): DiskKind | null => {
    const c = relative(p)
    if (c === undefined || missing.has(path.posix.dirname(c))) return null
    let st: fs.Stats | undefined
    try {
      st = fs.lstatSync(path.join(realRoot, c), { throwIfNoEntry: false })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return "blocked"
      throw e
    }
    if (!st) return null
    if (st.isDirectory()) return "dir"
    if (st.isFile()) return "file"
    if (st.isSymbolicLink()) {
      const d = dir(c)
      return d !== OUTSIDE && links.has(c) ? "dirlink" : "symlink"
    }
    return "other"
  }

  for (const top of ["", "usr"]) {
    let names: string[] = []
    try {
      names = fs.readdirSync(path.join(realRoot, top))
    } catch {
      // no such directory
    }
    for (const name of names) dir(top === "" ? name : `${top}/${name}`)
  }
  const rooted = new Map<string, string>()
  return {
    canonical,
    at,
    dirLinks: () => {
      if (rooted.size !== links.size) for (const [l, t] of links) rooted.set(`/${l}`, `/${t}`)
      return rooted
    },
  }
}

/**
 * Every path that names the same file as a canonical one through the root's
 * directory symlinks (`/usr/bin/x` -> `/bin/x` when `bin -> usr/bin`), itself first.
 */
export const aliasesOf = (canonicalPath: string, links: ReadonlyMap<string, string>): string[] => {
  const out = [canonicalPath]
  for (let i = 0; i < out.length; i++) {
    for (const [link, target] of links) {
      const p = out[i]!
      if (p.startsWith(target + "/")) {
        const alias = link + p.slice(target.length)
        if (!out.includes(alias)) out.push(alias)
      }
    }
  }
  return out
}
