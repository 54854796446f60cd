// SBOM benchmark on an installed state of N troves / F files: `conary sbom`
// (CycloneDX and SPDX) with and without --files, against the time `find`
// takes to list the same files (the floor of any tool that looks at them),
// and against syft when it is installed (`syft dir:ROOT`; it is not packaged
// for Debian, so usually absent). Goals (issue 21): ≤ 1 s for the troves,
// ≤ 3 s with 200,000 files.
//
//   npx tsx bench/sbom.ts                         # 2,000 troves, 200,000 files
//   BENCH_TROVES=200 BENCH_FILES=20000 npx tsx bench/sbom.ts
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { installedState, time } from "./lib.js"

const TROVES = Number(process.env.BENCH_TROVES ?? 2000)
const FILES = Number(process.env.BENCH_FILES ?? 200_000)
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-sbom-"))

try {
  console.log(`conary sbom benchmark: ${TROVES} troves, ${FILES} files, in ${base}`)
  const { root, conary } = await installedState(base, TROVES, FILES)
  conary("apply")
  conary("sbom") // warm the page cache

  // The installed files (the bench's troves install under usr/; the store beside the database is not theirs).
  const find = time(() => execFileSync("find", ["usr", "-type", "f"], { cwd: root, encoding: "utf8", maxBuffer: 1 << 30 }).split("\n").length - 1)
  const start = time(() => conary("list"))
  const runs: Array<[string, string[]]> = [
    ["sbom (CycloneDX)", []],
    ["sbom --files (CycloneDX)", ["--files"]],
    ["sbom --format spdx", ["--format", "spdx"]],
    ["sbom --format spdx --files", ["--format", "spdx", "--files"]],
  ]
  const rows = runs.map(([label, args]) => {
    const t = time(() => conary("sbom", ...args))
    return { label, seconds: t.seconds, bytes: t.value.length }
  })
  const hasSyft = spawnSync("syft", ["version"], { stdio: "ignore" }).status === 0
  const syft = hasSyft ? time(() => execFileSync("syft", [`dir:${root}`, "-o", "cyclonedx-json", "-q"], { maxBuffer: 1 << 30 })) : undefined

  console.log(`${find.value} installed files`)
  const line = (label: string, s: number, extra = "") =>
    console.log(`${label.padEnd(32)} ${s.toFixed(2).padStart(7)} s   ${(s / find.seconds).toFixed(1).padStart(6)}x find   ${extra}`)
  line("find ROOT/usr -type f (floor)", find.seconds)
  line("conary list (start-up, a read)", start.seconds)
  for (const r of rows) line(r.label, r.seconds, `${(r.bytes / 2 ** 20).toFixed(1)} MiB`)
  if (syft) line("syft dir:ROOT -o cyclonedx-json", syft.seconds, `conary sbom --files is ${(syft.seconds / rows[1]!.seconds).toFixed(1)}x faster`)
  else console.log("syft: not installed (not packaged for Debian); compared with find only")
} finally {
  if (!process.env.BENCH_KEEP) fs.rmSync(base, { recursive: true, force: true })
}
