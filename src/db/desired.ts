import type { Flavor, Sense } from "../desired/flavor.js"
import type { DesiredRow } from "../desired/rows.js"
import type { Db } from "./connection.js"

// Desired rows, system provides and the system flavor: what the operator says.

export const desiredRows = (db: Db): DesiredRow[] =>
  (
    db.prepare("SELECT name, member, component, version, flavor FROM desired ORDER BY name, member, component, version, flavor").raw().all() as Array<
      [string, string, string, string, string]
    >
  ).map((r) => (r[1] ? { name: r[0], component: r[2], version: r[3], flavor: r[4], member: r[1] } : { name: r[0], component: r[2], version: r[3], flavor: r[4] }))

/** Adds rows; a row for the same name, member, component and flavor replaces the old constraint. */
export const addDesired = (db: Db, rows: ReadonlyArray<DesiredRow>, now: string): void => {
  const del = db.prepare("DELETE FROM desired WHERE name = ? AND member = ? AND component = ? AND flavor = ?")
  const ins = db.prepare("INSERT OR REPLACE INTO desired (name, member, component, version, flavor, added_at) VALUES (?, ?, ?, ?, ?, ?)")
  db.transaction(() => {
    for (const r of rows) {
      del.run(r.name, r.member ?? "", r.component, r.flavor)
      ins.run(r.name, r.member ?? "", r.component, r.version, r.flavor, now)
    }
  })()
}

/**
 * Removes every row for each name (or name:component, or group/member; a
 * group's name removes its member rows too). When any of them has no row,
 * nothing is removed and the missing ones are returned.
 */
export const removeDesired = (db: Db, specs: ReadonlyArray<{ name: string; component: string; member?: string }>): string[] =>
  db.transaction(() => {
    type Spec = (typeof specs)[number]
    const where = (s: Spec) => ["name = ?", ...(s.member ? ["member = ?"] : []), ...(s.component ? ["component = ?"] : [])].join(" AND ")
    const args = (s: Spec) => [s.name, ...(s.member ? [s.member] : []), ...(s.component ? [s.component] : [])]
    const missing = specs
      .filter((s) => db.prepare(`SELECT count(*) FROM desired WHERE ${where(s)}`).pluck().get(...args(s)) === 0)
      .map((s) => `${s.name}${s.member ? "/" + s.member : ""}${s.component ? ":" + s.component : ""}`)
    if (missing.length === 0) for (const s of specs) db.prepare(`DELETE FROM desired WHERE ${where(s)}`).run(...args(s))
    return missing
  })()

export const replaceDesired = (db: Db, rows: ReadonlyArray<DesiredRow>, now: string): void => {
  db.transaction(() => {
    db.prepare("DELETE FROM desired").run()
    addDesired(db, rows, now)
  })()
}

export const systemProvides = (db: Db): Set<string> =>
  new Set((db.prepare("SELECT name FROM system_provides ORDER BY name").raw().all() as string[][]).map((r) => r[0]!))

export const addProvides = (db: Db, names: ReadonlyArray<string>): void => {
  const ins = db.prepare("INSERT OR IGNORE INTO system_provides (name) VALUES (?)")
  db.transaction(() => names.forEach((n) => ins.run(n)))()
}

export const removeProvides = (db: Db, names: ReadonlyArray<string>): void => {
  const del = db.prepare("DELETE FROM system_provides WHERE name = ?")
  db.transaction(() => names.forEach((n) => del.run(n)))()
}

// The system flavor as rows: `ssl`, `is:x86_64`, `is:x86_64/sse2`, each with a sense.

export const systemFlavor = (db: Db): Flavor => {
  const flags = new Map<string, Sense>()
  const arches = new Map<string, Map<string, Sense>>()
  for (const { flag, sense } of db.prepare("SELECT flag, sense FROM system_flavor ORDER BY flag").all() as Array<{
    flag: string
    sense: Sense
  }>) {
    if (!flag.startsWith("is:")) {
      flags.set(flag, sense)
      continue
    }
    const [arch, sub] = flag.slice(3).split("/") as [string, string | undefined]
    if (!arches.has(arch)) arches.set(arch, new Map())
    if (sub !== undefined) arches.get(arch)!.set(sub, sense)
  }
  return { flags, arches }
}

export const setSystemFlavor = (db: Db, flavor: Flavor): void => {
  const ins = db.prepare("INSERT INTO system_flavor (flag, sense) VALUES (?, ?)")
  db.transaction(() => {
    db.prepare("DELETE FROM system_flavor").run()
    for (const [flag, sense] of flavor.flags) ins.run(flag, sense)
    for (const [arch, sub] of flavor.arches) {
      ins.run(`is:${arch}`, "required")
      for (const [flag, sense] of sub) ins.run(`is:${arch}/${flag}`, sense)
    }
  })()
}
