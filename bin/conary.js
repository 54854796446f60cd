#!/usr/bin/env node
// Runs the CLI bundle (dist/conary.cjs, a CommonJS function) from V8's code
// cache beside it: compiling the bundle costs more than anything else a short
// command does, and a cache holding the bytecode of the functions a command
// ran skips most of it. A command with a cache of its own (dist/conary.NAME.cache,
// for `conary NAME ...`) runs from that one, any other from dist/conary.cache:
// V8 reads a whole cache before it runs anything, so each loads only what its
// command runs. The build writes the caches (scripts/warm-up.mjs). When
// it is missing, stale or rejected (another Node.js or V8 flags), the command
// runs compiled afresh and, when dist/ is writable, leaves a new cache behind;
// any failure to write one is ignored. CommonJS (bin/package.json) because an
// ES module entry costs more to start.
// Not a V8 start-up snapshot (node --snapshot-blob, measured on Node 20.20):
// it skips evaluating the modules, but Node keeps no compiled code in a user
// snapshot, so each function a command runs compiles afresh, and reading the
// heap back costs about what the code cache does: 0-35 ms CPU saved of ~200.
// It would also freeze what effect computes at load (its Random service's
// seed, its clock's origin), and node exits 14 on a blob of other V8 flags.
"use strict"
const fs = require("node:fs")
const Module = require("node:module")
const path = require("node:path")
const vm = require("node:vm")

const dist = path.join(__dirname, "..", "dist")
const filename = path.join(dist, "conary.cjs")
// The command's name: the first word that is not an option (a misread one only costs speed: any cache of this bundle is valid).
const command = process.argv.slice(2).find((a) => !a.startsWith("-"))
const own = command && /^[a-z]+$/.test(command) ? path.join(dist, `conary.${command}.cache`) : undefined
// latin1: the build makes the bundle pure ASCII (scripts/build.mjs), for which it reads exactly as UTF-8 does, without the cost of decoding UTF-8.
const source = fs.readFileSync(filename, "latin1")
// The bundle's first line names its build; V8 itself checks only the source's length.
const header = source.slice(0, source.indexOf("\n") + 1)

const read = (file) => {
  try {
    return fs.readFileSync(file)
  } catch {
    return undefined
  }
}
let cacheFile = own
let data = own && read(own)
if (data === undefined) data = read((cacheFile = path.join(dist, "conary.cache")))
const cachedData = data?.toString("latin1", 0, header.length) === header ? data.subarray(header.length) : undefined
const script = new vm.Script(Module.wrap(source), { filename, cachedData })

const writable = () => {
  try {
    fs.accessSync(dist, fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}

// The build sets CONARY_WRITE_CODE_CACHE to add each warm-up command's functions to the cache it ran from.
const refresh = cachedData === undefined || script.cachedDataRejected || process.env.CONARY_WRITE_CODE_CACHE === "1"
if (refresh && writable())
  // After the command: the functions it compiled are in the cache too.
  process.once("exit", () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`
    try {
      // V8's defaults of the flags a command may have set (src/heap.ts), and of those they imply
      // (--optimize-for-size sets the largest semi-space): V8 takes a cache only under the flags it was made under.
      require("node:v8").setFlagsFromString("--semi-space-growth-factor=2 --no-optimize-for-size --max-semi-space-size=0")
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(header, "latin1"), script.createCachedData()]))
      fs.renameSync(tmp, cacheFile)
    } catch {
      try {
        fs.rmSync(tmp, { force: true })
      } catch {}
    }
  })

const main = new Module(filename, module)
main.filename = filename
script.runInThisContext().call(main.exports, main.exports, Module.createRequire(filename), main, filename, dist)
