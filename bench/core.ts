// Core-loop benchmark: generate N native troves holding F files (0-64 KiB,
// log-uniform, so most are small as on real systems), then time, with the
// real CLI: source sync, apply onto an empty root, plan with nothing changed,
// and an update of 20 troves. Prints figures; asserts nothing.
//
//   npm run bench                      # 2,000 troves, 200,000 files
//   BENCH_TROVES=200 BENCH_FILES=20000 npm run bench
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type PackEntry, packNativeTrove } from "../src/source/native.js"

const TROVES = Number(process.env.BENCH_TROVES ?? 2000)
const FILES = Number(process.env.BENCH_FILES ?? 200_000)
const UPDATED = Math.min(20, TROVES)
const perTrove = Math.max(1, Math.round(FILES / TROVES))
const bin = path.resolve(import.meta.dirname, "../bin/conary.js")
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-bench-"))
const repo = path.join(base, "repo")
const root = path.join(base, "root")
fs.mkdirSync(repo)
fs.mkdirSync(root)

// A fixed-seed generator so runs are comparable.
let seed = 42
const rand = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed / 0x7fffffff
}
const size = () => Math.floor(Math.pow(65537, rand())) - 1

const entriesFor = (t: number, revision: number): PackEntry[] => {
  const name = `bench${String(t).padStart(4, "0")}`
  const entries: PackEntry[] = [
    { rel: "usr", kind: "dir", mode: 0o755 },
    { rel: "usr/share", kind: "dir", mode: 0o755 },
    { rel: `usr/share/${name}`, kind: "dir", mode: 0o755 },
  ]
  const dirs = Math.max(1, Math.ceil(perTrove / 25))
  for (let d = 0; d < dirs; d++) entries.push({ rel: `usr/share/${name}/d${d}`, kind: "dir", mode: 0o755 })
  for (let f = 0; f < perTrove; f++) {
    const n = size()
    // An update changes one file in ten; the rest keep their content.
    const changed = revision > 1 && f % 10 === 0
    const data = randomBytes(n)
    if (changed && n > 0) data[0] = (data[0]! + revision) & 0xff
    const content = changed && n === 0 ? Buffer.from(`rev${revision}`) : data
    entries.push({ rel: `usr/share/${name}/d${f % dirs}/f${f}`, kind: "file", mode: 0o644, data: () => content })
  }
  return entries
}

const conary = (...args: string[]) =>
  execFileSync(process.execPath, [bin, ...args, "--root", root], { encoding: "utf8", maxBuffer: 1 << 30 })

const time = <A>(_label: string, f: () => A): { seconds: number; value: A } => {
  const start = performance.now()
  const value = f()
  const seconds = (performance.now() - start) / 1000
  return { seconds, value }
}

const du = (dir: string) => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0])

const main = async () => {
  console.log(`conary core benchmark: ${TROVES} troves, ${perTrove * TROVES} files, in ${base}`)
  const gen = performance.now()
  for (let t = 0; t < TROVES; t++) {
    const name = `bench${String(t).padStart(4, "0")}`
    await packNativeTrove(entriesFor(t, 1), { name, version: "1.0-1-1", flavor: "", requires: [], provides: [], level: 1 }, path.join(repo, `${name}-1.0.ctrv`))
  }
  console.log(`generated archives: ${((performance.now() - gen) / 1000).toFixed(1)} s, ${(du(repo) / 2 ** 20).toFixed(0)} MiB`)

  conary("init")
  conary("source", "add", "bench", repo)
  const sync = time("sync", () => conary("source", "sync"))
  const names = Array.from({ length: TROVES }, (_, t) => ({ name: `bench${String(t).padStart(4, "0")}` }))
  const docFile = path.join(base, "desired.json")
  fs.writeFileSync(docFile, JSON.stringify({ formatVersion: 1, troves: names }))
  conary("desired", "set", "--file", docFile)

  const apply = time("apply", () => JSON.parse(conary("apply", "--json")))
  // The floor for writing this many files on this disk: a plain copy of the tree.
  const floor = time("cp", () => execFileSync("cp", ["-a", path.join(root, "usr"), path.join(base, "copy")]))
  fs.rmSync(path.join(base, "copy"), { recursive: true, force: true })
  const files = apply.value.plan.summary.files as number
  const bytes = apply.value.plan.summary.bytes as number
  const noop = time("plan", () => conary("plan"))
  if (!noop.value.startsWith("No changes.")) throw new Error(`expected no changes, got: ${noop.value.slice(0, 200)}`)
  const noopApply = time("apply-noop", () => conary("apply"))

  for (let t = 0; t < UPDATED; t++) {
    const name = `bench${String(t).padStart(4, "0")}`
    await packNativeTrove(entriesFor(t, 2), { name, version: "1.1-1-1", flavor: "", requires: [], provides: [], level: 1 }, path.join(repo, `${name}-1.1.ctrv`))
  }
  const resync = time("resync", () => conary("source", "sync"))
  const update = time("update", () => JSON.parse(conary("apply", "--json")))
  const upd = update.value.plan.summary

  const rows: Array<[string, string, string]> = [
    ["source sync (index all archives)", `${sync.seconds.toFixed(2)} s`, `${((perTrove * TROVES) / sync.seconds).toFixed(0)} files/s`],
    ["apply onto an empty root", `${apply.seconds.toFixed(2)} s`, `${(files / apply.seconds).toFixed(0)} files/s, ${(bytes / 2 ** 20 / apply.seconds).toFixed(0)} MiB/s`],
    ["cp -a of the installed tree (floor)", `${floor.seconds.toFixed(2)} s`, `${(files / floor.seconds).toFixed(0)} files/s`],
    ["plan, nothing changed", `${noop.seconds.toFixed(2)} s`, ""],
    ["apply, nothing changed", `${noopApply.seconds.toFixed(2)} s`, ""],
    ["source sync after 20 new versions", `${resync.seconds.toFixed(2)} s`, ""],
    [`apply: update ${upd.update} troves`, `${update.seconds.toFixed(2)} s`, `${upd.files} files written, ${(upd.files / update.seconds).toFixed(0)} files/s`],
  ]
  console.log(`installed: ${files} entries, ${(bytes / 2 ** 20).toFixed(0)} MiB of content`)
  for (const [a, b, c] of rows) console.log(`${a.padEnd(36)} ${b.padStart(9)}   ${c}`)
  if (!process.env.BENCH_KEEP) fs.rmSync(base, { recursive: true, force: true })
}

await main()
