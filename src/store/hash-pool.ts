import { runInWorkers } from "../worker-pool.js"

// SHA-256 of many files on every core. Each worker reads through one fixed
// 1 MiB buffer, so memory stays bounded whatever the file sizes.

/**
 * Worker source defining `hashFile(path, seen?)`: the hex sha256, or null for
 * what cannot be read or is not a regular file, or (given `seen`, a bigint
 * lstat) is not the file that stat saw: a directory on the way swapped since
 * would otherwise have another file's bytes vouch for the stat.
 */
export const HASH_FILE = `
const { createHash } = require("node:crypto")
const hashFs = require("node:fs")
const hashBuffer = Buffer.allocUnsafe(1 << 20)
function hashFile(p, seen) {
  const fs = hashFs
  let fd
  try {
    // Never through a symlink, never blocking on a fifo: whatever swapped in
    // since the lstat, only a regular file is hashed.
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
    const st = fs.fstatSync(fd, { bigint: seen !== undefined })
    if (!st.isFile() || (seen !== undefined && (st.ino !== seen.ino || st.dev !== seen.dev))) return null
    const h = createHash("sha256")
    for (;;) {
      const n = fs.readSync(fd, hashBuffer, 0, hashBuffer.length, null)
      if (n === 0) break
      h.update(hashBuffer.subarray(0, n))
    }
    return h.digest("hex")
  } catch {
    return null
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}
`

const HASH = `${HASH_FILE}
const run = hashFile`

/** Hashes files in parallel; null for one that cannot be read or is not a regular file. */
export const hashFiles = (paths: ReadonlyArray<string>): Promise<Array<string | null>> => runInWorkers(HASH, paths)
