import type { Hash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { childProcess, nodeCrypto } from "../builtin.js"
import { fileLock } from "../db/lock.js"
import { ApplyError, IoError, StoreError, describeIo } from "../errors.js"
import { isDigest, sha256Of } from "../sha256.js"
import { DigestSet } from "./digest-set.js"

/**
 * Content-addressed store: file contents keyed by SHA-256, written once and
 * verified on the way in, so anything copied out of it is known-good.
 */
/** The mode of every store object. */
export const STORE_MODE = 0o644

// Temp names in a store shared by several roots' processes: the pid alone may
// repeat (pid namespaces of containers sharing one store).
let unique: string | undefined
const uniqueName = () => (unique ??= `${process.pid}-${nodeCrypto().randomBytes(6).toString("hex")}`)
/** Numbers temp names: one sequence for every store of this thread (apply's fetch gives its lane a store of its own). */
let seq = 0

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// Store objects get their mode when created; a chmod is needed only under a
// umask that takes bits of it away.
const chmodNeeded = () => (STORE_MODE & process.umask()) !== 0

/** Contents stored outside a ContentStore's index (see ContentStore.knowsToo). */
export interface StoredElsewhere {
  has(sha256: string): boolean
  delete(sha256: string): void
}

export class ContentStore {
  private readonly objects: string
  private readonly tmp: string
  private readonly made = new Set<string>()
  /** the objects of the fan-out directories read so far (each read once: one readdir, not one probe per lookup) */
  private readonly index = new DigestSet()
  private readonly listed = new Set<string>()
  private storedElsewhere: StoredElsewhere | undefined
  private chmod: boolean | undefined

  /**
   * `remembers` false: a store for a caller that knows what the store lacks
   * (apply's fetch lanes: the main thread looked). It lists nothing,
   * answers no to `has`, and keeps no index of what it adds: a worker would
   * otherwise read the whole store again and hold its own copy of the index.
   */
  constructor(
    readonly dir: string,
    private readonly remembers = true,
  ) {
    this.objects = path.join(dir, "objects")
    this.tmp = path.join(dir, "tmp")
  }

  pathOf(sha256: string): string {
    return `${this.objects}/${sha256.slice(0, 2)}/${sha256.slice(2)}`
  }

  /** The fan-out directory an object goes in. */
  private dirOf(sha256: string): string {
    return `${this.objects}/${sha256.slice(0, 2)}`
  }

  /**
   * Whether the store holds a content. Each fan-out directory is listed once
   * and kept in memory, updated as this process adds and removes objects (an
   * object another process adds meanwhile is at worst stored again).
   */
  has(sha256: string): boolean {
    // Only a digest names an object: nothing else is looked up on disk.
    if (!this.remembers || !isDigest(sha256)) return false
    const prefix = sha256.slice(0, 2)
    if (!this.listed.has(prefix)) {
      try {
        // A name that is no digest (another tool's file) is not taken for an object.
        for (const name of fs.readdirSync(path.join(this.objects, prefix))) this.index.add(prefix + name)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
      }
      this.listed.add(prefix)
    }
    return this.index.has(sha256) || (this.storedElsewhere?.has(sha256) ?? false)
  }

  /**
   * From now on, `has` knows the contents `stored` holds too: objects stored
   * by other stores of this process, which keep no index (apply's fetch
   * lanes: see reconcile/fetch-local.ts).
   */
  knowsToo(stored: StoredElsewhere): void {
    this.storedElsewhere = stored
  }

  /** Deletes an object (a corrupt one: its source gives it again). */
  remove(sha256: string): void {
    fs.rmSync(this.pathOf(sha256), { force: true })
    this.index.delete(sha256)
    this.storedElsewhere?.delete(sha256)
  }

  private mkdir(dir: string) {
    if (this.made.has(dir)) return
    fs.mkdirSync(dir, { recursive: true })
    this.made.add(dir)
  }

  /**
   * A temp file's name: beside the object when its digest is known, so the
   * rename into place locks one directory (threads and processes writing
   * into one tmp/ wait on its lock for every create and rename); in tmp/
   * otherwise. Names starting with a dot are never objects (gc removes them).
   */
  private tempFile(sha256?: string): string {
    if (sha256 === undefined) {
      this.mkdir(this.tmp)
      return path.join(this.tmp, `${uniqueName()}-${seq++}`)
    }
    const dir = this.dirOf(sha256)
    this.mkdir(dir)
    return `${dir}/.${uniqueName()}-${seq++}.tmp`
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
      // Asked of the disk, not this process's listing: another process may have fetched it meanwhile.
      if (fs.existsSync(this.pathOf(sha256))) {
        this.index.add(sha256)
        return false
      }
      await fetch()
      return true
    } finally {
      lock.release()
    }
  }

  /** `created`: the temp file was created with STORE_MODE (else its mode is set here) */
  private commit(temp: string, sha256: string, created = true) {
    this.mkdir(this.dirOf(sha256))
    // Objects are 0644 whatever the umask: copies staged from them then need
    // no chmod for the common mode (see reconcile/apply.ts).
    if (!created || (this.chmod ??= chmodNeeded())) fs.chmodSync(temp, STORE_MODE)
    fs.renameSync(temp, this.pathOf(sha256))
    if (this.remembers) this.index.add(sha256)
  }

  /** Stores bytes that must hash to `sha256`. */
  putBuffer(data: Uint8Array, sha256: string): void {
    if (this.has(sha256)) return
    const actual = sha256Of(data)
    if (actual !== sha256) throw new StoreError({ sha256, reason: `content hashes to ${actual}` })
    const temp = this.tempFile(sha256)
    fs.writeFileSync(temp, data, { mode: STORE_MODE })
    this.commit(temp, sha256)
  }

  /** While set, putStream also writes each content to the files this gives (see Tee). */
  tee: Tee | undefined

  /** Streams content into the store, hashing as it goes; refuses a mismatch. */
  putStream(stream: AsyncIterable<unknown>, sha256: string): Promise<void> {
    return pour(stream, this.incoming(sha256))
  }

  /**
   * Takes a content that must hash to `sha256`, piece by piece, here and now
   * (a reader without streams calls it: see source/native.ts): written to a
   * temp file beside the object and to the tee's copies, filed only once it
   * hashes right. `size`: how many bytes it has, when the caller knows.
   */
  incoming(sha256: string, size?: number): Incoming {
    const temp = this.tempFile(sha256)
    // A content that comes in one piece (most, from a tar read here) is hashed in one call; others as they come.
    let hash: Hash | undefined
    let whole: string | undefined
    const fd = fs.openSync(temp, "w", STORE_MODE)
    const copies = this.tee?.open(sha256)
    let open = true
    const close = () => {
      if (open) fs.closeSync(fd)
      open = false
    }
    const abort = () => {
      try {
        close()
      } finally {
        fs.rmSync(temp, { force: true })
        copies?.failed()
      }
    }
    return {
      write: (data) => {
        if (whole !== undefined) throw new StoreError({ sha256, reason: `more than its ${size} bytes` })
        if (hash === undefined && data.length === size) whole = sha256Of(data)
        else (hash ??= nodeCrypto().createHash("sha256")).update(data)
        writeAll(fd, data)
        copies?.write(data)
      },
      finish: () => {
        close()
        const actual = whole ?? (hash ?? nodeCrypto().createHash("sha256")).digest("hex")
        if (actual !== sha256) {
          abort()
          throw new StoreError({ sha256, reason: `content hashes to ${actual}` })
        }
        copies?.verified()
        this.commit(temp, sha256)
      },
      abort,
    }
  }

  /**
   * Takes a content whose sha256 the caller computes over the same bytes as
   * it writes them (a package payload hashed at sync). Best effort: the store
   * is then a cache, and content it failed to write (a full disk) is read
   * from the archive again when needed. Small contents are held in memory
   * and written only when the store lacks them; larger ones spill to a temp file.
   */
  writer(): StoreWriter {
    let chunks: Uint8Array[] = []
    let held = 0
    let temp: string | undefined
    let fd: number | undefined
    let failed = false
    const drop = () => {
      try {
        if (fd !== undefined) fs.closeSync(fd)
        if (temp !== undefined) fs.rmSync(temp, { force: true })
      } catch {
        // left in tmp/, which gc empties
      }
      fd = temp = undefined
      chunks = []
    }
    const attempt = (f: () => void) => {
      if (failed) return
      try {
        f()
      } catch {
        failed = true
        drop()
      }
    }
    return {
      write: (data) =>
        attempt(() => {
          if (fd === undefined && held + data.length <= WRITER_MEMORY) {
            chunks.push(data)
            held += data.length
            return
          }
          if (fd === undefined) {
            temp = this.tempFile()
            fd = fs.openSync(temp, "w", STORE_MODE)
            for (const c of chunks) writeAll(fd, c)
            chunks = []
          }
          writeAll(fd, data)
        }),
      keep: (sha256) =>
        attempt(() => {
          if (this.has(sha256)) return drop()
          if (fd === undefined) {
            temp = this.tempFile(sha256)
            fs.writeFileSync(temp, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), { mode: STORE_MODE })
          } else {
            fs.closeSync(fd)
            fd = undefined
          }
          this.commit(temp!, sha256)
          temp = undefined
          chunks = []
        }),
      drop,
    }
  }

  /** Makes the store's writes durable (one syncfs of its filesystem). */
  sync(): void {
    if (!fs.existsSync(this.dir)) return
    try {
      childProcess().execFileSync("sync", ["-f", this.dir], { stdio: ["ignore", "ignore", "pipe"] })
    } catch (e) {
      const why = (e as { stderr?: Buffer }).stderr?.toString().trim().split("\n")[0]
      throw new IoError({ path: this.dir, reason: `cannot sync the content store to disk (${why || (e as Error).message})` })
    }
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
    this.commit(file, sha256, false)
  }
}

/**
 * Starts writing what is being written under `dir` out to disk meanwhile: a
 * `sync -f` of its filesystem in the background every quarter of a second,
 * one at a time, so that the syncfs at the end (which alone vouches for
 * anything) finds little left to write: for the 45 debs of bench/debs.ts on a
 * busy shared disk, 0.03 s against 0.45 to 2 s at the end of sync. One shell
 * runs them all: a spawn from here forks this whole process, and blocks the
 * thread that is decoding archives meanwhile. The shell stops with this
 * process, if its stop is never called. A background sync that fails is left
 * to that last one to report. Returns its stop.
 */
export const writeBehind = (dir: string): (() => void) => {
  const loop = 'while sleep 0.25 && kill -0 "$PPID" 2>/dev/null; do sync -f "$0"; done'
  const child = childProcess().spawn("sh", ["-c", loop, dir], { stdio: "ignore" })
  child.on("error", () => undefined)
  child.unref()
  return () => {
    child.kill()
  }
}

/**
 * What failed while a content fetched from an archive was stored: a full,
 * read-only or forbidden store is not the archive's fault (another source of
 * it would fail alike), so apply stops naming the store; anything else is as it was.
 */
export const storeFailure = (e: unknown): unknown => {
  const code = (e as NodeJS.ErrnoException).code
  return code === "ENOSPC" || code === "EDQUOT" || code === "EROFS" || code === "EACCES" ? new ApplyError({ path: "content store", reason: describeIo(e) }) : e
}

/** Writes all of `data`: a nearly full disk takes part of a write without an error (the next call fails with ENOSPC). */
export const writeAll = (fd: number, data: Uint8Array): void => {
  for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off)
}

/**
 * Other files a content is written to while putStream stores it (apply's
 * stage paths: each new content is then written once as it is read from its
 * archive, not stored and later copied out of the store). A copy is
 * vouched for only through `verified`, called once its bytes hashed to
 * their name. A tee never throws: what it fails to write is left to whoever
 * would have written it without one.
 */
export interface Tee {
  /** the copies to write `sha256`'s bytes to as well; undefined: none */
  open(sha256: string): TeeCopies | undefined
}

export interface TeeCopies {
  write(data: Uint8Array): void
  /** the bytes written hash to their name */
  verified(): void
  /** they did not, or reading them failed: the copies hold nothing anyone vouches for */
  failed(): void
}

/** Where bytes read piece by piece go: each call here and now. */
export interface Sink<P extends Uint8Array = Uint8Array> {
  /** a piece of the bytes (when this throws, the caller aborts) */
  write(data: P): void
  /** all of them came */
  finish(): void
  /** forgets what was written (reading failed) */
  abort(): void
}

/** Pours a stream's pieces into `sink`: finished when the stream ends, aborted (the error thrown on) when reading or writing fails. */
export const pour = async <P extends Uint8Array>(stream: AsyncIterable<unknown>, sink: Sink<P>): Promise<void> => {
  try {
    for await (const chunk of stream) sink.write(chunk as P)
  } catch (e) {
    sink.abort()
    throw e
  }
  sink.finish()
}

/** A content on its way into the store (ContentStore.incoming): `finish` files it, or throws StoreError (having removed what was written) when the bytes hash otherwise. */
export type Incoming = Sink

/** Content written into the store by a caller that hashes it (ContentStore.writer). */
export interface StoreWriter {
  write(data: Uint8Array): void
  /** files what was written under `sha256`, computed by the caller over exactly those bytes */
  keep(sha256: string): void
  /** forgets what was written and not kept (a no-op after keep) */
  drop(): void
}

/** Contents up to this size are held in memory by a writer, and written only if the store lacks them. */
const WRITER_MEMORY = 1 << 20

/** sha256 of a file, streamed. */
export const sha256OfFile = async (file: string): Promise<string> => {
  const hash = nodeCrypto().createHash("sha256")
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest("hex")
}
