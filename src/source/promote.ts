import * as path from "node:path"
import { parseSpec } from "../desired/rows.js"
import { compareVersions, matchesVersionSpec } from "../desired/version.js"
import { SourceError, UsageError } from "../errors.js"
import type { Report } from "../model/report.js"
import { troveLabel } from "../model/trove.js"
import type { ContentStore } from "../store/store.js"
import { type WantedObject, fetchObjects, isHttp, readRepoFile } from "./remote.js"
import { INDEX, type RepoIndex, SIGNATURE, decodeIndex, verifySignature } from "./repo.js"

// Promotion: troves chosen from one repository's index (a group with every
// member, nested groups too) and their objects, for `repo build` to publish
// into another, so production holds exactly what staging tested.

type Entry = RepoIndex["troves"][number]

/** Index entries to add to a repository, and how to put their objects into its store. */
export interface Imported {
  readonly entries: ReadonlyArray<Entry>
  readonly fetch: (store: ContentStore) => Promise<void>
}

/** The newest troves matching a spec (`group-web=2026.11-1-1`, `'nginx[ssl]'`), every flavor of that version unless one is named. */
const matching = (troves: ReadonlyArray<Entry>, text: string, from: string): Entry[] => {
  const spec = parseSpec(text)
  if (spec.member || spec.component) throw new UsageError({ message: `--trove ${text}: name a whole trove (name=version[flavor])` })
  const found = troves.filter(
    (t) => t.name === spec.name && matchesVersionSpec(t.version, spec.version) && (!spec.flavor || t.flavor === spec.flavor),
  )
  if (found.length === 0) {
    const versions = troves.filter((t) => t.name === spec.name).map((t) => t.version)
    throw new UsageError({ message: `--trove ${text}: not in ${from}${versions.length > 0 ? ` (it has ${[...new Set(versions)].join(", ")})` : ""}` })
  }
  const newest = found.reduce((a, b) => (compareVersions(b.scheme, b.version, a.version) > 0 ? b : a))
  return found.filter((t) => t.version === newest.version)
}

/**
 * Reads the repository `from` (a directory or URL; its index must verify
 * against `trust` when given) and selects the troves `specs` name, with every
 * member of each group at its exact version and flavor, optional ones too.
 */
export const selectFromRepo = async (from: string, specs: ReadonlyArray<string>, trust: string | undefined, report: Report): Promise<Imported> => {
  const location = isHttp(from) ? from.replace(/\/+$/, "") : path.resolve(from)
  const bytes = await readRepoFile(location, location, INDEX)
  if (bytes === undefined) throw new SourceError({ source: location, reason: `has no ${INDEX}` })
  if (trust) {
    const sig = await readRepoFile(location, location, SIGNATURE)
    if (sig === undefined || !verifySignature(bytes, sig, trust))
      throw new SourceError({ source: location, reason: "the index signature does not verify against the trusted key (unsigned, tampered, or signed by another key)" })
  }
  const troves = decodeIndex(bytes, location).troves
  const chosen = new Map<string, Entry>()
  const add = (entry: Entry, chain: ReadonlyArray<string>) => {
    if (chosen.has(entry.digest)) return
    chosen.set(entry.digest, entry)
    for (const m of entry.members ?? []) {
      if (chain.includes(m.name)) throw new UsageError({ message: `${entry.name} includes itself: ${[...chain, m.name].join(" includes ")}` })
      const exact = troves.find((t) => t.name === m.name && t.version === m.version && t.flavor === m.flavor)
      if (!exact) throw new SourceError({ source: location, reason: `${troveLabel(entry)}: member ${troveLabel(m)} is not in the repository` })
      add(exact, [...chain, m.name])
    }
  }
  for (const spec of specs) for (const entry of matching(troves, spec, location)) add(entry, [entry.name])
  const entries = [...chosen.values()]
  const wanted = new Map<string, WantedObject>()
  for (const t of entries)
    for (const f of t.files) if (f.sha256) wanted.set(f.sha256, { sha256: f.sha256, size: f.size, repos: [{ source: location, bases: [location] }] })
  return { entries, fetch: async (store) => void (await fetchObjects([...wanted.values()], store, report)) }
}
