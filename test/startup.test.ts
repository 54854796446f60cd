import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildDeb } from "./deb-helpers.js"
import { REPO, buildTrove, conary, ok, setupRoot, tempDir } from "./helpers.js"

// bin/conary.js runs dist/conary.cjs from V8's code cache in dist/conary.cache;
// `conary --help` prints from dist/conary-help.txt. Each test works on a copy of bin/ and dist/ (the other test files run the
// shared one meanwhile), with node_modules linked in for the native addons.

const install = () => {
  const dir = tempDir("conary-cache-")
  fs.cpSync(path.join(REPO, "bin"), path.join(dir, "bin"), { recursive: true })
  fs.cpSync(path.join(REPO, "dist"), path.join(dir, "dist"), { recursive: true })
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"))
  const bundle = path.join(dir, "dist", "conary.cjs")
  const cache = path.join(dir, "dist", "conary.cache")
  const help = path.join(dir, "dist", "conary-help.txt")
  const run = (...args: string[]) => runWith({}, ...args)
  const runWith = (env: Record<string, string>, ...args: string[]) => {
    const r = spawnSync(process.execPath, [path.join(dir, "bin", "conary.js"), ...args], { encoding: "utf8", env: { ...process.env, ...env } })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  return { dir, bundle, cache, help, run, runWith }
}

const firstLine = (file: string) => fs.readFileSync(file, "latin1").split("\n", 1)[0] + "\n"

describe("the code cache", () => {
  it("is written by the build for its bundle, and a run that V8 accepts it for leaves it as it is", () => {
    const { bundle, cache, run } = install()
    const built = fs.readFileSync(cache)
    expect(built.subarray(0, firstLine(bundle).length).toString("latin1")).toBe(firstLine(bundle))
    expect(run("--version")).toEqual({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/), stderr: "" })
    // bin/conary.js rewrites the cache only when it was missing or V8 rejected it.
    expect(fs.readFileSync(cache).equals(built)).toBe(true)
  })

  it("is written after a run when missing, and a garbage or truncated cache is ignored and replaced", () => {
    const { bundle, cache, help: kept, run } = install()
    fs.rmSync(kept)
    const help = run("--help")
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("USAGE")

    fs.rmSync(cache)
    expect(run("--help")).toEqual(help)
    const written = fs.readFileSync(cache)
    expect(written.subarray(0, firstLine(bundle).length).toString("latin1")).toBe(firstLine(bundle))
    expect(run("--help")).toEqual(help)
    expect(fs.readFileSync(cache).equals(written)).toBe(true)

    for (const bad of [Buffer.concat([Buffer.from(firstLine(bundle), "latin1"), Buffer.alloc(4096, 0x5a)]), written.subarray(0, written.length >> 1), Buffer.alloc(0)]) {
      fs.writeFileSync(cache, bad)
      expect(run("--help")).toEqual(help)
      expect(fs.readFileSync(cache).subarray(0, firstLine(bundle).length).toString("latin1")).toBe(firstLine(bundle))
      expect(fs.readFileSync(cache).length).toBeGreaterThan(bad.length)
    }
    // (the read worker's chunks beside them: see "what a sync worker loads")
    expect(fs.readdirSync(path.dirname(cache)).filter((f) => !f.startsWith("read-worker") && !/^conary\.[a-z]+\.cache$/.test(f)).sort()).toEqual(["conary-help.txt", "conary.cache", "conary.cjs"])
  })

  it("covers what the common commands run on a populated root: running them adds next to nothing to the caches", () => {
    // Troves other than the build's own (another architecture, a dependency
    // the other way round), by dpkg-deb and the CLI. CONARY_WRITE_CODE_CACHE
    // makes each command add the functions it compiled to the cache it ran
    // from: a function's bytecode is tens to hundreds of bytes, so a command
    // whose common path the caches miss adds tens of KiB or more; one they
    // cover, a few (what only these troves take).
    const { dir, runWith } = install()
    const base = tempDir()
    const root = path.join(base, "root")
    const repo = path.join(base, "repo")
    fs.mkdirSync(root)
    fs.mkdirSync(repo)
    buildDeb(base, path.join(repo, "libgreet_2.1-3_amd64.deb"), { Package: "libgreet", Version: "2.1-3" }, { "usr/lib/libgreet.txt": "greet", "etc/greet.conf": "loud" }, { conffiles: ["/etc/greet.conf"] })
    const caches = () => fs.readdirSync(path.join(dir, "dist")).filter((f) => f.endsWith(".cache")).reduce((n, f) => n + fs.statSync(path.join(dir, "dist", f)).size, 0)
    const added = (...args: string[]) => {
      const before = caches()
      const r = runWith({ CONARY_WRITE_CODE_CACHE: "1" }, ...args, ...(args[0] === "trove" ? [] : ["--root", root]))
      expect(r.code, r.stderr).toBe(0)
      return [args.slice(0, 2).join(" "), caches() - before] as const
    }
    const tree = path.join(base, "tree")
    fs.mkdirSync(path.join(tree, "usr/bin"), { recursive: true })
    fs.writeFileSync(path.join(tree, "usr/bin/greet"), "#!/bin/sh\necho hi\n", { mode: 0o755 })
    const sizes = [
      added("init"),
      added("trove", "build", tree, "--name", "greet", "--trove-version", "1.0-1-1", "--requires", "libgreet", "--out", path.join(repo, "greet-1.0.ctrv")),
      added("source", "add", "local", repo),
      added("source", "sync"),
      added("desired", "add", "greet"),
      added("plan"),
      added("apply"),
      added("list"),
      added("status"),
      added("verify"),
    ]
    expect(sizes.filter(([, n]) => n > 16 * 1024)).toEqual([])
  })

  it("is still taken after a command that tunes V8's heap (apply sets V8 flags as it runs, and a cache is checked against them)", () => {
    const { dir, run, runWith } = install()
    const { root } = setupRoot()
    const cache = path.join(dir, "dist", "conary.apply.cache")
    const inode = () => fs.statSync(cache).ino
    // The build's cache, made by its own apply: a run V8 rejects it for writes a new one (a new file, renamed over it).
    const built = inode()
    expect(run("apply", "--root", root).code).toBe(0)
    expect(inode()).toBe(built)
    // One made by an apply that had set them.
    expect(runWith({ CONARY_WRITE_CODE_CACHE: "1" }, "apply", "--root", root).code).toBe(0)
    const made = inode()
    expect(made).not.toBe(built)
    expect(run("apply", "--root", root).code).toBe(0)
    expect(inode()).toBe(made)
  })

  it("is not taken for another build of the bundle, even one of the same length", () => {
    const { bundle, cache, run } = install()
    // V8 checks only the source's length: a cache of the old build would run its bytecode, old strings and all.
    const source = fs.readFileSync(bundle, "latin1")
    const old = "declarative system-state reconciler"
    expect(source).toContain(old)
    const id = /build ([0-9a-f]+)/.exec(source)![1]!
    const rebuilt = source.replaceAll(id, [...id].reverse().join("")).replace(old, old.toUpperCase())
    expect(rebuilt.length).toBe(source.length)
    fs.writeFileSync(bundle, rebuilt, "latin1")
    const help = run("--help")
    expect(help.code).toBe(0)
    expect(help.stdout).toContain(old.toUpperCase())
    expect(firstLine(cache)).toBe(firstLine(bundle))
  })
})

describe("the top-level help", () => {
  const buildOf = (bundle: string) => /build ([0-9a-f]+)/.exec(firstLine(bundle))![1]

  it("is kept by the build and printed from there, as the first run printed it", () => {
    const { bundle, help, run } = install()
    expect(firstLine(help)).toBe(`${buildOf(bundle)}\n`)
    const printed = run("--help")
    expect(printed.code).toBe(0)
    expect(printed.stdout).toMatch(/^conary\n\nconary \d+\.\d+\.\d+\n\nUSAGE\n\n\$ conary\n\nDESCRIPTION\n\ndeclarative system-state reconciler/)
    expect(run("-h")).toEqual(printed)
    fs.rmSync(help)
    expect(run("--help")).toEqual(printed)
    expect(firstLine(help)).toBe(`${buildOf(bundle)}\n`)
    expect(run("--help")).toEqual(printed)
  })

  it("is not taken from another build, and is kept anew", () => {
    const { bundle, help, run } = install()
    const printed = run("--help")
    fs.writeFileSync(help, "0123456789abcdef\nnot conary's help\n")
    expect(run("--help")).toEqual(printed)
    expect(firstLine(help)).toBe(`${buildOf(bundle)}\n`)
  })
})

/** The built-in modules a run of the CLI on a root loaded (it must succeed), by a preload that lists them as it exits; `stdout`: a file descriptor for its output. */
const builtinsLoaded = (base: string, r: ReadonlyArray<string>, stdout?: number) => {
  const preload = path.join(base, "builtins.cjs")
  fs.writeFileSync(
    preload,
    'process.on("exit", () => require("node:fs").writeSync(2, "\\nbuiltins: " + process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice(13)).join(" ") + "\\n"))\n',
  )
  return (...args: string[]): Set<string> => {
    const run = conary([...args, ...r], { env: { NODE_OPTIONS: `--require ${preload}` }, stdout })
    expect(run.code, run.stderr).toBe(0)
    const names = new Set(/\nbuiltins: (.*)\n/.exec(run.stderr)![1]!.split(" "))
    expect(names.has("fs")).toBe(true)
    return names
  }
}

/** The files a run of the CLI loaded with require (require.cache as it exits, by a preload); it must succeed. */
const modulesLoaded = (base: string, args: ReadonlyArray<string>): string[] => {
  const preload = path.join(base, "modules.cjs")
  fs.writeFileSync(preload, 'process.on("exit", () => require("node:fs").writeSync(2, "\\nmodules: " + Object.keys(require.cache).join(" ") + "\\n"))\n')
  const run = conary(args, { env: { NODE_OPTIONS: `--require ${preload}` } })
  expect(run.code, run.stderr).toBe(0)
  return /\nmodules: (.*)\n/.exec(run.stderr)![1]!.split(" ")
}

describe("what short commands load", () => {
  // Built-in modules that cost milliseconds each to load: a command that does
  // not hash, spawn, fetch, decompress or scan must not load their modules.
  it("list and plan --no-refresh on an unchanged root load no hashing, process, network, compression or scan modules; status none but the scan's", () => {
    const { base, repo, r } = setupRoot()
    buildTrove(repo, "hello", "1.0-1-1", { "usr/bin/hello": "hi" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "hello", ...r])
    ok(["apply", ...r])
    const loaded = builtinsLoaded(base, r)
    const never = ["child_process", "zlib", "http", "https", "tls"]
    // readline: cli-progress loads it, for a progress bar on a terminal only
    const list = loaded("list")
    expect([...never, "crypto", "worker_threads", "readline"].filter((m) => list.has(m))).toEqual([])
    const plan = loaded("plan", "--no-refresh")
    expect([...never, "crypto", "worker_threads", "readline"].filter((m) => plan.has(m))).toEqual([])
    expect(never.filter((m) => loaded("status").has(m))).toEqual([])
    // stderr, where list writes nothing, is a pipe here: making its stream would load node:net (stdout, a file, does not)
    const out = path.join(base, "list.txt")
    const fd = fs.openSync(out, "w")
    expect(builtinsLoaded(base, r, fd)("list").has("net")).toBe(false)
    fs.closeSync(fd)
    expect(fs.readFileSync(out, "utf8")).toMatch(/^NAME .*\nhello /)
  })

  it("source add, source sync and apply from a directory load no http, https or tls (only a repository's download needs them)", () => {
    const { base, repo } = setupRoot()
    buildTrove(repo, "hello", "1.0-1-1", { "usr/bin/hello": "hi" })
    const root = path.join(base, "other")
    fs.mkdirSync(root)
    const r = ["--root", root]
    ok(["init", ...r])
    const loaded = builtinsLoaded(base, r)
    const network = (...args: string[]) => {
      const names = loaded(...args)
      return ["http", "https", "tls"].filter((m) => names.has(m))
    }
    expect(network("source", "add", "local", repo)).toEqual([])
    expect(network("source", "sync")).toEqual([])
    ok(["desired", "add", "hello", ...r])
    expect(network("apply")).toEqual([])
    expect(fs.readFileSync(path.join(root, "usr/bin/hello"), "utf8")).toBe("hi")
  })
})

describe("the bundle", () => {
  it("is pure ASCII, which bin/conary.js reads as latin1", () => {
    const bytes = fs.readFileSync(path.join(REPO, "dist", "conary.cjs"))
    expect(bytes.findIndex((b) => b > 0x7f)).toBe(-1)
  })

  it("shares one namespace of node:fs and of node:path among conary's modules, not a copy of each per module", () => {
    // esbuild's __toESM copies every property of the module; what is left is node_modules' own.
    const copies = fs.readFileSync(path.join(REPO, "dist", "conary.cjs"), "latin1").match(/__toESM\(require\("node:(fs|path)"\)/g) ?? []
    expect(copies.length).toBeLessThan(5)
  })

  it("holds better-sqlite3's JavaScript: a command on a root loads only its addon from node_modules, without `bindings`", () => {
    const { base, r } = setupRoot()
    const loaded = modulesLoaded(base, ["list", ...r])
    expect(loaded.filter((m) => m.includes("/node_modules/"))).toEqual([path.join(REPO, "node_modules/better-sqlite3/build/Release/better_sqlite3.node")])
  })

  it("gives the scan's workers its own SQLite addon, not another build `bindings` finds first (two copies of SQLite in a process drop each other's locks)", () => {
    const { base, repo, r } = setupRoot()
    // Content over a worker's range (32 MiB with --full) makes two ranges: the scan runs in workers.
    const big = "\0".repeat(17 << 20)
    buildTrove(repo, "big", "1.0-1-1", { "usr/share/big/a": big, "usr/share/big/b": big })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "big", ...r])
    ok(["apply", ...r])
    // An install whose better-sqlite3 also has a debug build, which `bindings` looks for before build/Release.
    const dir = tempDir("conary-debug-addon-")
    for (const d of ["bin", "dist"]) fs.cpSync(path.join(REPO, d), path.join(dir, d), { recursive: true })
    const modules = path.join(dir, "node_modules")
    fs.mkdirSync(modules)
    for (const m of fs.readdirSync(path.join(REPO, "node_modules")))
      if (m !== "better-sqlite3") fs.symlinkSync(path.join(REPO, "node_modules", m), path.join(modules, m))
    const pkg = path.join(modules, "better-sqlite3")
    for (const f of ["package.json", "lib"]) fs.cpSync(path.join(REPO, "node_modules/better-sqlite3", f), path.join(pkg, f), { recursive: true })
    const release = path.join(pkg, "build/Release/better_sqlite3.node")
    for (const build of ["Release", "Debug"]) {
      fs.mkdirSync(path.join(pkg, "build", build), { recursive: true })
      fs.copyFileSync(path.join(REPO, "node_modules/better-sqlite3/build/Release/better_sqlite3.node"), path.join(pkg, "build", build, "better_sqlite3.node"))
    }
    // Each addon file any thread of the run loads.
    const preload = path.join(base, "addons.cjs")
    const loaded = path.join(base, "addons.txt")
    fs.writeFileSync(
      preload,
      `const fs = require("node:fs"), dlopen = process.dlopen
process.dlopen = function (module, file, ...rest) {
  if (file.endsWith("better_sqlite3.node")) fs.appendFileSync(${JSON.stringify(loaded)}, file + "\\n")
  return dlopen.call(this, module, file, ...rest)
}
`,
    )
    const run = spawnSync(process.execPath, [path.join(dir, "bin", "conary.js"), "verify", "--full", ...r], {
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: `--require ${preload}` },
    })
    expect(run.status, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^Verified 5 files of 1 trove: no drift\.\n$/)
    const files = fs.readFileSync(loaded, "utf8").trim().split("\n")
    // the main thread's and at least one worker's
    expect(files.length).toBeGreaterThan(1)
    expect([...new Set(files)]).toEqual([release])
  })

  it("says in one line that SQLite's addon cannot be loaded when it is not built", () => {
    const { r } = setupRoot()
    const dir = tempDir("conary-no-addon-")
    for (const d of ["bin", "dist"]) fs.cpSync(path.join(REPO, d), path.join(dir, d), { recursive: true })
    // the package without its build/ (list needs nothing else from node_modules)
    fs.mkdirSync(path.join(dir, "node_modules", "better-sqlite3"), { recursive: true })
    fs.copyFileSync(path.join(REPO, "node_modules", "better-sqlite3", "package.json"), path.join(dir, "node_modules", "better-sqlite3", "package.json"))
    const run = spawnSync(process.execPath, [path.join(dir, "bin", "conary.js"), "list", ...r], { encoding: "utf8" })
    expect(run.status).toBe(1)
    expect(run.stderr).toMatch(/^conary: database \S+: cannot load SQLite \(better-sqlite3\/build\/Release\/better_sqlite3\.node\): Cannot find module [^\n]*\n$/)
    // init leaves a root as it found it: the directories it made for the database go again, what was there stays.
    const fresh = tempDir("conary-no-addon-root-")
    fs.mkdirSync(path.join(fresh, "var"))
    fs.writeFileSync(path.join(fresh, "var", "keep"), "the admin's\n")
    const init = spawnSync(process.execPath, [path.join(dir, "bin", "conary.js"), "init", "--root", fresh], { encoding: "utf8" })
    expect(init.status).toBe(1)
    expect(init.stderr).toMatch(/^conary: database \S+: cannot load SQLite [^\n]*\n$/)
    expect(fs.readdirSync(fresh, { recursive: true }).sort()).toEqual(["var", "var/keep"])
  })
})

describe("what a sync worker loads", () => {
  // dist/read-worker.mjs and the chunks it imports (not those it may import
  // later): what each worker evaluates before it reads its first archive.
  const dist = path.join(REPO, "dist")
  const staticImports = (file: string): string[] => {
    const text = fs.readFileSync(path.join(dist, file), "utf8")
    const chunks = [...text.matchAll(/^import\s*(?:[^"'(]*?\s*from\s*)?["']\.\/([^"']+)["']/gm)].map((m) => m[1]!)
    return [file, ...chunks.flatMap(staticImports)]
  }
  // esbuild names each module it bundles in a comment: `// src/source/deb.ts`.
  const modules = (files: ReadonlyArray<string>) =>
    new Set(files.flatMap((f) => [...fs.readFileSync(path.join(dist, f), "utf8").matchAll(/^\/\/ ((?:src|node_modules)\/\S+)$/gm)].map((m) => m[1]!)))

  it("is no other format's code, nor effect's Schema, until it reads an archive of that format", () => {
    const first = modules(staticImports("read-worker.mjs"))
    expect(first.has("src/source/read-archives.ts")).toBe(true)
    expect(first.has("src/source/formats.ts")).toBe(true)
    const heavy = ["src/source/native.ts", "src/source/group.ts", "src/source/rpm.ts", "src/source/arch.ts", "src/source/deb.ts", "node_modules/effect/dist/esm/Schema.js"]
    expect(heavy.filter((m) => first.has(m))).toEqual([])
    // Each format's code is there, for the worker to load when it needs it.
    const all = modules(fs.readdirSync(dist).filter((f) => f.startsWith("read-worker")))
    expect(heavy.filter((m) => !all.has(m))).toEqual([])
  })

  it("decodes xz with lzma-native's addon alone, not its JavaScript streams", () => {
    const { base, repo, r } = setupRoot()
    buildDeb(base, path.join(repo, "hello_1.0_amd64.deb"), { Package: "hello", Version: "1.0" }, { "usr/bin/hello": "hi" }, { compression: "xz" })
    // One small archive: read on the main thread, whose modules the preload sees.
    const loaded = modulesLoaded(base, ["source", "sync", ...r])
    expect(loaded.filter((m) => m.endsWith("lzma_native.node"))).toHaveLength(1)
    expect(loaded.filter((m) => /\/node_modules\/(lzma-native\/index\.js|readable-stream\/)/.test(m))).toEqual([])
  })
})
