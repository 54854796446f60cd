// Bundles the CLI into one CommonJS file, dist/conary.cjs, and writes V8's code
// cache for it (dist/conary.cache, see bin/conary.js). Start-up cost is
// compiling and loading code: one bundle loads in a third of the time of the
// unbundled tree, and from the code cache in a third again. What only one
// command needs (its handler, the SBOM libraries, the SPDX licence list) is
// imported dynamically, which esbuild turns into a lazy require: it stays in
// the file but runs, and is compiled, only when that command runs.
import { build } from "esbuild"
import { randomBytes } from "node:crypto"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { warmUp } from "./warm-up.mjs"

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
const dist = fileURLToPath(new URL("../dist", import.meta.url))
const bin = fileURLToPath(new URL("../bin/conary.js", import.meta.url))
const src = fileURLToPath(new URL("../src/", import.meta.url))

// Names this build: what it leaves beside itself (the code cache, the help) is taken only by the same build.
const id = randomBytes(8).toString("hex")

// `import * as fs from "node:fs"`, as most of conary's modules import node:fs and node:path, becomes a
// copy of all of node:fs's properties (esbuild's __toESM) in each of the ~40 modules that import it, made
// as each loads: one namespace for each, shared by all of conary's modules, costs one copy.
const sharedBuiltins = {
  name: "shared-builtins",
  setup(b) {
    b.onResolve({ filter: /^node:(fs|path)$/ }, ({ path, importer, namespace }) =>
      namespace === "file" && importer.startsWith(src) ? { path, namespace: "builtin" } : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: "builtin" }, ({ path }) => ({ contents: `export * from ${JSON.stringify(path)}`, loader: "js" }))
  },
}

const { outputFiles } = await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/conary.cjs",
  write: false,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  // native addons, and seek-bzip (its `new Buffer` warns outside node_modules): loaded from node_modules at run time;
  // better-sqlite3's JavaScript is bundled, its addon loaded by path (src/db/sqlite.ts), never by `bindings`;
  // the CycloneDX library's optional XML writers, which it tries to load and conary does not install
  external: ["bindings", "lzma-native", "seek-bzip", "zstd-napi", "xmlbuilder2", "libxmljs2"],
  // import.meta in the sources is the bundle's own (createRequire(import.meta.url), new URL("./x", import.meta.url)).
  define: {
    CONARY_VERSION: JSON.stringify(pkg.version),
    CONARY_BUILD: JSON.stringify(id),
    "import.meta.url": "__conary_url",
    "import.meta.filename": "__filename",
    "import.meta.dirname": "__dirname",
  },
  banner: { js: 'var __conary_url = require("node:url").pathToFileURL(__filename).href;' },
  // Less to read; names stay, for CONARY_DEBUG's stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [sharedBuiltins],
})

// The first line names the build too: the loader takes a code cache only for the bundle it was made from.
const bundle = `// conary ${pkg.version} build ${id}\n${outputFiles[0].text}`
// bin/conary.js reads the bundle as latin1, which is exact only for ASCII (esbuild escapes anything else by default).
const nonAscii = /[^\x00-\x7f]/.exec(bundle)
if (nonAscii) throw new Error(`the bundle is not pure ASCII: ${JSON.stringify(bundle.slice(Math.max(0, nonAscii.index - 40), nonAscii.index + 40))}`)
rmSync(dist, { recursive: true, force: true })
mkdirSync(dist)
writeFileSync(join(dist, "conary.cjs"), bundle)

// The code cache: the functions the common commands run (scripts/warm-up.mjs).
// Other commands compile what they add. The `--help` run also keeps the help
// (src/cli/help-memo.ts). A bundle that cannot run them is broken: the build fails, saying why.
await warmUp(bin)
// The worker that reads package archives for `source sync` and fetches from them for apply (src/source/archive-lanes.ts): a file of its
// own (an ES module, for new Worker), so the CLI bundle and its code cache stay as they are. Split:
// each package format's code (src/source/formats.ts loads it on demand) is a chunk of its own, which a
// worker loads only when it reads an archive of that format (the Schema of native manifests, rpm's
// headers: a worker reading .debs loads neither).
await build({
  entryPoints: { "read-worker": "src/source/read-worker.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  splitting: true,
  chunkNames: "read-worker-[hash]",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  external: ["better-sqlite3", "lzma-native", "seek-bzip", "zstd-napi"],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  legalComments: "none",
  logLevel: "warning",
})
