import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { compress, plainTar, rawDeb } from "./deb-helpers.js"
import { REPO, ok, setupRoot } from "./helpers.js"

// `source sync` reads a directory's archives on worker threads when there is
// enough to read (src/source/read-archives.ts): what the workers read is
// indexed in the archives' name order whichever finishes first, each bad
// archive is named on its own line, a bomb stays within its bound inside a
// worker, and the contents the workers stored are what apply installs.

describe("source sync in workers", () => {
  it("indexes in name order, names each bad archive, bounds a bomb, and stores what apply installs", async () => {
    const { base, root, repo, r } = setupRoot()
    // Random (incompressible) contents, over 2 MiB of archives in all, sized
    // so that largest-first (the order the workers take them) is not name order.
    const good = [
      { name: "pa", size: 400_000, z: "xz" },
      { name: "pb", size: 1_200_000, z: "zstd" },
      { name: "pc", size: 700_000, z: "xz" },
      { name: "pd", size: 300_000, z: "gz" },
    ] as const
    const contents = new Map<string, Buffer>()
    for (const { name, size, z } of good) {
      const data = randomBytes(size)
      contents.set(name, data)
      const tar = await plainTar([
        { name: "./usr/", type: "directory", mode: 0o755 },
        { name: "./usr/share/", type: "directory", mode: 0o755 },
        { name: `./usr/share/${name}`, type: "file", mode: 0o644, data },
      ])
      if (z === "gz") await rawDeb(path.join(repo, `${name}.deb`), name, [{ name: `./usr/share/${name}`, type: "file", mode: 0o644, data }])
      else await rawDeb(path.join(repo, `${name}.deb`), name, compress(tar, z), { dataMember: z === "xz" ? "data.tar.xz" : "data.tar.zst" })
    }
    // 600 MiB of zeros as data.tar.xz; an xz cut short; not a .deb at all.
    fs.copyFileSync(path.join(import.meta.dirname, "fixtures/bombs/bomb-xz.deb"), path.join(repo, "bomb.deb"))
    const cut = compress(await plainTar([{ name: "./usr/share/big", type: "file", mode: 0o644, data: randomBytes(100_000) }]), "xz")
    await rawDeb(path.join(repo, "cut.deb"), "cut", cut.subarray(0, cut.length - 40), { dataMember: "data.tar.xz" })
    fs.writeFileSync(path.join(repo, "junk.deb"), "not an ar archive\n")

    const res = spawnSync("/usr/bin/time", ["-f", "maxrss %M", process.execPath, path.join(REPO, "bin/conary.js"), "source", "sync", ...r], { encoding: "utf8" })
    expect(res.status).toBe(1)
    const maxrss = /^maxrss (\d+)$/m.exec(res.stderr)
    // less what time(1) adds
    const lines = res.stderr.split("\n").filter((l) => l !== "" && l !== maxrss?.[0] && !l.startsWith("Command exited"))
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^conary: archive ${path.join(repo, "bomb.deb")}: unpacks to more than \\d+ bytes \\(decompression bomb\\?\\)$`)),
      `conary: archive ${path.join(repo, "cut.deb")}: truncated archive (its compressed data ends early)`,
      expect.stringMatching(new RegExp(`^conary: archive ${path.join(repo, "junk.deb")}: `)),
    ])
    // as on the main thread (see the bomb test in deb.test.ts)
    expect(Number(maxrss![1]) / 1024).toBeLessThan(450)

    // Troves are numbered as they are indexed: in name order.
    const db = new Database(path.join(root, "var/lib/conary/conary.db"), { readonly: true })
    try {
      const archives = db.prepare("SELECT archive FROM available ORDER BY trove_id").pluck().all()
      expect(archives).toEqual(good.map((g) => path.join(repo, `${g.name}.deb`)))
    } finally {
      db.close()
    }

    // What the workers stored is installed, with the archives gone.
    fs.renameSync(repo, path.join(base, "gone"))
    ok(["desired", "add", ...good.map((g) => g.name), ...r])
    ok(["apply", ...r])
    for (const [name, data] of contents) expect(fs.readFileSync(path.join(root, "usr/share", name)).equals(data), name).toBe(true)
  })
})
