import * as fs from "node:fs"
import * as zlib from "node:zlib"
import { alpmArchFlavor } from "../desired/flavor.js"
import { alpmVersionProblem } from "../desired/version.js"
import { ArchiveError } from "../errors.js"
import { type TroveFile, formatDep, parseDep } from "../model/trove.js"
import { type ContentStore, sha256OfFile } from "../store/store.js"
import { unpackLimit } from "./decompress.js"
import { rootedPath } from "./rooted-path.js"
import type { FormatReader } from "./package-format.js"
import {
  PayloadFiles,
  archiveFailure,
  escapeName,
  extractByPath,
  feedEntry,
  namesOf,
  normalizeEntry,
  readAll,
  tarEntries,
  utf8OfBytes,
  wantedByPath,
} from "./tar-payload.js"

// An Arch package as pacman sees it: one compressed tar whose entries at the
// root named with a dot are metadata (.PKGINFO, .MTREE, .INSTALL, ...), never
// installed; everything else is the payload. Read as one stream with bounded
// memory; the .MTREE must agree with the payload, file by file.

const MAX_METADATA = 64 * 1024 * 1024

export interface ArchTrove {
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly requires: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
  readonly conflicts: ReadonlyArray<string>
  readonly replaces: ReadonlyArray<string>
  /** optdepend: recorded, never required */
  readonly optional: ReadonlyArray<string>
  /** the .PKGINFO's `license` entries (SPDX or Arch's names), each of which applies: joined with AND */
  readonly license?: string
  readonly files: ReadonlyArray<TroveFile>
  /** the .INSTALL script, recorded and never run */
  readonly scripts: Readonly<Record<string, string>>
  /** sha256 of the package file: the trove's identity */
  readonly digest: string
}

/** `.PKGINFO`: `key = value` lines; keys repeat for lists. */
const parsePkginfo = (archive: string, text: string): Map<string, string[]> => {
  const fields = new Map<string, string[]>()
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "" || line.startsWith("#")) return
    const eq = line.indexOf("=")
    if (eq < 0) throw new ArchiveError({ archive, reason: `.PKGINFO line ${i + 1} is not 'key = value'` })
    const key = line.slice(0, eq).trim()
    const list = fields.get(key) ?? []
    list.push(line.slice(eq + 1).trim())
    fields.set(key, list)
  })
  return fields
}

const SINGLE = ["pkgname", "pkgver", "arch"]
const NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/
const DEP = /^([^<>=]+)(?:(<=|>=|<|>|=)(.+))?$/

/**
 * An Arch dependency (`name`, `name>=1.2`, `name<2`, `name=1.2-1`) in
 * conary's canonical text, or undefined when conary's grammar refuses it.
 * Arch's `<` and `>` are strict: `<<`, `>>`. A soname (`libc.so=6-64`) is
 * spelled as rpm does (`soname: libc.so.6()(64bit)`, no suffix for 32-bit);
 * an absolute path is a `file:` dependency.
 */
export const alpmDependency = (text: string): string | undefined => {
  const m = DEP.exec(text)
  if (!m) return undefined
  const [, name, op, version] = m
  const soname = op === "=" && name!.endsWith(".so") ? /^([^-]+)-(32|64)$/.exec(version!) : null
  const conary =
    op === undefined
      ? name!.startsWith("/") ? `file: ${name}` : name!
      : soname
        ? `soname: ${name}.${soname[1]}${soname[2] === "64" ? "()(64bit)" : ""}`
        : `${name} (${op === "<" ? "<<" : op === ">" ? ">>" : op} ${version})`
  const dep = parseDep(conary)
  return dep && formatDep(dep)
}

/** mtree's escapes (`\040`, `\\`, `\s` ...) undone; names are UTF-8 bytes. */
const MTREE_ESCAPES: Record<string, string> = { "\\": "\\", a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", s: " ", t: "\t", v: "\v" }
const unescapeMtree = (text: string): string | undefined =>
  utf8OfBytes(text.replace(/\\([0-7]{3}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(parseInt(e, 8) & 0xff) : (MTREE_ESCAPES[e] ?? e))))

interface MtreeEntry {
  readonly type: string
  readonly sha256?: string
  readonly size?: number
  readonly link?: string
}

/**
 * `.MTREE` as makepkg writes it (`bsdtar --format=mtree` with `/set`
 * defaults and full `./path` names), by rooted path.
 */
const parseMtree = (archive: string, text: string): Map<string, MtreeEntry> => {
  const bad = (reason: string) => new ArchiveError({ archive, reason: `.MTREE ${reason}` })
  const entries = new Map<string, MtreeEntry>()
  let defaults: Record<string, string> = {}
  for (const line of text.replace(/\\\n/g, " ").split("\n")) {
    const words = line.trim().split(/[ \t]+/)
    const head = words[0]!
    if (head === "" || head.startsWith("#")) continue
    const keys: Record<string, string> = {}
    for (const w of words.slice(1)) {
      const eq = w.indexOf("=")
      keys[eq < 0 ? w : w.slice(0, eq)] = eq < 0 ? "" : w.slice(eq + 1)
    }
    if (head === "/set") defaults = { ...defaults, ...keys }
    else if (head === "/unset") {
      if ("all" in keys) defaults = {}
      for (const k of Object.keys(keys)) delete defaults[k]
    } else {
      const name = unescapeMtree(head)
      if (name === undefined) throw bad(`names a file that is not UTF-8 ('${escapeName(head)}')`)
      if (!name.startsWith("./")) throw bad(`entry '${name}' is not a full path (./...)`)
      const raw = normalizeEntry(name)
      if (isMetadata(raw)) continue
      const p = rootedPath(raw)
      if (p === undefined) throw bad(`entry '${name}' is an unsafe path`)
      const k = { ...defaults, ...keys }
      const link = k.link === undefined ? undefined : unescapeMtree(k.link)
      entries.set(p, {
        type: k.type ?? "file",
        ...(k.sha256digest === undefined ? {} : { sha256: k.sha256digest }),
        ...(k.size === undefined ? {} : { size: Number(k.size) }),
        ...(link === undefined ? {} : { link }),
      })
    }
  }
  return entries
}

const MTREE_TYPE: Record<TroveFile["kind"], string> = { file: "file", dir: "dir", symlink: "link" }

/** The payload as the .MTREE lists it: same entries, types, sizes, digests and link targets. */
const checkMtree = (archive: string, files: ReadonlyArray<TroveFile>, mtree: Map<string, MtreeEntry>) => {
  const bad = (reason: string) => new ArchiveError({ archive, reason })
  for (const f of files) {
    const m = mtree.get(f.path)
    if (!m) throw bad(`${f.path} is not listed in .MTREE`)
    mtree.delete(f.path)
    if (m.type !== MTREE_TYPE[f.kind]) throw bad(`${f.path} is a ${MTREE_TYPE[f.kind]} in the archive but a ${m.type} in .MTREE`)
    if (f.kind === "file") {
      if (m.sha256 === undefined) throw bad(`.MTREE has no sha256digest for ${f.path}`)
      if (m.sha256 !== f.sha256) throw bad(`content of ${f.path} does not match its .MTREE sha256digest`)
      if (m.size !== undefined && m.size !== f.size) throw bad(`${f.path} has ${f.size} bytes, .MTREE says ${m.size}`)
    }
    if (f.kind === "symlink" && m.link !== undefined && m.link !== f.target) throw bad(`${f.path} links to ${f.target}, .MTREE says ${m.link}`)
  }
  const missing = mtree.keys().next()
  if (!missing.done) throw bad(`${missing.value} is listed in .MTREE but not in the archive`)
}

/** An entry at the archive's root named with a dot (and anything under it): pacman's metadata, never installed. */
const isMetadata = (raw: string) => {
  const first = raw.split("/", 1)[0]!
  return first.startsWith(".") && first !== "." && first !== ".."
}

const METADATA = [".PKGINFO", ".MTREE", ".INSTALL"]

// The size first: a stream opened before a failing stat was left with none to hear its own failure, which crashed the process.
const archEntries = (file: string) => {
  const limit = unpackLimit(fs.statSync(file).size)
  return tarEntries(file, fs.createReadStream(file), file, limit)
}

/** Reads an Arch package's metadata and the metadata (with sha256) of every file it holds. */
export const readArch = async (file: string, store?: ContentStore): Promise<ArchTrove> => {
  const refuse = (reason: string): never => {
    throw new ArchiveError({ archive: file, reason })
  }
  const metadata = new Map<string, Buffer>()
  const payload = new PayloadFiles(file, undefined, store)
  try {
    const { extract, done } = archEntries(file)
    for await (const entry of extract) {
      const names = namesOf(file, entry.header)
      const raw = normalizeEntry(names.name)
      if (!isMetadata(raw)) {
        await feedEntry(payload, entry, names)
        continue
      }
      if (METADATA.includes(raw) && entry.header.type === "file") {
        if (metadata.has(raw)) refuse(`${raw} appears twice`)
        if (entry.header.size > MAX_METADATA) refuse(`${raw} is larger than ${MAX_METADATA} bytes`)
        metadata.set(raw, await readAll(entry))
      } else entry.resume()
    }
    await done
  } catch (e) {
    archiveFailure(file, e)
  }

  const pkginfoBytes = metadata.get(".PKGINFO") ?? refuse("not an Arch package (no .PKGINFO)")
  const info = parsePkginfo(file, pkginfoBytes.toString("utf8"))
  for (const key of SINGLE) if ((info.get(key)?.length ?? 0) > 1) refuse(`.PKGINFO field '${key}' is given twice`)
  const name = info.get("pkgname")?.[0] ?? refuse(".PKGINFO has no 'pkgname' field")
  if (!NAME.test(name)) refuse(`.PKGINFO field 'pkgname' value '${escapeName(name)}' is not a safe package name (letters, digits and '+._-', starting with a letter or digit)`)
  const version = info.get("pkgver")?.[0] ?? refuse(".PKGINFO has no 'pkgver' field")
  const versionProblem = alpmVersionProblem(version)
  if (versionProblem) refuse(`.PKGINFO field 'pkgver' value '${escapeName(version)}': ${versionProblem}`)
  const arch = info.get("arch")?.[0] ?? "any"
  if (!/^[A-Za-z0-9_]+$/.test(arch)) refuse(`.PKGINFO field 'arch' value '${escapeName(arch)}' is not an architecture name`)
  const deps = (key: string, values = info.get(key) ?? []) =>
    values.map((v) => alpmDependency(v) ?? refuse(`.PKGINFO field '${key}' value '${escapeName(v)}' is not a dependency`))

  const mtreeBytes = metadata.get(".MTREE") ?? refuse("has no .MTREE (makepkg writes one into every package)")
  let mtreeText: string
  try {
    mtreeText = zlib.gunzipSync(mtreeBytes, { maxOutputLength: MAX_METADATA }).toString("latin1")
  } catch (e) {
    return refuse(`.MTREE is not readable gzip data (${(e as Error).message})`)
  }
  checkMtree(file, payload.files, parseMtree(file, mtreeText))

  // backup: config files, as pacman keeps them (entries naming nothing it ships are ignored, as pacman does).
  const backup = new Set((info.get("backup") ?? []).map((b) => rootedPath(b)))
  const install = metadata.get(".INSTALL")
  return {
    name,
    version,
    flavor: alpmArchFlavor(arch),
    requires: deps("depend"),
    provides: deps("provides"),
    conflicts: deps("conflict"),
    replaces: deps("replaces"),
    // `name: what it adds`: the dependency is recorded, the description dropped
    optional: deps("optdepend", (info.get("optdepend") ?? []).map((v) => v.replace(/: .*$/s, "").trim())),
    ...licenseOf(info.get("license") ?? []),
    files: payload.files.map((f) => (f.kind === "file" && backup.has(f.path) ? { ...f, config: true } : f)),
    scripts: install === undefined ? {} : { install: install.toString("utf8") },
    digest: await sha256OfFile(file),
  }
}

const licenseOf = (entries: ReadonlyArray<string>): { license?: string } =>
  entries.length === 0 ? {} : { license: entries.length === 1 ? entries[0]! : entries.map((e) => (/\s/.test(e) ? `(${e})` : e)).join(" AND ") }

export const archReader: FormatReader = {
  read: async (file, store) => {
    const trove = await readArch(file, store)
    return { trove, archiveSha256: trove.digest }
  },
  // The payload names its contents by path.
  fetch: (archive, files, wanted, store) => extractByPath(archive, () => archEntries(archive), wantedByPath(files, wanted), store),
}
