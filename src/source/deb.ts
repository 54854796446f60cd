import { debianArchFlavor } from "../desired/flavor.js"
import { debianVersionProblem } from "../desired/version.js"
import { ArchiveError, describeIo } from "../errors.js"
import type { TroveFile } from "../model/trove.js"
import { type ContentStore, sha256OfFile } from "../store/store.js"
import { type ArMember, memberStream, readArMembers } from "./ar.js"
import { unpackLimit } from "./decompress.js"
import { MAX_COPYRIGHT, dep5License } from "./copyright.js"
import type { FormatReader } from "./package-format.js"
import {
  type EntrySink,
  PayloadFiles,
  archiveFailure,
  extractByPath,
  feedEntry,
  namesOf,
  normalizeEntry,
  readTarMember,
  tarEntries,
  wantedByPath,
} from "./tar-payload.js"

// A .deb as dpkg sees it: ar(debian-binary, control.tar.*, data.tar.*), read
// with bounded memory. Indexing reads control and data once (data to hash
// every file, storing its contents); apply streams data again only for
// contents the store lacks.

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
  /** from its machine-readable copyright file, when it has one */
  readonly license?: string
  /** sha256 of the .deb itself: the trove's identity */
  readonly digest: string
}

const CONTROL_MEMBERS = ["control.tar", "control.tar.gz", "control.tar.xz", "control.tar.zst"]
const SCRIPTS = ["preinst", "postinst", "prerm", "postrm", "config", "triggers"]
const MAX_CONTROL = 64 * 1024 * 1024
/** The control file alone: parsed a line at a time, 60 MB of short lines took 1.6 GB; Debian's largest are a few hundred KB. */
const MAX_CONTROL_FILE = 4 * 1024 * 1024

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

const memberEntries = (deb: string, m: ArMember, limit: number) => tarEntries(deb, memberStream(deb, m), m.name, limit)

/** A .deb's ar members: failing to read them (the file gone, cut short) is the archive's failure. */
const arMembersOf = (deb: string): ArMember[] => {
  try {
    return readArMembers(deb)
  } catch (e) {
    throw new ArchiveError({ archive: deb, reason: describeIo(e) })
  }
}

/** Reads a .deb's metadata and the metadata (with sha256) of every file it holds; `store` takes the contents too. */
export const readDeb = async (deb: string, store?: ContentStore): Promise<DebTrove> => {
  const members = arMembersOf(deb)
  if (members[0]?.name !== "debian-binary") throw new ArchiveError({ archive: deb, reason: "not a Debian package (no debian-binary first)" })
  const controlMember = member(members, "control.tar")
  const dataMember = member(members, "data.tar")
  if (!controlMember || !dataMember) throw new ArchiveError({ archive: deb, reason: "not a Debian package (control.tar or data.tar missing)" })
  // dpkg reads data.tar in any of its compressions, control.tar in fewer.
  if (!CONTROL_MEMBERS.includes(controlMember.name)) throw new ArchiveError({ archive: deb, reason: `uses unknown compression for member '${controlMember.name}'` })

  // control.tar: the control file, conffiles, maintainer scripts, each read whole (within MAX_CONTROL).
  let control: Map<string, string> | undefined
  let conffiles = new Set<string>()
  const scripts: Record<string, string> = {}
  let file: { readonly name: string; readonly pieces: Buffer[]; size: number } | undefined
  const controlFiles: EntrySink = {
    begin: (h, names) => {
      if (h.type !== "file") return false
      file = { name: normalizeEntry(names.name), pieces: [], size: 0 }
      return true
    },
    write: (piece) => {
      if ((file!.size += piece.length) > MAX_CONTROL_FILE && file!.name === "control") throw new Error(`control file larger than ${MAX_CONTROL_FILE} bytes`)
      file!.pieces.push(piece)
    },
    finish: () => {
      const { name, pieces } = file!
      file = undefined
      const text = Buffer.concat(pieces).toString("utf8")
      if (name === "control") control = parseControl(text)
      else if (name === "conffiles") conffiles = new Set(parseConffiles(text))
      else if (SCRIPTS.includes(name)) scripts[name] = text
    },
    abort: () => {
      file = undefined
    },
  }
  try {
    // Here and now when it is xz or plain, as data.tar below.
    if (!(await readTarMember(deb, controlMember, MAX_CONTROL, controlFiles))) {
      const { extract, done } = memberEntries(deb, controlMember, MAX_CONTROL)
      for await (const entry of extract) await feedEntry(controlFiles, entry, namesOf(deb, entry.header))
      await done
    }
  } catch (e) {
    archiveFailure(deb, e)
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
  // The copyright file is kept (up to a bound) while it is hashed, for its licence.
  const payload = new PayloadFiles(deb, { path: `/usr/share/doc/${name}/copyright`, limit: MAX_COPYRIGHT }, store)
  try {
    // Here and now when it is xz (most are) or plain: streams and promises per entry and piece cost as much as decoding.
    if (!(await readTarMember(deb, dataMember, unpackLimit(dataMember.size), payload))) {
      const { extract, done } = memberEntries(deb, dataMember, unpackLimit(dataMember.size))
      for await (const entry of extract) await feedEntry(payload, entry, namesOf(deb, entry.header))
      await done
    }
  } catch (e) {
    archiveFailure(deb, e)
  }
  const byPath = payload.byPath
  // dpkg-deb refuses to build these; dpkg would record a conffile it never installs.
  for (const c of conffiles) {
    const f = byPath.get(c)
    if (!f) throw new ArchiveError({ archive: deb, reason: `conffile '${c}' does not appear in package` })
    if (f.kind === "dir") throw new ArchiveError({ archive: deb, reason: `conffile '${c}' is not a plain file` })
  }
  const arch = control.get("architecture") ?? "all"
  const license = payload.kept === undefined ? undefined : dep5License(payload.kept.toString("utf8"))
  return {
    name,
    version,
    flavor: debianArchFlavor(arch),
    requires: [...parseRelations(control.get("pre-depends")), ...parseRelations(control.get("depends"))],
    provides: parseRelations(control.get("provides")),
    conflicts: parseRelations(control.get("conflicts")),
    breaks: parseRelations(control.get("breaks")),
    replaces: parseRelations(control.get("replaces")),
    files: payload.files.map((f) => (conffiles.has(f.path) ? { ...f, config: true } : f)),
    scripts,
    ...(license === undefined ? {} : { license }),
    digest: await sha256OfFile(deb),
  }
}

/** Streams the wanted contents (by path, each with its expected sha256) of a .deb into the store. */
export const extractDebObjects = async (deb: string, wanted: ReadonlyMap<string, string>, store: ContentStore): Promise<void> => {
  if ([...wanted.values()].every((sha) => store.has(sha))) return
  const dataMember = member(arMembersOf(deb), "data.tar")
  if (!dataMember) throw new ArchiveError({ archive: deb, reason: "data.tar missing" })
  return extractByPath(deb, () => memberEntries(deb, dataMember, unpackLimit(dataMember.size)), wanted, store)
}

export const debReader: FormatReader = {
  read: async (file, store) => {
    const trove = await readDeb(file, store)
    return { trove, archiveSha256: trove.digest }
  },
  // A .deb names its contents by path, not by hash.
  fetch: (archive, files, wanted, store) => extractDebObjects(archive, wantedByPath(files, wanted), store),
}
