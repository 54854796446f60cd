import { forEachInWorkers } from "../worker-pool.js"

// Copies contents out of the store into a root, hashing each as it is copied:
// a corrupt object is refused, never written on. The stat of each copy is
// taken from the descriptor that wrote it, so it describes exactly the bytes
// verified (the stat cache `verify` trusts).

export interface CopyJob {
  /** store object and the content it must hash to */
  readonly from: string
  readonly sha256: string
  readonly size: number
  /** where the copy goes (created, or truncated; never through a symlink) */
  readonly to: string
  readonly mode: number
  /** owner to give the copy; null leaves the creator's */
  readonly owner: { readonly uid: number; readonly gid: number } | null
  /** modification time to give the copy (seconds since the epoch); null leaves the time of the copy */
  readonly mtime: number | null
}

export type CopyResult =
  | { readonly ok: true; readonly ino: bigint; readonly mtimeNs: bigint; readonly ctimeNs: bigint }
  /** the object's first `size` bytes hash to `actual` */
  | { readonly ok: false; readonly actual: string }
  | { readonly ok: false; readonly error: { readonly code?: string; readonly syscall?: string; readonly message: string } }

// Per file: two opens, a read and a write per MiB, one fstat, two closes;
// chown and chmod only when the created file differs (owner, setgid
// directory, umask, special bits), futimes when the archive gave a time; the
// final fstat comes after all of them.
const COPY = `
const fs = require("node:fs")
const { createHash } = require("node:crypto")
const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants
const buf = Buffer.allocUnsafe(1 << 20)
function run(job) {
  let src, dst
  try {
    src = fs.openSync(job.from, "r")
    dst = fs.openSync(job.to, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, job.mode & 0o777)
    const h = createHash("sha256")
    let left = job.size
    while (left > 0) {
      const n = fs.readSync(src, buf, 0, Math.min(buf.length, left), null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
      for (let off = 0; off < n; ) off += fs.writeSync(dst, buf, off, n - off)
      left -= n
    }
    const actual = h.digest("hex")
    if (actual !== job.sha256) return { ok: false, actual }
    let st = fs.fstatSync(dst, { bigint: true })
    let changed = false
    // Owner before mode: chown clears setuid and setgid bits.
    if (job.owner && (Number(st.uid) !== job.owner.uid || Number(st.gid) !== job.owner.gid)) {
      fs.fchownSync(dst, job.owner.uid, job.owner.gid)
      changed = true
    }
    if (changed || Number(st.mode & 0o7777n) !== job.mode) {
      fs.fchmodSync(dst, job.mode)
      changed = true
    }
    if (job.mtime !== null) {
      fs.futimesSync(dst, job.mtime, job.mtime)
      changed = true
    }
    if (changed) st = fs.fstatSync(dst, { bigint: true })
    return { ok: true, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }
  } catch (e) {
    return { ok: false, error: { code: e.code, syscall: e.syscall, message: e.message } }
  } finally {
    if (src !== undefined) fs.closeSync(src)
    if (dst !== undefined) fs.closeSync(dst)
  }
}
`

/**
 * Copies jobs 0..count-1 out of the store, verified, on every core: each job
 * made when its batch is sent, each result handed to `onResult` as its
 * batch returns (200,000 files never make 200,000 jobs at once).
 */
export const copyOutVerified = (
  count: number,
  job: (i: number) => CopyJob,
  onResult: (i: number, result: CopyResult) => void,
  onBatch?: (done: number) => void,
): Promise<void> => forEachInWorkers(COPY, count, job, onResult, onBatch)
