import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { forEachBounded } from "../batch.js"
import type { Db } from "../db/connection.js"
import { deltasTo, installedPaths, packedSizes } from "../db/deltas.js"
import { type DeltaRef, DeltaError, applyDelta } from "../source/delta.js"
import { HttpFailure, getDocument } from "../source/http.js"
import { type WantedObject, isHttp } from "../source/remote.js"
import { deltaFile } from "../source/repo-meta.js"
import type { ContentStore } from "../store/store.js"
import type { Report } from "../model/report.js"
import { archivesOf } from "../db/troves.js"
import type { Plan } from "../model/plan-schema.js"
import { readRegular, writesContent } from "./apply.js"

// The client's choice of how to get each content it lacks from a
// repository: the smallest delta listed from a content it holds (in the
// store, or an installed file, checked against its sha256 when read), else
// the full object. A delta that cannot be used (not served, corrupt, its
// base gone, a wrong result) falls back to the full object, and is counted.

/** Deltas applied at once: each holds its base and result in memory. */
const CONCURRENCY = 4

/** How the contents a plan lacks will be fetched, and how many bytes that downloads. */
export interface DownloadEstimate {
  readonly bytes: number
  readonly deltas: number
  readonly full: number
}

/** What fetching by delta did: deltas applied, their bytes, and each fallback to the full object. */
export interface DeltaReport {
  readonly deltas: number
  readonly bytes: number
  readonly fallbacks: ReadonlyArray<{ readonly sha256: string; readonly reason: string }>
}

interface Choice {
  readonly ref: DeltaRef
  /** installed files that held the base when planned (the store did not) */
  readonly installed: ReadonlyArray<string>
}

/** The delta chosen for each content: the smallest whose base the store or an installed file holds, and smaller than the full object. */
const choose = (db: Db, store: ContentStore, wanted: ReadonlyArray<{ sha256: string; size: number }>): Map<string, Choice> => {
  const shas = wanted.map((w) => w.sha256)
  const sizes = new Map(wanted.map((w) => [w.sha256, w.size]))
  const deltas = deltasTo(db, shas)
  if (deltas.size === 0) return new Map()
  const packed = packedSizes(db, shas)
  const bases = [...new Set([...deltas.values()].flat().map((d) => d.from))].filter((b) => !store.has(b))
  const onDisk = installedPaths(db, bases)
  const chosen = new Map<string, Choice>()
  for (const [to, refs] of deltas) {
    const full = packed.get(to) ?? Infinity
    for (const ref of refs) {
      // Never more than the full object, nor than the content itself (a manifest's sizes are input like any other).
      if (ref.size >= full || ref.size > sizes.get(to)! + 1024) break
      const installed = store.has(ref.from) ? [] : (onDisk.get(ref.from) ?? [])
      if (!store.has(ref.from) && installed.length === 0) continue
      chosen.set(to, { ref, installed })
      break
    }
  }
  return chosen
}

/** The bytes fetching `wanted` (repository contents the store lacks) will download: deltas where chosen, else full objects. */
const estimateDownload = (db: Db, store: ContentStore, wanted: ReadonlyArray<{ sha256: string; size: number }>): DownloadEstimate => {
  const lacking = [...new Map(wanted.filter((w) => !store.has(w.sha256)).map((w) => [w.sha256, w])).values()]
  const chosen = choose(db, store, lacking)
  const packed = packedSizes(db, lacking.map((w) => w.sha256))
  let bytes = 0
  for (const w of lacking) bytes += chosen.get(w.sha256)?.ref.size ?? packed.get(w.sha256) ?? w.size
  return { bytes, deltas: chosen.size, full: lacking.length - chosen.size }
}

/** What applying `plan` will download: the contents it writes that the store lacks, of troves only repositories offer (archives are read where they are). */
export const planDownload = (db: Db, store: ContentStore, plan: Plan): DownloadEstimate => {
  const onlyRepos = new Map<number, boolean>()
  const fromRepo = (troveId: number) => {
    let r = onlyRepos.get(troveId)
    if (r === undefined) {
      const refs = archivesOf(db, troveId)
      onlyRepos.set(troveId, (r = refs.length > 0 && refs.every((a) => a.kind === "repo")))
    }
    return r
  }
  return estimateDownload(db, store, plan.files.filter((op) => writesContent(op) && fromRepo(op.troveId)).map((op) => ({ sha256: op.sha256!, size: op.size })))
}

/** The base of a delta: from the store, or an installed file that still hashes to it. */
const baseOf = (store: ContentStore, root: string, choice: Choice): Buffer | undefined => {
  if (store.has(choice.ref.from)) return fs.readFileSync(store.pathOf(choice.ref.from))
  for (const p of choice.installed) {
    const data = readRegular(path.join(root, p))
    if (data && createHash("sha256").update(data).digest("hex") === choice.ref.from) return data
  }
  return undefined
}

/** A delta object's bytes from the first location that serves exactly its size; its digest is checked by applyDelta. */
const readDelta = async (w: WantedObject, ref: DeltaRef): Promise<Buffer | string> => {
  const failures: string[] = []
  for (const { bases } of w.repos)
    for (const base of bases) {
      const rel = deltaFile(ref.sha256)
      try {
        if (isHttp(base)) {
          const doc = await getDocument(`${base.replace(/\/+$/, "")}/${rel}`, ref.size)
          if (doc.status === "ok") return doc.body
          failures.push(`${base}: not served`)
        } else {
          const file = path.join(base, rel)
          const st = fs.statSync(file, { throwIfNoEntry: false })
          if (st?.isFile() && st.size === ref.size) return fs.readFileSync(file)
          failures.push(`${base}: ${st ? "wrong size" : "missing"}`)
        }
      } catch (e) {
        if (!(e instanceof HttpFailure)) throw e
        failures.push(e.message)
      }
    }
  return `the delta could not be read (${failures.join("; ") || "no repository"})`
}

/**
 * Fetches into the store, by delta, each of `wanted` for which one is
 * chosen. What this leaves missing (no delta, or a fallback) the caller
 * fetches as full objects.
 */
export const fetchByDeltas = async (
  db: Db,
  store: ContentStore,
  root: string,
  wanted: ReadonlyArray<WantedObject>,
  report: Report,
): Promise<DeltaReport> => {
  const lacking = wanted.filter((w) => !store.has(w.sha256))
  const chosen = choose(db, store, lacking)
  const todo = lacking.filter((w) => chosen.has(w.sha256))
  const fallbacks: Array<{ sha256: string; reason: string }> = []
  let deltas = 0
  let bytes = 0
  if (todo.length === 0) return { deltas, bytes, fallbacks }
  report.start("patch", todo.length)
  await forEachBounded(todo, CONCURRENCY, async (w) => {
    const choice = chosen.get(w.sha256)!
    const fallback = (reason: string) => void fallbacks.push({ sha256: w.sha256, reason })
    try {
      const base = baseOf(store, root, choice)
      if (!base) return fallback(`its base ${choice.ref.from.slice(0, 16)} is no longer held`)
      const delta = await readDelta(w, choice.ref)
      if (typeof delta === "string") return fallback(delta)
      bytes += delta.length
      store.putBuffer(applyDelta(base, delta, choice.ref, w.size), w.sha256)
      deltas++
    } catch (e) {
      if (!(e instanceof DeltaError)) throw e
      fallback(e.message)
    } finally {
      report.tick()
    }
  })
  report.done()
  return { deltas, bytes, fallbacks }
}
