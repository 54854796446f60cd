// Shared by the benchmarks: a generated set of native troves (fixed seed)
// and the real CLI pointed at one root.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { type PackEntry, packNativeTrove } from "../src/source/native.js"

export const bin = path.resolve(import.meta.dirname, "../bin/conary.js")

// NODE_EXTRA_CA_CERTS (set on some machines for a TLS proxy, often to the whole
// system bundle) makes every node process parse that file as it starts: +0.15 s
// a process here, which dpkg, cp, find and sha256sum never pay. conary trusts
// the system bundle itself and the benchmarks read local files: every command
// they run (conary, and `node -e 0` as the floor) runs without it, as on a
// machine that does not set it. Said once, so the figures are read rightly.
if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
  console.log(`(NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS} is set here: the commands below run without it)`)
  delete process.env.NODE_EXTRA_CA_CERTS
}

// Every file's size and bytes follow from its trove and file number alone, so
// runs are comparable and a file a new revision does not change keeps its
// content whichever troves a run generates.
const generator = (t: number, f: number) => {
  let x = (Math.imul(t + 1, 0x9e3779b1) ^ Math.imul(f + 1, 0x85ebca6b)) >>> 0 || 1
  return () => {
    // xorshift32
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x100000000
  }
}

const fileContent = (t: number, f: number): Buffer => {
  const next = generator(t, f)
  // 0-64 KiB, log-uniform: most files small, as on real systems.
  const n = Math.floor(Math.pow(65537, next())) - 1
  const data = Buffer.allocUnsafe(n)
  for (let i = 0; i + 4 <= n; i += 4) data.writeUInt32LE(Math.floor(next() * 0x100000000), i)
  for (let i = n - (n % 4); i < n; i++) data[i] = Math.floor(next() * 256)
  return data
}

export const troveName = (t: number) => `bench${String(t).padStart(4, "0")}`

const entriesFor = (t: number, perTrove: number, revision: number): PackEntry[] => {
  const name = troveName(t)
  const entries: PackEntry[] = [
    { rel: "usr", kind: "dir", mode: 0o755 },
    { rel: "usr/share", kind: "dir", mode: 0o755 },
    { rel: `usr/share/${name}`, kind: "dir", mode: 0o755 },
  ]
  const dirs = Math.max(1, Math.ceil(perTrove / 25))
  for (let d = 0; d < dirs; d++) entries.push({ rel: `usr/share/${name}/d${d}`, kind: "dir", mode: 0o755 })
  for (let f = 0; f < perTrove; f++) {
    // A new revision changes one file in ten; the rest keep their content.
    const changed = revision > 1 && f % 10 === 0
    const data = fileContent(t, f)
    if (changed && data.length > 0) data[0] = (data[0]! + revision) & 0xff
    const content = changed && data.length === 0 ? Buffer.from(`rev${revision}`) : data
    entries.push({ rel: `usr/share/${name}/d${f % dirs}/f${f}`, kind: "file", mode: 0o644, data: () => content })
  }
  return entries
}

/** Writes troves `from`..`to`-1 at a revision into `repo` as native archives. */
export const generateTroves = async (repo: string, from: number, to: number, perTrove: number, revision = 1) => {
  for (let t = from; t < to; t++) {
    await packNativeTrove(
      entriesFor(t, perTrove, revision),
      { name: troveName(t), version: `1.${revision - 1}-1-1`, flavor: "", requires: [], provides: [], level: 1 },
      path.join(repo, `${troveName(t)}-1.${revision - 1}.ctrv`),
    )
  }
}

/** The real CLI on one root. */
export const cliFor = (root: string) => (...args: string[]) =>
  execFileSync(process.execPath, [bin, ...args, "--root", root], { encoding: "utf8", maxBuffer: 1 << 30 })

// CPU seconds (user + system) of the child processes waited for so far
// (Linux: cutime and cstime of /proc/self/stat), 0 elsewhere.
const ticks = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }))
  } catch {
    return 0
  }
})()
const childCpu = (): number => {
  if (ticks === 0 || !fs.existsSync("/proc/self/stat")) return 0
  const fields = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[13]) + Number(fields[14])) / ticks
}

/** Wall time of `f`, and the CPU time of the processes it ran and waited for (on a shared machine, the steadier figure). */
export const time = <A>(f: () => A): { seconds: number; cpu: number; value: A } => {
  const start = performance.now()
  const cpu = childCpu()
  const value = f()
  return { seconds: (performance.now() - start) / 1000, cpu: childCpu() - cpu, value }
}

/** The middle one of `xs` by `by` (the upper middle of an even number): the figure each round's runs are summed up by. */
export const medianBy = <T>(xs: ReadonlyArray<T>, by: (x: T) => number): T => [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)]!

export const median = (xs: ReadonlyArray<number>): number => medianBy(xs, (x) => x)

export const du = (dir: string) => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0])

/** Generates `troves` troves of `files` files in all, then inits `root` and installs them all. */
export const installedState = async (base: string, troves: number, files: number) => {
  const repo = path.join(base, "repo")
  const root = path.join(base, "root")
  fs.mkdirSync(repo, { recursive: true })
  fs.mkdirSync(root, { recursive: true })
  const perTrove = Math.max(1, Math.round(files / troves))
  await generateTroves(repo, 0, troves, perTrove)
  const conary = cliFor(root)
  conary("init")
  conary("source", "add", "bench", repo)
  conary("source", "sync")
  const doc = path.join(base, "desired.json")
  fs.writeFileSync(doc, JSON.stringify({ formatVersion: 1, troves: Array.from({ length: troves }, (_, t) => ({ name: troveName(t) })) }))
  conary("desired", "set", "--file", doc)
  return { repo, root, conary, perTrove }
}
