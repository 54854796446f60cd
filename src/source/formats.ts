import * as fs from "node:fs"
import type { NewTrove } from "../db/troves.js"
import { ArchiveError } from "../errors.js"
import type { TroveFile } from "../model/trove.js"
import type { ContentStore } from "../store/store.js"
import type { PackageFormat } from "./package-format.js"

// The package formats conary reads, one entry each: what tells their archives
// apart here, their code (a module each) loaded when first needed. Sources,
// repositories and apply go through here, not to a format directly.
const FORMATS: readonly [PackageFormat, ...PackageFormat[]] = [
  {
    name: "native",
    scheme: "native",
    claims: (file) => file.endsWith(".ctrv"),
    fetchesByDigest: true,
    reader: () => import("./native.js").then((m) => m.nativeReader),
    fetcher: () => import("./native-archive.js").then((m) => m.fetchNative),
  },
  { name: "deb", scheme: "deb", claims: (file) => file.endsWith(".deb"), reader: () => import("./deb.js").then((m) => m.debReader) },
  { name: "arch", scheme: "alpm", claims: (file) => /\.pkg\.tar(\.zst|\.xz|\.gz)?$/.test(file), reader: () => import("./arch.js").then((m) => m.archReader) },
  {
    name: "rpm",
    scheme: "rpm",
    claims: (file) => file.endsWith(".rpm") && !file.endsWith(".src.rpm"),
    reader: () => import("./rpm.js").then((m) => m.rpmReader),
  },
  { name: "group", scheme: "native", claims: (file) => file.endsWith(".cgrp"), reader: () => import("./group.js").then((m) => m.groupReader) },
]

/** Format names, for the repository index to check. */
export const FORMAT_NAMES = FORMATS.map((f) => f.name) as [string, ...string[]]

// A name no format claims goes to the first, whose reader says what is wrong
// with the file (`repo build` takes an archive by any name).
const formatWhere = (test: (f: PackageFormat) => boolean): PackageFormat => FORMATS.find(test) ?? FORMATS[0]

export const isTroveArchive = (name: string): boolean => FORMATS.some((f) => f.claims(name))

/**
 * Refuses an archive path that names no regular file (a fifo, a device, a
 * directory, put there since it was listed or synced): opening a fifo to read
 * would wait forever for a writer. A path naming nothing is left to the
 * format, which says so.
 */
const mustBeRegular = (archive: string): void => {
  let st: fs.Stats
  try {
    st = fs.statSync(archive)
  } catch {
    return
  }
  if (!st.isFile()) throw new ArchiveError({ archive, reason: "is not a regular file" })
}

/** Reads an archive's trove metadata, and the archive's own sha256 (with `store`, see FormatReader.read). */
export const readTroveArchive = async (file: string, store?: ContentStore): Promise<{ trove: NewTrove; archiveSha256: string }> => {
  mustBeRegular(file)
  const format = formatWhere((f) => f.claims(file))
  const { trove, archiveSha256 } = await (await format.reader()).read(file, store)
  return { trove: { ...trove, scheme: format.scheme, format: format.name }, archiveSha256 }
}

/** Whether fetchFromArchive needs the trove's files for an archive of this format (see PackageFormat.fetchesByDigest). */
export const fetchNeedsFiles = (format: string): boolean => formatWhere((f) => f.name === format).fetchesByDigest !== true

/** Streams the wanted contents of a trove's archive into the store, each verified. */
export const fetchFromArchive = async (
  format: string,
  archive: string,
  files: ReadonlyArray<TroveFile>,
  wanted: ReadonlySet<string>,
  store: ContentStore,
): Promise<void> => {
  mustBeRegular(archive)
  const f = formatWhere((f) => f.name === format)
  return (await (f.fetcher?.() ?? f.reader().then((r) => r.fetch)))(archive, files, wanted, store)
}
