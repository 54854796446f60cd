// Delta updates on real Debian update pairs (bookworm -> bookworm-security or
// -updates), in one run: for each package, the new .deb's size (what apt
// downloads), the bytes conary downloads for the update (the deltas `repo
// build` kept, full objects for the rest, and the new manifest), the
// per-file floor `zstd -19 --long --patch-from=OLD NEW` computed here with
// the zstd CLI (plain `zstd -19 --long` for a file with no old version), and
// the CPU time of applying the deltas against decompressing the same
// contents' full objects as the client does today (fzstd).
//
//   npx tsx bench/delta.ts
//   BENCH_DELTA_PAIRS='sudo=1.9.13p3-1+deb12u2:1.9.13p3-1+deb12u4 ...' npx tsx bench/delta.ts
//
// Packages are downloaded once with `apt-get download NAME=VERSION` into bench/.cache/delta.
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { applyDelta } from "../src/source/delta.js"
import { unzstd } from "../src/source/decompress.js"
import { deltaFile, objectFile } from "../src/source/repo-meta.js"

const PAIRS = (
  process.env.BENCH_DELTA_PAIRS ??
  [
    "tzdata=2026b-0+deb12u1:2026f-0+deb12u1", // data
    "libexpat1=2.5.0-1+deb12u2:2.5.0-1+deb12u5", // a library
    "libxml2=2.9.14+dfsg-1.3~deb12u4:2.9.14+dfsg-1.3~deb12u6", // a library
    "sudo=1.9.13p3-1+deb12u2:1.9.13p3-1+deb12u4", // binaries
    "expat=2.5.0-1+deb12u2:2.5.0-1+deb12u5", // a binary, gzip'd docs
  ].join(" ")
)
  .split(/\s+/)
  .filter(Boolean)
  .map((spec) => {
    const [name, versions] = spec.split("=") as [string, string]
    const [from, to] = versions.split(":") as [string, string]
    return { name, from, to }
  })

const cache = path.resolve(import.meta.dirname, ".cache/delta")
fs.mkdirSync(cache, { recursive: true })
const debOf = (name: string, version: string): string => {
  const found = () => fs.readdirSync(cache).find((f) => f.startsWith(`${name}_${version.replace(/^\d+:/, "")}_`) && f.endsWith(".deb"))
  if (!found()) execFileSync("apt-get", ["download", `${name}=${version}`], { cwd: cache, stdio: ["ignore", "ignore", "inherit"] })
  return path.join(cache, found()!)
}

const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-delta-"))
const repo = path.join(base, "repo")
const bin = path.resolve(import.meta.dirname, "../bin/conary.js")
const conary = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8" })
const object = (sha: string, size: number) => unzstd(fs.readFileSync(path.join(repo, objectFile(sha))), size)

interface Man {
  files: Array<{ path: string; sha256?: string; size: number }>
  packed: Record<string, number>
  deltas?: Array<{ from: string; to: string; sha256: string; size: number; gzip?: { tool: "zlib" | "gzip"; level: number; fromSize: number; toSize: number } }>
}
const troves = () => {
  const top = JSON.parse(JSON.parse(unzstd(fs.readFileSync(path.join(repo, "repo.zst")), 1 << 26).toString()).signed)
  const out = new Map<string, { man: Man; manifestPacked: number }>()
  for (const part of top.parts)
    for (const t of JSON.parse(object(part.sha256, part.size).toString()).troves)
      out.set(`${t.name}=${t.version}`, {
        man: JSON.parse(object(t.manifest.sha256, t.manifest.size).toString()),
        manifestPacked: fs.statSync(path.join(repo, objectFile(t.manifest.sha256))).size,
      })
  return out
}
const cpu = (f: () => void) => {
  const t = process.cpuUsage()
  f()
  const d = process.cpuUsage(t)
  return (d.user + d.system) / 1000
}
const zstdSize = (args: string[], file: string) => {
  const r = spawnSync("zstd", ["-q", "-c", ...args, file], { maxBuffer: 1 << 30 })
  if (r.status !== 0) throw new Error(`zstd ${args.join(" ")} ${file}: ${r.stderr}`)
  return r.stdout.length
}

try {
  const debs = PAIRS.map((p) => ({ ...p, old: debOf(p.name, p.from), new: debOf(p.name, p.to) }))
  const t0 = Date.now()
  conary("repo", "build", repo, ...debs.map((d) => d.old))
  conary("repo", "build", repo, ...debs.map((d) => d.new))
  console.log(`repo build of the new versions (deltas included) and the old: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const all = troves()
  const kib = (n: number) => (n / 1024).toFixed(1).padStart(9)
  console.log(`${"package".padEnd(12)} ${"new .deb".padStart(9)} ${"conary".padStart(9)} ${"floor".padStart(9)} ${"ratio".padStart(6)} ${"%deb".padStart(5)} ${"changed".padStart(7)} ${"deltas".padStart(6)} ${"gz≠".padStart(4)} ${"patch ms".padStart(8)} ${"unzstd ms".padStart(9)}`)
  let sumDeb = 0, sumOurs = 0, sumFloor = 0, sumPatch = 0, sumPlain = 0, gzTried = 0, gzInner = 0
  for (const d of debs) {
    const oldT = all.get(`${d.name}=${d.from}`)!.man
    const { man: newT, manifestPacked } = all.get(`${d.name}=${d.to}`)!
    const held = new Set(oldT.files.flatMap((f) => (f.sha256 ? [f.sha256] : [])))
    const oldByPath = new Map(oldT.files.flatMap((f) => (f.sha256 ? [[f.path, f] as const] : [])))
    const changed = [...new Map(newT.files.flatMap((f) => (f.sha256 && !held.has(f.sha256) ? [[f.sha256, f] as const] : []))).values()]
    const deltas = new Map((newT.deltas ?? []).filter((x) => held.has(x.from)).sort((a, b) => b.size - a.size).map((x) => [x.to, x]))
    // What conary downloads: per content the client lacks, the smallest delta from the old version, else the full object; and the manifest.
    let ours = manifestPacked
    let floor = 0
    let patchMs = 0
    let plainMs = 0
    const oldDir = path.join(base, "x-old-" + d.name)
    const newDir = path.join(base, "x-new-" + d.name)
    execFileSync("dpkg-deb", ["-x", d.old, oldDir])
    execFileSync("dpkg-deb", ["-x", d.new, newDir])
    for (const f of changed) {
      const delta = deltas.get(f.sha256!)
      ours += delta?.size ?? newT.packed[f.sha256!]!
      const oldFile = oldByPath.get(f.path)
      const target = path.join(newDir, f.path)
      floor += oldFile ? zstdSize(["-19", "--long", `--patch-from=${path.join(oldDir, f.path)}`], target) : zstdSize(["-19", "--long"], target)
      if (f.path.endsWith(".gz")) {
        gzTried++
        if (delta?.gzip) gzInner++
      }
      if (delta) {
        const baseBytes = object(delta.from, oldT.files.find((x) => x.sha256 === delta.from)!.size)
        const bytes = fs.readFileSync(path.join(repo, deltaFile(delta.sha256)))
        const full = fs.readFileSync(path.join(repo, objectFile(f.sha256!)))
        patchMs += cpu(() => applyDelta(baseBytes, bytes, delta, f.size))
        plainMs += cpu(() => unzstd(full, f.size))
      }
    }
    const deb = fs.statSync(d.new).size
    sumDeb += deb
    sumOurs += ours
    sumFloor += floor
    sumPatch += patchMs
    sumPlain += plainMs
    console.log(
      `${d.name.padEnd(12)} ${kib(deb)} ${kib(ours)} ${kib(floor)} ${(ours / floor).toFixed(2).padStart(6)} ${((100 * ours) / deb).toFixed(0).padStart(4)}% ${String(changed.length).padStart(7)} ${String(deltas.size).padStart(6)} ${String(changed.filter((f) => f.path.endsWith(".gz") && !deltas.get(f.sha256!)?.gzip).length).padStart(4)} ${patchMs.toFixed(0).padStart(8)} ${plainMs.toFixed(0).padStart(9)}`,
    )
  }
  console.log(`${"total".padEnd(12)} ${kib(sumDeb)} ${kib(sumOurs)} ${kib(sumFloor)} ${(sumOurs / sumFloor).toFixed(2).padStart(6)} ${((100 * sumOurs) / sumDeb).toFixed(0).padStart(4)}%`)
  console.log(`(KiB; conary = deltas + full objects of changed contents + the new manifest; floor = per-file zstd -19 --long --patch-from)`)
  console.log(`goals: conary ≤ 1.1 × floor: ${(sumOurs / sumFloor).toFixed(2)} ×; ≤ 30 % of the .debs: ${((100 * sumOurs) / sumDeb).toFixed(1)} %; delta apply CPU ≤ 2 × decompression: ${(sumPatch / sumPlain).toFixed(2)} × (${sumPatch.toFixed(0)} ms against ${sumPlain.toFixed(0)} ms of fzstd for the same contents' full objects)`)
  console.log(`gzip'd changed files patched in their inner form: ${gzInner} of ${gzTried}`)
} finally {
  fs.rmSync(base, { recursive: true, force: true })
}
