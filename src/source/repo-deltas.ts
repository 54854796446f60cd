import * as fs from "node:fs"
import * as path from "node:path"
import type { NewTrove } from "../db/troves.js"
import { UsageError } from "../errors.js"
import type { ContentStore } from "../store/store.js"
import { type Candidate, type DeltaFiles, deltaPairs, makeDeltas, previousVersions, worthKeeping } from "./delta-build.js"
import { Entry, type ManifestDoc, ManifestDoc as ManifestSchema, decodeJson, deltaFile, objectFile } from "./repo-meta.js"
import { readObject } from "./repo-publish.js"

// The deltas of one `repo build`: made when the new troves are known (their
// contents still uncompressed in the build's store), and written with each
// new trove's manifest once the full objects are compressed, so a delta is
// kept only when clearly smaller than the object it stands for.

/** Paths as manifests have them (relative): a trove read from an archive has them rooted. */
const relative = (files: DeltaFiles): DeltaFiles => files.map((f) => (f.path.startsWith("/") ? { ...f, path: f.path.slice(1) } : f))

/** The published entries (metadata lines) of the names being built: a repository has 60,000 troves, a build a few. */
const publishedOf = (lines: ReadonlyMap<string, string>, names: ReadonlySet<string>, out: string): Entry[] => {
  const fail = (r: string) => new UsageError({ message: `repository ${out}: metadata: ${r}` })
  const found: Entry[] = []
  for (const line of lines.values()) if (names.has((JSON.parse(line) as { name?: string }).name ?? "")) found.push(decodeJson(Entry, line, fail))
  return found
}

export class RepoDeltas {
  private readonly made = new Map<string, Candidate[]>()

  constructor(
    private readonly out: string,
    private readonly temp: string,
    private readonly store: ContentStore,
    lines: ReadonlyMap<string, string>,
    fresh: ReadonlyArray<NewTrove>,
    depth: number,
  ) {
    if (depth <= 0) return
    const inBuild = new Map(fresh.map((t) => [t.digest, t]))
    // By name: a build of 60,000 troves must not compare each with all.
    const byName = new Map<string, Array<Entry | NewTrove>>()
    for (const t of [...publishedOf(lines, new Set(fresh.map((t) => t.name)), out), ...fresh]) {
      const list = byName.get(t.name)
      if (list) list.push(t)
      else byName.set(t.name, [t])
    }
    const sizes = new Map<string, number>()
    for (const trove of fresh) {
      const previous = previousVersions(trove, byName.get(trove.name)!, depth).map((p) => relative(inBuild.get(p.digest)?.files ?? this.manifestFiles(p as Entry)))
      const pairs = deltaPairs(relative(trove.files), previous)
      for (const p of pairs) sizes.set(p.from, p.fromSize).set(p.to, p.toSize)
      if (pairs.length > 0) this.made.set(trove.digest, makeDeltas(pairs, (sha) => this.content(sha, sizes.get(sha)!)))
    }
  }

  private manifestFiles(e: Entry): DeltaFiles {
    const bytes = readObject(this.out, e.manifest.sha256, e.manifest.size)
    return decodeJson(ManifestSchema, bytes, (r) => new UsageError({ message: `repository ${this.out}: manifest of ${e.name} ${e.version}: ${r}` })).files
  }

  /** A content, from the build's store (new, not compressed yet) or the repository. */
  private content(sha256: string, size: number): Buffer {
    return this.store.has(sha256) ? fs.readFileSync(this.store.pathOf(sha256)) : readObject(this.out, sha256, size)
  }

  /** The compressed size of a content's object, in this build or the repository (after the build's objects are compressed). */
  private packedSize(sha256: string): number {
    const rel = objectFile(sha256)
    return (fs.statSync(path.join(this.temp, rel), { throwIfNoEntry: false }) ?? fs.statSync(path.join(this.out, rel))).size
  }

  /** What a new trove's manifest says of fetching its contents; writes the deltas kept into the build. */
  fetchInfo(trove: NewTrove): Pick<ManifestDoc, "packed" | "deltas"> {
    const packed: Record<string, number> = {}
    for (const f of trove.files) if (f.sha256 && !f.ghost) packed[f.sha256] = this.packedSize(f.sha256)
    const kept = (this.made.get(trove.digest) ?? []).filter((c) => worthKeeping(c, packed[c.ref.to]!))
    for (const c of kept) {
      const rel = deltaFile(c.ref.sha256)
      if (fs.existsSync(path.join(this.out, rel))) continue
      fs.mkdirSync(path.dirname(path.join(this.temp, rel)), { recursive: true })
      fs.writeFileSync(path.join(this.temp, rel), c.bytes)
    }
    return { packed, ...(kept.length > 0 ? { deltas: kept.map((c) => c.ref) } : {}) }
  }
}
