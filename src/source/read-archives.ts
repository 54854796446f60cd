import type { NewTrove } from "../db/troves.js"
import { ArchiveError, describeIo } from "../errors.js"
import type { ContentStore } from "../store/store.js"
import { LanesFailed, onEveryCore } from "./archive-lanes.js"
import { readTroveArchive } from "./formats.js"

// Reads package archives (src/source/formats.ts readTroveArchive) for
// `source sync`, on every core (archive-lanes.ts).

export interface ReadRequest {
  readonly seq: number
  readonly archive: string
}

export type ReadReply =
  | { readonly trove: NewTrove; readonly archiveSha256: string }
  /** the archive cannot be read: the ArchiveError's reason */
  | { readonly bad: string }
  /** a failure that is not the archive's (a bug) */
  | { readonly failed: string }

export type ReadResult = { readonly trove: NewTrove; readonly archiveSha256: string } | { readonly bad: ArchiveError }

/** A failure to read one archive, as an ArchiveError; undefined for anything else (a bug). */
export const archiveErrorOf = (archive: string, e: unknown): ArchiveError | undefined => {
  if (e instanceof ArchiveError) return e
  if ((e as NodeJS.ErrnoException).code !== undefined) return new ArchiveError({ archive, reason: describeIo(e) })
  return undefined
}

/** Reads one archive (in a worker, or here). */
export const readOne = async (archive: string, store: ContentStore | undefined): Promise<ReadReply> => {
  try {
    const { trove, archiveSha256 } = await readTroveArchive(archive, store)
    return { trove, archiveSha256 }
  } catch (e) {
    const bad = archiveErrorOf(archive, e)
    // Anything else is a bug, not the archive's fault: it stops the sync.
    return bad ? { bad: bad.reason } : { failed: (e as Error).message ?? String(e) }
  }
}

/**
 * Reads `archives` (with their sizes) on every core (see archive-lanes.ts),
 * calling `onRead` with each one's index and result as it comes (in any
 * order). With `store`, the contents decompressed go into it (see
 * PackageFormat.read); the caller makes them durable.
 */
export const readArchives = (
  archives: ReadonlyArray<{ readonly archive: string; readonly size: number }>,
  store: ContentStore | undefined,
  onRead: (index: number, result: ReadResult) => void,
): Promise<void> =>
  onEveryCore<ReadReply>({
    sizes: archives.map((a) => a.size),
    workerData: { store: store?.dir },
    here: (i) => readOne(archives[i]!.archive, store),
    request: (i) => ({ archive: archives[i]!.archive }) satisfies Omit<ReadRequest, "seq">,
    answer: (i, reply) => {
      if ("failed" in reply) throw new LanesFailed(`reading ${archives[i]!.archive}: ${reply.failed}`)
      onRead(i, "bad" in reply ? { bad: new ArchiveError({ archive: archives[i]!.archive, reason: reply.bad }) } : reply)
    },
  })
