import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { ContentStore } from "../store/store.js"
import { unzstd } from "./decompress.js"
import {
  Entry,
  FORMAT_VERSION,
  MAX_META,
  PREVIOUS_FORMAT,
  type PatchRef,
  PartV2,
  TOP,
  Top,
  TopV2,
  bucketCount,
  bucketOf,
  decodeJson,
  formatVersionOf,
  objectFile,
  openEnvelope,
  signEnvelope,
} from "./repo-meta.js"
import { decodePatch, diff, lineHash, linesOf, nextPatches, partBytes, patchBytes, stateDigest } from "./repo-state.js"
import { sha256Of } from "../sha256.js"

// The metadata a build writes (repo-meta.ts, repo-state.ts): the parts, the
// patches from the states before, and the top document naming them.

/** How many earlier states a build writes patches from: a client further behind reads the parts. */
export const MAX_PATCHES = 16

/** What a repository on disk holds now: its top document, and every trove's metadata line by trove digest. */
export interface Published {
  readonly top: Top | undefined
  /** a format version 2 repository's serial (it is rebuilt as version 3, keeping its roots and counting on) */
  readonly version: number
  readonly lines: ReadonlyMap<string, string>
}

/** An object of the repository on disk, decompressed within `size`. */
export const readObject = (out: string, sha256: string, size: number): Buffer => unzstd(fs.readFileSync(path.join(out, objectFile(sha256))), size)

const digestOf = (line: string, fail: (reason: string) => Error) => decodeJson(Entry, line, fail).digest

export const readPublished = (out: string, fail: (reason: string) => Error): Published | undefined => {
  const file = path.join(out, TOP)
  if (!fs.existsSync(file)) return undefined
  const signed = openEnvelope(unzstd(fs.readFileSync(file), MAX_META), fail).signed
  const lines = new Map<string, string>()
  if (formatVersionOf(signed) === PREVIOUS_FORMAT) {
    const v2 = decodeJson(TopV2, signed, fail)
    for (const part of v2.parts)
      for (const t of decodeJson(PartV2, readObject(out, part.sha256, part.size), fail).troves) {
        const line = JSON.stringify(t)
        lines.set(digestOf(line, fail), line)
      }
    return { top: undefined, version: v2.version, lines }
  }
  const top = decodeJson(Top, signed, fail)
  for (const part of top.parts) for (const line of linesOf(readObject(out, part.sha256, part.size).toString())) lines.set(digestOf(line, fail), line)
  return { top, version: top.version, lines }
}

export interface MetadataOptions {
  /** the repository */
  readonly out: string
  readonly fail: (reason: string) => Error
  /** where new objects go (uncompressed; compressed and moved in by the caller) */
  readonly store: ContentStore
  /** whether the repository or the store has an object already */
  readonly present: (sha256: string) => boolean
  readonly expires: string
  readonly now: string
  readonly key: crypto.KeyObject | undefined
}

const byNameThenDigest = (a: { name: string; digest: string }, b: { name: string; digest: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0

/**
 * Writes the parts of the new state, the patches to it from the last
 * MAX_PATCHES states, and the signed top document (`topFile`, uncompressed).
 * An unchanged bucket is the same part object; an unchanged state keeps its
 * patches.
 */
export const writeMetadata = (
  old: Published | undefined,
  entries: ReadonlyMap<string, string>,
  o: MetadataOptions,
): { version: number; topFile: string } => {
  const put = (bytes: Buffer) => {
    const sha256 = sha256Of(bytes)
    if (!o.present(sha256)) o.store.putBuffer(bytes, sha256)
    return { sha256, size: bytes.length }
  }
  // Parts: the troves whose names hash to one bucket, sorted, so an unchanged bucket is the same object.
  const buckets = bucketCount(entries.size, old?.top?.buckets)
  const byBucket = new Map<number, Array<{ name: string; digest: string; line: string }>>()
  const newest = new Map<string, string>()
  for (const [digest, line] of entries) {
    const name = (JSON.parse(line) as { name: string }).name
    const b = bucketOf(name, buckets)
    let list = byBucket.get(b)
    if (!list) byBucket.set(b, (list = []))
    list.push({ name, digest, line })
    newest.set(lineHash(line), line)
  }
  const parts = [...byBucket.keys()].sort((x, y) => x - y).map((b) => put(partBytes(byBucket.get(b)!.sort(byNameThenDigest).map((t) => t.line))))
  const state = stateDigest(newest.keys())

  // Patches: from the state before (a diff), and from each earlier one (the patch from it to the state before, composed with that diff).
  let patches: ReadonlyArray<PatchRef> = []
  const previous = old?.top
  if (previous && previous.state === state) patches = previous.patches
  else if (previous) {
    const before = new Set([...old!.lines.values()].map(lineHash))
    const last = diff(before, previous.state, newest)
    const earlier = previous.patches.map((p) => decodePatch(readObject(o.out, p.sha256, p.size), o.fail))
    patches = nextPatches(earlier, last, newest, MAX_PATCHES).map((p) => ({ from: p.from, ...put(patchBytes(p)) }))
  }

  const top: Top = {
    type: "repo",
    formatVersion: FORMAT_VERSION,
    version: (old?.version ?? 0) + 1,
    expires: o.expires,
    generatedAt: o.now,
    state,
    buckets,
    parts,
    patches,
  }
  const topFile = path.join(o.store.dir, "top.json")
  fs.writeFileSync(topFile, signEnvelope(top, o.key ? [o.key] : []))
  return { version: top.version, topFile }
}
