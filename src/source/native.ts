import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import * as zlib from "node:zlib"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as tar from "tar-stream"
import { decodeOrProblem } from "../decode.js"
import { normalizeFlavor } from "../desired/flavor.js"
import { isNativeVersion } from "../desired/version.js"
import { ArchiveError, UsageError } from "../errors.js"
import { writeOutputFile } from "../files.js"
import { sha256OfFile } from "../store/store.js"
import { componentOf, formatDepGroup, parseDepGroup, type TroveFile } from "../model/trove.js"
import { elfDeps, looksLikeElf } from "./elf.js"
import { parseSpdx } from "./license.js"
import type { FormatReader } from "./package-format.js"
import { rootedPath } from "./rooted-path.js"
import { strictUtf8 } from "./utf8.js"
import { archiveError, fetchNative, readArchive } from "./native-archive.js"
import { EMPTY_SHA256 } from "../store/digest-set.js"

// A native trove archive (.ctrv) is a gzipped tar: `manifest.json` first, then
// one `objects/<sha256>` entry per distinct file content. Indexing reads only
// the first entry; apply streams the objects it lacks into the content store.

const MANIFEST_ENTRY = "manifest.json"
const MAX_MANIFEST = 256 * 1024 * 1024

export const ManifestFile = Schema.Struct({
  path: Schema.String,
  kind: Schema.Literal("file", "dir", "symlink"),
  mode: Schema.Int.pipe(Schema.between(0, 0o7777)),
  owner: Schema.String,
  group: Schema.String,
  sha256: Schema.optional(Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))),
  size: Schema.Int.pipe(Schema.nonNegative()),
  target: Schema.optional(Schema.String),
  config: Schema.Boolean,
  component: Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9-]*$/)),
  /** seconds; set on the installed file */
  mtime: Schema.optional(Schema.Int),
  /** an earlier file of the manifest this one shares an inode with */
  hardlink: Schema.optional(Schema.String),
  /** owned, never shipped (rpm's %ghost): a repository's manifests carry the troves of every format */
  ghost: Schema.optional(Schema.Boolean),
})

const Manifest = Schema.Struct({
  formatVersion: Schema.Literal(1),
  name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9+._-]*$/)),
  version: Schema.String,
  flavor: Schema.String,
  requires: Schema.Array(Schema.String),
  provides: Schema.Array(Schema.String),
  /** an SPDX expression (trove build --license) */
  license: Schema.optional(Schema.String.pipe(Schema.maxLength(4096))),
  files: Schema.Array(ManifestFile),
})
type Manifest = typeof Manifest.Type

export interface NativeTrove {
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly requires: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
  readonly files: ReadonlyArray<TroveFile>
  readonly license?: string
  /** sha256 of the manifest bytes: the trove's identity */
  readonly digest: string
}

/**
 * A manifest's files made rooted and checked as any archive's paths are:
 * relative, free of `..`, each once, hard links to earlier files of the same
 * content, nothing written through a symlink of the same trove. A
 * repository's per-trove manifests go through the same checks.
 */
export const checkManifestFiles = (entries: ReadonlyArray<typeof ManifestFile.Type>, bad: (reason: string) => Error): TroveFile[] => {
  const seen = new Set<string>()
  const files: TroveFile[] = []
  const regular = new Map<string, TroveFile>()
  for (const f of entries) {
    const p = rootedPath(f.path)
    if (p === undefined) throw bad(`unsafe path '${f.path}' (absolute or with '..')`)
    if (seen.has(p)) throw bad(`path ${p} listed twice`)
    seen.add(p)
    const ghost = f.ghost === true
    if (f.kind === "file" && f.sha256 === undefined && !ghost) throw bad(`${p}: file without sha256`)
    if (f.kind === "symlink" && !f.target) throw bad(`${p}: symlink without target`)
    // Only no bytes hash to the empty digest: apply creates such a file empty, without reading a content.
    if (f.kind === "file" && !ghost && (f.size === 0) !== (f.sha256 === EMPTY_SHA256))
      throw bad(`${p}: size ${f.size} does not fit its sha256 ${f.sha256!.slice(0, 16)}`)
    let hardlink: string | undefined
    if (f.hardlink !== undefined) {
      hardlink = rootedPath(f.hardlink)
      const original = hardlink === undefined ? undefined : regular.get(hardlink)
      if (f.kind !== "file" || !original || original.hardlink !== undefined || original.sha256 !== f.sha256)
        throw bad(`${p} is a hard link to ${f.hardlink}, which is not an earlier file of this trove with the same content`)
    }
    const file: TroveFile = {
      path: p,
      kind: f.kind,
      mode: f.mode,
      owner: f.owner,
      group: f.group,
      sha256: f.kind === "file" && !ghost ? f.sha256! : null,
      size: f.kind === "file" && !ghost ? f.size : 0,
      target: f.kind === "symlink" ? f.target! : null,
      config: f.config,
      component: f.component,
      ...(f.mtime === undefined ? {} : { mtime: f.mtime }),
      ...(hardlink === undefined ? {} : { hardlink }),
      ...(ghost ? { ghost } : {}),
    }
    files.push(file)
    if (file.kind === "file") regular.set(p, file)
  }
  const symlinks = new Set(files.filter((f) => f.kind === "symlink").map((f) => f.path))
  for (const f of files) {
    for (let i = f.path.lastIndexOf("/"); i > 0; i = f.path.lastIndexOf("/", i - 1)) {
      if (symlinks.has(f.path.slice(0, i))) throw bad(`${f.path} would be written through the symlink ${f.path.slice(0, i)}`)
    }
  }
  return files
}

const checkManifest = (archive: string, m: Manifest): NativeTrove => {
  const bad = (reason: string) => new ArchiveError({ archive, reason })
  if (!isNativeVersion(m.version)) throw bad(`version '${m.version}' is not upstream-source-build`)
  let flavor: string
  try {
    flavor = normalizeFlavor(m.flavor)
  } catch (e) {
    throw bad((e as Error).message)
  }
  for (const dep of [...m.requires, ...m.provides]) {
    if (parseDepGroup(dep) === undefined) throw bad(`bad dependency '${dep}'`)
  }
  const files = checkManifestFiles(m.files, bad)
  const license = m.license === undefined ? {} : { license: m.license }
  return { name: m.name, version: m.version, flavor, requires: m.requires, provides: m.provides, ...license, files, digest: "" }
}

/** Reads and validates a native trove's manifest without touching its contents. */
export const readNativeManifest = async (archive: string): Promise<NativeTrove> => {
  const chunks: Buffer[] = []
  let size = 0
  let first = true
  let read = false
  try {
    await readArchive(
      archive,
      {
        entry: (header) => {
          if (first && header.name !== MANIFEST_ENTRY) throw new ArchiveError({ archive, reason: `first entry is not ${MANIFEST_ENTRY}` })
          first = false
        },
        data: (piece) => {
          if (read) return
          if ((size += piece.length) > MAX_MANIFEST) throw new Error(`manifest larger than ${MAX_MANIFEST} bytes`)
          chunks.push(piece)
        },
        end: () => {
          read = true
        },
      },
      () => read,
    )
    if (!read) throw new ArchiveError({ archive, reason: "empty archive" })
    const bytes = Buffer.concat(chunks)
    let json: unknown
    try {
      json = JSON.parse(bytes.toString("utf8"))
    } catch {
      throw new ArchiveError({ archive, reason: "manifest is not valid JSON" })
    }
    const decoded = decodeOrProblem(Manifest, json)
    if (Either.isLeft(decoded)) throw new ArchiveError({ archive, reason: `bad manifest: ${decoded.left}` })
    const trove = checkManifest(archive, decoded.right)
    return { ...trove, digest: createHash("sha256").update(bytes).digest("hex") }
  } catch (e) {
    throw archiveError(archive, e)
  }
}

export const nativeReader: FormatReader = {
  read: async (file) => ({ trove: await readNativeManifest(file), archiveSha256: await sha256OfFile(file) }),
  fetch: fetchNative,
}

// ---- building -------------------------------------------------------------

export interface BuildOptions {
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly requires: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
  /** add the soname provides and requires of the ELF files packed (`trove build` unless --no-auto-deps) */
  readonly autoDeps?: boolean
  /** an SPDX expression, recorded in the manifest in canonical form */
  readonly license?: string
  /** gzip level; the bench lowers it */
  readonly level?: number
}

/** One entry to pack: what a directory walk (or a generator) yields. */
export type PackEntry =
  | { readonly rel: string; readonly kind: "dir"; readonly mode: number }
  | { readonly rel: string; readonly kind: "symlink"; readonly target: string; readonly mtime?: number }
  | { readonly rel: string; readonly kind: "file"; readonly mode: number; readonly data: () => Buffer; readonly mtime?: number; readonly hardlink?: string }

/** A directory's entries, sorted; a name that is not UTF-8 is refused (it would be stored as another name). */
const readNames = (dir: string): string[] =>
  fs
    .readdirSync(dir, { encoding: "buffer" })
    .map((raw) => {
      try {
        return strictUtf8.decode(raw)
      } catch {
        throw new ArchiveError({ archive: path.join(dir, raw.toString("latin1")), reason: "file name is not UTF-8" })
      }
    })
    .sort()

/** A directory tree as entries, with mtimes and hard links (files sharing an inode name the first one). */
const walk = (dir: string): PackEntry[] => {
  const out: PackEntry[] = []
  const inodes = new Map<string, string>()
  const visit = (rel: string) => {
    for (const name of readNames(path.join(dir, rel))) {
      const r = rel === "" ? name : `${rel}/${name}`
      const abs = path.join(dir, r)
      const stat = fs.lstatSync(abs)
      const mtime = Math.trunc(stat.mtimeMs / 1000)
      if (stat.isDirectory()) {
        out.push({ rel: r, kind: "dir", mode: stat.mode & 0o7777 })
        visit(r)
      } else if (stat.isSymbolicLink()) out.push({ rel: r, kind: "symlink", target: fs.readlinkSync(abs), mtime })
      else if (stat.isFile()) {
        const inode = `${stat.dev}:${stat.ino}`
        const hardlink = stat.nlink > 1 ? inodes.get(inode) : undefined
        if (stat.nlink > 1 && hardlink === undefined) inodes.set(inode, r)
        out.push({ rel: r, kind: "file", mode: stat.mode & 0o7777, data: () => fs.readFileSync(abs), mtime, ...(hardlink === undefined ? {} : { hardlink }) })
      } else throw new ArchiveError({ archive: abs, reason: "not a file, directory or symlink" })
    }
  }
  visit("")
  return out
}

/** Packs a directory tree into a native trove archive at `out`. */
export const buildNativeTrove = async (dir: string, options: BuildOptions, out: string): Promise<NativeTrove> => {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ArchiveError({ archive: out, reason: `${dir} is not a directory` })
  return packNativeTrove(walk(dir), options, out)
}

/** Packs entries into a native trove archive at `out` (written to a temp name, then renamed). */
export const packNativeTrove = async (entries: ReadonlyArray<PackEntry>, options: BuildOptions, out: string): Promise<NativeTrove> => {
  const bad = (reason: string) => new ArchiveError({ archive: out, reason })
  if (!isNativeVersion(options.version)) throw bad(`version '${options.version}' is not upstream-source-build`)
  const deps = (texts: ReadonlyArray<string>) =>
    texts.map((dep) => {
      const group = parseDepGroup(dep)
      if (group === undefined) throw bad(`bad dependency '${dep}'`)
      return formatDepGroup(group)
    })
  const provides = new Set(deps(options.provides))
  const requires = new Set(deps(options.requires))
  const autoProvides = new Set<string>()
  const autoRequires = new Set<string>()
  const license = options.license === undefined ? undefined : await parseSpdx(options.license)
  if (options.license !== undefined && license === undefined)
    throw new UsageError({ message: `--license '${options.license}' is not an SPDX licence expression (such as MIT, GPL-2.0-or-later, Apache-2.0 OR MIT)` })
  const files: Manifest["files"][number][] = []
  const contents = new Map<string, () => Buffer>()
  for (const entry of entries) {
    const rooted = "/" + entry.rel
    const common = { path: entry.rel, owner: "root", group: "root", config: rooted.startsWith("/etc/"), component: componentOf(rooted) }
    if (entry.kind === "dir") files.push({ ...common, kind: "dir", mode: entry.mode, size: 0 })
    else if (entry.kind === "symlink")
      files.push({ ...common, kind: "symlink", mode: 0o777, size: 0, target: entry.target, ...(entry.mtime === undefined ? {} : { mtime: entry.mtime }) })
    else {
      const data = entry.data()
      const elf = options.autoDeps && entry.hardlink === undefined && looksLikeElf(data) ? elfDeps(data, entry.mode) : undefined
      for (const p of elf?.provides ?? []) autoProvides.add(`soname: ${p}`)
      for (const r of elf?.requires ?? []) autoRequires.add(`soname: ${r}`)
      const sha256 = createHash("sha256").update(data).digest("hex")
      contents.set(sha256, entry.data)
      const extra = { ...(entry.mtime === undefined ? {} : { mtime: entry.mtime }), ...(entry.hardlink === undefined ? {} : { hardlink: entry.hardlink }) }
      files.push({ ...common, kind: "file", mode: entry.mode, size: data.length, sha256, ...extra })
    }
  }
  const manifest: Manifest = {
    formatVersion: 1,
    name: options.name,
    version: options.version,
    flavor: normalizeFlavor(options.flavor),
    // What the trove provides itself it does not require (a library's own soname, within the trove).
    requires: [...requires, ...[...autoRequires].filter((r) => !provides.has(r) && !autoProvides.has(r) && !requires.has(r)).sort()],
    provides: [...provides, ...[...autoProvides].filter((p) => !provides.has(p)).sort()],
    ...(license === undefined ? {} : { license }),
    files,
  }
  const checked = decodeOrProblem(Manifest, manifest)
  if (Either.isLeft(checked)) throw bad(checked.left)
  const bytes = Buffer.from(JSON.stringify(manifest))
  const pack = tar.pack()
  await writeOutputFile(out, async (temp) => {
    const written = pipeline(pack, zlib.createGzip({ level: options.level ?? 6 }), fs.createWriteStream(temp))
    const add = (name: string, data: Buffer) =>
      new Promise<void>((resolve, reject) => pack.entry({ name, size: data.length, mode: 0o644 }, data, (e) => (e ? reject(e) : resolve())))
    await add(MANIFEST_ENTRY, bytes)
    for (const [sha256, data] of contents) await add(`objects/${sha256}`, data())
    pack.finalize()
    await written
  })
  return readNativeManifest(out)
}
