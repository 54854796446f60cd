import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import { UsageError, printable } from "../../errors.js"
import { looksLikeChangeset } from "../../changeset/container.js"
import { desiredRows, replaceDesired } from "../../db/desired.js"
import { toDocument } from "../../desired/rows.js"
import { APPLY_CHANGESET, applyPlan } from "../../reconcile/apply.js"
import { type Trust, recordTroves, verifyObjects } from "../../changeset/load.js"
import type { RefreshOptions } from "../../reconcile/load.js"
import { type Plan, isEmptyPlan } from "../../model/plan-schema.js"
import { loadPlan } from "../../reconcile/saved-plan.js"
import { holdStore } from "../../store/location.js"
import { leanHeapFor } from "../../heap.js"
import { type Conary, attempt, withConary } from "../context.js"
import { count, formatBytes, printJsonPaced, println } from "../format.js"
import { loadingChangeset, trustOf } from "./changeset.js"
import type { applyConfig } from "../tree/apply.js"
import type { Parsed } from "../tree/common.js"
import { NO_CHANGES, blockedLines, currentPlan, fileNoteLines, overrideLines, planLines, refreshOf } from "./plan.js"

/** Applies a plan and reports it; shared by apply and rollback. */
export const applyAndReport = (c: Conary, plan: Plan, command: string, desired: string, json: boolean) =>
  Effect.gen(function* () {
    const started = performance.now()
    const result = yield* attempt(async () => {
      // Held from before apply looks for contents in the store until its generation is recorded: no gc of a root sharing the store deletes them meanwhile.
      const lease = holdStore(c, c.store.dir, c.lockTimeout)
      try {
        return await applyPlan(c, plan, command, desired)
      } finally {
        lease.release()
      }
    })
    const seconds = (performance.now() - started) / 1000
    if (json)
      return yield* Effect.promise(() =>
        printJsonPaced({
          formatVersion: 1,
          generation: result.generation,
          changed: !isEmptyPlan(plan),
          seconds,
          merges: result.merges,
          ...(result.download ? { download: result.download } : {}),
          plan,
        }),
      )
    if (result.generation === null) {
      for (const line of blockedLines(plan)) println(printable(line))
      return println(NO_CHANGES)
    }
    const merged = new Map(result.merges.map((m) => [m.path, m.merged]))
    for (const line of [...planLines(plan), ...overrideLines(plan), ...fileNoteLines(plan, merged)]) println(printable(line))
    println()
    const s = plan.summary
    println(
      `Applied generation ${result.generation}: ${s.install} installed, ${s.update} updated, ${s.erase} erased; ` +
        `${count(s.files, "file")}, ${formatBytes(s.bytes)} written in ${seconds.toFixed(2)} s.`,
    )
    const d = result.download
    if (d && d.deltas + d.fallbacks.length > 0)
      println(`Fetched ${count(d.deltas, "content")} by delta (${formatBytes(d.bytes)}), ${d.full} full; ${count(d.fallbacks.length, "delta")} fell back to the full object.`)
  })

/** `apply FILE.ccs`: everything checked, then applied as any apply; the root takes the changeset's desired state. */
const applyChangesetFile = (c: Conary, file: string, trust: Trust, refresh: RefreshOptions, json: boolean) =>
  // The store is held from the check of what it holds (see applyAndReport).
  Effect.acquireUseRelease(
    attempt(() => holdStore(c, c.store.dir, c.lockTimeout)),
    () =>
      Effect.gen(function* () {
        const loaded = yield* attempt(() => loadingChangeset(c, file, trust, refresh))
        yield* attempt(() => verifyObjects(c, loaded, { store: true }))
        const plan = yield* attempt(() => recordTroves(c, loaded))
        // Nothing to change on disk: the desired state is the changeset's all the same.
        if (isEmptyPlan(plan)) yield* attempt(() => replaceDesired(c.db, loaded.rows, c.now()))
        yield* applyAndReport(c, plan, APPLY_CHANGESET, loaded.desired, json)
      }),
    (lease) => Effect.sync(() => lease.release()),
  )

export const apply = (args: Parsed<typeof applyConfig>) =>
  withConary(args, { write: true, command: "apply" }, (c) =>
    Effect.gen(function* () {
      const file = args.file
      const changeset = Option.isSome(file) && looksLikeChangeset(path.resolve(file.value))
      leanHeapFor(c.dbPath, changeset ? path.resolve(file.value) : undefined)
      if (changeset) return yield* applyChangesetFile(c, path.resolve(file.value), yield* attempt(() => trustOf(c, args)), refreshOf(args), args.json)
      if (args.trust.length > 0 || args.insecure) return yield* Effect.fail(new UsageError({ message: "--trust and --insecure are for changeset files (apply FILE.ccs)" }))
      const plan = Option.isSome(file) ? yield* attempt(() => loadPlan(c.db, c.root, c.dbPath, path.resolve(file.value))) : yield* currentPlan(c, refreshOf(args))
      const desired = JSON.stringify(toDocument(desiredRows(c.db)))
      yield* applyAndReport(c, plan, "apply", desired, args.json)
    }),
  )
