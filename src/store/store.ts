import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileLock } from "../db/lock.js"
import { StoreError } from "../errors.js"

/**
 * Content-addressed store: file contents keyed by SHA-256, written once and
 * verified on the way in, so anything copied out of it is known-good.
 */
/** The mode of every store object. */
export const STORE_MODE = 0o644

// Temp names in a store shared by several roots' processes: the pid alone may
// repeat (pid namespaces of containers sharing one store).
const UNIQUE = `${process.pid}-${randomBytes(6).toString("hex")}`

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class ContentStore {
  private readonly objects: string
  private readonly tmp: string
  private seq = 0
  private readonly made = new Set<string>()

  constructor(readonly dir: string) {
    this.objects = path.join(dir, "objects")
    this.tmp = path.join(dir, "tmp")
  }

  pathOf(sha256: string): string {
    return path.join(this.objects, sha256.slice(0, 2), sha256.slice(2))
  }

  has(sha256: string): boolean {
    return fs.existsSync(this.pathOf(sha256))
  }

  private mkdir(dir: string) {
    if (this.made.has(dir)) return
    fs.mkdirSync(dir, { recursive: true })
    this.made.add(dir)
  }

  private tempFile(): string {
    this.mkdir(this.tmp)
    return path.join(this.tmp, `${UNIQUE}-${this.seq++}`)
  }

  /**
   * Runs `fetch` for an object the store lacks, one process at a time per
   * object (by one of 4096 lock files, named for the digest's first three hex
   * digits and never removed, so a lock is never split between two files): a
   * second process waits (without blocking its other downloads), then finds
   * the object there. So a download's `.part` has one writer, and what a
   * killed one left is resumed by the next. True when `fetch` ran.
   */
  async fetchOnce(sha256: string, fetch: () => Promise<void>): Promise<boolean> {
    if (this.has(sha256)) return false
    const locks = path.join(this.dir, "locks")
    this.mkdir(locks)
    const file = path.join(locks, sha256.slice(0, 3))
    let lock = fileLock(file, "exclusive", 0)
    while (!lock) {
      await sleep(20 + Math.random() * 30)
      lock = fileLock(file, "exclusive", 0)
    }
    try {
      if (this.has(sha256)) return false
      await fetch()
      return true
    } finally {
      lock.release()
    }
  }

  private commit(temp: string, sha256: string) {
    const target = this.pathOf(sha256)
    this.mkdir(path.dirname(target))
    // Objects are 0644 whatever the umask: copies staged from them then need
    // no chmod for the common mode (see reconcile/apply.ts).
    fs.chmodSync(temp, STORE_MODE)
    fs.renameSync(temp, target)
  }

  /** Stores bytes that must hash to `sha256`. */
  putBuffer(data: Uint8Array, sha256: string): void {
    if (this.has(sha256)) return
    const actual = createHash("sha256").update(data).digest("hex")
    if (actual !== sha256) throw new StoreError({ sha256, reason: `content hashes to ${actual}` })
    const temp = this.tempFile()
    fs.writeFileSync(temp, data)
    this.commit(temp, sha256)
  }

  /** Streams content into the store, hashing as it goes; refuses a mismatch. */
  async putStream(stream: AsyncIterable<unknown>, sha256: string): Promise<void> {
    const temp = this.tempFile()
    const hash = createHash("sha256")
    const fd = fs.openSync(temp, "w")
    try {
      for await (const chunk of stream) {
        const data = chunk as Buffer
        hash.update(data)
        // A nearly full disk takes part of a write without an error: write the rest (the next call fails with ENOSPC).
        for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off)
      }
    } catch (e) {
      fs.rmSync(temp, { force: true })
      throw e
    } finally {
      fs.closeSync(fd)
    }
    const actual = hash.digest("hex")
    if (actual !== sha256) {
      fs.rmSync(temp, { force: true })
      throw new StoreError({ sha256, reason: `content hashes to ${actual}` })
    }
    this.commit(temp, sha256)
  }

  /** Where a download of `sha256` accumulates, so an interrupted one can resume; written only inside fetchOnce. */
  partPath(sha256: string): string {
    this.mkdir(this.tmp)
    return path.join(this.tmp, `${sha256}.part`)
  }

  /** Moves a finished download into the store if it hashes to `sha256`; otherwise deletes it and throws. */
  async adopt(file: string, sha256: string): Promise<void> {
    const actual = await sha256OfFile(file)
    if (actual !== sha256) {
      fs.rmSync(file, { force: true })
      throw new StoreError({ sha256, reason: `content hashes to ${actual}` })
    }
    this.commit(file, sha256)
  }
}

/** sha256 of a file, streamed. */
export const sha256OfFile = async (file: string): Promise<string> => {
  const hash = createHash("sha256")
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest("hex")
}
