import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { conary, ok, setupRoot, sha256 } from "./helpers.js"
import { rawRpm } from "./rpm-helpers.js"

// A package's payload is decompressed once: `source sync` hashes every file
// and keeps its content in the store on the way, so `apply` only copies out
// (it does not open the archive again).

const FIXTURES = path.resolve(import.meta.dirname, "fixtures/debs")

describe("decompress once", () => {
  it("apply installs a .deb's and an .rpm's files from what sync stored, without the archives", () => {
    const { base, root, repo, r } = setupRoot()
    fs.copyFileSync(path.join(FIXTURES, "tree_2.1.0-1_amd64.deb"), path.join(repo, "tree_2.1.0-1_amd64.deb"))
    const alpha = Buffer.from("alpha\n")
    const big = Buffer.alloc(3 << 20, "big")
    rawRpm(path.join(repo, "rawpkg-1.0-1.noarch.rpm"), {
      name: "rawpkg",
      files: [
        { path: "/usr/share/rawpkg/alpha", mode: 0o100644, data: alpha },
        // larger than what sync holds in memory: spilled to a temp file
        { path: "/usr/share/rawpkg/big", mode: 0o100644, data: big },
      ],
    })
    ok(["source", "sync", ...r])
    const store = path.join(root, "var/lib/conary/store/objects")
    for (const data of [alpha, big]) expect(fs.existsSync(path.join(store, sha256(data).slice(0, 2), sha256(data).slice(2)))).toBe(true)
    expect(fs.readdirSync(path.join(root, "var/lib/conary/store/tmp"))).toEqual([])

    // The archives go away: apply must not need them.
    fs.renameSync(repo, path.join(base, "gone"))
    ok(["provide", "add", "libc6", ...r])
    ok(["desired", "add", "tree", "rawpkg", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/share/rawpkg/alpha"))).toEqual(alpha)
    expect(fs.readFileSync(path.join(root, "usr/share/rawpkg/big")).equals(big)).toBe(true)
    expect(fs.statSync(path.join(root, "usr/bin/tree")).mode & 0o7777).toBe(0o755)
    expect(conary(["verify", "--full", ...r]).code).toBe(0)
  })
})
