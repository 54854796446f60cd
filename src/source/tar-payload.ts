import { type Hash, createHash } from "node:crypto"
import * as fs from "node:fs"
import type { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as tar from "tar-stream"
import { ApplyError, ArchiveError, StoreError, describeIo } from "../errors.js"
import { type TroveFile, componentOf } from "../model/trove.js"
import { type ContentStore, type Sink, type StoreWriter, pour, storeFailure } from "../store/store.js"
import { BombError, bombError, bound, decompressorFor, immediateDecoderFor } from "./decompress.js"
import { rootedPath } from "./rooted-path.js"
import { TarReader } from "./tar-reader.js"
import { strictUtf8 } from "./utf8.js"

// The tar payload of a package (a .deb's data.tar, an Arch package), read as
// a stream through its decompressor and a bomb bound (or, for sync's
// xz and plain data.tar, here and now: readTarMember): every entry checked
// (path, type, links) and hashed into a TroveFile. Formats differ only in
// where the tar is and what its metadata says.

/** One entry of a tar being read: its header, and its data as a stream. */
export type TarEntry = AsyncIterable<unknown> & { readonly header: tar.Header; resume(): unknown }

/** Streams a tar (compressed as `name` says) through its decompressor and a bomb bound, entry by entry. */
export const tarEntries = (archive: string, source: Readable, name: string, limit: number) => {
  const decompress = decompressorFor(name)
  if (!decompress) {
    source.destroy()
    throw new ArchiveError({ archive, reason: `uses unknown compression for member '${name}'` })
  }
  // Names as raw bytes (latin1), so entryName can tell UTF-8 from anything else.
  const extract = tar.extract({ filenameEncoding: "latin1" } as Parameters<typeof tar.extract>[0])
  const done = pipeline(source, decompress, bound(limit), extract)
  done.catch(() => undefined)
  return { extract, done }
}

// How each decompressor says its input stopped early: zlib, liblzma (LZMA_BUF_ERROR), fzstd, bzip2, tar-stream.
const CUT_SHORT = /unexpected end|premature|truncated|Z_BUF_ERROR|No progress is possible|unexpected EOF/i

/** Rethrows a failure while reading an archive as one ArchiveError line (or the store's failure as it is: see storeFailure). */
export const archiveFailure = (archive: string, e: unknown): never => {
  if (e instanceof ArchiveError || e instanceof ApplyError) throw e
  if (e instanceof BombError) throw new ArchiveError({ archive, reason: e.message })
  // A system call's failure (the archive gone since sync) is said as one, the path not repeated.
  const text = (e as NodeJS.ErrnoException).syscall ? describeIo(e) : ((e as Error).message ?? String(e))
  throw new ArchiveError({
    archive,
    reason: CUT_SHORT.test(text) || (e as NodeJS.ErrnoException).code === "Z_BUF_ERROR" ? "truncated archive (its compressed data ends early)" : text,
  })
}

export const readAll = async (stream: AsyncIterable<unknown>): Promise<Buffer> => {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

export const normalizeEntry = (name: string) => name.replace(/^\.\//, "").replace(/\/$/, "")

/** Control characters and non-ASCII bytes as \xNN, for a name quoted in an error. */
export const escapeName = (name: string) => name.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)

/** Bytes (as latin1 text) decoded as UTF-8, or undefined when they are not UTF-8. */
export const utf8OfBytes = (bytes: string): string | undefined => {
  try {
    const text = strictUtf8.decode(Buffer.from(bytes, "latin1"))
    return text.includes("\uFFFD") ? undefined : text
  } catch {
    return undefined
  }
}

/**
 * A tar entry's name (or link name) as text. Names that are not UTF-8 are
 * refused: paths are stored and compared as text, and installing a different
 * name than the package's would be worse than not installing it.
 */
const entryName = (archive: string, name: string, fromPax: boolean): string =>
  // A pax header was decoded as UTF-8 already; ustar and GNU names are bytes.
  utf8Name(archive, name, fromPax ? (name.includes("\uFFFD") ? undefined : name) : utf8OfBytes(name))

/** A name's bytes (as latin1 text) as UTF-8 text (`decoded`, when the caller decoded it already); refused when they are not UTF-8. */
export const utf8Name = (archive: string, bytes: string, decoded = utf8OfBytes(bytes)): string => {
  if (decoded === undefined)
    throw new ArchiveError({ archive, reason: `file name '${escapeName(bytes)}' is not UTF-8 (conary refuses such names rather than install a different one)` })
  return decoded
}

/**
 * A member's name (`./usr/bin/x`, as a tar or cpio archive spells it) as a
 * path in the root (`/usr/bin/x`); undefined for the archive's root itself.
 * Absolute names and `..` are refused: nothing is installed outside the root.
 */
export const memberPath = (archive: string, name: string): string | undefined => {
  const raw = normalizeEntry(name)
  if (raw === "" || raw === ".") return undefined
  const p = rootedPath(raw)
  if (p === undefined || name.startsWith("/")) throw new ArchiveError({ archive, reason: `unsafe path '${name}' (absolute or with '..')` })
  return p
}

/** An entry's name and link name, decoded. */
export const namesOf = (archive: string, h: tar.Header) => {
  const pax = (h.pax ?? {}) as { path?: string; linkpath?: string }
  return {
    name: entryName(archive, h.name, pax.path !== undefined),
    linkname: h.linkname == null ? undefined : entryName(archive, h.linkname, pax.linkpath !== undefined),
  }
}

/**
 * Takes a tar's entries one by one: each by its header (`names` decoded), and
 * when `begin` says its data is wanted, that data piece by piece, then
 * `finish` (or `abort`, when reading it failed). readTarMember feeds one
 * here and now; feedEntry feeds it an entry read as a stream.
 */
export interface EntrySink extends Sink<Buffer> {
  begin(h: tar.Header, names: { name: string; linkname: string | undefined }): boolean
}

/** Feeds one entry of a streamed tar (its data too) to `sink`. */
export const feedEntry = async (sink: EntrySink, entry: TarEntry, names: { name: string; linkname: string | undefined }): Promise<void> => {
  if (!sink.begin(entry.header, names)) {
    entry.resume()
    return
  }
  return pour(entry, sink)
}

/**
 * The files of a payload, entry by entry, each checked as dpkg checks them:
 * a safe path given once, never written through a symlink of the package, a
 * hard link only to an earlier file of it, no devices or fifos. Files come
 * out with `config: false`; the format marks its config files.
 */
export class PayloadFiles implements EntrySink {
  readonly files: TroveFile[] = []
  readonly byPath = new Map<string, TroveFile>()
  private readonly symlinks = new Set<string>()
  /** the bytes of the regular file at `keep.path`, when it has at most `keep.limit` of them */
  kept: Buffer | undefined

  /**
   * `keep`: one file the format also wants to read (a .deb's copyright file, for its licence), bounded;
   * `store`: where to put every content as it is hashed, so apply need not decompress the payload again
   */
  constructor(
    private readonly archive: string,
    private readonly keep?: { readonly path: string; readonly limit: number },
    private readonly store?: ContentStore,
  ) {}

  private refuse(reason: string): never {
    throw new ArchiveError({ archive: this.archive, reason })
  }

  /** the regular file whose data is being read: its metadata, hash, size, and the copies made of it */
  private current:
    | { readonly common: Omit<TroveFile, "kind" | "sha256" | "size" | "target">; readonly hash: Hash; size: number; keep: Buffer[] | undefined; readonly stored: StoreWriter | undefined }
    | undefined

  /**
   * Takes an entry by its header (`name` as the archive spells it; an empty
   * or `.` entry is skipped). A regular file's data is then wanted: whether
   * it is. It goes to `write` piece by piece, then `finish` records the
   * file (or `abort` forgets it, after a failure). Anything else is
   * recorded here, and any data it has is not wanted.
   */
  begin(h: tar.Header, names: { name: string; linkname: string | undefined }): boolean {
    const p = memberPath(this.archive, names.name)
    if (p === undefined) return false
    if (this.byPath.has(p)) this.refuse(`${p} appears twice`)
    for (let i = p.lastIndexOf("/"); i > 0; i = p.lastIndexOf("/", i - 1)) {
      if (this.symlinks.has(p.slice(0, i))) this.refuse(`${p} would be written through the symlink ${p.slice(0, i)}`)
    }
    const common = {
      path: p,
      mode: h.mode & 0o7777,
      // name:id: the name is looked up in the target root, the package's id is the fallback
      owner: h.uname ? `${h.uname}:${h.uid}` : String(h.uid),
      group: h.gname ? `${h.gname}:${h.gid}` : String(h.gid),
      config: false,
      component: componentOf(p),
      ...(h.mtime ? { mtime: Math.trunc(h.mtime.getTime() / 1000) } : {}),
    }
    if (h.type === "directory") this.record({ ...common, kind: "dir", sha256: null, size: 0, target: null })
    else if (h.type === "symlink") {
      this.record({ ...common, kind: "symlink", mode: 0o777, sha256: null, size: 0, target: names.linkname ?? "" })
      this.symlinks.add(p)
    } else if (h.type === "link") {
      // A hard link must name a regular file earlier in this package.
      const target = rootedPath(normalizeEntry(names.linkname ?? ""))
      const original = target === undefined ? undefined : this.byPath.get(target)
      if (!original || original.kind !== "file") this.refuse(`${p} is a hard link to ${names.linkname}, which is not a file in this package`)
      // One inode: the link has the original's content, mode and owner.
      const { mode, owner, group, sha256, size } = original
      this.record({ ...common, kind: "file", mode, owner, group, sha256, size, target: null, hardlink: original.hardlink ?? original.path })
    } else if (h.type === "file" || h.type === "contiguous-file") {
      this.current = { common, hash: createHash("sha256"), size: 0, keep: p === this.keep?.path ? [] : undefined, stored: this.store?.writer() }
      return true
    } else {
      this.refuse(`${p} is a ${h.type} (device nodes and fifos are not installed)`)
    }
    return false
  }

  /** A piece of the current file's data. */
  write(piece: Buffer): void {
    const f = this.current!
    f.hash.update(piece)
    f.stored?.write(piece)
    f.size += piece.length
    if (f.keep && f.size <= this.keep!.limit) f.keep.push(piece)
  }

  /** The current file's data is all there: it is recorded (and stored). */
  finish(): void {
    const { common, hash, size, keep, stored } = this.current!
    this.current = undefined
    const sha256 = hash.digest("hex")
    try {
      stored?.keep(sha256)
    } finally {
      stored?.drop()
    }
    if (keep && size <= this.keep!.limit) this.kept = Buffer.concat(keep)
    this.record({ ...common, kind: "file", sha256, size, target: null })
  }

  /** Forgets the current file (its data could not be read). */
  abort(): void {
    this.current?.stored?.drop()
    this.current = undefined
  }

  private record(file: TroveFile): void {
    this.byPath.set(file.path, file)
    this.files.push(file)
  }
}

/** Compressed bytes read at a time by readTarMember, between which other work on its thread goes on. */
const MEMBER_READ = 64 * 1024

/**
 * Reads a tar member of `archive` (`size` bytes at `offset`, compressed as
 * its `name` says) into `payload` here and now, without streams, when its
 * compression decodes on this thread (see immediateDecoderFor); false when
 * it does not, for the caller to stream it (tarEntries). What it decodes is
 * bounded by `limit`, as tarEntries bounds it. Between reads it lets the
 * event loop run (a sync's worker replies are answered meanwhile).
 */
export const readTarMember = async (
  archive: string,
  member: { readonly name: string; readonly offset: number; readonly size: number },
  limit: number,
  payload: EntrySink,
): Promise<boolean> => {
  const decode = immediateDecoderFor(member.name)
  if (!decode) return false
  let wanted = false
  const reader = new TarReader({
    entry: (header) => {
      wanted = payload.begin(header, namesOf(archive, header))
    },
    data: (piece) => {
      if (wanted) payload.write(piece)
    },
    end: () => {
      if (wanted) payload.finish()
      wanted = false
    },
  })
  let decoded = 0
  const out = (piece: Buffer) => {
    if ((decoded += piece.length) > limit) throw bombError(limit)
    reader.push(piece)
  }
  const fd = fs.openSync(archive, "r")
  try {
    for (let at = 0; at < member.size; ) {
      // A buffer of its own each time: what the payload keeps (small contents, held until stored) may be pieces of it.
      const chunk = Buffer.allocUnsafe(Math.min(MEMBER_READ, member.size - at))
      const n = fs.readSync(fd, chunk, 0, chunk.length, member.offset + at)
      if (n === 0) throw new Error("unexpected end of file (the archive was cut short while being read)")
      at += n
      decode(chunk.subarray(0, n), out)
      await new Promise((resolve) => setImmediate(resolve))
    }
    decode(null, out)
    reader.end()
  } catch (e) {
    payload.abort()
    throw e
  } finally {
    fs.closeSync(fd)
  }
  return true
}

/**
 * Streams the wanted contents (by path, each with its expected sha256) of a
 * payload into the store; `open` starts reading the payload's tar.
 */
export const extractByPath = async (
  archive: string,
  open: () => ReturnType<typeof tarEntries>,
  wanted: ReadonlyMap<string, string>,
  store: ContentStore,
): Promise<void> => {
  const pending = new Set([...wanted.values()].filter((sha) => !store.has(sha)))
  if (pending.size === 0) return
  try {
    const { extract } = open()
    for await (const entry of extract) {
      const p = rootedPath(normalizeEntry(namesOf(archive, entry.header).name))
      const sha = p === undefined ? undefined : wanted.get(p)
      if (sha !== undefined && entry.header.type === "file" && pending.has(sha)) {
        try {
          await store.putStream(entry, sha)
        } catch (e) {
          if (e instanceof StoreError) throw new ArchiveError({ archive, reason: `content of ${p} does not match its sha256 (changed since sync?)` })
          throw storeFailure(e)
        }
        pending.delete(sha)
        if (pending.size === 0) break
      } else entry.resume()
    }
  } catch (e) {
    archiveFailure(archive, e)
  }
  if (pending.size > 0) throw new ArchiveError({ archive, reason: "lacks some content it listed at sync" })
}

/** The wanted contents of a trove's files, by path (package payloads name contents by path, not by hash). */
export const wantedByPath = (files: ReadonlyArray<TroveFile>, wanted: ReadonlySet<string>): Map<string, string> => {
  const byPath = new Map<string, string>()
  for (const f of files) if (f.sha256 !== null && wanted.has(f.sha256)) byPath.set(f.path, f.sha256)
  return byPath
}
