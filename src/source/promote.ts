import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { SourceRow } from "../db/sources.js"
import type { NewTrove } from "../db/troves.js"
import { parseSpec } from "../desired/rows.js"
import { compareVersions, matchesVersionSpec } from "../desired/version.js"
import { SourceError, UsageError } from "../errors.js"
import { troveLabel } from "../model/trove.js"
import { publicKeyString } from "./repo.js"
import { isHttp } from "./remote.js"
import { readManifest, readObject, readRepoOffer } from "./repo-client.js"
import type { Entry } from "./repo-meta.js"
import type { TroveInput } from "./repo.js"

// Promotion: troves chosen from one repository's metadata (a group with every
// member, nested groups too) with their manifests and contents, for `repo
// build` to publish into another, so production holds exactly what staging
// tested. Everything read is checked as a sync checks it.
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
 * Reads the repository `from` (a directory or URL; its metadata must verify
 * along its root chain from `trust` when given) and selects the troves
 * `specs` name, with every member of each group at its exact version and
 * flavor, optional ones too; their contents are read (verified) up front.
 */
export const selectFromRepo = async (from: string, specs: ReadonlyArray<string>, trust: string | undefined, now: string): Promise<TroveInput[]> => {
  const location = isHttp(from) ? from.replace(/\/+$/, "") : path.resolve(from)
  const source: SourceRow = {
    name: location,
    kind: "repo",
    location,
    mirrors: [],
    addedAt: now,
    syncedAt: null,
    syncedFrom: null,
    trustKey: trust === undefined ? null : publicKeyString(trust),
    insecure: trust === undefined,
    rootVersion: 0,
    rootKeys: null,
    metaVersion: 0,
    metaExpires: null,
    troves: 0,
  }
  const offer = await readRepoOffer(source, location, now)
  if (offer === undefined) throw new SourceError({ source: location, reason: "is not a repository (no repo.zst)" })
  const troves = offer.entries
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

  // Contents go through a temp directory, not memory: a group can be large.
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), "conary-promote-"))
  process.once("exit", () => fs.rmSync(temp, { recursive: true, force: true }))
  const inputs: TroveInput[] = []
  for (const e of chosen.values()) {
    const { doc, files } = await readManifest(source, location, e)
    const sizes = new Map<string, number>()
    for (const f of files) if (f.sha256) sizes.set(f.sha256, f.size)
    for (const [sha256, size] of sizes) {
      const file = path.join(temp, sha256)
      if (!fs.existsSync(file)) fs.writeFileSync(file, await readObject(source, location, "content", sha256, size))
    }
    const { manifest: _m, paths: _p, components: _c, fileCount: _f, totalSize: _t, scripts: _s, ...meta } = e
    const trove: NewTrove = { ...meta, files, scripts: doc.scripts }
    inputs.push({ trove, contents: (sha256) => fs.readFileSync(path.join(temp, sha256)) })
  }
  return inputs
}
