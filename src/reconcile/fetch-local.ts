import type { Db } from "../db/connection.js"
import { type ArchiveRef, troveFilesLookup } from "../db/troves.js"
import type { Plan } from "../model/plan-schema.js"
import type { Report } from "../model/report.js"
import { onEveryCore } from "../source/archive-lanes.js"
import { type FetchJob, type FetchReply, errorOfFailure, errorOfStopped, fetchOne } from "../source/fetch-archive.js"
import { fetchNeedsFiles } from "../source/formats.js"
import type { CopiedStat, StageTarget, Waits } from "../store/copy-out.js"
import { DigestBuckets } from "../store/digest-buckets.js"
import { ContentStore, type StoredElsewhere } from "../store/store.js"

// apply's fetch from local archives (directory sources) on every core: each
// trove's wanted contents are a job (source/fetch-archive.ts) for this thread
// or a worker, which stores them and writes each to the stage paths waiting
// for it. A content's stage paths go with the first job sent that wants it;
// whatever a job leaves unwritten is copied out of the store afterwards.

/**
 * Lanes at most, however many cores: each worker adds ~35 MB to the peak of
 * a 200,000-file apply (its heap, and the arena malloc keeps for the buffers
 * zlib inflates each archive into).
 */
export const FETCH_LANES = 4

/** Stage paths (by number) that a content fetched is written to as it is stored. */
export interface Staging {
  /** the stage paths still waiting for each content */
  readonly waits: Waits
  readonly target: (i: number) => StageTarget
  /** a stage path written, its bytes verified, with the stat of the descriptor that wrote them */
  readonly onWritten: (i: number, stat: CopiedStat) => void
  /** a stage path found taken: not apply's, so never removed */
  readonly onTaken: (i: number) => void
}

export interface LocalFetch {
  /** troves whose every wanted content an archive gave */
  readonly fetched: ReadonlySet<number>
  /** by content: why each source tried could not give it */
  readonly tried: ReadonlyMap<string, string[]>
}

/**
 * The contents a fetch stored, known by the plan rows that want them: a
 * content is stored once its first wanting row is marked. The store's own
 * index would hold each digest again (8.6 MB at 200,000 files, at apply's peak).
 */
class StoredContents implements StoredElsewhere {
  private readonly rows: DigestBuckets
  private readonly marked: Uint8Array

  constructor(plan: Plan, wanting: Iterable<number>) {
    this.rows = new DigestBuckets(plan.files, wanting)
    this.marked = new Uint8Array(plan.files.length)
  }

  add(sha256: string): void {
    const row = this.firstRow(sha256)
    if (row >= 0) this.marked[row] = 1
  }

  delete(sha256: string): void {
    const row = this.firstRow(sha256)
    if (row >= 0) this.marked[row] = 0
  }

  has(sha256: string): boolean {
    const row = this.firstRow(sha256)
    return row >= 0 && this.marked[row] === 1
  }

  /** The first row that wants the content, which carries its mark; -1 when none does. */
  private firstRow(sha256: string): number {
    let first = -1
    this.rows.find(sha256, (i) => {
      first = i
      return true
    })
    return first
  }
}

/**
 * Fetches the wanted contents (plan file indices, by trove) of troves that
 * have local archives. An archive that cannot be read is one source
 * failing, unless it is the trove's only source: then apply stops.
 */
export const fetchFromLocalArchives = async (
  ctx: { readonly db: Db; readonly store: ContentStore; readonly report: Report },
  plan: Plan,
  troves: ReadonlyArray<readonly [troveId: number, ops: Int32Array, refs: ReadonlyArray<ArchiveRef>]>,
  staging: Staging | undefined,
): Promise<LocalFetch> => {
  const { store, report } = ctx
  const fetched = new Set<number>()
  const tried = new Map<string, string[]>()
  const stored = new StoredContents(
    plan,
    (function* () {
      for (const [, ops] of troves) yield* ops
    })(),
  )
  // What the lanes store, the store knows from here on (for this apply's later lookups: merge bases, delta bases, repositories).
  store.knowsToo(stored)
  const filesOf = troveFilesLookup(ctx.db)
  const lane = new ContentStore(store.dir, false)
  const local = troves.map(([, , refs]) => refs.filter((r) => r.kind !== "repo"))
  const sent: Array<FetchJob | undefined> = []
  // Made as a lane takes the trove: contents stored by then (another trove's) are not fetched again.
  const jobOf = (k: number): FetchJob => {
    const [troveId, ops] = troves[k]!
    const wanted = new Set<string>()
    for (const i of ops) {
      const sha256 = plan.files.sha256(i)!
      if (!store.has(sha256)) wanted.add(sha256)
    }
    const stage: Array<readonly [string, ReadonlyArray<readonly [number, StageTarget]>]> = []
    if (staging)
      for (const sha256 of wanted) {
        const paths = staging.waits.take(sha256)
        if (paths) stage.push([sha256, paths.map((i) => [i, staging.target(i)] as const)])
      }
    const format = local[k]![0]!.format
    const job = { format, archives: local[k]!.map((r) => r.archive), files: fetchNeedsFiles(format) ? filesOf(troveId) : [], wanted: [...wanted], stage }
    sent[k] = job
    return job
  }
  report.start("fetch", troves.length)
  await onEveryCore<FetchReply>({
    sizes: local.map((refs) => refs[0]!.size),
    // The lanes' stores look nothing up and remember nothing (StoredContents does): the wanted contents are what this thread found missing.
    workerData: { store: store.dir, remembers: false },
    maxLanes: FETCH_LANES,
    here: (k) => fetchOne(jobOf(k), lane),
    request: (k) => ({ fetch: jobOf(k) }),
    answer: (k, reply) => {
      const [troveId, , refs] = troves[k]!
      const job = sent[k]!
      sent[k] = undefined
      for (const [i, ino, mtimeNs, ctimeNs] of reply.written) staging?.onWritten(i, { ok: true, ino, mtimeNs, ctimeNs })
      for (const i of reply.taken) staging?.onTaken(i)
      if (reply.error) throw errorOfStopped(reply.error)
      for (const sha256 of reply.from >= 0 ? job.wanted : reply.stored) stored.add(sha256)
      if (reply.from >= 0) fetched.add(troveId)
      const onlyChoice = local[k]!.length === 1 && refs.length === 1
      reply.failures.forEach((f, a) => {
        const e = errorOfFailure(f)
        if (onlyChoice) throw e
        for (const sha256 of job.wanted) tried.set(sha256, [...(tried.get(sha256) ?? []), `source ${local[k]![a]!.source}: ${e.message}`])
      })
      report.tick()
    },
  })
  report.done()
  return { fetched, tried }
}
