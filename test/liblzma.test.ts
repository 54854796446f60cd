import { createRequire } from "node:module"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

// scripts/build-liblzma.mjs (run by npm install) rebuilds lzma-native with an
// optimized liblzma: its prebuilt addon decodes xz at half the speed.
const require = createRequire(import.meta.url)
const dir = path.dirname(require.resolve("lzma-native/package.json"))

describe("liblzma", () => {
  it("is lzma-native's addon as npm install rebuilt it, not the unoptimized prebuilt one", () => {
    const nodeGypBuild = require("node-gyp-build") as { resolve: (dir: string) => string }
    expect(nodeGypBuild.resolve(dir)).toBe(path.join(dir, "build", "Release", "lzma_native.node"))
  })
})
