// Rebuilds lzma-native's addon from its own source, with liblzma optimized.
// Its prebuilt addon's liblzma was compiled without optimization (its build
// script hands configure CFLAGS="-fPIC ", which drops autoconf's -O2), so it
// decodes xz at half the speed of the system's xz, and xz is what .debs,
// rpms and Arch packages are mostly packed with. Run by `npm install`
// (postinstall). If the build fails, the prebuilt addon stays in use, with a
// warning: slower, not broken. node-gyp-build prefers build/Release, so the
// rebuilt addon is the one loaded.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const dir = path.dirname(createRequire(import.meta.url).resolve("lzma-native/package.json"))
const built = path.join(dir, "build", "Release", "lzma_native.node")
// npm names its own node-gyp to the scripts it runs.
const nodeGyp = process.env.npm_config_node_gyp
const warn = (why) =>
  console.warn(`build-liblzma: ${why}; lzma-native's prebuilt addon stays in use (it decodes xz about half as fast)`)

if (existsSync(built)) process.exit(0)
if (!nodeGyp) {
  warn("npm's node-gyp is unknown (run this through `npm install`)")
  process.exit(0)
}
console.log("build-liblzma: building lzma-native with an optimized liblzma (about a minute)")
const run = spawnSync(process.execPath, [nodeGyp, "rebuild"], {
  cwd: dir,
  env: { ...process.env, CFLAGS: "-O2" },
  stdio: ["ignore", "ignore", "pipe"],
  encoding: "utf8",
})
if (run.status !== 0) warn(`the build failed (${run.error?.message ?? run.stderr.trim().split("\n").slice(-3).join(" / ")})`)
