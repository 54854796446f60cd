import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { type PackEntry, packNativeTrove } from "../src/source/native.js"
import { type Listing, REPO, listTree } from "./tree.js"

// Kill `conary apply` at random instants and check that recovery leaves the
// root and the database at exactly one of the two generations. Used by the
// test suite (50 kills) and by bench/fault-injection.ts (1,000).

const BIN = path.join(REPO, "bin", "conary.js")

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`conary ${args.join(" ")} exited ${r.status}: ${r.stderr}`)
  return r.stdout
}

/** Trove i at a revision: most files keep their content across revisions, some change, some come and go. */
const entries = (i: number, revision: number, files: number): PackEntry[] => {
  const out: PackEntry[] = [
    { rel: "usr", kind: "dir", mode: 0o755 },
    { rel: "usr/share", kind: "dir", mode: 0o755 },
    { rel: `usr/share/t${i}`, kind: "dir", mode: 0o755 },
    { rel: `usr/share/t${i}/sub${revision}`, kind: "dir", mode: 0o750 },
  ]
  for (let f = 0; f < files; f++) {
    const changes = f % 3 === 0
    const content = Buffer.from(`trove ${i} file ${f} ${changes ? `revision ${revision}` : "stable"}\n`.repeat(1 + (f % 7)))
    // A third of the files move into a per-revision directory (removed and added).
    const dir = f % 5 === 0 ? `usr/share/t${i}/sub${revision}` : `usr/share/t${i}`
    out.push({ rel: `${dir}/f${f}`, kind: "file", mode: f % 4 === 0 ? 0o755 : 0o644, data: () => content })
  }
  out.push({ rel: `usr/share/t${i}/link`, kind: "symlink", target: revision === 1 ? "f1" : "f2" })
  return out
}

export interface Scenario {
  readonly root: string
  readonly listings: { readonly a: Listing; readonly b: Listing }
  readonly desired: { readonly a: string; readonly b: string }
  /** how long one apply between the generations takes, in ms */
  readonly applyMs: number
}

/**
 * Two generations over `troves` troves of `files` files each: A has revision 1
 * of troves 0..n-1 plus `only-a`; B has revision 2 of them plus `only-b`.
 */
export const setupScenario = async (base: string, troves: number, files: number): Promise<Scenario> => {
  const root = path.join(base, "root")
  const repo = path.join(base, "repo")
  fs.mkdirSync(root)
  fs.mkdirSync(repo)
  const opts = (name: string, version: string) => ({ name, version, flavor: "", requires: [], provides: [], level: 1 })
  for (let i = 0; i < troves; i++) {
    for (const rev of [1, 2]) await packNativeTrove(entries(i, rev, files), opts(`t${i}`, `${rev}.0-1-1`), path.join(repo, `t${i}-${rev}.ctrv`))
  }
  await packNativeTrove(entries(100, 1, files), opts("only-a", "1.0-1-1"), path.join(repo, "only-a.ctrv"))
  await packNativeTrove(entries(101, 1, files), opts("only-b", "1.0-1-1"), path.join(repo, "only-b.ctrv"))
  const r = ["--root", root]
  cli(["init", ...r])
  cli(["source", "add", "repo", repo, ...r])
  cli(["source", "sync", ...r])
  const doc = (rev: number, extra: string) =>
    JSON.stringify({ formatVersion: 1, troves: [...Array.from({ length: troves }, (_, i) => ({ name: `t${i}`, version: `${rev}.0` })), { name: extra }] })
  const desired = { a: path.join(base, "a.json"), b: path.join(base, "b.json") }
  fs.writeFileSync(desired.a, doc(1, "only-a"))
  fs.writeFileSync(desired.b, doc(2, "only-b"))
  cli(["desired", "set", "--file", desired.a, ...r])
  cli(["apply", ...r])
  const a = listTree(root)
  cli(["desired", "set", "--file", desired.b, ...r])
  const start = performance.now()
  cli(["apply", ...r])
  const applyMs = performance.now() - start
  const b = listTree(root)
  return { root, listings: { a, b }, desired, applyMs }
}

const installedNames = (root: string): string[] =>
  (JSON.parse(cli(["list", "--json", "--root", root])).troves as Array<{ name: string; version: string }>)
    .map((t) => `${t.name}=${t.version}`)
    .sort()

export interface KillReport {
  readonly kills: number
  readonly endedInA: number
  readonly endedInB: number
  readonly rolledBack: number
  readonly rolledForward: number
  readonly finishedBeforeKill: number
}

/**
 * `kills` times: point the desired state at the other generation, start
 * apply, SIGKILL it after a random delay, recover, and check the root and the
 * database are exactly at A or B. Throws on the first mismatch.
 */
export interface KillOptions {
  readonly random?: () => number
  /** stop starting kills after this instant (performance.now() ms) */
  readonly until?: number
  /** after each kill, with the counts so far */
  readonly progress?: (report: KillReport) => void
  /** stops the loop, killing the apply in flight: nothing writes into the scenario after it */
  readonly signal?: AbortSignal
  /**
   * Before every other apply, delete the store's objects: that apply reads
   * every content from the archives while it stages, so kills land there too.
   */
  readonly coldStore?: boolean
}

export const killLoop = async (s: Scenario, kills: number, options: KillOptions = {}): Promise<KillReport> => {
  const { random = Math.random, until = Infinity, progress, signal, coldStore = false } = options
  const r = ["--root", s.root]
  const aNames = (() => {
    const doc = JSON.parse(fs.readFileSync(s.desired.a, "utf8")) as { troves: Array<{ name: string }> }
    return new Set(doc.troves.map((t) => t.name))
  })()
  let at: "a" | "b" = "b"
  const objects = path.join(s.root, "var/lib/conary/store/objects")
  // A cold apply (reading archives) takes longer than a warm one: time one, unkilled, for the kills' range.
  let coldMs = s.applyMs
  if (coldStore) {
    cli(["desired", "set", "--file", s.desired.a, ...r])
    fs.rmSync(objects, { recursive: true, force: true })
    const start = performance.now()
    cli(["apply", ...r])
    coldMs = performance.now() - start
    at = "a"
  }
  const report = { kills: 0, endedInA: 0, endedInB: 0, rolledBack: 0, rolledForward: 0, finishedBeforeKill: 0 }
  for (let k = 0; k < kills && performance.now() < until && !signal?.aborted; k++) {
    const to = at === "a" ? "b" : "a"
    cli(["desired", "set", "--file", s.desired[to], ...r])
    const cold = coldStore && k % 2 === 0
    if (cold) fs.rmSync(objects, { recursive: true, force: true })
    const child = spawn(process.execPath, [BIN, "apply", ...r], { stdio: "ignore" })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    const delay = random() * (cold ? coldMs : s.applyMs) * 1.1
    const timer = setTimeout(() => child.kill("SIGKILL"), delay)
    const abort = () => child.kill("SIGKILL")
    signal?.addEventListener("abort", abort)
    const code = await exited
    clearTimeout(timer)
    signal?.removeEventListener("abort", abort)
    if (signal?.aborted) break
    if (code === 0) report.finishedBeforeKill++
    report.kills++

    const rec = spawnSync(process.execPath, [BIN, "recover", "--json", ...r], { encoding: "utf8" })
    if (rec.status !== 0) throw new Error(`recover failed after a kill at ${delay.toFixed(0)} ms: ${rec.stderr}`)
    const recovered = JSON.parse(rec.stdout).recovered as { action: string } | null
    if (recovered?.action === "rolled-back") report.rolledBack++
    if (recovered?.action === "rolled-forward") report.rolledForward++

    const tree = listTree(s.root)
    const names = installedNames(s.root)
    const dbSaysA = names.some((n) => n.startsWith("only-a="))
    const diskIsA = JSON.stringify(tree) === JSON.stringify(s.listings.a)
    const diskIsB = JSON.stringify(tree) === JSON.stringify(s.listings.b)
    if (!diskIsA && !diskIsB) {
      const diff = Object.keys({ ...tree, ...s.listings.a, ...s.listings.b }).filter(
        (p) => JSON.stringify(tree[p]) !== JSON.stringify(s.listings.a[p]) && JSON.stringify(tree[p]) !== JSON.stringify(s.listings.b[p]),
      )
      throw new Error(`kill ${k} at ${delay.toFixed(0)} ms left a mixed root; first differences: ${diff.slice(0, 5).join(", ")}`)
    }
    if (dbSaysA !== diskIsA || names.length !== aNames.size)
      throw new Error(`kill ${k} at ${delay.toFixed(0)} ms: database says ${names.join(" ")} but the disk is generation ${diskIsA ? "A" : "B"}`)
    // After recovery the records agree with the disk: verify finds no drift.
    if (k % 5 === 0) {
      const v = spawnSync(process.execPath, [BIN, "verify", "--quiet", ...r], { encoding: "utf8" })
      if (v.status !== 0) throw new Error(`kill ${k} at ${delay.toFixed(0)} ms: verify after recovery exited ${v.status}: ${v.stdout}${v.stderr}`)
    }
    at = diskIsA ? "a" : "b"
    if (at === "a") report.endedInA++
    else report.endedInB++
    progress?.(report)
  }
  return report
}
