// SIGKILL `conary apply` at random instants, many times, and check after each
// recovery that the root and database are exactly at one generation.
//
//   npx tsx bench/fault-injection.ts                 # 1,000 kills
//   KILLS=200 TROVES=6 FILES=300 npx tsx bench/fault-injection.ts
//   SECONDS=600 npx tsx bench/fault-injection.ts     # as many kills as fit in 10 minutes
//   COLD_STORE=1 npx tsx bench/fault-injection.ts    # the store emptied before every other apply
//
// Prints a progress line every PROGRESS kills (default 10); removes its temp
// directory on every exit, Ctrl-C and SIGTERM included.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type KillReport, killLoop, setupScenario } from "../test/fault-harness.js"

const number = (name: string, fallback: number) => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < 0) {
    console.error(`fault-injection: ${name} must be a non-negative number, not ${JSON.stringify(raw)}`)
    process.exit(1)
  }
  return n
}

// SECONDS alone means "for that long"; KILLS alone, or neither, counts kills.
const seconds = number("SECONDS", 0)
const kills = number("KILLS", seconds > 0 ? Infinity : 1000)
const every = Math.max(1, number("PROGRESS", 10))
const base = fs.mkdtempSync(path.join(os.tmpdir(), "conary-faults-"))
const cleanup = () => fs.rmSync(base, { recursive: true, force: true })
process.on("exit", cleanup)
// A signal stops the loop (killing the apply in flight), then exits: the
// exit handler removes the directory once nothing writes into it.
const stop = new AbortController()
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const)
  process.on(signal, () => {
    console.log(`\n${signal}: stopping; removing ${base}`)
    process.exitCode = code
    stop.abort()
  })

const started = performance.now()
const elapsed = () => ((performance.now() - started) / 1000).toFixed(0)
const counts = (r: KillReport) =>
  `${r.endedInA} A, ${r.endedInB} B; recovery undid ${r.rolledBack}, finished ${r.rolledForward}; ` +
  `${r.kills - r.rolledBack - r.rolledForward - r.finishedBeforeKill} killed before the journal, ${r.finishedBeforeKill} finished first`

console.log(`setting up in ${base} ...`)
const s = await setupScenario(base, number("TROVES", 6), number("FILES", 300))
if (stop.signal.aborted) process.exit()
const files = Object.keys(s.listings.a).length + Object.keys(s.listings.b).length
console.log(`scenario: ${files} paths across the two generations; one apply takes ${s.applyMs.toFixed(0)} ms`)
console.log(`killing ${Number.isFinite(kills) ? `${kills} times` : ""}${Number.isFinite(kills) && seconds > 0 ? ", " : ""}${seconds > 0 ? `for up to ${seconds} s` : ""}`)
const loopStart = performance.now()
const r = await killLoop(s, kills, {
  until: seconds > 0 ? loopStart + seconds * 1000 : Infinity,
  signal: stop.signal,
  coldStore: process.env.COLD_STORE === "1",
  progress: (p) => {
    if (p.kills % every === 0) console.log(`${elapsed()} s: ${p.kills} kills, every one recovered to exactly one generation (${counts(p)})`)
  },
})
if (stop.signal.aborted) process.exit()
console.log(`${r.kills} kills in ${((performance.now() - loopStart) / 1000).toFixed(0)} s: every recovery left exactly one generation (${counts(r)})`)
