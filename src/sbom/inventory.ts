import type { Db } from "../db/connection.js"
import { installedFileDigests, installedOwnersLookup, installedTroves, lastGenerationTime } from "../db/state.js"
import { type Provenance, provenanceByTrove, troveOrigins } from "../db/troves.js"
import type { Reason } from "../model/plan-schema.js"
import { type TroveMeta, depKey, parseDep, parseDepGroup } from "../model/trove.js"
import { provides } from "../reconcile/resolve.js"
import { purlOf } from "./purl.js"

// What an SBOM says about a root, whatever its format: every installed trove
// with its package URL, licence, provenance (as `show` gives it), the
// installed troves each of its requirements was met by, and optionally its
// files. Sorted, so the same root gives the same document.

export interface SbomTrove {
  /** unique in the document: the package URL */
  readonly ref: string
  readonly purl: string
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly format: string
  /** the trove's identity (sha256 of a .deb, of a native manifest) */
  readonly digest: string
  readonly license?: string
  readonly reason: Reason
  /** as `show` gives it, oldest first; the first one's archive sha256 is the component's hash */
  readonly provenance: ReadonlyArray<Provenance>
  /** refs of the installed troves that met its requirements */
  readonly dependsOn: ReadonlyArray<string>
  /** regular files: path and sha256, by path (with --files) */
  readonly files?: ReadonlyArray<readonly [string, string]>
}

export interface Inventory {
  readonly troves: ReadonlyArray<SbomTrove>
  /** when the newest generation was made (the state the document describes) */
  readonly timestamp: string
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * For each trove, the installed troves that met each requirement: those
 * satisfying its first alternative that anything installed satisfies (by
 * name or provide, or for `file:` by owning the path, as the resolver does).
 */
const dependencyGraph = (troves: ReadonlyArray<TroveMeta>, ownersOf: (path: string) => ReadonlyArray<number>): Map<number, number[]> => {
  const byProvided = new Map<string, TroveMeta[]>()
  for (const t of troves) {
    for (const key of new Set([t.name, ...t.provides.flatMap((p) => { const d = parseDep(p); return d ? [depKey(d)] : [] })])) {
      let list = byProvided.get(key)
      if (!list) byProvided.set(key, (list = []))
      list.push(t)
    }
  }
  const graph = new Map<number, number[]>()
  for (const t of troves) {
    const met = new Set<number>()
    for (const req of t.requires) {
      for (const dep of parseDepGroup(req) ?? []) {
        const by = (byProvided.get(depKey(dep)) ?? []).filter((p) => provides(p, dep)).map((p) => p.id)
        if (dep.class === "file") by.push(...ownersOf(dep.name))
        const others = by.filter((id) => id !== t.id)
        for (const id of others) met.add(id)
        if (by.length > 0) break
      }
    }
    graph.set(t.id, [...met])
  }
  return graph
}

const ownersOf = (db: Db) => {
  const lookup = installedOwnersLookup(db)
  return (path: string) => lookup(path).map((o) => o.troveId)
}

export const takeInventory = (db: Db, options: { readonly files: boolean }): Inventory => {
  const installed = installedTroves(db)
  const origins = troveOrigins(db)
  const provenance = provenanceByTrove(db)
  const files = options.files ? installedFileDigests(db) : undefined
  const purls = new Map<number, string>()
  const refs = new Map<number, string>()
  const seen = new Set<string>()
  for (const { trove } of installed) {
    const origin = origins.get(trove.id)!
    const purl = purlOf({ ...trove, format: origin.format, archiveSha256: provenance.get(trove.id)?.[0]?.archiveSha256 })
    // Installed troves differ in name, version or flavor, so their purls do; the digest keeps a ref unique regardless.
    const ref = seen.has(purl) ? `conary:trove:${origin.digest}` : purl
    seen.add(ref)
    purls.set(trove.id, purl)
    refs.set(trove.id, ref)
  }
  const graph = dependencyGraph(installed.map((i) => i.trove), ownersOf(db))
  const troves = installed.map(({ trove, reason }): SbomTrove => {
    const origin = origins.get(trove.id)!
    return {
      ref: refs.get(trove.id)!,
      purl: purls.get(trove.id)!,
      name: trove.name,
      version: trove.version,
      flavor: trove.flavor,
      format: origin.format,
      digest: origin.digest,
      ...(trove.license === undefined ? {} : { license: trove.license }),
      reason,
      provenance: provenance.get(trove.id) ?? [],
      dependsOn: graph.get(trove.id)!.map((id) => refs.get(id)!).sort(byString),
      ...(files ? { files: files.get(trove.id) ?? [] } : {}),
    }
  })
  troves.sort((a, b) => byString(a.ref, b.ref))
  return { troves, timestamp: lastGenerationTime(db) ?? new Date(0).toISOString() }
}
