// Bundles the CLI into one file: start-up cost is dominated by module loading,
// and one bundle loads in a third of the time of the unbundled tree. What only
// one command needs (the SBOM libraries, the SPDX licence list) is imported
// dynamically and split into chunks beside it, so other commands never load it.
import { build } from "esbuild"
import { readFileSync, rmSync } from "node:fs"

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))

// Chunk names carry a hash: drop the previous build's.
rmSync(new URL("../dist/chunks", import.meta.url), { recursive: true, force: true })
await build({
  entryPoints: ["src/cli/main.ts"],
  outdir: "dist",
  entryNames: "conary",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  splitting: true,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  // native addons, and seek-bzip (its `new Buffer` warns outside node_modules): loaded from node_modules at run time;
  // the CycloneDX library's optional XML writers, which it tries to load and conary does not install
  external: ["better-sqlite3", "lzma-native", "seek-bzip", "zstd-napi", "xmlbuilder2", "libxmljs2"],
  define: { CONARY_VERSION: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  legalComments: "none",
  logLevel: "warning",
})
