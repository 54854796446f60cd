// Start-up benchmark: the whole process of short commands against `node -e 0`
// (the floor of any Node.js CLI), in alternating runs, medians. The root holds
// a few installed troves, so `list` and `status` read real rows. Goal (issue
// 14): `conary --help` and `conary list` ≤ 0.15 s.
//
//   npx tsx bench/startup.ts            # 21 rounds
//   BENCH_RUNS=51 npx tsx bench/startup.ts
//   BENCH_BASELINE=/tmp/old npx tsx bench/startup.ts   # also another checkout's build (its bin/conary.js), in the same rounds
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bin, installedState, median } from "./lib.js"

const RUNS = Number(process.env.BENCH_RUNS ?? 21)
const baseline = process.env.BENCH_BASELINE && path.resolve(process.env.BENCH_BASELINE, "bin/conary.js")
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-startup-"))

try {
  const { root, conary } = await installedState(base, 20, 200)
  conary("apply")
  const commands: Array<[string, string[]]> = [["node -e 0", ["-e", "0"]]]
  for (const [label, args] of [
    ["--help", ["--help"]],
    ["list", ["list", "--root", root]],
    ["status", ["status", "--root", root]],
  ] as const) {
    commands.push([`conary ${label}`, [bin, ...args]])
    if (baseline) commands.push([`baseline ${label}`, [baseline, ...args]])
  }
  const seconds = commands.map(() => [] as number[])
  for (let run = 0; run < RUNS; run++)
    commands.forEach(([label, args], i) => {
      const start = performance.now()
      const r = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] })
      seconds[i]!.push((performance.now() - start) / 1000)
      // status exits 2 when the root is not converged; anything else is a failure to report.
      if (r.status !== 0 && !(label.endsWith(" status") && r.status === 2)) throw new Error(`${label} exited ${r.status}: ${r.stderr}`)
    })
  const floor = median(seconds[0]!)
  console.log(`conary start-up benchmark: ${RUNS} alternating runs each, medians (load average ${os.loadavg()[0]!.toFixed(1)})`)
  commands.forEach(([label], i) => {
    const m = median(seconds[i]!)
    console.log(`${label.padEnd(16)} ${m.toFixed(3).padStart(7)} s   ${(m / floor).toFixed(2).padStart(5)}x node -e 0`)
  })
} finally {
  if (!process.env.BENCH_KEEP) fs.rmSync(base, { recursive: true, force: true })
}
