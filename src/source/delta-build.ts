import { createHash } from "node:crypto"
import { compareVersions } from "../desired/version.js"
import type { VersionScheme } from "../model/trove.js"
import { type DeltaRef, MAX_DELTA_CONTENT, makeDelta } from "./delta.js"

// Which deltas `repo build` makes: for each content a new trove version
// brings, one from the content at the same path in each of the previous N
// versions of the trove (or, for a path that is new, from the file of that
// version whose path differs only in its numbers, as a library's soname
// version does: libfoo.so.1.2 -> libfoo.so.1.3), kept only when clearly
// smaller than the full object (a few bytes saved on a tiny file are not
// worth the manifest entry).

/** Deltas against this many previous versions, unless told otherwise. */
export const DEFAULT_DELTA_DEPTH = 2

/** A delta is kept only when at most this share of the full object's compressed bytes... */
const KEEP_RATIO = 0.8
/** ...and saves more than its entry in the manifest costs (three digests in JSON). */
const MIN_SAVING = 256

/** A trove version as far as choosing its predecessors goes. */
export interface DeltaTrove {
  readonly digest: string
  readonly name: string
  readonly flavor: string
  readonly version: string
  readonly scheme: VersionScheme
}

/** A trove version's files (paths relative or rooted, the same way on both sides). */
export type DeltaFiles = ReadonlyArray<{ readonly path: string; readonly sha256?: string | null; readonly size: number; readonly ghost?: boolean }>

/** A delta made, with its bytes, not yet compared with the full object. */
export interface Candidate {
  readonly ref: DeltaRef
  readonly bytes: Buffer
}

/** The previous versions of `trove` among `known` (same name and flavor, older), newest first, at most `depth`. */
export const previousVersions = <T extends DeltaTrove>(trove: DeltaTrove, known: Iterable<T>, depth: number): T[] =>
  [...known]
    .filter((k) => k.digest !== trove.digest && k.name === trove.name && k.flavor === trove.flavor && k.scheme === trove.scheme)
    .filter((k) => compareVersions(trove.scheme, k.version, trove.version) < 0)
    .sort((a, b) => compareVersions(trove.scheme, b.version, a.version))
    .slice(0, depth)

/** A path with its digit runs folded: libfoo.so.1.2 and libfoo.so.1.3 are one path across versions. */
const fold = (p: string) => p.replace(/[0-9]+/g, "#")

const contents = (files: DeltaFiles) => files.filter((f) => typeof f.sha256 === "string" && !f.ghost) as Array<{ path: string; sha256: string; size: number }>

/** The (from, to) content pairs a delta is worth trying for: new contents of a trove against each earlier version's. */
export const deltaPairs = (trove: DeltaFiles, previous: ReadonlyArray<DeltaFiles>): Array<{ from: string; to: string; fromSize: number; toSize: number }> => {
  const pairs = new Map<string, { from: string; to: string; fromSize: number; toSize: number }>()
  for (const prev of previous) {
    const byPath = new Map(contents(prev).map((f) => [f.path, f]))
    const byFolded = new Map<string, Array<{ path: string; sha256: string; size: number }>>()
    for (const f of contents(prev)) byFolded.set(fold(f.path), [...(byFolded.get(fold(f.path)) ?? []), f])
    const held = new Set(contents(prev).map((f) => f.sha256))
    for (const f of contents(trove)) {
      if (held.has(f.sha256) || f.size === 0) continue
      // The closest earlier content of a renamed path: the nearest in size among the same folded path.
      const base = byPath.get(f.path) ?? byFolded.get(fold(f.path))?.sort((a, b) => Math.abs(a.size - f.size) - Math.abs(b.size - f.size))[0]
      if (!base || base.sha256 === f.sha256 || base.size === 0 || base.size > MAX_DELTA_CONTENT || f.size > MAX_DELTA_CONTENT) continue
      pairs.set(`${base.sha256}:${f.sha256}`, { from: base.sha256, to: f.sha256, fromSize: base.size, toSize: f.size })
    }
  }
  return [...pairs.values()]
}

/** Makes the deltas of `pairs`, reading contents with `read`. */
export const makeDeltas = (pairs: ReadonlyArray<{ from: string; to: string }>, read: (sha256: string) => Buffer): Candidate[] => {
  const made: Candidate[] = []
  for (const p of pairs) {
    const delta = makeDelta(read(p.from), read(p.to))
    if (!delta) continue
    const ref: DeltaRef = {
      from: p.from,
      to: p.to,
      sha256: createHash("sha256").update(delta.bytes).digest("hex"),
      size: delta.bytes.length,
      ...(delta.gzip ? { gzip: delta.gzip } : {}),
    }
    made.push({ ref, bytes: delta.bytes })
  }
  return made
}

/** Whether a delta is clearly smaller than the full object (compressed, `fullSize` bytes) it replaces. */
export const worthKeeping = (c: Candidate, fullSize: number) => c.ref.size <= fullSize * KEEP_RATIO && fullSize - c.ref.size > MIN_SAVING
