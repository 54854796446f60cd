import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import { knownArchives, type SourceRow } from "../db/sources.js"
import { upsertTrove } from "../db/troves.js"
import { SourceError } from "../errors.js"
import type { Report } from "../reconcile/report.js"
import { NATIVE_EXTENSION, type NativeTrove, readNativeManifest } from "./native.js"

export interface SyncResult {
  readonly source: string
  readonly troves: number
  readonly added: number
  readonly removed: number
}

const hashFile = async (file: string): Promise<string> => {
  const hash = createHash("sha256")
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest("hex")
}

/**
 * Indexes a directory source: reads the manifest of every archive that is new
 * or changed (by size and mtime), then records them all in one transaction,
 * so a bad archive leaves the index as it was.
 */
export const syncSource = async (db: Db, source: SourceRow, now: string, report: Report): Promise<SyncResult> => {
  let names: string[]
  try {
    names = fs.readdirSync(source.location).filter((n) => n.endsWith(NATIVE_EXTENSION)).sort()
  } catch (e) {
    throw new SourceError({ source: source.name, reason: `cannot read ${source.location}: ${(e as Error).message}` })
  }
  const known = knownArchives(db, source.name)
  const fresh: Array<{ archive: string; trove: NativeTrove; sha256: string; size: number; mtime: number }> = []
  const present = new Set<string>()
  report.start(`sync ${source.name}`, names.length)
  for (const name of names) {
    const archive = path.join(source.location, name)
    present.add(archive)
    const st = fs.statSync(archive)
    const k = known.get(archive)
    if (!k || k.size !== st.size || k.mtime !== Math.trunc(st.mtimeMs)) {
      const trove = await readNativeManifest(archive)
      fresh.push({ archive, trove, sha256: await hashFile(archive), size: st.size, mtime: Math.trunc(st.mtimeMs) })
    }
    report.tick()
  }
  report.done()
  const gone = [...known.keys()].filter((a) => !present.has(a))
  db.transaction(() => {
    const del = db.prepare("DELETE FROM available WHERE source = ? AND archive = ?")
    for (const a of gone) del.run(source.name, a)
    const avail = db.prepare(
      `INSERT OR REPLACE INTO available (source, trove_id, archive, archive_sha256, archive_size, archive_mtime)
       VALUES (?, ?, ?, ?, ?, ?)`,
    )
    const prov = db.prepare(
      `INSERT OR REPLACE INTO provenance (trove_id, source, origin, archive_sha256, signature_key, imported_at)
       VALUES (?, ?, ?, ?, NULL, ?)`,
    )
    for (const f of fresh) {
      const id = upsertTrove(db, { ...f.trove, scheme: "native", format: "native" })
      avail.run(source.name, id, f.archive, f.sha256, f.size, f.mtime)
      prov.run(id, source.name, f.archive, f.sha256, now)
    }
    db.prepare("UPDATE sources SET synced_at = ? WHERE name = ?").run(now, source.name)
  })()
  return { source: source.name, troves: names.length, added: fresh.length, removed: gone.length }
}
