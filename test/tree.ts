import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

// Comparable listings of a root, shared by tests and benchmark scripts (no vitest here).

export const REPO = path.resolve(import.meta.dirname, "..")

export interface Listing {
  [path: string]: { type: string; mode: number; content?: string; target?: string; mtime?: number; linkedTo?: string }
}

/**
 * Everything under a root except conary's own state, as comparable data.
 * With `times`, files and symlinks also carry their mtime (seconds), and a
 * file that shares its inode with an earlier one names it (`linkedTo`).
 */
export const listTree = (root: string, skip = "var/lib/conary", options: { times?: boolean } = {}): Listing => {
  const out: Listing = {}
  const inodes = new Map<number, string>()
  const visit = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      if (r === skip || r.startsWith(skip + "/")) continue
      const abs = path.join(root, r)
      const st = fs.lstatSync(abs)
      const mode = st.mode & 0o7777
      if (st.isDirectory()) {
        out[r] = { type: "dir", mode }
        visit(r)
      } else if (st.isSymbolicLink()) out[r] = { type: "symlink", mode: 0, target: fs.readlinkSync(abs) }
      else out[r] = { type: "file", mode, content: createHash("sha256").update(fs.readFileSync(abs)).digest("hex") }
      if (options.times && !st.isDirectory()) {
        out[r]!.mtime = Math.trunc(st.mtimeMs / 1000)
        const first = inodes.get(st.ino)
        if (first !== undefined && st.nlink > 1) out[r]!.linkedTo = first
        else if (st.isFile()) inodes.set(st.ino, r)
      }
    }
  }
  visit("")
  // directories conary created only to hold its own state
  for (const p of ["var/lib", "var"]) if (out[p] && !Object.keys(out).some((k) => k.startsWith(p + "/"))) delete out[p]
  return out
}

