import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { REPO } from "./tree.js"

// A package's dependency closure (Depends and Pre-Depends) from the machine's
// Debian suite, downloaded once with `apt-get download` into bench/.cache and
// shared by the tests and bench/debs.ts (no vitest here).

/** At most this many packages, and this long, per download: a wrong name must not pull half of Debian. */
const MAX_PACKAGES = 200
const DOWNLOAD_TIMEOUT_MS = 10 * 60 * 1000

/** The names in a package's closure, as apt resolves them today. */
const closureNames = (pkg: string): string[] => {
  const out = execFileSync(
    "apt-cache",
    ["depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", pkg],
    { encoding: "utf8", maxBuffer: 64 * 2 ** 20 },
  )
  // Lines at the left margin are packages; indented ones are relations and <virtual> names.
  const names = [...new Set(out.split("\n").filter((l) => /^\w/.test(l)))].sort()
  if (names.length === 0) throw new Error(`apt-cache knows no package ${pkg}`)
  if (names.length > MAX_PACKAGES) throw new Error(`${pkg} closes over ${names.length} packages (more than ${MAX_PACKAGES})`)
  return names
}

/**
 * The .deb files of `pkg`'s closure, downloaded on first use into
 * bench/.cache/<pkg>-closure. The download lands in a scratch directory that
 * is renamed into place only when complete, so an interrupted one is retried.
 */
export const debianClosure = (pkg: string, cacheRoot = path.join(REPO, "bench", ".cache")): string[] => {
  const cache = path.join(cacheRoot, `${pkg}-closure`)
  if (!fs.existsSync(cache)) {
    fs.mkdirSync(cacheRoot, { recursive: true })
    const partial = fs.mkdtempSync(path.join(cacheRoot, `.${pkg}-download-`))
    try {
      const names = closureNames(pkg)
      execFileSync("apt-get", ["download", ...names], { cwd: partial, stdio: ["ignore", "ignore", "pipe"], timeout: DOWNLOAD_TIMEOUT_MS })
      fs.renameSync(partial, cache)
    } finally {
      fs.rmSync(partial, { recursive: true, force: true })
    }
  }
  return fs
    .readdirSync(cache)
    .filter((f) => f.endsWith(".deb"))
    .sort()
    .map((f) => path.join(cache, f))
}
