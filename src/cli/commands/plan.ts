import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import { printable } from "../../errors.js"
import { savePlan } from "../../reconcile/saved-plan.js"
import { type FileOp, type Plan, isEmptyPlan } from "../../model/plan-schema.js"
import { type RefreshOptions, planFromDb } from "../../reconcile/load.js"
import { keepRefreshed } from "../../db/state.js"
import type { DownloadEstimate } from "../../reconcile/fetch-deltas.js"
import { type Conary, attempt, withConary } from "../context.js"
import { EXIT_CHANGES, EXIT_OK } from "../exit.js"
import { count, formatBytes, printJsonPaced, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { planConfig } from "../tree/plan.js"

export const refreshOf = (args: {
  readonly noRefresh: boolean
  readonly restoreConfig: boolean
  readonly reflavor?: boolean
}): RefreshOptions => ({
  refresh: !args.noRefresh,
  restoreConfig: args.restoreConfig,
  reflavor: args.reflavor === true,
})

/** Computes the plan for the root as it stands; unresolvable rows and conflicts fail it. */
export const currentPlan = (c: Conary, options: RefreshOptions) =>
  attempt(() => planFromDb(c.db, c.root, c.dbPath, { ...options, keep: (rows) => keepRefreshed(c.db, rows) }))

const withFlavor = (version: string, flavor: string) => (flavor ? `${version} [${flavor}]` : version)

/** Terraform-style lines: `+ name version`, `~ name old → new`, `- name version`. */
export const planLines = (plan: Plan): string[] =>
  plan.troves.map((t) => {
    const why = t.op === "erase" ? "" : t.reason === "dependency" ? "(dependency)" : t.reason === "group" ? `(${t.group})` : ""
    const notes = [why, t.scripts ? "[scripts not run]" : ""]
      .filter((n) => n !== "")
      .join(" ")
    const tail = notes ? ` ${notes}` : ""
    if (t.op === "install") return `+ ${t.name} ${withFlavor(t.to!.version, t.to!.flavor)}${tail}`
    if (t.op === "erase") return `- ${t.name} ${withFlavor(t.from!.version, t.from!.flavor)}`
    const from = withFlavor(t.from!.version, t.from!.flavor)
    const to = withFlavor(t.to!.version, t.to!.flavor)
    const comps =
      from === to
        ? ` (components ${t.from!.components.join(",")} → ${t.to!.components.join(",")})`
        : ""
    return `~ ${t.name} ${from === to ? from : `${from} → ${to}`}${comps}${tail}`
  })

/**
 * Lines for file operations a person must know of: repairs and config-file
 * handling. After apply, `merged` (by path: was the 3-way merge clean) says
 * how each merge came out instead of what will be tried.
 */
const noteLines = (f: FileOp, merged: ReadonlyMap<string, boolean> | undefined): string[] =>
  f.op === "repair"
    ? [`! repair ${f.path} (${f.note})`]
    : f.op === "merge" && f.unowned
      ? [`! keep unowned ${f.path} (the package's version goes to ${f.path}.conary-new)`]
      : f.op === "merge"
        ? [
            merged === undefined
              ? `! merge ${f.path} (${f.note}: 3-way merge, or the new version as ${f.path}.conary-new if it conflicts)`
              : merged.get(f.path)
                ? `! merged ${f.path} (changed locally and by the package: 3-way merge was clean)`
                : `! kept ${f.path} (changed locally and by the package, merge conflicts): the new version is ${f.path}.conary-new`,
          ]
        : f.op === "save"
          ? [`! save ${f.path} as ${f.path}.conary-save (${f.note})`]
          : f.unowned
            ? [`! replaces unowned ${f.path} (kept in the store; erase and rollback put it back)`]
            : f.op === "restore"
              ? [`! restore ${f.path} (${f.note})`]
              : f.takesOver
                ? [`! take over ${f.path} (${f.note})`]
                : []

/** noteLines of every file operation, then the paths the plan leaves alone. */
export const fileNoteLines = (plan: Plan, merged?: ReadonlyMap<string, boolean>): string[] => {
  const files = plan.files
  const lines: string[] = []
  for (let i = 0; i < files.length; i++) {
    const what = files.op(i)
    // Additions, replacements, removals and mode changes without optional fields say nothing: not made into operations (0.15 s at 200,000).
    if (files.plain(i) && what !== "repair" && what !== "merge" && what !== "save" && what !== "restore") continue
    lines.push(...noteLines(files.at(i), merged))
  }
  return lines.concat(blockedLines(plan))
}

/** Desired rows that override a group's pin. */
export const overrideLines = (plan: Plan): string[] =>
  plan.overrides.map((o) => {
    const chosen = plan.target.filter((t) => t.name === o.name).map((t) => t.version)
    return `! ${o.name}: a desired row overrides ${o.group}'s pin ${o.pinned}${chosen.length > 0 ? ` (${chosen.join(", ")} chosen)` : ""}`
  })

/** Paths the plan leaves alone, and why. */
export const blockedLines = (plan: Plan): string[] => plan.blocked.map((b) => `! blocked ${b.path}: ${b.reason}`)

/** `12.3 KiB to download (9 deltas, 2 full), ` when repository contents are missing from the store. */
const downloadText = (d: DownloadEstimate | undefined) =>
  d === undefined || d.deltas + d.full === 0 ? "" : `${formatBytes(d.bytes)} to download (${count(d.deltas, "delta")}, ${d.full} full), `

export const summaryLine = (plan: Plan, download?: DownloadEstimate): string => {
  const s = plan.summary
  const repair = s.repair > 0 ? `, ${s.repair} to repair` : ""
  return `Plan: ${s.install} to install, ${s.update} to update, ${s.erase} to erase${repair}; ${count(s.files, "file")}, ${downloadText(download)}${formatBytes(s.bytes)} to write.`
}

export const NO_CHANGES = "No changes. Installed state matches desired state."

export const showPlan = (plan: Plan, download?: DownloadEstimate) => {
  if (isEmptyPlan(plan)) {
    for (const line of [...overrideLines(plan), ...blockedLines(plan)]) println(printable(line))
    return println(NO_CHANGES)
  }
  for (const line of [...planLines(plan), ...overrideLines(plan), ...fileNoteLines(plan)]) println(printable(line))
  println()
  println(summaryLine(plan, download))
}

export const planAndShow = (args: Parsed<typeof planConfig>) =>
  withConary(args, { write: false, command: "plan" }, (c) =>
    Effect.gen(function* () {
      const plan = yield* currentPlan(c, refreshOf(args))
      const out = args.out
      if (Option.isSome(out)) yield* attempt(() => savePlan(c.db, c.root, plan, path.resolve(out.value), c.now()))
      // A plan without file operations downloads nothing: the fetching code (deltas, network, the applier) loads only for one with them.
      const download: DownloadEstimate =
        plan.files.length === 0
          ? { bytes: 0, deltas: 0, full: 0 }
          : (yield* Effect.promise(() => import("../../reconcile/fetch-deltas.js"))).planDownload(c.db, c.store, plan)
      if (args.json) yield* Effect.promise(() => printJsonPaced({ ...plan, download }))
      else showPlan(plan, download)
      process.exitCode = args.detailedExitcode && !isEmptyPlan(plan) ? EXIT_CHANGES : EXIT_OK
    }),
  )
