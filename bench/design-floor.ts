// The least an apply that follows DESIGN.md's data flow must do to install a
// tree, with conary's own primitives (synchronous system calls in batches on
// every core, src/worker-pool.ts) and nothing else: each content hashed and
// written into a content store (temporary name, rename), written again to a
// stage path beside its target (mode, mtime), made durable, then renamed into
// place. No decompression, no planning, no database, no journal: a lower
// bound on apply's time, beside `cp -a` + sync of the same tree, so the
// benchmark says how much of apply's distance from a plain copy the design
// itself costs and how much is apply's own.
//
//   npx tsx bench/design-floor.ts TREE      # TREE: an installed tree (say, bench/core.ts's root)
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { forEachInWorkers } from "../src/worker-pool.js"

// One file: hashed and stored, then staged (an empty one only staged, as
// apply creates it without the store). Contents are written whether or not
// the store has them: apply knows that from its index, not a system call.
const STAGE = `const fs = require("node:fs")
const { createHash } = require("node:crypto")
function run([from, objects, to, mode, mtime]) {
  const data = fs.readFileSync(from)
  if (data.length > 0) {
    const sha = createHash("sha256").update(data).digest("hex")
    const object = objects + "/" + sha.slice(0, 2) + "/" + sha.slice(2)
    const tmp = object + ".tmp" + process.pid + "-" + Math.random().toString(36).slice(2)
    const fd = fs.openSync(tmp, "wx", 0o444)
    fs.writeSync(fd, data)
    fs.closeSync(fd)
    fs.renameSync(tmp, object)
  }
  const fd = fs.openSync(to + ".stage", "wx", 0o600)
  if (data.length > 0) fs.writeSync(fd, data)
  fs.fchmodSync(fd, mode)
  fs.futimesSync(fd, mtime, mtime)
  fs.closeSync(fd)
  return null
}`

const COMMIT = `const fs = require("node:fs")
function run(to) {
  fs.renameSync(to + ".stage", to)
  return null
}`

interface Entry {
  readonly rel: string
  readonly dir: boolean
  readonly mode: number
  readonly mtime: number
}

const walk = (tree: string): Entry[] => {
  const out: Entry[] = []
  const visit = (rel: string) => {
    for (const d of fs.readdirSync(path.join(tree, rel), { withFileTypes: true })) {
      const r = path.join(rel, d.name)
      const st = fs.lstatSync(path.join(tree, r))
      if (d.isDirectory()) {
        out.push({ rel: r, dir: true, mode: st.mode & 0o7777, mtime: st.mtimeMs / 1000 })
        visit(r)
      } else if (d.isFile()) out.push({ rel: r, dir: false, mode: st.mode & 0o7777, mtime: st.mtimeMs / 1000 })
    }
  }
  visit("")
  return out
}

/**
 * Installs `tree` into `scratch`/root through `scratch`/store as the design
 * must, timed (wall, and CPU of every thread) from the first write to the
 * last rename: the tree is listed before, as apply knows its files from the
 * plan. `scratch` is removed after.
 */
export const designFloor = async (tree: string, scratch: string): Promise<{ seconds: number; cpu: number }> => {
  const entries = walk(tree)
  const files = entries.filter((e) => !e.dir)
  const root = path.join(scratch, "root")
  const objects = path.join(scratch, "store", "objects")
  try {
    const start = performance.now()
    const cpu = process.cpuUsage()
    fs.mkdirSync(root, { recursive: true })
    for (let b = 0; b < 256; b++) fs.mkdirSync(path.join(objects, b.toString(16).padStart(2, "0")), { recursive: true })
    for (const e of entries) if (e.dir) fs.mkdirSync(path.join(root, e.rel), { mode: e.mode })
    await forEachInWorkers<[string, string, string, number, number], null>(
      STAGE,
      files.length,
      (i) => [path.join(tree, files[i]!.rel), objects, path.join(root, files[i]!.rel), files[i]!.mode, files[i]!.mtime],
      () => {},
    )
    // Durable before the commit, as apply's stage is.
    execFileSync("sync", ["-f", scratch])
    await forEachInWorkers<string, null>(COMMIT, files.length, (i) => path.join(root, files[i]!.rel), () => {})
    const used = process.cpuUsage(cpu)
    return { seconds: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === undefined || !fs.statSync(process.argv[2], { throwIfNoEntry: false })?.isDirectory()) {
    console.error("usage: npx tsx bench/design-floor.ts TREE   (an installed tree, a directory; the copy goes beside it)")
    process.exit(1)
  }
  const tree = path.resolve(process.argv[2])
  const t = await designFloor(tree, fs.mkdtempSync(path.join(path.dirname(tree), "floor-")))
  console.log(`design floor: ${t.seconds.toFixed(2)} s, CPU ${t.cpu.toFixed(2)} s`)
}
