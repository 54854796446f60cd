// The code caches' warm-up (scripts/build.mjs): the commands people run most,
// each run once with CONARY_WRITE_CODE_CACHE=1 on a scratch root, so each
// adds the functions it compiled to the cache it ran from (see bin/conary.js).
// dist/conary.cache, for commands without a cache of their own, gets the help
// and what any command on a root runs (`init`, `list` of an empty root). The
// commands in OWN get one each, made from runs on a root with a little of
// everything real (what a command runs depends on what is there): a native
// trove (built with `trove build`) and a .deb (xz, as Debian's are, written
// here) that depends on it, synced, desired, planned, applied, then listed,
// checked (as JSON: the text is a small step from it) and verified. Each run
// costs the build ~0.2 s. A bundle that cannot run these is broken: the
// warm-up throws, naming the command.
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { gzipSync } from "node:zlib"
import lzma from "lzma-native"
import tar from "tar-stream"

/** A tar of `entries` ({ name, type, data, linkname }), as dpkg-deb lays one out. */
const tarOf = (entries) =>
  new Promise((resolve, reject) => {
    const pack = tar.pack()
    const chunks = []
    pack.on("data", (c) => chunks.push(c))
    pack.on("end", () => resolve(Buffer.concat(chunks)))
    pack.on("error", reject)
    for (const { data = "", ...header } of entries)
      pack.entry({ mode: header.type === "file" ? 0o644 : 0o755, uname: "root", gname: "root", mtime: new Date(0), ...header }, data)
    pack.finalize()
  })

/** An ar archive of `members`, as a .deb is. */
const arOf = (members) =>
  Buffer.concat([
    Buffer.from("!<arch>\n"),
    ...members.flatMap(([name, data]) => [
      Buffer.from(`${name.padEnd(16)}${"0".padEnd(12)}${"0".padEnd(6)}${"0".padEnd(6)}${"100644".padEnd(8)}${String(data.length).padEnd(10)}\`\n`, "latin1"),
      data,
      ...(data.length % 2 ? [Buffer.from("\n")] : []),
    ]),
  ])

/** A small .deb: a program, a conffile, a copyright file in DEP-5, a dependency on `warm-lib`. */
const writeDeb = async (out) => {
  const control = [
    "Package: warm-tool",
    "Version: 1.0-1",
    "Architecture: all",
    "Maintainer: conary <conary@example.com>",
    "Depends: warm-lib (>= 1.0)",
    "Description: the code cache's warm-up",
    "",
  ].join("\n")
  const dirs = ["./", "./etc/", "./usr/", "./usr/bin/", "./usr/share/", "./usr/share/doc/", "./usr/share/doc/warm-tool/"]
  const data = await tarOf([
    ...dirs.map((name) => ({ name, type: "directory" })),
    { name: "./etc/warm-tool.conf", type: "file", data: "setting = 1\n" },
    { name: "./usr/bin/warm-tool", type: "file", mode: 0o755, data: "#!/bin/sh\necho warm\n" },
    { name: "./usr/share/doc/warm-tool/copyright", type: "file", data: "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: MIT\n" },
  ])
  const controlTar = await tarOf([
    { name: "./", type: "directory" },
    { name: "./control", type: "file", data: control },
    { name: "./conffiles", type: "file", data: "/etc/warm-tool.conf\n" },
  ])
  const xz = (b) => lzma.compress(b, { preset: 0 })
  writeFileSync(out, arOf([["debian-binary", Buffer.from("2.0\n")], ["control.tar.xz", await xz(controlTar)], ["data.tar.xz", await xz(data)]]))
}

/** The commands with a code cache of their own: those whose work on a populated root compiles the most beyond the common part. */
const OWN = ["trove", "source", "desired", "plan", "apply", "list", "status", "verify"]

/** Runs the warm-up with `bin` (bin/conary.js); `node` are node's own arguments (V8 flags, to measure). */
export const warmUp = async (bin, node = []) => {
  const base = mkdtempSync(join(tmpdir(), "conary-build-"))
  const conary = (...args) => {
    try {
      // --root as the tests and benchmarks give it: parsing an option compiles functions too.
      return execFileSync(process.execPath, [...node, bin, ...args, ...(["--help", "trove"].includes(args[0]) ? [] : ["--root", root])], {
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
        env: { ...process.env, CONARY_WRITE_CODE_CACHE: "1" },
      })
    } catch (e) {
      // status exits 2 when the root is not converged: the warm-up's is, so any exit but 0 is a failure.
      throw new Error(`the code cache's warm-up: conary ${args.join(" ")} failed (exit ${e.status}): ${(e.stderr || e.message).trim()}`)
    }
  }
  const root = join(base, "root")
  try {
    const repo = join(base, "repo")
    const tree = join(base, "tree")
    for (const d of [root, repo, join(tree, "usr/lib/warm"), join(tree, "etc")]) mkdirSync(d, { recursive: true })
    writeFileSync(join(tree, "usr/lib/warm/lib.txt"), "warm\n")
    writeFileSync(join(tree, "etc/warm-lib.conf"), "on\n")
    symlinkSync("lib.txt", join(tree, "usr/lib/warm/current"))
    await writeDeb(join(repo, "warm-tool_1.0-1_all.deb"))
    conary("--help")
    conary("init")
    conary("list")
    // An empty cache file (no build's header) is one to make afresh.
    for (const command of OWN) writeFileSync(join(dirname(bin), "..", "dist", `conary.${command}.cache`), "")
    conary("trove", "build", tree, "--name", "warm-lib", "--trove-version", "1.0-1-1", "--license", "MIT", "--out", join(repo, "warm-lib-1.0.ctrv"))
    conary("source", "add", "local", repo)
    conary("source", "sync")
    conary("desired", "add", "warm-tool")
    conary("plan")
    conary("apply")
    for (const args of [["list"], ["status", "--json"], ["verify"]]) conary(...args)
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
}
