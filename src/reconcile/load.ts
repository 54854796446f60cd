import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../db/connection.js"
import { desiredRows, systemFlavor, systemProvides } from "../db/desired.js"
import { ROOT_ID_FILE } from "../db/root-id.js"
import { foreignLookup, installedOwnersLookup, installedTroves, recordedRows } from "../db/state.js"
import { availableTroves, fileOwnersAt, groupMembers, lazyTroves, troveFilesReader } from "../db/troves.js"
import { type TroveMeta, parseDepGroup } from "../model/trove.js"
import { type RootLayout, aliasesOf, diskLayout, emptyLayout } from "./layout.js"
import type { Plan } from "../model/plan-schema.js"
import type { InstalledTrove, StatRefresh } from "../model/installed.js"
import { type DiffInput, type PlanInput, plan } from "./plan.js"
import { type FileOwner, type Resolution, resolve } from "./resolve.js"
import { FileConflictError, PathError, UnresolvableError } from "../errors.js"
import type { Drift, Scan } from "./verify.js"

export interface RefreshOptions {
  /** scan the disk for drift and plan repairs (default); false trusts the records */
  readonly refresh: boolean
  /** recreate config files the user deleted */
  readonly restoreConfig: boolean
  /** choose flavors afresh instead of keeping the installed ones */
  readonly reflavor?: boolean
  /** keeps the stat rows the scan found clean but moved, so the next scan reads nothing (see keepRefreshed) */
  readonly keep?: (rows: ReadonlyArray<StatRefresh>) => void
}

/** Where conary keeps its own files, as paths of the root (those outside it need no reserving). */
export const reservedPaths = (root: string, dbPath: string): string[] => {
  const realRoot = fs.realpathSync(root)
  const dir = path.dirname(dbPath)
  let realDir: string
  try {
    realDir = fs.realpathSync(dir)
  } catch {
    realDir = path.resolve(dir)
  }
  const base = path.basename(dbPath)
  const own = [base, `${base}-wal`, `${base}-shm`, `${base}-journal`, "lock", "lock.holder", "store"].map((n) => path.join(realDir, n))
  own.push(path.join(realRoot, ROOT_ID_FILE))
  return own.filter((p) => p.startsWith(realRoot + path.sep)).map((p) => p.slice(realRoot.length))
}

/** The installed side of the planner's input, with a drift scan of the disk unless refresh is off. */
export const diffInputFromDb = async (
  db: Db,
  root: string,
  dbPath: string,
  options: RefreshOptions,
  scan?: Scan,
): Promise<DiffInput> => {
  const layout = diskLayout(root)
  const foreign = foreignLookup(db)
  return {
    installed: installedTroves(db),
    // read a trove at a time, not kept: the planner holds what it needs of them as rows
    filesOf: troveFilesReader(db),
    ownersOf: installedOwnersLookup(db),
    restoreConfig: options.restoreConfig,
    layout,
    foreignAt: (p) => {
      for (const alias of aliasesOf(p, layout.dirLinks())) {
        const f = foreign(alias)
        if (f) return f
      }
      return undefined
    },
    reserved: reservedPaths(root, dbPath),
    ...(scan ? { drift: scan.drift } : options.refresh ? { drift: await scanned(db, root, options) } : {}),
  }
}

/** The disk scan's code (its worker threads) loads only when a command scans. */
const scanDrift: typeof import("./verify.js").scanDrift = async (...args) => (await import("./verify.js")).scanDrift(...args)

const scanned = async (db: Db, root: string, options: RefreshOptions): Promise<ReadonlyArray<Drift>> => {
  const scan = await scanDrift(root, recordedRows(db), { full: false, ...(options.keep ? { keep: options.keep } : {}) })
  return scan.drift
}

/**
 * What the planner chooses from: what sources offer, and what is installed
 * even when no source offers it any more (its contents are in the store).
 */
const plannable = (available: TroveMeta[], installed: ReadonlyArray<InstalledTrove>): TroveMeta[] => {
  const ids = new Set(available.map((t) => t.id))
  return [...available, ...installed.map((i) => i.trove).filter((t) => !ids.has(t.id))]
}

/**
 * The owners of exactly the paths some candidate's `file:` requirements name,
 * keyed by the path as required. Paths are matched where they land on disk:
 * with `bin -> usr/bin`, a trove shipping /usr/bin/sh owns `file: /bin/sh`.
 */
const fileOwners = (db: Db, candidates: ReadonlyArray<TroveMeta>, layout: RootLayout): Map<string, FileOwner[]> => {
  const required = new Set<string>()
  // Indexed loops: every candidate's every requirement, in cold code (see resolve.ts).
  for (let i = 0; i < candidates.length; i++) {
    const requires = candidates[i]!.requires
    for (let r = 0; r < requires.length; r++)
      if (requires[r]!.includes("file:")) for (const d of parseDepGroup(requires[r]!) ?? []) if (d.class === "file") required.add(d.name)
  }
  const owners = new Map<string, FileOwner[]>()
  if (required.size === 0) return owners
  // Each name a required path has on this root, and the required paths it stands for.
  const asked = new Map<string, string[]>()
  for (const p of required) {
    for (const alias of aliasesOf(layout.canonical(p) ?? p, layout.dirLinks())) {
      const list = asked.get(alias)
      if (list) list.push(p)
      else asked.set(alias, [p])
    }
  }
  for (const { troveId, path: at, component } of fileOwnersAt(db, candidates.map((t) => t.id), [...asked.keys()])) {
    for (const p of asked.get(at)!) {
      const list = owners.get(p)
      if (list) list.push({ troveId, component })
      else owners.set(p, [{ troveId, component }])
    }
  }
  return owners
}

export const planInputWith = (db: Db, options: RefreshOptions, diffInput: DiffInput): PlanInput => {
  const available = plannable(availableTroves(db), diffInput.installed)
  return {
    desired: desiredRows(db),
    systemFlavor: systemFlavor(db),
    provides: systemProvides(db),
    available,
    fileOwners: fileOwners(db, available, diffInput.layout ?? emptyLayout),
    reflavor: options.reflavor === true,
    groups: groupMembers(db),
    ...diffInput,
  }
}

/** The planner's whole input from the database and the root. */
export const planInputFromDb = async (db: Db, root: string, dbPath: string, options: RefreshOptions, scan?: Scan): Promise<PlanInput> =>
  planInputWith(db, options, await diffInputFromDb(db, root, dbPath, options, scan))

/**
 * Drift of the config files a plan replaces or removes, each hashed. Without
 * the disk scan the planner would not know them changed locally, and the
 * config-file rules (keep, merge, save) must hold whatever the refresh mode.
 */
const configDrift = async (db: Db, root: string, planned: Plan): Promise<Drift[]> => {
  const paths = planned.files.filter((op) => op.config && (op.op === "replace" || op.op === "remove")).map((op) => op.path)
  if (paths.length === 0) return []
  const scan = await scanDrift(root, recordedRows(db, { paths }), { full: true })
  return scan.drift.filter((d) => d.config)
}

/**
 * Plans with the installed side from the database: with the disk scan, or
 * without it (refresh off) but with the config files the plan would replace
 * or remove checked, and planned again if any changed locally.
 */
export const planInstalled = async <E>(
  db: Db,
  root: string,
  dbPath: string,
  options: RefreshOptions,
  planWith: (input: DiffInput) => Either.Either<Plan, E>,
  prepare?: (input: DiffInput) => Promise<void>,
): Promise<Plan> => {
  const input = await diffInputFromDb(db, root, dbPath, options)
  await prepare?.(input)
  let result = planWith(input)
  if (!options.refresh && Either.isRight(result)) {
    const drift = await configDrift(db, root, result.right)
    if (drift.length > 0) result = planWith({ ...input, drift })
  }
  if (Either.isLeft(result)) throw result.left
  return result.right
}

/**
 * Repository troves are synced without their files: fetches the manifests of
 * the troves the desired state resolves to, before their files are planned.
 * What does not resolve fetches nothing (the planner reports it). Returns the
 * resolution (undefined when there is none) and how many manifests it fetched.
 */
export const ensureTargetFiles = async (db: Db, input: PlanInput): Promise<{ resolution?: Resolution; fetched: number }> => {
  let resolution: Resolution
  try {
    resolution = resolve(input)
  } catch (e) {
    if (e instanceof UnresolvableError || e instanceof FileConflictError || e instanceof PathError) return { fetched: 0 }
    throw e
  }
  const ids = resolution.target.map((t) => t.troveId)
  // The repository client (and the network code under it) loads only when there is something to fetch.
  if (lazyTroves(db, ids).length === 0) return { resolution, fetched: 0 }
  const { ensureManifests } = await import("../source/repo-client.js")
  return { resolution, fetched: await ensureManifests(db, ids) }
}

/** The plan from the database as it is now (and the disk, unless refresh is off). Throws on unresolvable rows and conflicts. */
export const planFromDb = (db: Db, root: string, dbPath: string, options: RefreshOptions): Promise<Plan> => {
  // The input and resolution made before fetching manifests, when the fetch changed nothing they were made from.
  let prepared: { readonly input: PlanInput; readonly resolution: Resolution | undefined } | undefined
  return planInstalled(
    db,
    root,
    dbPath,
    options,
    (installed) => (prepared ? plan({ ...prepared.input, ...installed }, prepared.resolution) : plan(planInputWith(db, options, installed))),
    async (installed) => {
      const input = planInputWith(db, options, installed)
      const { resolution, fetched } = await ensureTargetFiles(db, input)
      // Fetched files can own paths `file:` requirements name: then the input is read and resolved afresh.
      if (fetched === 0) prepared = { input, resolution }
    },
  )
}
