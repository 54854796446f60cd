import type { NewTrove } from "../db/troves.js"
import type { TroveFile } from "../model/trove.js"
import type { ContentStore } from "../store/store.js"
import { archFormat } from "./arch.js"
import { debFormat } from "./deb.js"
import { groupFormat } from "./group.js"
import { nativeFormat } from "./native.js"
import { rpmFormat } from "./rpm.js"
import type { PackageFormat } from "./package-format.js"

// The package formats conary reads, one line each. Sources, repositories and
// apply go through here, not to a format directly.
const FORMATS: readonly [PackageFormat, ...PackageFormat[]] = [nativeFormat, debFormat, archFormat, rpmFormat, groupFormat]

/** Format names, for the repository index to check. */
export const FORMAT_NAMES = FORMATS.map((f) => f.name) as [string, ...string[]]

// A name no format claims goes to the first, whose reader says what is wrong
// with the file (`repo build` takes an archive by any name).
const formatWhere = (test: (f: PackageFormat) => boolean): PackageFormat => FORMATS.find(test) ?? FORMATS[0]

export const isTroveArchive = (name: string): boolean => FORMATS.some((f) => f.claims(name))

/** Reads an archive's trove metadata, and the archive's own sha256 (with `store`, see PackageFormat.read). */
export const readTroveArchive = async (file: string, store?: ContentStore): Promise<{ trove: NewTrove; archiveSha256: string }> => {
  const format = formatWhere((f) => f.claims(file))
  const { trove, archiveSha256 } = await format.read(file, store)
  return { trove: { ...trove, scheme: format.scheme, format: format.name }, archiveSha256 }
}

/** Whether fetchFromArchive needs the trove's files for an archive of this format (see PackageFormat.fetchesByDigest). */
export const fetchNeedsFiles = (format: string): boolean => formatWhere((f) => f.name === format).fetchesByDigest !== true

/** Streams the wanted contents of a trove's archive into the store, each verified. */
export const fetchFromArchive = (
  format: string,
  archive: string,
  files: ReadonlyArray<TroveFile>,
  wanted: ReadonlySet<string>,
  store: ContentStore,
): Promise<void> => formatWhere((f) => f.name === format).fetch(archive, files, wanted, store)
