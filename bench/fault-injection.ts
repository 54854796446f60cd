// SIGKILL `conary apply` at random instants, many times, and check after each
// recovery that the root and database are exactly at one generation.
//
//   npx tsx bench/fault-injection.ts            # 1,000 kills
//   KILLS=200 TROVES=6 FILES=300 npx tsx bench/fault-injection.ts
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { killLoop, setupScenario } from "../test/fault-harness.js"

const kills = Number(process.env.KILLS ?? 1000)
const base = fs.mkdtempSync(path.join(os.tmpdir(), "conary-faults-"))
try {
  const s = await setupScenario(base, Number(process.env.TROVES ?? 6), Number(process.env.FILES ?? 300))
  const files = Object.keys(s.listings.a).length + Object.keys(s.listings.b).length
  console.log(`scenario: ${files} paths across the two generations; one apply takes ${s.applyMs.toFixed(0)} ms`)
  const start = performance.now()
  const r = await killLoop(s, kills)
  console.log(
    `${r.kills} kills in ${((performance.now() - start) / 1000).toFixed(0)} s: every recovery left exactly one generation ` +
      `(${r.endedInA} A, ${r.endedInB} B); recovery undid ${r.rolledBack}, finished ${r.rolledForward}; ` +
      `${r.kills - r.rolledBack - r.rolledForward - r.finishedBeforeKill} killed before the journal, ${r.finishedBeforeKill} finished first`,
  )
} finally {
  fs.rmSync(base, { recursive: true, force: true })
}
