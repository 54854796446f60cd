import type { NewTrove } from "../db/troves.js"
import type { TroveFile, VersionScheme } from "../model/trove.js"
import type { ContentStore } from "../store/store.js"

/**
 * What conary needs of a package format (Yarn's resolvers and fetchers in
 * one): a new format implements a FormatReader in one module and takes one
 * entry in ./formats.ts. Nothing outside src/source learns a format's name.
 */
export interface PackageFormat {
  /** recorded with each trove it reads (troves.format), so apply finds the format again */
  readonly name: string
  /** which ordering the format's versions follow */
  readonly scheme: VersionScheme
  /** whether a file name is one of this format's archives */
  readonly claims: (file: string) => boolean
  /** whether its reader's fetch finds contents by their sha256 alone (and ignores `files`: apply then reads no trove's files for it) */
  readonly fetchesByDigest?: boolean
  /**
   * its module, loaded when an archive of the format is first read or
   * fetched: a sync worker reading .debs loads no other format's code
   */
  readonly reader: () => Promise<FormatReader>
  /** its reader's fetch alone, when a module smaller than the reader's has it (apply's archive workers load only that) */
  readonly fetcher?: () => Promise<FormatReader["fetch"]>
}

/** A format's code: reading its archives, and fetching contents from them. */
export interface FormatReader {
  /**
   * an archive's metadata and manifest, and the archive's own sha256; with `store`, each content it
   * decompresses to hash is put there too (best effort), so apply need not decompress it again
   */
  readonly read: (file: string, store?: ContentStore) => Promise<{ trove: Omit<NewTrove, "scheme" | "format">; archiveSha256: string }>
  /** streams the wanted contents (by sha256) of an archive of `files` into the store, each verified; fails when the archive lacks one */
  readonly fetch: (archive: string, files: ReadonlyArray<TroveFile>, wanted: ReadonlySet<string>, store: ContentStore) => Promise<void>
}
