import * as fs from "node:fs"
import type { Db } from "../db/connection.js"
import { type SourceRow, listSources } from "../db/sources.js"
import { installedTroves } from "../db/state.js"
import { type Provenance, provenanceByTrove } from "../db/troves.js"
import { SourceError, isConaryError } from "../errors.js"
import { troveLabel } from "../model/trove.js"
import { readTroveArchive } from "../source/formats.js"
import { basesOf } from "../source/remote.js"
import { type RepoOffer, readRepoOffer } from "../source/repo-client.js"
import { hashFiles } from "../store/hash-pool.js"

// `verify --provenance`: is what is installed still what its source offers,
// and did a trusted key sign it? For each installed trove and each record of
// where it came from: a directory source's archive must still hash the same;
// a repository's current metadata must list the same digest and, for a
// signed source, verify along the root chain from the trusted key, at a
// version no older than the one last accepted. Each source is read once; one
// that cannot be reached is reported, not fatal.

/** Best first: a trove's status is the best any of its records reaches. */
export const PROVENANCE_STATUSES = ["verified", "unsigned", "unreachable", "untrusted", "vanished", "changed", "republished", "unrecorded"] as const
export type ProvenanceStatus = (typeof PROVENANCE_STATUSES)[number]

export interface ProvenanceCheck {
  readonly source: string
  readonly origin: string
  readonly status: ProvenanceStatus
  /** what was found, in words */
  readonly detail: string
  readonly recordedSha256: string
  /** the digest the source offers now, when it offers one */
  readonly currentSha256: string | null
}

export interface TroveProvenance {
  readonly trove: string
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly status: ProvenanceStatus
  readonly checks: ReadonlyArray<ProvenanceCheck>
}

type RepoState = { readonly offer: RepoOffer; readonly base: string } | { readonly failed: ProvenanceStatus; readonly detail: string }

const short = (sha: string) => sha.slice(0, 16) + "…"

/** A repository's metadata as it is now at one base location, checked as a sync checks it. */
const readRepoAt = async (source: SourceRow, base: string, now: string): Promise<RepoState> => {
  try {
    const offer = await readRepoOffer(source, base, now)
    if (offer === undefined) return { failed: "vanished", detail: `${base} has no repository any more` }
    if (offer.version < source.metaVersion)
      return { failed: "untrusted", detail: `${base} offers metadata version ${offer.version}, older than version ${source.metaVersion} accepted (a rollback or a stale mirror)` }
    return { offer, base }
  } catch (e) {
    if (!isConaryError(e)) throw e
    // A location that answers with metadata that does not verify is not one that does not answer.
    return e instanceof SourceError && !e.unreachable ? { failed: "untrusted", detail: e.message } : { failed: "unreachable", detail: e.message }
  }
}

/** The first of the repository's locations (the one it last synced from first, then its mirrors) that answers. */
const readRepo = async (source: SourceRow, now: string): Promise<RepoState> => {
  let state: RepoState | undefined
  for (const base of basesOf(source)) {
    state = await readRepoAt(source, base, now)
    if (!("failed" in state) || state.failed !== "unreachable") return state
  }
  return state!
}

export const checkProvenance = async (db: Db, now: string, troveIds?: ReadonlyArray<number>): Promise<TroveProvenance[]> => {
  const wanted = troveIds ? new Set(troveIds) : undefined
  const installed = installedTroves(db).filter((i) => !wanted || wanted.has(i.trove.id))
  const records = provenanceByTrove(db)
  const sources = new Map(listSources(db).map((s) => [s.name, s]))

  // Every repository once; every directory archive hashed on all cores.
  const repos = new Map<string, Promise<RepoState>>()
  const archives = new Set<string>()
  for (const { trove } of installed) {
    for (const p of records.get(trove.id) ?? []) {
      const s = sources.get(p.source)
      if (s?.kind === "repo" && !repos.has(s.name)) repos.set(s.name, readRepo(s, now))
      if (s?.kind === "dir") archives.add(p.origin)
    }
  }
  const archiveList = [...archives]
  const hashes = new Map((await hashFiles(archiveList)).map((h, i) => [archiveList[i]!, h]))

  const check = async (trove: { name: string; version: string; flavor: string }, p: Provenance): Promise<ProvenanceCheck> => {
    const result = (status: ProvenanceStatus, detail: string, currentSha256: string | null = null): ProvenanceCheck => ({
      source: p.source,
      origin: p.origin,
      status,
      detail,
      recordedSha256: p.archiveSha256,
      currentSha256,
    })
    const source = sources.get(p.source)
    if (!source) return result("vanished", `source ${p.source} was removed`)
    if (source.kind === "dir") {
      const now = hashes.get(p.origin) ?? null
      if (now === null) return result("vanished", fs.existsSync(p.origin) ? `${p.origin} cannot be read` : `${p.origin} is gone`)
      if (now !== p.archiveSha256) {
        // Other bytes: the same package published again, or another one in its place.
        let same = false
        try {
          const { trove: t } = await readTroveArchive(p.origin)
          same = t.name === trove.name && t.version === trove.version && t.flavor === trove.flavor
        } catch (e) {
          if (!isConaryError(e)) throw e
        }
        return same
          ? result("republished", `${p.origin} has other bytes under the same name and version (sha256 ${short(now)}, was ${short(p.archiveSha256)})`, now)
          : result("changed", `${p.origin} holds another archive now (sha256 ${short(now)}, was ${short(p.archiveSha256)})`, now)
      }
      return result("unsigned", `${p.origin} is unchanged; a directory source has no signature`, now)
    }
    const repo = await repos.get(source.name)!
    if ("failed" in repo) return result(repo.failed, repo.detail)
    const entries = repo.offer.entries.filter((t) => t.name === trove.name && t.version === trove.version && t.flavor === trove.flavor)
    if (!entries.some((t) => t.digest === p.archiveSha256)) {
      return entries.length > 0
        ? result("republished", `${repo.base} lists ${trove.name} ${trove.version} with other contents (digest ${short(entries[0]!.digest)}, was ${short(p.archiveSha256)})`, entries[0]!.digest)
        : result("vanished", `${repo.base} no longer lists it`)
    }
    if (!repo.offer.signed) return result("unsigned", `${repo.base} lists it; the source was added --insecure`, p.archiveSha256)
    return result("verified", `${repo.base} lists it in metadata version ${repo.offer.version}, signed by the keys the trusted key leads to`, p.archiveSha256)
  }

  const rank = (s: ProvenanceStatus) => PROVENANCE_STATUSES.indexOf(s)
  const out: TroveProvenance[] = []
  for (const { trove } of installed) {
    const checks = await Promise.all((records.get(trove.id) ?? []).map((p) => check(trove, p)))
    const status = checks.length === 0 ? "unrecorded" : checks.map((c) => c.status).sort((a, b) => rank(a) - rank(b))[0]!
    out.push({ trove: troveLabel(trove), name: trove.name, version: trove.version, flavor: trove.flavor, status, checks })
  }
  return out.sort((a, b) => (a.trove < b.trove ? -1 : a.trove > b.trove ? 1 : 0))
}
