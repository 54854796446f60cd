// Drift-detection benchmark on an installed state of N troves / F files, in one
// run, each figure beside its anchor from the same run (warm page cache):
// `conary verify` (stat cache) against `find ROOT -printf` of the same stat
// fields, and `conary verify --full` against GNU sha256sum over the same files
// on every core (`find -print0 | xargs -0 -P`), as throughput; with the peak
// RSS of each conary run. Each is run RUNS times, alternating, and the median
// taken (the machine may be busy: read the figures as indicative).
//
//   npx tsx bench/verify.ts                         # 2,000 troves, 200,000 files
//   BENCH_TROVES=200 BENCH_FILES=20000 BENCH_RUNS=3 npx tsx bench/verify.ts
import { execFileSync, execSync } from "node:child_process"
import * as fs from "node:fs"
import { availableParallelism } from "node:os"
import * as os from "node:os"
import * as path from "node:path"
import { bin, installedState, median } from "./lib.js"

const TROVES = Number(process.env.BENCH_TROVES ?? 2000)
const FILES = Number(process.env.BENCH_FILES ?? 200_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-verify-"))

/** Wall seconds and peak RSS (MiB) of a command, from GNU time. */
const measure = (argv: string[]): { seconds: number; rssMiB: number; out: string } => {
  const file = path.join(base, "time.txt")
  const start = performance.now()
  let out = ""
  try {
    out = execFileSync("/usr/bin/time", ["-f", "%M", "-o", file, ...argv], { encoding: "utf8", maxBuffer: 1 << 30 })
  } catch (e) {
    // verify exits 2 on drift; that is checked by the caller
    out = (e as { stdout?: string }).stdout ?? ""
  }
  const seconds = (performance.now() - start) / 1000
  return { seconds, rssMiB: Number(fs.readFileSync(file, "utf8").trim().split("\n").pop()) / 1024, out }
}

try {
  console.log(`conary verify benchmark: ${TROVES} troves, ${FILES} files, in ${base}`)
  const { root, conary } = await installedState(base, TROVES, FILES)
  conary("apply")
  // The first scan after an apply hashes what it wrote (the rename moved every ctime) and keeps the refreshed
  // rows; it also warms the page cache and the stat cache for the runs below.
  const first = measure([process.execPath, bin, "verify", "--root", root])
  if (!first.out.includes("no drift")) throw new Error(first.out)
  const bytes = Number(execSync(`find ${root}/usr -type f -printf '%s\\n' | awk '{s+=$1} END {print s}'`, { encoding: "utf8" }).trim())
  const cores = availableParallelism()
  const runs = { find: [] as number[], verify: [] as number[], verifyRss: [] as number[], sha: [] as number[], full: [] as number[], fullRss: [] as number[] }
  for (let r = 0; r < RUNS; r++) {
    runs.find.push(measure(["sh", "-c", `find ${root} -printf '%s %T@ %C@ %i %m\\n' > /dev/null`]).seconds)
    const stat = measure([process.execPath, bin, "verify", "--root", root])
    if (!stat.out.includes("no drift")) throw new Error(stat.out)
    runs.verify.push(stat.seconds)
    runs.verifyRss.push(stat.rssMiB)
    runs.sha.push(measure(["sh", "-c", `find ${root}/usr -type f -print0 | xargs -0 -P${cores} sha256sum > /dev/null`]).seconds)
    const full = measure([process.execPath, bin, "verify", "--full", "--root", root])
    if (!full.out.includes("no drift")) throw new Error(full.out)
    runs.full.push(full.seconds)
    runs.fullRss.push(full.rssMiB)
  }
  const find = median(runs.find)
  const stat = median(runs.verify)
  const sha = median(runs.sha)
  const full = median(runs.full)
  const mib = bytes / 2 ** 20
  console.log(`${FILES} files, ${mib.toFixed(0)} MiB of content; medians of ${RUNS} alternating runs`)
  console.log(`find -printf (size, mtime, ctime, inode, mode)  ${find.toFixed(2).padStart(6)} s`)
  console.log(`conary verify (stat cache, whole process)      ${stat.toFixed(2).padStart(6)} s   ${(stat / find).toFixed(2)}x find   peak RSS ${median(runs.verifyRss).toFixed(0)} MiB`)
  console.log(`sha256sum, find -print0 | xargs -0 -P${cores}          ${sha.toFixed(2).padStart(6)} s   ${(mib / sha).toFixed(0)} MiB/s`)
  console.log(`first verify after the apply (hashes all)   ${first.seconds.toFixed(2).padStart(6)} s   ${(mib / first.seconds).toFixed(0)} MiB/s (one run, cold stat cache)   peak RSS ${first.rssMiB.toFixed(0)} MiB`)
  console.log(`conary verify --full (warm)                    ${full.toFixed(2).padStart(6)} s   ${(mib / full).toFixed(0)} MiB/s = ${(sha / full).toFixed(2)}x sha256sum's throughput   peak RSS ${median(runs.fullRss).toFixed(0)} MiB`)
} finally {
  if (!process.env.BENCH_KEEP) fs.rmSync(base, { recursive: true, force: true })
}
