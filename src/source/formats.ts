import type { NewTrove } from "../db/troves.js"
import { type ContentStore, sha256OfFile } from "../store/store.js"
import { DEB_EXTENSION, extractDebObjects, readDeb } from "./deb.js"
import { NATIVE_EXTENSION, extractNativeObjects, readNativeManifest } from "./native.js"
import type { TroveFile } from "../model/trove.js"

// One reader and one fetcher per package format (Yarn's resolvers and
// fetchers): sources and apply go through here, not to a format directly.

export const isTroveArchive = (name: string): boolean => name.endsWith(NATIVE_EXTENSION) || name.endsWith(DEB_EXTENSION)

/** Reads an archive's trove metadata, and the archive's own sha256. */
export const readTroveArchive = async (file: string): Promise<{ trove: NewTrove; archiveSha256: string }> => {
  if (file.endsWith(DEB_EXTENSION)) {
    const deb = await readDeb(file)
    return { trove: { ...deb, scheme: "deb", format: "deb" }, archiveSha256: deb.digest }
  }
  const native = await readNativeManifest(file)
  return { trove: { ...native, scheme: "native", format: "native" }, archiveSha256: await sha256OfFile(file) }
}

/** Streams the wanted contents of a trove's archive into the store, each verified. */
export const fetchFromArchive = async (
  format: string,
  archive: string,
  files: ReadonlyArray<TroveFile>,
  wanted: ReadonlySet<string>,
  store: ContentStore,
): Promise<void> => {
  if (format !== "deb") return extractNativeObjects(archive, wanted, store)
  // A .deb names its contents by path, not by hash.
  const byPath = new Map<string, string>()
  for (const f of files) if (f.sha256 !== null && wanted.has(f.sha256)) byPath.set(f.path, f.sha256)
  return extractDebObjects(archive, byPath, store)
}
