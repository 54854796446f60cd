// Fleet benchmark: one signed repository behind nginx on loopback; 50 roots on
// this machine provisioned in parallel by a shell script (bench/fleet-provision.sh)
// from one desired row, a group (`group-fleet`, built from the troves like a
// lockfile), twice in the same run: each root with its own content store, then
// every root sharing one (--store). Prints, for each, total wall time and the
// bytes nginx served against the unique content size, with the ratios; how long
// a new group version (a quarter of its members updated) takes to converge
// every root of each fleet (each: source sync, apply), and the time of one
// aggregated drift report (`conary status --json`) over all roots. No peer tool
// has groups, so the per-root-store fleet is the anchor.
//
//   npx tsx bench/fleet.ts
//   FLEET_ROOTS=10 FLEET_TROVES=20 npx tsx bench/fleet.ts
import { execFileSync, execSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requests, startNginx } from "../test/nginx.js"
import { bin, generateTroves, time, troveName } from "./lib.js"

const ROOTS = Number(process.env.FLEET_ROOTS ?? 50)
const TROVES = Number(process.env.FLEET_TROVES ?? 40)
const PER_TROVE = Number(process.env.FLEET_FILES_PER_TROVE ?? 50)
const PARALLEL = Number(process.env.FLEET_PARALLEL ?? os.availableParallelism() * 2)
const conary = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8", maxBuffer: 1 << 28 })

/** The summed sizes of the regular files under a directory. */
const contentBytes = (dir: string): number => {
  let total = 0
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size
  return total
}

const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "conary-fleet-"))
const nginx = await startNginx(path.join(base, "nginx"), path.join(base, "www"))
try {
  const inputs = path.join(base, "inputs")
  fs.mkdirSync(inputs)
  await generateTroves(inputs, 0, TROVES, PER_TROVE)
  conary("key", "generate", path.join(base, "fleet"))
  const repo = path.join(base, "www", "repo")
  const publish = () => JSON.parse(conary("repo", "build", repo, inputs, "--sign", path.join(base, "fleet.key"), "--json"))
  publish()
  // The group is built against the repository as it is now: every trove at its exact version.
  const builder = path.join(base, "builder")
  fs.mkdirSync(builder)
  conary("init", "--root", builder)
  conary("source", "add", "fleet", repo, "--trust", path.join(base, "fleet.pub"), "--root", builder)
  const names = path.join(base, "names.json")
  fs.writeFileSync(names, JSON.stringify({ formatVersion: 1, troves: Array.from({ length: TROVES }, (_, t) => ({ name: troveName(t) })) }))
  const buildGroup = (version: string) => {
    conary("source", "sync", "--root", builder)
    conary("group", "build", "--name", "group-fleet", "--trove-version", version, "--from", names, "--out", path.join(inputs, `group-fleet-${version}.cgrp`), "--root", builder)
    return publish()
  }
  const built = buildGroup("1-1-1")
  // The bytes of the distinct objects as stored and served (zstd: contents, manifests, metadata parts), not `du`, which also counts directory blocks.
  const unique = contentBytes(path.join(repo, "objects"))
  const desired = path.join(base, "desired.json")
  fs.writeFileSync(desired, JSON.stringify({ formatVersion: 1, troves: [{ name: "group-fleet" }] }))
  console.log(
    `repository: ${built.troves} troves, ${built.objects} objects, ${(unique / 2 ** 20).toFixed(1)} MiB unique content; ` +
      `${ROOTS} roots, ${PARALLEL} provisioned at a time`,
  )

  // The same fleet twice from the same repository: each root with its own store, then all sharing one.
  const script = path.resolve(import.meta.dirname, "fleet-provision.sh")
  const served = (from: number) => {
    const log = requests(nginx).slice(from)
    // Object bodies only, as unique content counts them (not repo.zst or roots).
    return {
      bytes: log.reduce((n, [, p, status, bytes]) => n + (status < 400 && p.includes("/objects/") ? bytes : 0), 0),
      requests: log.filter(([, p]) => p.includes("/objects/")).length,
    }
  }
  const provisionFleet = (mode: "own" | "shared") => {
    const roots = path.join(base, `roots-${mode}`)
    fs.mkdirSync(roots)
    const mark = requests(nginx).length
    const args = [bin, `${nginx.url}/repo`, path.join(base, "fleet.pub"), desired, roots, String(ROOTS), String(PARALLEL)]
    const t = time(() => execFileSync(script, mode === "shared" ? [...args, path.join(base, "store")] : args, { stdio: "inherit" }))
    return { roots, seconds: t.seconds, ...served(mark) }
  }
  const own = provisionFleet("own")
  const shared = provisionFleet("shared")

  // A new group version: a quarter of the troves at a new revision; every root of both fleets syncs and applies it.
  const updated = Math.max(1, Math.floor(TROVES / 4))
  await generateTroves(inputs, 0, updated, PER_TROVE, 2)
  buildGroup("2-1-1")
  const update = (roots: string) => {
    const mark = requests(nginx).length
    const t = time(() =>
      execSync(
        `ls ${roots} | xargs -P ${PARALLEL} -I{} sh -c 'node ${bin} source sync --root ${roots}/{} >/dev/null && node ${bin} apply --root ${roots}/{} >/dev/null'`,
        { stdio: "inherit" },
      ),
    )
    const groupAt = (root: string) =>
      JSON.parse(conary("list", "--json", "--root", root)).troves.find((t: { name: string }) => t.name === "group-fleet").version as string
    return { seconds: t.seconds, onNew: fs.readdirSync(roots).filter((h) => groupAt(path.join(roots, h)) === "2-1-1").length, ...served(mark) }
  }
  const ownUpdate = update(own.roots)
  const sharedUpdate = update(shared.roots)

  // Drift on a few roots, then one aggregated report over all of them.
  const roots = shared.roots
  for (let i = 1; i <= Math.min(5, ROOTS); i++) fs.appendFileSync(path.join(roots, `host${i}`, "usr/share", troveName(0), "d0/f0"), "drift")
  const report = time(() =>
    execSync(
      `ls ${roots} | xargs -P ${PARALLEL} -I{} node ${bin} status --json --root ${roots}/{} | node -e '` +
        `let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const all=JSON.parse("["+t.replace(/}\\s*{/g,"},{")+"]");` +
        `console.log(JSON.stringify({roots:all.length,converged:all.filter(s=>s.converged).length,drifted:all.filter(s=>s.drift.drifted>0).map(s=>s.root)}))})'`,
      { encoding: "utf8", maxBuffer: 1 << 26 },
    ),
  )
  const agg = JSON.parse(report.value)
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`
  for (const [label, f] of [["own stores   ", own], ["shared store ", shared]] as const)
    console.log(
      `${label}: provisioned ${ROOTS} roots in ${f.seconds.toFixed(1)} s wall (${(ROOTS / f.seconds).toFixed(2)} roots/s); ` +
        `nginx served ${mib(f.bytes)} in ${f.requests} object requests: ${(f.bytes / unique).toFixed(2)}x the unique content`,
    )
  console.log(
    `shared / own store: provisioning time ${(shared.seconds / own.seconds).toFixed(2)}x, served bytes ${(shared.bytes / own.bytes).toFixed(3)}x ` +
      `(goal: shared served <= 1.1x the unique content: ${shared.bytes <= 1.1 * unique ? "met" : "missed"})`,
  )
  for (const [label, u] of [["own stores   ", ownUpdate], ["shared store ", sharedUpdate]] as const)
    console.log(
      `${label}: group update (${updated} of ${TROVES} members changed): ${u.onNew} of ${ROOTS} roots converged on group-fleet=2-1-1 in ` +
        `${u.seconds.toFixed(1)} s wall (${(u.seconds / ROOTS).toFixed(2)} s per root, ${PARALLEL} at a time); served ${(u.bytes / 1024).toFixed(0)} KiB`,
    )
  console.log(`shared / own store: group update time ${(sharedUpdate.seconds / ownUpdate.seconds).toFixed(2)}x`)
  console.log(`aggregated status of ${agg.roots} roots (shared store) in ${report.seconds.toFixed(1)} s: ${agg.converged} converged, ${agg.drifted.length} drifted`)
} finally {
  await nginx.stop()
  fs.rmSync(base, { recursive: true, force: true })
}
