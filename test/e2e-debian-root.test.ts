import { execFileSync, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { debianClosure } from "./debian-closure.js"
import { ok, tempDir } from "./helpers.js"

// python3-minimal's closure from the machine's Debian suite, installed by
// conary into a merged-/usr root, gives the tree `dpkg --unpack` gives.

/** Everything under a root with owners, except the package managers' own state. */
const listing = (root: string, skip: ReadonlyArray<string>) => {
  const out: Record<string, string> = {}
  const visit = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      if (skip.some((s) => r === s || r.startsWith(s + "/"))) continue
      const abs = path.join(root, r)
      const st = fs.lstatSync(abs)
      const who = `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`
      // Conffiles wait as .dpkg-new until dpkg configures them; conary installs them in place.
      const key = r.endsWith(".dpkg-new") ? r.slice(0, -".dpkg-new".length) : r
      if (st.isDirectory()) {
        out[key] = `dir ${who}`
        visit(r)
      } else if (st.isSymbolicLink()) out[key] = `symlink ${st.uid}:${st.gid} -> ${fs.readlinkSync(abs)}`
      else if (st.isFile()) out[key] = `file ${who} ${createHash("sha256").update(fs.readFileSync(abs)).digest("hex")}`
      else out[key] = `other ${who}`
    }
  }
  visit("")
  return out
}

/**
 * The Debian 12 layout, with a static busybox as the few commands the
 * packages' preinst scripts use (dpkg runs them chrooted into the root).
 */
const skeleton = (root: string, busybox: string) => {
  for (const d of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "tmp", "var/lib"]) fs.mkdirSync(path.join(root, d), { recursive: true })
  fs.chmodSync(path.join(root, "tmp"), 0o1777)
  for (const d of ["bin", "sbin", "lib", "lib64"]) fs.symlinkSync(`usr/${d}`, path.join(root, d))
  fs.copyFileSync(busybox, path.join(root, "usr/bin/busybox"))
  fs.chmodSync(path.join(root, "usr/bin/busybox"), 0o755)
  for (const applet of ["sh", "sed", "uname", "readlink", "mkdir", "touch"]) fs.symlinkSync("busybox", path.join(root, "usr/bin", applet))
}

describe("a real Debian closure in a merged-/usr root", () => {
  it("python3-minimal: conary gives the tree dpkg --unpack gives", { timeout: 900_000 }, () => {
    const debs = debianClosure("python3-minimal")
    expect(debs.length).toBeGreaterThan(10)
    const base = tempDir()
    const bb = path.join(base, "busybox")
    execFileSync("dpkg-deb", ["-x", debianClosure("busybox-static")[0]!, bb])

    // dpkg, with a scratch database in the root and a scratch log.
    const r2 = path.join(base, "dpkg")
    skeleton(r2, path.join(bb, "bin/busybox"))
    for (const d of ["var/lib/dpkg/info", "var/lib/dpkg/updates"]) fs.mkdirSync(path.join(r2, d), { recursive: true })
    fs.writeFileSync(path.join(r2, "var/lib/dpkg/status"), "")
    const dpkg = spawnSync(
      "dpkg",
      [`--root=${r2}`, "--force-depends", "--refuse-script-chrootless", `--log=${path.join(base, "dpkg.log")}`, "--unpack", ...debs],
      { encoding: "utf8" },
    )
    expect(dpkg.status, dpkg.stderr).toBe(0)

    // conary, from the cache directory as a source.
    const r1 = path.join(base, "conary")
    skeleton(r1, path.join(bb, "bin/busybox"))
    const r = ["--root", r1]
    ok(["init", ...r])
    ok(["source", "add", "debian", path.dirname(debs[0]!), ...r])
    ok(["source", "sync", ...r])
    const names = debs.map((d) => execFileSync("dpkg-deb", ["-f", d, "Package"], { encoding: "utf8" }).trim())
    ok(["desired", "add", ...names, ...r])
    ok(["apply", ...r])

    // python3.11-minimal's preinst marks the runtime as new; conary runs no scripts.
    const skip = ["var/lib/dpkg", "var/lib/conary", "var/lib/python"]
    const got = listing(r1, skip)
    const want = listing(r2, skip)
    expect(Object.keys(got).length).toBeGreaterThan(500)
    expect(got).toEqual(want)
    expect(ok(["verify", "--full", ...r])).not.toMatch(/^[SM5LUGT.]{8}/m)
  })
})
