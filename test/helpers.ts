import { execFile, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import * as zlib from "node:zlib"
import * as tar from "tar-stream"
import { onTestFinished } from "vitest"

import { REPO } from "./tree.js"

export { type Listing, REPO, listTree } from "./tree.js"
const BIN = path.join(REPO, "bin", "conary.js")

/** A fresh temporary directory, removed when the test ends. */
export const tempDir = (prefix = "conary-test-"): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * For `it.skipIf`: whether a test must skip because something it needs is
 * missing; says so loudly, with the command that enables it.
 */
export const mustSkip = (available: boolean, test: string, missing: string, enable: string): boolean => {
  if (!available) process.stderr.write(`\n*** SKIPPED: ${test}: ${missing}. Enable it with: ${enable}\n\n`)
  return !available
}

/** Runs the real CLI as a subprocess. */
/**
 * The CLI's environment: the test's, without the caller's own settings (they
 * must not leak into a test), and without NODE_EXTRA_CA_CERTS unless the test
 * gives it: set to the whole system bundle, as on some CI machines, it makes
 * every node process parse it as it starts (+0.15 s each, thousands of runs).
 * conary trusts the system bundle itself, and the tests' servers are local.
 */
const cliEnv = (given: Record<string, string> | undefined): Record<string, string | undefined> => {
  const env: Record<string, string | undefined> = { ...process.env, ...given }
  for (const name of ["CONARY_ROOT", "CONARY_DB", "NODE_EXTRA_CA_CERTS"]) if (given?.[name] === undefined) delete env[name]
  return env
}

export const conary = (
  args: ReadonlyArray<string>,
  options: {
    env?: Record<string, string>
    input?: string
    /** ms, for a run that might hang: killed, code -1 */
    timeout?: number
    /** a file descriptor for its stdout (then `stdout` is null), instead of a pipe */
    stdout?: number
  } = {},
): Run => {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: cliEnv(options.env),
    input: options.input ?? "",
    ...(options.timeout ? { timeout: options.timeout } : {}),
    ...(options.stdout !== undefined ? { stdio: ["pipe", options.stdout, "pipe"] } : {}),
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** Runs the CLI without blocking the test's event loop (for servers the test itself runs). */
export const conaryAsync = (args: ReadonlyArray<string>, options: { env?: Record<string, string> } = {}): Promise<Run> =>
  new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: "utf8", env: cliEnv(options.env) }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === "number" ? e.code : -1) : 0, stdout, stderr }),
    )
  })

export const okAsync = async (args: ReadonlyArray<string>, options?: { env?: Record<string, string> }): Promise<string> => {
  const r = await conaryAsync(args, options)
  if (r.code !== 0) throw new Error(`conary ${args.join(" ")} failed: ${r.stderr}${r.stdout}`)
  return r.stdout
}

/** Runs the CLI and fails the test with its stderr unless it exits 0. */
export const ok = (args: ReadonlyArray<string>, options?: { env?: Record<string, string>; input?: string }): string => {
  const r = conary(args, options)
  if (r.code !== 0) throw new Error(`conary ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

export type TreeSpec = Record<string, string | { content: string; mode?: number } | { symlink: string } | { dir: true; mode?: number }>

/** Writes a tree: `{"usr/bin/x": "content", "usr/bin/y": {symlink: "x"}}`. */
export const writeTree = (dir: string, spec: TreeSpec): string => {
  for (const [rel, entry] of Object.entries(spec)) {
    const p = path.join(dir, rel)
    fs.mkdirSync(path.dirname(p), { recursive: true })
    if (typeof entry === "string") fs.writeFileSync(p, entry)
    else if ("symlink" in entry) fs.symlinkSync(entry.symlink, p)
    else if ("dir" in entry) {
      fs.mkdirSync(p, { recursive: true })
      if (entry.mode !== undefined) fs.chmodSync(p, entry.mode)
    } else {
      fs.writeFileSync(p, entry.content)
      if (entry.mode !== undefined) fs.chmodSync(p, entry.mode)
    }
  }
  return dir
}

/** Writes a native archive by hand, for archives `trove build` would never make. */
export const writeRawArchive = async (
  out: string,
  manifest: unknown,
  objects: Record<string, Buffer | string>,
  options: { manifestName?: string } = {},
): Promise<void> => {
  const pack = tar.pack()
  const done = pipeline(pack, zlib.createGzip(), fs.createWriteStream(out))
  const add = (name: string, data: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, size: data.length }, data, (e) => (e ? reject(e) : resolve())))
  await add(options.manifestName ?? "manifest.json", Buffer.from(typeof manifest === "string" ? manifest : JSON.stringify(manifest)))
  for (const [name, data] of Object.entries(objects)) await add(name, Buffer.from(data))
  pack.finalize()
  await done
}

export const sha256 = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex")

/**
 * Runs `fn` on a tmpfs of `size` (e.g. "3m") mounted at `dir` (created),
 * unmounted after; where no tmpfs can be mounted (not root), says so loudly
 * and skips it.
 */
export const onSmallDisk = (test: string, dir: string, size: string, fn: () => void): void => {
  fs.mkdirSync(dir, { recursive: true })
  mountedFor(test, "a tmpfs", dir, [["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]], fn)
}

/** Runs `fn` with `dir` mounted read-only over itself (a bind mount), unmounted after; skipped loudly where it cannot mount. */
export const readOnly = (test: string, dir: string, fn: () => void): void =>
  mountedFor(test, "a read-only bind mount", dir, [["--bind", dir, dir], ["-o", "remount,bind,ro", dir]], fn)

/** `mount` with each argument list in turn, then `fn`, then unmounts whatever was mounted. */
const mountedFor = (test: string, what: string, dir: string, mounts: ReadonlyArray<ReadonlyArray<string>>, fn: () => void): void => {
  let mounted = false
  try {
    for (const args of mounts) {
      const run = spawnSync("mount", args, { encoding: "utf8" })
      if (mustSkip(run.status === 0, test, `cannot mount ${what} here (${(run.stderr || run.error?.message || "").trim()})`, "sudo npm test")) return
      mounted = true
    }
    fn()
  } finally {
    if (mounted) spawnSync("umount", [dir])
  }
}

/** Every path under `dir` whose name starts with `.conary-new.`. */
export const stagedLeftovers = (dir: string): string[] =>
  (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => path.basename(p).startsWith(".conary-new."))

/** A root with a database and one directory source, ready for troves. */
export const setupRoot = () => {
  const base = tempDir()
  const root = path.join(base, "root")
  const repo = path.join(base, "repo")
  fs.mkdirSync(root)
  fs.mkdirSync(repo)
  const r = ["--root", root]
  ok(["init", ...r])
  ok(["source", "add", "local", repo, ...r])
  return { base, root, repo, r }
}

/** Builds a trove archive into `repo` from a tree spec, with the real CLI. */
export const buildTrove = (
  repo: string,
  name: string,
  version: string,
  tree: TreeSpec,
  options: { flavor?: string; requires?: string[]; provides?: string[] } = {},
): string => {
  const dir = writeTree(fs.mkdtempSync(path.join(path.dirname(repo), `build-${name}-`)), tree)
  const out = path.join(repo, `${name}-${version}${options.flavor ? "-" + sha256(options.flavor).slice(0, 8) : ""}.ctrv`)
  ok([
    "trove",
    "build",
    dir,
    "--name",
    name,
    "--trove-version",
    version,
    ...(options.flavor ? ["--flavor", options.flavor] : []),
    ...(options.requires ?? []).flatMap((d) => ["--requires", d]),
    ...(options.provides ?? []).flatMap((d) => ["--provides", d]),
    "--out",
    out,
  ])
  return out
}
