import { createHash } from "node:crypto"
import { pipeline } from "node:stream/promises"
import * as tar from "tar-stream"
import { debianArchFlavor } from "../desired/flavor.js"
import { debianVersionProblem } from "../desired/version.js"
import { ArchiveError, StoreError } from "../errors.js"
import { type ContentStore, sha256OfFile } from "../store/store.js"
import { type ArMember, memberStream, readArMembers } from "./ar.js"
import { BombError, bound, decompressorFor, unpackLimit } from "./decompress.js"
import { rootedPath } from "./native.js"
import { type TroveFile, componentOf } from "../model/trove.js"
import type { PackageFormat } from "./package-format.js"

// A .deb as dpkg sees it: ar(debian-binary, control.tar.*, data.tar.*), read
// as streams with bounded memory. Indexing reads control and data once (data
// to hash every file); apply streams data again for the contents it lacks.

export const DEB_EXTENSION = ".deb"

export interface DebTrove {
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly requires: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
  readonly conflicts: ReadonlyArray<string>
  readonly breaks: ReadonlyArray<string>
  readonly replaces: ReadonlyArray<string>
  readonly files: ReadonlyArray<TroveFile>
  readonly scripts: Readonly<Record<string, string>>
  /** sha256 of the .deb itself: the trove's identity */
  readonly digest: string
}

const CONTROL_MEMBERS = ["control.tar", "control.tar.gz", "control.tar.xz", "control.tar.zst"]
const SCRIPTS = ["preinst", "postinst", "prerm", "postrm", "config", "triggers"]
const MAX_CONTROL = 64 * 1024 * 1024

/** Fields of a control file paragraph; continuation lines are joined. A field given twice is refused, as dpkg does. */
export const parseControl = (text: string): Map<string, string> => {
  const fields = new Map<string, string>()
  let key: string | undefined
  for (const line of text.split("\n")) {
    if (line === "") continue
    if ((line.startsWith(" ") || line.startsWith("\t")) && key) fields.set(key, `${fields.get(key)}\n${line.trim()}`)
    else {
      const i = line.indexOf(":")
      if (i <= 0) continue
      const name = line.slice(0, i).trim()
      key = name.toLowerCase()
      if (fields.has(key)) throw new Error(`duplicate value for '${name}' field`)
      fields.set(key, line.slice(i + 1).trim())
    }
  }
  return fields
}

/**
 * The conffiles list as dpkg reads it (src/main/unpack.c): one absolute path
 * a line, optionally after the flag `remove-on-upgrade` (an obsolete conffile,
 * not shipped). Returns the paths the package must ship.
 */
export const parseConffiles = (text: string): string[] => {
  if (text !== "" && !text.endsWith("\n")) throw new Error(`conffile name '${text.slice(text.lastIndexOf("\n") + 1)}' is too long, or missing final newline`)
  const shipped: string[] = []
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd()
    if (line === "") continue
    const space = line.indexOf(" ")
    const flag = space < 0 ? undefined : line.slice(0, space)
    const name = space < 0 ? line : line.slice(space + 1)
    if (flag !== undefined && flag !== "remove-on-upgrade") throw new Error(`unknown flag '${flag}' for conffile '${name}'`)
    if (!name.startsWith("/")) throw new Error(`conffile name '${name}' is not an absolute pathname`)
    if (flag === undefined) shipped.push(name)
  }
  return shipped
}

/** `libc6 (>= 2.34), libjq1:any (= 1.6) | libfoo` -> one entry per comma group, architecture qualifiers dropped. */
export const parseRelations = (field: string | undefined): string[] =>
  (field ?? "")
    .split(",")
    .map((group) =>
      group
        .split("|")
        .map((alt) => alt.trim().replace(/^([^\s:(]+):[a-z0-9-]+/, "$1").replace(/\s*\[[^\]]*\]|\s*<[^>]*>/g, "").replace(/\s+/g, " "))
        .filter((alt) => alt !== "")
        .join(" | "),
    )
    .filter((g) => g !== "")

const member = (members: ReadonlyArray<ArMember>, prefix: string) => members.find((m) => m.name === prefix || m.name.startsWith(prefix + "."))

/** Streams a tar member through its decompressor and a bomb bound, entry by entry. */
const tarEntries = (deb: string, m: ArMember, limit: number) => {
  const decompress = decompressorFor(m.name)
  if (!decompress) throw new ArchiveError({ archive: deb, reason: `uses unknown compression for member '${m.name}'` })
  // Names as raw bytes (latin1), so entryName can tell UTF-8 from anything else.
  const extract = tar.extract({ filenameEncoding: "latin1" } as Parameters<typeof tar.extract>[0])
  const done = pipeline(memberStream(deb, m), decompress, bound(limit), extract)
  done.catch(() => undefined)
  return { extract, done }
}

// How each decompressor says its input stopped early: zlib, liblzma (LZMA_BUF_ERROR), fzstd, bzip2.
const CUT_SHORT = /unexpected end|premature|truncated|Z_BUF_ERROR|No progress is possible|unexpected EOF/i

const fail = (deb: string, e: unknown): never => {
  if (e instanceof ArchiveError) throw e
  if (e instanceof BombError) throw new ArchiveError({ archive: deb, reason: e.message })
  const text = (e as Error).message ?? String(e)
  throw new ArchiveError({
    archive: deb,
    reason: CUT_SHORT.test(text) || (e as NodeJS.ErrnoException).code === "Z_BUF_ERROR" ? "truncated archive (its compressed data ends early)" : text,
  })
}

const readAll = async (stream: AsyncIterable<unknown>): Promise<Buffer> => {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

const normalizeEntry = (name: string) => name.replace(/^\.\//, "").replace(/\/$/, "")

const UTF8 = new TextDecoder("utf-8", { fatal: true })

/**
 * A tar entry's name (or link name) as text. Names that are not UTF-8 are
 * refused: paths are stored and compared as text, and installing a different
 * name than the package's would be worse than not installing it.
 */
const entryName = (deb: string, name: string, fromPax: boolean): string => {
  let text: string | undefined
  // A pax header was decoded as UTF-8 already; ustar and GNU names are bytes.
  if (fromPax) text = name
  else {
    try {
      text = UTF8.decode(Buffer.from(name, "latin1"))
    } catch {
      text = undefined
    }
  }
  if (text === undefined || text.includes("\uFFFD"))
    throw new ArchiveError({ archive: deb, reason: `file name '${name.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}' is not UTF-8 (conary refuses such names rather than install a different one)` })
  return text
}

/** An entry's name and link name, decoded. */
const namesOf = (deb: string, h: tar.Header) => {
  const pax = (h.pax ?? {}) as { path?: string; linkpath?: string }
  return {
    name: entryName(deb, h.name, pax.path !== undefined),
    linkname: h.linkname == null ? undefined : entryName(deb, h.linkname, pax.linkpath !== undefined),
  }
}

/** Reads a .deb's metadata and the metadata (with sha256) of every file it holds. */
export const readDeb = async (deb: string): Promise<DebTrove> => {
  let members: ArMember[]
  try {
    members = readArMembers(deb)
  } catch (e) {
    throw new ArchiveError({ archive: deb, reason: (e as Error).message })
  }
  if (members[0]?.name !== "debian-binary") throw new ArchiveError({ archive: deb, reason: "not a Debian package (no debian-binary first)" })
  const controlMember = member(members, "control.tar")
  const dataMember = member(members, "data.tar")
  if (!controlMember || !dataMember) throw new ArchiveError({ archive: deb, reason: "not a Debian package (control.tar or data.tar missing)" })
  // dpkg reads data.tar in any of its compressions, control.tar in fewer.
  if (!CONTROL_MEMBERS.includes(controlMember.name)) throw new ArchiveError({ archive: deb, reason: `uses unknown compression for member '${controlMember.name}'` })

  // control.tar: the control file, conffiles, maintainer scripts.
  let control: Map<string, string> | undefined
  let conffiles = new Set<string>()
  const scripts: Record<string, string> = {}
  try {
    const { extract, done } = tarEntries(deb, controlMember, MAX_CONTROL)
    for await (const entry of extract) {
      const name = normalizeEntry(namesOf(deb, entry.header).name)
      if (entry.header.type !== "file") {
        entry.resume()
        continue
      }
      const text = (await readAll(entry)).toString("utf8")
      if (name === "control") control = parseControl(text)
      else if (name === "conffiles") conffiles = new Set(parseConffiles(text))
      else if (SCRIPTS.includes(name)) scripts[name] = text
    }
    await done
  } catch (e) {
    fail(deb, e)
  }
  if (!control) throw new ArchiveError({ archive: deb, reason: "control.tar has no control file" })
  const name = control.get("package")
  const version = control.get("version")
  if (name === undefined) throw new ArchiveError({ archive: deb, reason: "missing 'Package' field" })
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new ArchiveError({ archive: deb, reason: `bad Package field '${name ?? ""}'` })
  if (version === undefined) throw new ArchiveError({ archive: deb, reason: "missing 'Version' field" })
  const versionProblem = debianVersionProblem(version)
  if (versionProblem) throw new ArchiveError({ archive: deb, reason: `'Version' field value '${version}': ${versionProblem}` })

  // data.tar: every entry, checked, hashed.
  const files: TroveFile[] = []
  const byPath = new Map<string, TroveFile>()
  const symlinks = new Set<string>()
  try {
    const { extract, done } = tarEntries(deb, dataMember, unpackLimit(dataMember.size))
    for await (const entry of extract) {
      const h = entry.header
      const names = namesOf(deb, h)
      const raw = normalizeEntry(names.name)
      if (raw === "" || raw === ".") {
        entry.resume()
        continue
      }
      const p = rootedPath(raw)
      if (p === undefined || names.name.startsWith("/")) throw new ArchiveError({ archive: deb, reason: `unsafe path '${names.name}' (absolute or with '..')` })
      if (byPath.has(p)) throw new ArchiveError({ archive: deb, reason: `${p} appears twice` })
      for (let i = p.lastIndexOf("/"); i > 0; i = p.lastIndexOf("/", i - 1)) {
        if (symlinks.has(p.slice(0, i)))
          throw new ArchiveError({ archive: deb, reason: `${p} would be written through the symlink ${p.slice(0, i)}` })
      }
      const common = {
        path: p,
        mode: h.mode & 0o7777,
        // name:id: the name is looked up in the target root, the package's id is the fallback
        owner: h.uname ? `${h.uname}:${h.uid}` : String(h.uid),
        group: h.gname ? `${h.gname}:${h.gid}` : String(h.gid),
        config: conffiles.has(p),
        component: componentOf(p),
        ...(h.mtime ? { mtime: Math.trunc(h.mtime.getTime() / 1000) } : {}),
      }
      let file: TroveFile
      if (h.type === "directory") {
        file = { ...common, kind: "dir", sha256: null, size: 0, target: null }
        entry.resume()
      } else if (h.type === "symlink") {
        file = { ...common, kind: "symlink", mode: 0o777, sha256: null, size: 0, target: names.linkname ?? "" }
        symlinks.add(p)
        entry.resume()
      } else if (h.type === "link") {
        // A hard link must name a regular file earlier in this package.
        const target = rootedPath(normalizeEntry(names.linkname ?? ""))
        const original = target === undefined ? undefined : byPath.get(target)
        if (!original || original.kind !== "file")
          throw new ArchiveError({ archive: deb, reason: `${p} is a hard link to ${names.linkname}, which is not a file in this package` })
        // One inode: the link has the original's content, mode and owner.
        const { mode, owner, group, sha256, size } = original
        file = { ...common, kind: "file", mode, owner, group, sha256, size, target: null, hardlink: original.hardlink ?? original.path }
        entry.resume()
      } else if (h.type === "file" || h.type === "contiguous-file") {
        const hash = createHash("sha256")
        let size = 0
        for await (const c of entry) {
          hash.update(c as Buffer)
          size += (c as Buffer).length
        }
        file = { ...common, kind: "file", sha256: hash.digest("hex"), size, target: null }
      } else {
        throw new ArchiveError({ archive: deb, reason: `${p} is a ${h.type} (device nodes and fifos are not installed)` })
      }
      byPath.set(p, file)
      files.push(file)
    }
    await done
  } catch (e) {
    fail(deb, e)
  }
  // dpkg-deb refuses to build these; dpkg would record a conffile it never installs.
  for (const c of conffiles) {
    const f = byPath.get(c)
    if (!f) throw new ArchiveError({ archive: deb, reason: `conffile '${c}' does not appear in package` })
    if (f.kind === "dir") throw new ArchiveError({ archive: deb, reason: `conffile '${c}' is not a plain file` })
  }
  const arch = control.get("architecture") ?? "all"
  return {
    name,
    version,
    flavor: debianArchFlavor(arch),
    requires: [...parseRelations(control.get("pre-depends")), ...parseRelations(control.get("depends"))],
    provides: parseRelations(control.get("provides")),
    conflicts: parseRelations(control.get("conflicts")),
    breaks: parseRelations(control.get("breaks")),
    replaces: parseRelations(control.get("replaces")),
    files,
    scripts,
    digest: await sha256OfFile(deb),
  }
}

/** Streams the wanted contents (by path, each with its expected sha256) of a .deb into the store. */
export const extractDebObjects = async (deb: string, wanted: ReadonlyMap<string, string>, store: ContentStore): Promise<void> => {
  const pending = new Set([...wanted.values()].filter((sha) => !store.has(sha)))
  if (pending.size === 0) return
  const members = readArMembers(deb)
  const dataMember = member(members, "data.tar")
  if (!dataMember) throw new ArchiveError({ archive: deb, reason: "data.tar missing" })
  try {
    const { extract } = tarEntries(deb, dataMember, unpackLimit(dataMember.size))
    for await (const entry of extract) {
      const p = rootedPath(normalizeEntry(namesOf(deb, entry.header).name))
      const sha = p === undefined ? undefined : wanted.get(p)
      if (sha !== undefined && entry.header.type === "file" && pending.has(sha)) {
        try {
          await store.putStream(entry, sha)
        } catch (e) {
          if (e instanceof StoreError) throw new ArchiveError({ archive: deb, reason: `content of ${p} does not match its sha256 (changed since sync?)` })
          throw e
        }
        pending.delete(sha)
        if (pending.size === 0) break
      } else entry.resume()
    }
  } catch (e) {
    fail(deb, e)
  }
  if (pending.size > 0) throw new ArchiveError({ archive: deb, reason: "lacks some content it listed at sync" })
}

export const debFormat: PackageFormat = {
  name: "deb",
  scheme: "deb",
  claims: (file) => file.endsWith(DEB_EXTENSION),
  read: async (file) => {
    const trove = await readDeb(file)
    return { trove, archiveSha256: trove.digest }
  },
  // A .deb names its contents by path, not by hash.
  fetch: (archive, files, wanted, store) => {
    const byPath = new Map<string, string>()
    for (const f of files) if (f.sha256 !== null && wanted.has(f.sha256)) byPath.set(f.path, f.sha256)
    return extractDebObjects(archive, byPath, store)
  },
}
