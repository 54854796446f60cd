// Installing real Debian packages three ways, in turns (medians of BENCH_ROUNDS=3):
//   dpkg --root=R --force-depends --unpack (with a scratch dpkg database),
//   dpkg-deb -x of each package, and conary (source sync, then apply) into a
//   fresh root; then dpkg --verify against conary verify --full on the result.
// The set is python3's dependency closure from Debian (apt-get download, cached
// in bench/.cache), less the packages with a preinst script: dpkg cannot run
// those in an empty root, and running them on this machine is not an option.
//
//   npx tsx bench/debs.ts
//   BENCH_DEBS=test/fixtures/debs npx tsx bench/debs.ts   # a given directory of .debs instead
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { debianClosure } from "../test/debian-closure.js"
import { bin, cliFor, medianBy, time } from "./lib.js"

const PACKAGE = process.env.BENCH_CLOSURE_OF ?? "python3"
const given = process.env.BENCH_DEBS ? path.resolve(process.env.BENCH_DEBS) : undefined
const all = given
  ? fs.readdirSync(given).filter((f) => f.endsWith(".deb")).sort().map((f) => path.join(given, f))
  : debianClosure(PACKAGE)
const hasPreinst = (deb: string) => execFileSync("dpkg-deb", ["-I", deb], { encoding: "utf8" }).includes(" preinst")
const debs = all.filter((d) => !hasPreinst(d))
const skipped = all.filter((d) => !debs.includes(d))
const field = (deb: string, name: string) => execFileSync("dpkg-deb", ["-f", deb, name], { encoding: "utf8" }).trim()
const installedKiB = debs.reduce((n, d) => n + Number(field(d, "Installed-Size")), 0)
const packed = debs.reduce((n, d) => n + fs.statSync(d).size, 0)

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-debs-"))
try {
  console.log(
    `${debs.length} packages, ${(packed / 2 ** 20).toFixed(1)} MiB packed, ${(installedKiB / 1024).toFixed(1)} MiB installed` +
      ` (left out, having a preinst: ${skipped.map((d) => path.basename(d).split("_")[0]).join(", ")});` +
      // Wall times on a shared machine follow its load; CPU times much less so.
      ` load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores`,
  )
  const repo = path.join(base, "repo")
  fs.mkdirSync(repo)
  for (const d of debs) fs.copyFileSync(d, path.join(repo, path.basename(d)))
  // What the left-out packages would have provided, the base system provides here.
  const provided = skipped.flatMap((d) => [field(d, "Package"), ...field(d, "Provides").split(",").map((p) => p.trim().split(" ")[0]!)]).filter((p) => p)
  // The fixtures depend on libraries they do not include (see test/fixtures/README.md).
  if (process.env.BENCH_DEBS) provided.push("libc6", "libncursesw6", "libtinfo6")
  const names = debs.map((d) => field(d, "Package"))

  // 1. dpkg with a scratch database, into a fresh root.
  const dpkgOnce = (r1: string) => {
    for (const d of ["var/lib/dpkg/info", "var/lib/dpkg/updates"]) fs.mkdirSync(path.join(r1, d), { recursive: true })
    fs.writeFileSync(path.join(r1, "var/lib/dpkg/status"), "")
    const t = time(() => spawnSync("dpkg", [`--root=${r1}`, "--force-depends", "--refuse-script-chrootless", `--log=${path.join(base, "dpkg.log")}`, "--unpack", ...debs], { encoding: "utf8" }))
    if (t.value.status !== 0) throw new Error(`dpkg --unpack failed: ${t.value.stderr.slice(-500)}`)
    return t
  }
  // 2. dpkg-deb -x of each.
  const extractOnce = (r2: string) => {
    fs.mkdirSync(r2)
    return time(() => {
      for (const d of debs) execFileSync("dpkg-deb", ["-x", d, r2])
    })
  }
  // 3. conary, every command from an empty root to the installed packages, as dpkg --unpack's one.
  const conaryOnce = (r3: string) => {
    fs.mkdirSync(r3)
    const conary = cliFor(r3)
    let sync = { seconds: 0, cpu: 0 }
    let apply = { seconds: 0, cpu: 0 }
    const whole = time(() => {
      conary("init")
      conary("source", "add", "debian", repo)
      sync = time(() => conary("source", "sync"))
      if (provided.length > 0) conary("provide", "add", ...provided)
      conary("desired", "add", ...names)
      apply = time(() => conary("apply"))
    })
    return { whole, sync, apply }
  }
  // In turns, the median of each (by its wall time): a single run of each strays on this
  // machine (one gave dpkg 1.75 s against its usual 1.4-1.6 s, and a ratio under 1.0x).
  // The last round's roots are kept for the verification below.
  const runs = { dpkg: [] as Array<ReturnType<typeof dpkgOnce>>, extract: [] as Array<ReturnType<typeof extractOnce>>, conary: [] as Array<ReturnType<typeof conaryOnce>> }
  const [r1, r2, r3] = ["dpkg", "extract", "conary"].map((r) => path.join(base, r)) as [string, string, string]
  for (let r = 0; r < ROUNDS; r++) {
    for (const root of [r1, r2, r3]) fs.rmSync(root, { recursive: true, force: true })
    runs.dpkg.push(dpkgOnce(r1))
    runs.extract.push(extractOnce(r2))
    runs.conary.push(conaryOnce(r3))
  }
  const dpkg = medianBy(runs.dpkg, (t) => t.seconds)
  const extract = medianBy(runs.extract, (t) => t.seconds)
  const sync = medianBy(runs.conary, (c) => c.sync.seconds).sync
  const apply = medianBy(runs.conary, (c) => c.apply.seconds).apply
  const whole = medianBy(runs.conary, (c) => c.whole.seconds).whole

  // Verification of the same packages.
  const dpkgVerify = time(() => spawnSync("dpkg", [`--root=${r1}`, "--verify"], { encoding: "utf8" }))
  const conaryVerify = time(() => spawnSync(process.execPath, [bin, "verify", "--full", "--root", r3], { encoding: "utf8" }))

  const mib = installedKiB / 1024
  // CPU: user + system time of the processes (all their threads), steadier than wall time on a shared machine.
  const row = (label: string, t: { seconds: number; cpu: number }) =>
    console.log(
      `${label.padEnd(40)} ${t.seconds.toFixed(2).padStart(7)} s  ${(mib / t.seconds).toFixed(1).padStart(6)} MiB/s  ${(t.seconds / extract.seconds).toFixed(2)}x dpkg-deb -x` +
        `  CPU ${t.cpu.toFixed(2).padStart(6)} s`,
    )
  const each = (xs: Array<{ seconds: number }>) => xs.map((x) => x.seconds.toFixed(2)).join(", ")
  console.log(`medians of ${ROUNDS} rounds in turns; each round's wall times: dpkg --unpack ${each(runs.dpkg)}, dpkg-deb -x ${each(runs.extract)}, conary ${each(runs.conary.map((c) => c.whole))} s`)
  row("dpkg --unpack (scratch database)", dpkg)
  row("dpkg-deb -x, each package", extract)
  row("conary source sync (read and hash all)", sync)
  row("conary apply (fetch, stage, commit)", apply)
  row("conary sync + apply", { seconds: sync.seconds + apply.seconds, cpu: sync.cpu + apply.cpu })
  row("conary init ... apply (six commands)", whole)
  console.log(
    `conary init ... apply / dpkg --unpack: ${(whole.seconds / dpkg.seconds).toFixed(2)}x (CPU ${(whole.cpu / dpkg.cpu).toFixed(2)}x);` +
      ` apply / dpkg-deb -x: ${(apply.seconds / extract.seconds).toFixed(2)}x`,
  )
  console.log(`dpkg --verify                            ${dpkgVerify.seconds.toFixed(2).padStart(7)} s  (exit ${dpkgVerify.value.status}, md5 of every file)`)
  console.log(`conary verify --full                     ${conaryVerify.seconds.toFixed(2).padStart(7)} s  (exit ${conaryVerify.value.status}, sha256 of every file)`)
} finally {
  fs.rmSync(base, { recursive: true, force: true })
}
