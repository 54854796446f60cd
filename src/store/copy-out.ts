import * as fs from "node:fs"
import { forEachInWorkers } from "../worker-pool.js"
import { DigestBuckets, type Digests } from "./digest-buckets.js"
import { type Tee, type TeeCopies, writeAll } from "./store.js"

// Copies contents out of the store into a root, hashing each as it is copied:
// a corrupt object is refused, never written on. The stat of each copy is
// taken from the descriptor that wrote it, so it describes exactly the bytes
// verified (the stat cache `verify` trusts).

export interface CopyJob extends StageTarget {
  /** store object and the content it must hash to */
  readonly from: string
  readonly sha256: string
}

export interface StageTarget extends Finish {
  /** where the copy goes: created there, never opened if anything is already there */
  readonly to: string
  /** the size its trove gives the content */
  readonly size: number
}

export type CopyResult =
  | { readonly ok: true; readonly ino: bigint; readonly mtimeNs: bigint; readonly ctimeNs: bigint }
  /** the object's first `size` bytes hash to `actual` */
  | { readonly ok: false; readonly actual: string }
  | { readonly ok: false; readonly error: { readonly code?: string; readonly syscall?: string; readonly message: string } }

/** What a staged copy is given once its bytes are verified. */
export interface Finish {
  readonly mode: number
  /** owner to give the copy; null leaves the creator's */
  readonly owner: { readonly uid: number; readonly gid: number } | null
  /** modification time to give the copy (seconds since the epoch); null leaves the time of the copy */
  readonly mtime: number | null
}

/**
 * Gives a copy whose bytes are verified its owner, mode and time, and takes
 * its stat from the descriptor that wrote it; chown and chmod only when the
 * created file differs (owner, setgid directory, umask, special bits),
 * futimes when the archive gave a time, the final fstat after all of them.
 * Self-contained (its own `fs`): the copy-out workers run its source text.
 */
function finishCopy(fs: typeof import("node:fs"), dst: number, job: Finish) {
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
  return { ok: true as const, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }
}

// Per file: two opens, a read and a write per MiB, one fstat, two closes, and finishCopy's calls.
const COPY = `
const fs = require("node:fs")
const { createHash } = require("node:crypto")
const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants
const buf = Buffer.allocUnsafe(1 << 20)
const finishCopy = ${finishCopy.toString()}
function wholeHash(fd) {
  const h = createHash("sha256")
  for (let at = 0, n; (n = fs.readSync(fd, buf, 0, buf.length, at)) > 0; at += n) h.update(buf.subarray(0, n))
  return h.digest("hex")
}
function run(job) {
  let src, dst
  try {
    src = fs.openSync(job.from, "r")
    dst = fs.openSync(job.to, O_WRONLY | O_CREAT | O_EXCL, job.mode & 0o777)
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
    if (left > 0 || actual !== job.sha256) {
      // A good object whose trove misstates its size is no corrupt object: it is kept, and the size refused.
      const whole = fs.fstatSync(src).size
      if (whole !== job.size && wholeHash(src) === job.sha256)
        return { ok: false, error: { message: "its content " + job.sha256.slice(0, 16) + " is " + whole + " bytes, not the " + job.size + " its trove says" } }
      if (actual !== job.sha256) return { ok: false, actual }
    }
    return finishCopy(fs, dst, job)
  } catch (e) {
    return { ok: false, error: { code: e.code, syscall: e.syscall, message: e.message } }
  } finally {
    if (src !== undefined) fs.closeSync(src)
    if (dst !== undefined) fs.closeSync(dst)
  }
}
`

/** Copies this few and this small take well under a second here: less than starting workers costs in memory (~10 MB each) at the end of a big apply. */
const HERE_COPIES = 8192
const HERE_BYTES = 32 * 2 ** 20

/**
 * Copies jobs 0..count-1 out of the store, verified, on every core: each job
 * made when its batch is sent, each result handed to `onResult` as its
 * batch returns (200,000 files never make 200,000 jobs at once). Few and
 * small (`bytes` in all) are copied on this thread.
 */
export const copyOutVerified = (
  count: number,
  bytes: number,
  job: (i: number) => CopyJob,
  onResult: (i: number, result: CopyResult) => void,
  onBatch?: (done: number) => void,
): Promise<void> => forEachInWorkers(COPY, count, job, onResult, onBatch, count <= HERE_COPIES && bytes <= HERE_BYTES)

/** The stat of a copy whose bytes were verified, from the descriptor that wrote them. */
export type CopiedStat = Extract<CopyResult, { ok: true }>

// O_EXCL: a stage path is only ever a new file apply creates. Whatever is
// already there (the admin's file, a symlink, a fifo, a device) fails the
// open (EEXIST) and is never truncated, followed, opened or blocked on.
const OPEN_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL

/** Stage paths waiting for a content, at most this many: the rest are copied out of the store. */
const WAITING_MAX = 8

/** Stage paths (by number) waiting for contents, as teeToStage takes them. */
export interface Waits {
  /** the paths waiting for `sha256`, no longer waiting */
  take(sha256: string): number[] | undefined
  /** paths taken whose copies failed: waiting again, for another source of the content */
  giveBack(sha256: string, list: ReadonlyArray<number>): void
}

/**
 * The stage paths (by number) waiting for each content the store lacks, for
 * teeToStage: found by their digests where the plan keeps them
 * (DigestBuckets). 200,000 paths take ~2 MB here; a table of their digests
 * took ~10 MB for the whole fetch.
 */
export class StageWaits implements Waits {
  private readonly waiting: DigestBuckets
  /** 1: waiting no longer (taken, or past WAITING_MAX of its content: copied out of the store after the fetch) */
  private readonly done: Uint8Array

  constructor(digests: Digests, paths: number, waiting: Iterable<number>) {
    this.waiting = new DigestBuckets(digests, waiting)
    this.done = new Uint8Array(paths)
  }

  take(sha256: string): number[] | undefined {
    let list: number[] | undefined
    this.waiting.find(sha256, (i) => {
      if (this.done[i] === 1) return
      this.done[i] = 1
      // A content's first WAITING_MAX paths; the rest wait no longer.
      if ((list ??= []).length < WAITING_MAX) list.push(i)
    })
    return list
  }

  giveBack(_sha256: string, list: ReadonlyArray<number>): void {
    for (const i of list) this.done[i] = 0
  }
}

/**
 * A Tee (store.ts) writing each content the store takes meanwhile to the
 * stage paths waiting for it, so a new content is written once as it is
 * read from its archive instead of stored and then copied out. A path
 * counts as written (`onWritten`, with the stat of the descriptor that
 * wrote it) only once its bytes hashed to their name. A content is claimed
 * by the first reader that brings it, and given back if its bytes prove
 * wrong. Whatever fails here is removed (each path it created, never one
 * it found taken: `onTaken`) and left unwritten, for the verified copy out
 * of the store that follows (which says what failed).
 */
export const teeToStage = (
  waits: Waits,
  target: (i: number) => StageTarget,
  onWritten: (i: number, stat: CopiedStat) => void,
  onTaken: (i: number) => void,
): Tee => ({
  open(sha256): TeeCopies | undefined {
    const list = waits.take(sha256)
    if (list === undefined) return undefined
    const copies: Array<{ i: number; fd: number; job: StageTarget; vouched: boolean }> = []
    // Closes every copy; removes those not vouched for, so the copy out of the store can create them anew.
    const close = () => {
      for (const { fd, job, vouched } of copies) {
        try {
          fs.closeSync(fd)
        } catch {
          // nothing written is lost: the copy is vouched for or redone
        }
        try {
          if (!vouched) fs.unlinkSync(job.to)
        } catch {
          // its directory went: the copy out of the store fails, and apply with it
        }
      }
      copies.length = 0
    }
    let broken = false
    let bytes = 0
    try {
      for (const i of list) {
        const job = target(i)
        copies.push({ i, fd: fs.openSync(job.to, OPEN_FLAGS, job.mode & 0o777), job, vouched: false })
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") onTaken(list[copies.length]!)
      close()
      return undefined
    }
    return {
      write(data) {
        if (broken) return
        try {
          for (const { fd } of copies) writeAll(fd, data)
          bytes += data.length
        } catch {
          broken = true
        }
      },
      verified() {
        if (!broken)
          for (const copy of copies) {
            // A size the trove misstates: left for the copy out of the store, which refuses it.
            if (bytes !== copy.job.size) continue
            try {
              onWritten(copy.i, finishCopy(fs, copy.fd, copy.job))
              copy.vouched = true
            } catch {
              // left for the copy out of the store
            }
          }
        close()
      },
      failed() {
        close()
        // Another archive of the same content may bring it yet.
        waits.giveBack(sha256, list)
      },
    }
  },
})

/**
 * Writes an empty content to its stage path: created empty, it holds
 * exactly the bytes its digest names, with no store object read (and no
 * worker started for the many empty files a tree has).
 */
export const writeEmpty = (job: StageTarget): CopiedStat => {
  const fd = fs.openSync(job.to, OPEN_FLAGS, job.mode & 0o777)
  try {
    return finishCopy(fs, fd, job)
  } finally {
    fs.closeSync(fd)
  }
}
