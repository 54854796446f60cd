import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { openDatabase } from "../src/db/connection.js"
import { replaceDesired } from "../src/db/desired.js"
import { recordedRows, refreshStats } from "../src/db/state.js"
import { parseSpec } from "../src/desired/rows.js"
import { ApplyError } from "../src/errors.js"
import { applyPlan } from "../src/reconcile/apply.js"
import { planFromDb } from "../src/reconcile/load.js"
import type { StatRefresh } from "../src/model/installed.js"
import { silentReport } from "../src/model/report.js"
import { type Drift, scanDrift } from "../src/reconcile/verify.js"
import { ContentStore } from "../src/store/store.js"
import { type TreeSpec, ok, okAsync, setupRoot, writeTree } from "./helpers.js"

// Random sequences of updates, applies with and without the disk scan, and
// what users do to files (edit, chmod, chown, delete, replace, touch). After
// every step `verify` agrees with `verify --full`, and both agree with a check
// made here: every installed file hashed and lstat'ed against its trove's
// manifest; a scan split over the workers in many ranges finds exactly what
// one range on this thread finds. Runs in-process (the real planner, applier and scanner) so that
// many sequences fit in a short run.

const CONF = "# tool\nport = 80\n\nuser = www\n\nlog = /var/log/tool\n"
const VERSIONS: Record<string, TreeSpec> = {
  "1.0-1-1": {
    "usr/bin/tool": { content: "binary v1\n", mode: 0o755 },
    "usr/bin/tool-link": { symlink: "tool" },
    "usr/share/tool/data": "data v1\n",
    "usr/share/doc/tool/README": "docs\n",
    "etc/tool.conf": CONF,
  },
  "2.0-1-1": {
    "usr/bin/tool": { content: "binary v2\n", mode: 0o755 },
    "usr/bin/tool-link": { symlink: "tool" },
    "usr/share/tool/data": "data v1\n",
    "usr/share/doc/tool/README": "docs\n",
    "etc/tool.conf": CONF.replace("port = 80", "port = 8080"),
  },
  "3.0-1-1": {
    "usr/bin/tool": { content: "binary v3 is longer\n", mode: 0o755 },
    "usr/bin/tool-link": { symlink: "tool" },
    "usr/share/tool/data": { content: "data v3\n", mode: 0o600 },
    "usr/share/tool/extra": "extra\n",
    "etc/tool.conf": CONF.replace("log = /var/log/tool", "log = /srv/log"),
  },
}

type Mutation = "edit" | "append" | "chmod" | "chown" | "delete" | "replace" | "replace-dir" | "touch"
type Step = { kind: "apply"; version: string; refresh: boolean } | { kind: "mutate"; pick: number; what: Mutation }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("apply" as const), version: fc.constantFrom(...Object.keys(VERSIONS)), refresh: fc.boolean() }),
  fc.record({
    kind: fc.constant("mutate" as const),
    pick: fc.nat(),
    what: fc.constantFrom<Mutation>("edit", "append", "chmod", "chown", "delete", "replace", "replace-dir", "touch"),
  }),
)

const sha = (p: string) => createHash("sha256").update(fs.readFileSync(p)).digest("hex")

const lstat = (p: string): fs.Stats | undefined => {
  try {
    return fs.lstatSync(p)
  } catch {
    return undefined
  }
}

/** What users do: to whatever is at the path now. */
const mutate = (abs: string, what: Mutation) => {
  const st = lstat(abs)
  if (!st) return
  const file = st.isFile()
  if (what === "edit" && file) {
    const data = fs.readFileSync(abs)
    if (data.length > 0) {
      data[0] = data[0]! ^ 1
      const fd = fs.openSync(abs, "r+")
      fs.writeSync(fd, data, 0, 1, 0)
      fs.closeSync(fd)
    }
  } else if (what === "append" && file) fs.appendFileSync(abs, "local\n")
  else if (what === "chmod" && !st.isSymbolicLink()) fs.chmodSync(abs, (st.mode & 0o7777) ^ 0o020)
  else if (what === "chown") fs.lchownSync(abs, 1, 1)
  else if (what === "delete") fs.rmSync(abs, { recursive: true })
  else if (what === "replace" && file) {
    fs.copyFileSync(abs, abs + ".tmp")
    fs.renameSync(abs + ".tmp", abs)
  } else if (what === "replace-dir" && !st.isDirectory()) {
    fs.rmSync(abs)
    writeTree(abs, { keep: "the user's\n" })
  } else if (what === "touch") {
    const t = new Date(Date.now() - 3_600_000)
    fs.lutimesSync(abs, t, t)
  }
}

/** The installed files as their troves' manifests describe them, checked here. */
const independentDrift = (db: ReturnType<typeof openDatabase>, root: string): string[] => {
  const rows = db
    .prepare(
      `SELECT tf.path, tf.kind, tf.mode, tf.owner, tf.grp, tf.sha256, tf.link_target
       FROM installed_files f JOIN trove_files tf ON tf.trove_id = f.trove_id AND tf.path = f.path ORDER BY tf.path`,
    )
    .all() as Array<{ path: string; kind: string; mode: number; owner: string; grp: string; sha256: string | null; link_target: string | null }>
  const drifted: string[] = []
  for (const f of rows) {
    expect([f.owner, f.grp]).toEqual(["root", "root"]) // the root has no passwd: root is 0
    const abs = path.join(root, f.path)
    const st = lstat(abs)
    const clean =
      st !== undefined &&
      st.uid === 0 &&
      st.gid === 0 &&
      (f.kind === "dir"
        ? st.isDirectory() && (st.mode & 0o7777) === f.mode
        : f.kind === "symlink"
          ? st.isSymbolicLink() && fs.readlinkSync(abs) === f.link_target
          : st.isFile() && (st.mode & 0o7777) === f.mode && sha(abs) === f.sha256)
    if (!clean) drifted.push(f.path)
  }
  return drifted
}

const lines = (drift: ReadonlyArray<Drift>) => drift.map((d) => `${d.flags} ${d.path}`)

describe("drift property", () => {
  it("verify agrees with verify --full and with an independent check after every step", async () => {
    // One root set up with the real CLI, copied for every sequence.
    const { base, root: template, repo, r } = setupRoot()
    await Promise.all(
      Object.entries(VERSIONS).map(([version, tree]) => {
        const dir = writeTree(fs.mkdtempSync(path.join(base, "build-")), tree)
        return okAsync(["trove", "build", dir, "--name", "tool", "--trove-version", version, "--out", path.join(repo, `tool-${version}.ctrv`)])
      }),
    )
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool=1.0", ...r])
    ok(["apply", ...r])
    let run = 0

    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 7 }), async (steps) => {
        const root = path.join(base, `run-${run++}`)
        execFileSync("cp", ["-a", template, root])
        const dbPath = path.join(root, "var/lib/conary/conary.db")
        const db = openDatabase(dbPath, { create: false })
        const ctx = {
          db,
          dbPath,
          root,
          store: new ContentStore(path.join(root, "var/lib/conary/store")),
          report: silentReport,
          now: () => new Date().toISOString(),
        }
        try {
          for (const [i, s] of steps.entries()) {
            const last = i === steps.length - 1
            if (s.kind === "apply") {
              replaceDesired(db, [parseSpec(`tool=${s.version}`)], ctx.now())
              const plan = await planFromDb(db, root, dbPath, { refresh: s.refresh, restoreConfig: false })
              try {
                await applyPlan(ctx, plan, "apply", "{}")
              } catch (e) {
                // Refused before the commit point is fine (trusting the records,
                // apply finds a directory where a file belongs); anything else is not.
                if (!(e instanceof ApplyError) || s.refresh) throw e
              }
            } else {
              const paths = (db.prepare("SELECT path FROM installed_files ORDER BY path").pluck().all() as string[])
              mutate(path.join(root, paths[s.pick % paths.length]!), s.what)
            }
            const kept: StatRefresh[] = []
            const fast = await scanDrift(root, recordedRows(db), { full: false, keep: (rows) => kept.push(...rows) })
            // Ranges of two rows (after the last step): the workers read, check and hand back in order what one range here did.
            if (last) expect(await scanDrift(root, recordedRows(db), { full: false, rangeRows: 2 })).toEqual(fast)
            expect(kept.length).toBe(fast.refreshed)
            refreshStats(db, kept)
            const full = await scanDrift(root, recordedRows(db), { full: true })
            if (last) expect(await scanDrift(root, recordedRows(db), { full: true, rangeRows: 2 })).toEqual(full)
            expect(lines(fast.drift)).toEqual(lines(full.drift))
            expect(full.drift.map((d) => d.path)).toEqual(independentDrift(db, root))
          }
        } finally {
          db.close()
          fs.rmSync(root, { recursive: true, force: true })
        }
      }),
      { numRuns: 12 },
    )
  })
})
