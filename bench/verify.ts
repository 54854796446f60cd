// Drift-detection benchmark on an installed state of N troves / F files, in one
// run: the raw lstat loop over the same files (the floor for the stat path),
// `conary verify`, GNU sha256sum over the same files on all cores (xargs -P,
// the floor for hashing), and `conary verify --full`. Warm page cache.
//
//   npx tsx bench/verify.ts                         # 2,000 troves, 200,000 files
//   BENCH_TROVES=200 BENCH_FILES=20000 npx tsx bench/verify.ts
import { execSync } from "node:child_process"
import * as fs from "node:fs"
import { availableParallelism } from "node:os"
import * as os from "node:os"
import * as path from "node:path"
import { installedState, time } from "./lib.js"

const TROVES = Number(process.env.BENCH_TROVES ?? 2000)
const FILES = Number(process.env.BENCH_FILES ?? 200_000)
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-verify-"))

try {
  console.log(`conary verify benchmark: ${TROVES} troves, ${FILES} files, in ${base}`)
  const { root, conary } = await installedState(base, TROVES, FILES)
  conary("apply")
  const list = path.join(base, "files.txt")
  execSync(`cd ${root} && find usr -type f > ${list}`)
  const all = execSync(`cd ${root} && find usr`, { encoding: "utf8", maxBuffer: 1 << 30 }).trim().split("\n").map((p) => path.join(root, p))
  conary("verify") // warm the cache and the stat cache alike

  const lstat = time(() => {
    for (const p of all) fs.lstatSync(p)
  })
  const stat = time(() => conary("verify"))
  if (!stat.value.includes("no drift")) throw new Error(stat.value)
  const cores = availableParallelism()
  const sha = time(() => execSync(`cd ${root} && xargs -a ${list} -d '\\n' -P ${cores} -n 500 sha256sum > /dev/null`))
  const full = time(() => conary("verify", "--full"))
  if (!full.value.includes("no drift")) throw new Error(full.value)

  const row = (label: string, s: number, floor: number) =>
    console.log(`${label.padEnd(44)} ${s.toFixed(2).padStart(7)} s   ${(all.length / s).toFixed(0).padStart(8)} entries/s   ${(s / floor).toFixed(2)}x floor`)
  console.log(`${all.length} entries under the root (files, directories)`)
  row("lstat loop over the same entries (floor)", lstat.seconds, lstat.seconds)
  row("conary verify (stat path, process included)", stat.seconds, lstat.seconds)
  row(`sha256sum, xargs -P ${cores} (floor for hashing)`, sha.seconds, sha.seconds)
  row("conary verify --full", full.seconds, sha.seconds)
} finally {
  if (!process.env.BENCH_KEEP) fs.rmSync(base, { recursive: true, force: true })
}
