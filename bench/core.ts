// Core-loop benchmark: generate N native troves holding F files (0-64 KiB,
// most of them small), then time with the real CLI: source sync, apply onto an
// empty root (against `cp -a` of the result as the floor of this disk, and
// against the least DESIGN.md's apply must write (bench/design-floor.ts), in
// turns, medians of BENCH_ROUNDS=3 each), plan
// with nothing changed (against `find -printf` of the same stat fields), and an
// update of 20 troves. Also apply's peak RSS (/usr/bin/time), and its system
// calls per installed entry beside `cp -a`'s and `tar -x`'s of the same tree
// (strace -f -c, in extra runs on fresh roots: the timed runs are not traced).
// Prints; asserts nothing.
//
//   npm run bench                      # 2,000 troves, 200,000 files
//   BENCH_TROVES=200 BENCH_FILES=20000 npm run bench
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { designFloor } from "./design-floor.js"
import { bin, cliFor, du, generateTroves, median, medianBy, time, troveName } from "./lib.js"

const TROVES = Number(process.env.BENCH_TROVES ?? 2000)
const FILES = Number(process.env.BENCH_FILES ?? 200_000)
const UPDATED = Math.min(20, TROVES)
const perTrove = Math.max(1, Math.round(FILES / TROVES))
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-bench-"))
const repo = path.join(base, "repo")
const root = path.join(base, "root")
fs.mkdirSync(repo)
fs.mkdirSync(root)
const conary = cliFor(root)

console.log(`conary core benchmark: ${TROVES} troves, ${perTrove * TROVES} files, in ${base}`)

const genStart = performance.now()
await generateTroves(repo, 0, TROVES, perTrove)
console.log(`generated archives: ${((performance.now() - genStart) / 1000).toFixed(1)} s, ${(du(repo) / 2 ** 20).toFixed(0)} MiB`)


conary("init")
conary("source", "add", "bench", repo)
const sync = time(() => conary("source", "sync"))
const docFile = path.join(base, "desired.json")
fs.writeFileSync(docFile, JSON.stringify({ formatVersion: 1, troves: Array.from({ length: TROVES }, (_, t) => ({ name: troveName(t) })) }))
conary("desired", "set", "--file", docFile)

// A copy of the root before its first apply, for the strace'd apply below.
const tracedRoot = path.join(base, "traced-root")
execFileSync("cp", ["-a", root, tracedRoot])
const has = (tool: string) => fs.existsSync(tool) || execFileSync("sh", ["-c", `command -v ${tool} || true`], { encoding: "utf8" }).trim() !== ""
// Peak RSS of the whole process (its worker threads too), from the kernel's accounting of the child.
const rssFile = path.join(base, "apply.rss")
const timeTool = has("/usr/bin/time")
const applyOnto = (target: string) =>
  time(() =>
    JSON.parse(
      timeTool
        ? execFileSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, process.execPath, bin, "apply", "--json", "--root", target], { encoding: "utf8", maxBuffer: 1 << 30 })
        : cliFor(target)("apply", "--json"),
    ),
  )
// The floor for writing this many files on this disk: a plain copy of the
// tree, synced as apply syncs (apply makes its writes durable before it records).
const copyOnce = () => {
  const t = time(() => {
    execFileSync("cp", ["-a", path.join(root, "usr"), path.join(base, "copy")])
    execFileSync("sync", ["-f", base])
  })
  fs.rmSync(path.join(base, "copy"), { recursive: true, force: true })
  return t
}
// Apply and its floor in turns, the median of each: both depend as much on the
// kernel's state (a first run after the archives were written paid twice the
// system time of a later one) as on themselves. The first apply is onto the
// root the rest of the benchmark uses; the others onto copies of it as it was.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const applies: Array<ReturnType<typeof applyOnto> & { rss: number | undefined }> = []
const floors: Array<ReturnType<typeof copyOnce>> = []
const designs: Array<{ seconds: number; cpu: number }> = []
for (let r = 0; r < ROUNDS; r++) {
  const target = r === 0 ? root : path.join(base, "again")
  if (r > 0) execFileSync("cp", ["-a", tracedRoot, target])
  const a = applyOnto(target)
  applies.push({ ...a, rss: timeTool ? Number(fs.readFileSync(rssFile, "utf8").trim().split("\n").at(-1)) * 1024 : undefined })
  if (r > 0) fs.rmSync(target, { recursive: true, force: true })
  floors.push(copyOnce())
  designs.push(await designFloor(path.join(root, "usr"), fs.mkdtempSync(path.join(base, "design-"))))
}
// What apply decompresses and the design floor does not: every archive inflated, CPU of this thread.
const inflating = (() => {
  const cpu = process.cpuUsage()
  for (const a of fs.readdirSync(repo)) zlib.gunzipSync(fs.readFileSync(path.join(repo, a)))
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / 1e6
})()
const apply = medianBy(applies, (a) => a.seconds)
const floor = medianBy(floors, (f) => f.seconds)
const design = medianBy(designs, (d) => d.seconds)
const applyRss = timeTool ? Math.max(...applies.map((a) => a.rss!)) : undefined
const files = applies[0]!.value.plan.summary.files as number
const bytes = applies[0]!.value.plan.summary.bytes as number
// The disk scan's anchor: find reading the same stat fields of the same tree.
// Medians of three alternating runs (the first plan after an apply hashes what
// apply wrote, so it is not one of them).
conary("plan")
const runs = { find: [] as number[], plan: [] as number[], fast: [] as number[] }
for (let r = 0; r < 3; r++) {
  runs.find.push(time(() => execFileSync("sh", ["-c", `find ${root} -printf '%s %T@ %C@ %i %m\\n' > /dev/null`])).seconds)
  const p = time(() => conary("plan"))
  if (!p.value.startsWith("No changes.")) throw new Error(`expected no changes, got: ${p.value.slice(0, 200)}`)
  runs.plan.push(p.seconds)
  runs.fast.push(time(() => conary("plan", "--no-refresh")).seconds)
}
const find = { seconds: median(runs.find) }
const noop = { seconds: median(runs.plan) }
const noopFast = { seconds: median(runs.fast) }
const noopApply = time(() => conary("apply"))

await generateTroves(repo, 0, UPDATED, perTrove, 2)
const resync = time(() => conary("source", "sync"))
const update = time(() => JSON.parse(conary("apply", "--json")))
const upd = update.value.plan.summary

// System calls per installed entry: apply onto a fresh root, `cp -a` and `tar -x` of the same tree.
const straced = has("strace")
const syscalls = (label: string, argv: string[]): number => {
  const out = path.join(base, `strace-${label}.txt`)
  execFileSync("strace", ["-f", "-c", "-o", out, ...argv], { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 << 30 })
  // the summary's last line: % time, seconds, usecs/call, calls, [errors,] total
  const total = fs.readFileSync(out, "utf8").trim().split("\n").at(-1)!.trim().split(/\s+/)
  return Number(total[3]) / files
}
let perEntry: { apply: number; cp: number; tar: number } | undefined
if (straced) {
  const tarFile = path.join(base, "usr.tar")
  execFileSync("tar", ["-cf", tarFile, "-C", root, "usr"])
  fs.mkdirSync(path.join(base, "untar"))
  perEntry = {
    apply: syscalls("apply", [process.execPath, bin, "apply", "--json", "--root", tracedRoot]),
    cp: syscalls("cp", ["cp", "-a", path.join(root, "usr"), path.join(base, "copy")]),
    tar: syscalls("tar", ["tar", "-xf", tarFile, "-C", path.join(base, "untar")]),
  }
  for (const dir of ["copy", "untar", "traced-root", "usr.tar"]) fs.rmSync(path.join(base, dir), { recursive: true, force: true })
}

const rows: Array<[string, string, string]> = [
  ["source sync (index all archives)", `${sync.seconds.toFixed(2)} s`, `${((perTrove * TROVES) / sync.seconds).toFixed(0)} files/s`],
  [
    "apply onto an empty root",
    `${apply.seconds.toFixed(2)} s`,
    `${(files / apply.seconds).toFixed(0)} files/s, ${(bytes / 2 ** 20 / apply.seconds).toFixed(0)} MiB/s; median of ${ROUNDS} (${applies.map((a) => a.seconds.toFixed(2)).join(", ")} s)`,
  ],
  ["apply: peak RSS", applyRss === undefined ? "skipped" : `${(applyRss / 2 ** 20).toFixed(0)} MiB`, applyRss === undefined ? "no /usr/bin/time" : `whole process, worker threads included; the most of ${ROUNDS} runs`],
  [
    "apply: system calls per entry",
    perEntry ? perEntry.apply.toFixed(1) : "skipped",
    perEntry ? `cp -a ${perEntry.cp.toFixed(1)}, tar -x ${perEntry.tar.toFixed(1)} (${(perEntry.apply / perEntry.cp).toFixed(2)}x cp -a; strace -f -c, fresh roots)` : "no strace",
  ],
  [
    "cp -a + sync of the installed tree (floor)",
    `${floor.seconds.toFixed(2)} s`,
    `${(files / floor.seconds).toFixed(0)} files/s; median of ${ROUNDS}, each after an apply (${floors.map((f) => f.seconds.toFixed(2)).join(", ")} s)`,
  ],
  [
    "apply / (cp -a + sync)",
    `${(apply.seconds / floor.seconds).toFixed(2)}x`,
    `wall, medians; CPU ${apply.cpu.toFixed(2)} s against ${floor.cpu.toFixed(2)} s (${(apply.cpu / floor.cpu).toFixed(2)}x)`,
  ],
  [
    "design floor: store + stage + rename",
    `${design.seconds.toFixed(2)} s`,
    `${(design.seconds / floor.seconds).toFixed(2)}x cp -a + sync, CPU ${design.cpu.toFixed(2)} s; no decompression, plan or database (bench/design-floor.ts); median of ${ROUNDS} (${designs.map((f) => f.seconds.toFixed(2)).join(", ")} s)`,
  ],
  ["apply / design floor", `${(apply.seconds / design.seconds).toFixed(2)}x`, `wall, medians; inflating every archive alone takes ${inflating.toFixed(2)} s of CPU`],
  ["find -printf of the root (scan anchor)", `${find.seconds.toFixed(2)} s`, ""],
  ["plan, nothing changed (disk scan)", `${noop.seconds.toFixed(2)} s`, `${(files / noop.seconds).toFixed(0)} files/s checked, ${(noop.seconds / find.seconds).toFixed(2)}x find`],
  ["plan --no-refresh, nothing changed", `${noopFast.seconds.toFixed(2)} s`, ""],
  ["apply, nothing changed", `${noopApply.seconds.toFixed(2)} s`, ""],
  [`source sync after ${UPDATED} new versions`, `${resync.seconds.toFixed(2)} s`, ""],
  [`apply: update ${upd.update} troves`, `${update.seconds.toFixed(2)} s`, `${upd.files} files written, ${(upd.files / update.seconds).toFixed(0)} files/s`],
]
console.log(`installed: ${files} entries, ${(bytes / 2 ** 20).toFixed(0)} MiB of content`)
for (const [a, b, c] of rows) console.log(`${a.padEnd(38)} ${b.padStart(9)}   ${c}`)
if (!process.env.BENCH_KEEP) fs.rmSync(base, { recursive: true, force: true })
