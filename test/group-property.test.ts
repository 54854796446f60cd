import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { openDatabase } from "../src/db/connection.js"
import { replaceDesired } from "../src/db/desired.js"
import { addSource, listSources } from "../src/db/sources.js"
import { installedTroves } from "../src/db/state.js"
import type { DesiredRow } from "../src/desired/rows.js"
import { isEmptyPlan } from "../src/model/plan-schema.js"
import { silentReport } from "../src/model/report.js"
import { troveLabel } from "../src/model/trove.js"
import { applyPlan } from "../src/reconcile/apply.js"
import { planFromDb } from "../src/reconcile/load.js"
import { writeGroup } from "../src/source/group.js"
import { packNativeTrove } from "../src/source/native.js"
import { syncSource } from "../src/source/sync.js"
import { ContentStore } from "../src/store/store.js"
import { ok, setupRoot } from "./helpers.js"

// Random groups over a set of troves: an outer group with members by default
// and optional ones (some asked for by `group/member` rows), maybe a nested
// group with its own; applied in sequence on one root, each an update of the
// last. After each apply the plan is empty and the installed set is exactly
// the expansion worked out here. In-process (the real resolver, planner,
// applier and database) so that many runs fit in a short time.

const NAMES = ["p0", "p1", "p2", "p3", "p4", "p5"]
const VERSIONS = ["1.0-1-1", "2.0-1-1"]

const memberArb = fc.record({
  version: fc.constantFrom(...VERSIONS),
  place: fc.constantFrom("outer", "inner", "none"),
  byDefault: fc.boolean(),
  asked: fc.boolean(),
})

const groupArb = fc.record({
  members: fc.array(memberArb, { minLength: NAMES.length, maxLength: NAMES.length }),
  nested: fc.boolean(),
  innerByDefault: fc.boolean(),
  innerAsked: fc.boolean(),
})

type GroupCase = typeof groupArb extends fc.Arbitrary<infer T> ? T : never

const member = (name: string, version: string, byDefault: boolean) => ({ name, version, flavor: "", components: [], byDefault })

/** The group files of one case, the desired rows, and the installed set expected (as name=version). */
const realize = (c: GroupCase, step: number) => {
  const version = `${step}.0-1-1`
  const at = (place: string) => NAMES.flatMap((name, i) => (c.members[i]!.place === place ? [{ name, ...c.members[i]! }] : []))
  const inner = at("inner")
  const nested = c.nested && inner.length > 0
  const outer = at("outer")
  if (outer.length === 0 && !nested) outer.push({ name: "p0", ...c.members[0]!, byDefault: true })
  const rows: DesiredRow[] = [{ name: "group-outer", component: "", version, flavor: "" }]
  const expected = new Set([`group-outer=${version}`])
  const choose = (group: string, list: typeof outer) => {
    for (const m of list) {
      if (!m.byDefault && !m.asked) continue
      if (!m.byDefault) rows.push({ name: group, member: m.name, component: "", version: "", flavor: "" })
      expected.add(`${m.name}=${m.version}`)
    }
  }
  choose("group-outer", outer)
  const innerChosen = nested && (c.innerByDefault || c.innerAsked)
  if (nested && !c.innerByDefault && c.innerAsked) rows.push({ name: "group-outer", member: "group-inner", component: "", version: "", flavor: "" })
  if (innerChosen) {
    expected.add(`group-inner=${version}`)
    choose("group-inner", inner)
  }
  const groups = [
    {
      name: "group-outer",
      version,
      flavor: "",
      members: [...outer.map((m) => member(m.name, m.version, m.byDefault)), ...(nested ? [member("group-inner", version, c.innerByDefault)] : [])],
    },
    ...(nested ? [{ name: "group-inner", version, flavor: "", members: inner.map((m) => member(m.name, m.version, m.byDefault)) }] : []),
  ]
  return { groups, rows, expected }
}

describe("group property", () => {
  it("apply then plan is empty, and the installed set is the groups' expansion", async () => {
    const { base, root: template, repo, r } = setupRoot()
    for (const name of NAMES)
      for (const version of VERSIONS)
        await packNativeTrove(
          [
            { rel: "usr", kind: "dir", mode: 0o755 },
            { rel: "usr/share", kind: "dir", mode: 0o755 },
            { rel: `usr/share/${name}`, kind: "dir", mode: 0o755 },
            { rel: `usr/share/${name}/data`, kind: "file", mode: 0o644, data: () => Buffer.from(`${name} ${version}\n`) },
          ],
          { name, version, flavor: "", requires: [], provides: [] },
          path.join(repo, `${name}-${version}.ctrv`),
        )
    ok(["source", "sync", ...r])
    let run = 0

    await fc.assert(
      fc.asyncProperty(fc.array(groupArb, { minLength: 1, maxLength: 3 }), async (cases) => {
        const root = path.join(base, `run-${run}`)
        const groupsDir = path.join(base, `groups-${run++}`)
        execFileSync("cp", ["-a", template, root])
        fs.mkdirSync(groupsDir)
        const dbPath = path.join(root, "var/lib/conary/conary.db")
        const db = openDatabase(dbPath, { create: false })
        const ctx = { db, dbPath, root, store: new ContentStore(path.join(root, "var/lib/conary/store")), report: silentReport, now: () => new Date().toISOString() }
        try {
          addSource(db, { name: "groups", kind: "dir", location: groupsDir, mirrors: [], trustKey: null, insecure: false }, ctx.now())
          for (const [i, c] of cases.entries()) {
            const { groups, rows, expected } = realize(c, i + 1)
            for (const g of groups) await writeGroup(path.join(groupsDir, `${g.name}-${g.version}.cgrp`), g)
            await syncSource(db, listSources(db).find((s) => s.name === "groups")!, ctx.now(), silentReport)
            replaceDesired(db, rows, ctx.now())
            const plan = await planFromDb(db, root, dbPath, { refresh: true, restoreConfig: false })
            await applyPlan(ctx, plan, "apply", "{}")
            expect(isEmptyPlan(await planFromDb(db, root, dbPath, { refresh: true, restoreConfig: false }))).toBe(true)
            expect(new Set(installedTroves(db).map((t) => troveLabel(t.trove)))).toEqual(expected)
            // And the disk has exactly the installed members' files.
            for (const name of NAMES) {
              const v = [...expected].find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1)
              const file = path.join(root, "usr/share", name, "data")
              expect(fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined).toBe(v === undefined ? undefined : `${name} ${v}\n`)
            }
          }
        } finally {
          db.close()
          fs.rmSync(root, { recursive: true, force: true })
        }
      }),
      { numRuns: 8 },
    )
  })
})
