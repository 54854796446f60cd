import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { compareDebian } from "../src/desired/version.js"
import { type RawEntry, arArchive, buildDeb, rawDeb, zerosTarGz } from "./deb-helpers.js"
import { conary, listTree, mustSkip, ok, setupRoot } from "./helpers.js"

const FIXTURES = path.resolve(import.meta.dirname, "fixtures/debs")
const asRoot = process.getuid?.() === 0

/** What `dpkg-deb -x` of each package makes of an empty directory. */
const dpkgExtract = (debs: string[], into: string) => {
  fs.mkdirSync(into, { recursive: true })
  for (const d of debs) execFileSync("dpkg-deb", ["-x", d, into])
  return into
}

const owners = (root: string, listing: Record<string, unknown>) =>
  Object.fromEntries(Object.keys(listing).map((p) => {
    const st = fs.lstatSync(path.join(root, p))
    return [p, `${st.uid}:${st.gid}`]
  }))

describe("Debian packages", () => {
  it("installs every fixture exactly as dpkg-deb -x extracts it", () => {
    const { base, root, r } = setupRoot()
    const debs = fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".deb")).map((f) => path.join(FIXTURES, f))
    ok(["source", "add", "fixtures", FIXTURES, ...r])
    ok(["source", "sync", ...r])
    ok(["provide", "add", "libc6", "libncursesw6", "libtinfo6", ...r])
    ok(["desired", "add", "hello", "jq", "nano", "tree", "libjq1", "libonig5", ...r])
    const plan = ok(["plan", ...r])
    expect(plan).toContain("+ nano 7.2-1+deb12u1 [is: x86_64] [scripts not run]")
    expect(plan).toContain("+ jq 1.6-2.1+deb12u2 [is: x86_64]")
    ok(["apply", ...r])
    const reference = dpkgExtract(debs, path.join(base, "reference"))
    const mine = listTree(root)
    expect(mine).toEqual(listTree(reference, "\0"))
    if (asRoot) expect(owners(root, mine)).toEqual(owners(reference, mine))
    else console.log("owners not compared: not running as root")

    const nano = JSON.parse(ok(["show", "nano", "--json", "--files", ...r]))
    expect(Object.keys(nano.scripts).sort()).toEqual(["postinst", "prerm"])
    expect(nano.scripts.postinst).toContain("update-alternatives")
    expect(nano.files.find((f: { path: string }) => f.path === "/etc/nanorc").config).toBe(true)
    expect(nano.provenance[0].archiveSha256).toBe(execFileSync("sha256sum", [path.join(FIXTURES, "nano_7.2-1+deb12u1_amd64.deb")], { encoding: "utf8" }).split(" ")[0])
    expect(ok(["show", "nano", "--scripts", ...r])).toContain("--- postinst ---")
    // jq's exact-version dependency pulled in libjq1 at that version.
    const list = JSON.parse(ok(["list", "--json", ...r])).troves
    expect(list.find((t: { name: string }) => t.name === "libjq1").version).toBe("1.6-2.1+deb12u2")
    expect(conary(["verify", ...r]).code).toBe(0)
  })

  it("reads gz, xz, zstd and uncompressed packages, conffiles, epochs and tildes like dpkg", () => {
    const { base, root, repo, r } = setupRoot()
    const tree = {
      "usr/bin/demo": { content: "#!/bin/sh\necho demo\n", mode: 0o755 },
      "usr/lib/x86_64-linux-gnu/libdemo.so.1.2": "lib",
      "usr/lib/x86_64-linux-gnu/libdemo.so.1": { symlink: "libdemo.so.1.2" },
      "etc/demo.conf": "setting = 1\n",
      "usr/share/doc/demo/copyright": "free\n",
    }
    const debs: string[] = []
    for (const compression of ["gzip", "xz", "zstd", "none"] as const) {
      debs.push(
        buildDeb(base, path.join(repo, `demo-${compression}.deb`), { Package: `demo-${compression}`, Version: "2:1.0~rc1-3", Depends: "libc6 (>= 2.34) | libc6-alt" },
          Object.fromEntries(Object.entries(tree).map(([k, v]) => [k.replace("demo", `demo-${compression}`), v])),
          { compression, conffiles: [`/etc/demo-${compression}.conf`], scripts: { postinst: "#!/bin/sh\nexit 0\n" } }),
      )
    }
    ok(["source", "sync", ...r])
    ok(["provide", "add", "libc6", ...r])
    ok(["desired", "add", "demo-gzip", "demo-xz", "demo-zstd", "demo-none", ...r])
    expect(ok(["plan", ...r])).toContain("+ demo-zstd 2:1.0~rc1-3 [is: x86_64] [scripts not run]")
    ok(["apply", ...r])
    expect(listTree(root)).toEqual(listTree(dpkgExtract(debs, path.join(base, "reference")), "\0"))
    const show = JSON.parse(ok(["show", "demo-xz", "--json", "--files", ...r]))
    expect(show.files.filter((f: { config: boolean }) => f.config).map((f: { path: string }) => f.path)).toEqual(["/etc/demo-xz.conf"])
    expect(show.requires).toEqual(["libc6 (>= 2.34) | libc6-alt"])

    // A newer upstream without the tilde is an update; the epoch outranks a bigger upstream.
    buildDeb(base, path.join(repo, "demo-xz-2.deb"), { Package: "demo-xz", Version: "2:1.0-1" }, { "usr/bin/demo-xz": "new" })
    buildDeb(base, path.join(repo, "demo-xz-3.deb"), { Package: "demo-xz", Version: "1:9.9-1" }, { "usr/bin/demo-xz": "old epoch" })
    ok(["source", "sync", ...r])
    expect(ok(["plan", ...r])).toContain("~ demo-xz 2:1.0~rc1-3 [is: x86_64] → 2:1.0-1 [is: x86_64]")
  })

  it.skipIf(mustSkip(asRoot, ".deb owners", "setting owners needs root", "sudo npm test"))("sets owners as the package says, also inside a setgid directory", () => {
    const { base, root, repo, r } = setupRoot()
    const deb = buildDeb(base, path.join(repo, "mail.deb"), { Package: "mailbox", Version: "1.0-1" }, {
      "var/mail/.keep": "",
      "var/mail/spool/queue": "q",
      "usr/bin/mailer": { content: "m", mode: 0o2755 },
    }, {
      keepOwners: true,
      prepare: (dir) => {
        for (const p of ["", "var", "var/mail", "var/mail/.keep", "var/mail/spool", "var/mail/spool/queue", "usr", "usr/bin"]) fs.chownSync(path.join(dir, p), 0, 0)
        fs.chownSync(path.join(dir, "var/mail"), 0, 8)
        fs.chmodSync(path.join(dir, "var/mail"), 0o2775)
        fs.chownSync(path.join(dir, "usr/bin/mailer"), 0, 8)
        fs.chmodSync(path.join(dir, "usr/bin/mailer"), 0o2755)
      },
    })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "mailbox", ...r])
    ok(["apply", ...r])
    const reference = dpkgExtract([deb], path.join(base, "reference"))
    const mine = listTree(root)
    expect(mine).toEqual(listTree(reference, "\0"))
    expect(owners(root, mine)).toEqual(owners(reference, mine))
    expect(fs.statSync(path.join(root, "var/mail/.keep")).gid).toBe(0)
  })

  it("honours Conflicts, Breaks and Replaces", () => {
    const { base, repo, r } = setupRoot()
    buildDeb(base, path.join(repo, "a.deb"), { Package: "mta-a", Version: "1.0-1", Provides: "mail-transport-agent", Conflicts: "mail-transport-agent" }, { "usr/sbin/sendmail": "a" })
    buildDeb(base, path.join(repo, "b.deb"), { Package: "mta-b", Version: "1.0-1", Provides: "mail-transport-agent", Conflicts: "mail-transport-agent" }, { "usr/sbin/sendmail-b": "b" })
    buildDeb(base, path.join(repo, "old.deb"), { Package: "tool-old", Version: "1.0-1" }, { "usr/bin/tool": "old" })
    buildDeb(base, path.join(repo, "new.deb"), { Package: "tool-new", Version: "2.0-1", Replaces: "tool-old (<< 2)", Breaks: "tool-legacy" }, { "usr/bin/tool": "new" })
    buildDeb(base, path.join(repo, "legacy.deb"), { Package: "tool-legacy", Version: "1.0-1" }, { "usr/bin/legacy": "x" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "mta-a", ...r])
    expect(conary(["plan", ...r]).code).toBe(0)
    ok(["desired", "add", "mta-b", ...r])
    expect(conary(["plan", ...r]).stderr).toMatch(/mta-a=1\.0-1 conflicts with mta-b=1\.0-1 \(mail-transport-agent\)/)
    ok(["desired", "set", "--file", "-", ...r], { input: JSON.stringify({ formatVersion: 1, troves: [{ name: "tool-old" }, { name: "tool-new" }] }) })
    const plan = JSON.parse(ok(["plan", "--json", ...r]))
    expect(plan.files.find((f: { path: string }) => f.path === "/usr/bin/tool").trove).toBe("tool-new=2.0-1[is: x86_64]")
    ok(["desired", "add", "tool-legacy", ...r])
    expect(conary(["plan", ...r]).stderr).toContain("tool-new=2.0-1 breaks tool-legacy=1.0-1")
  })

  it("orders versions as dpkg --compare-versions does (10,000 generated pairs)", async () => {
    const part = fc.stringMatching(/^[0-9][0-9a-zA-Z.+~]{0,6}$/)
    const version = fc.tuple(fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }), part, fc.option(fc.stringMatching(/^[0-9a-zA-Z.+~]{1,5}$/), { nil: undefined }))
      .map(([e, u, rev]) => `${e === undefined ? "" : `${e}:`}${u}${rev === undefined ? "" : `-${rev}`}`)
    const pairs = fc.sample(fc.tuple(version, version), { numRuns: 10_000, seed: 20261124 })
    // One shell runs all the comparisons: a process per pair from node would take minutes.
    const script = pairs.map(([a, b]) => `if dpkg --compare-versions '${a}' lt '${b}'; then echo -1; elif dpkg --compare-versions '${a}' eq '${b}'; then echo 0; else echo 1; fi`).join("\n")
    // Asynchronously: a minute of blocking would starve the test worker's own messages.
    const child = spawn("sh", [], { stdio: ["pipe", "pipe", "inherit"] })
    let stdout = ""
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    const exited = new Promise((resolve) => child.on("exit", resolve))
    child.stdin.end(script)
    await exited
    const out = stdout.trim().split("\n").map(Number)
    expect(out).toHaveLength(pairs.length)
    const wrong = pairs.filter(([a, b], i) => Math.sign(compareDebian(a, b)) !== out[i])
    expect(wrong.slice(0, 5)).toEqual([])
  }, 300_000)

  it("refuses malformed and hostile packages with a clear error, writing nothing", async () => {
    const { root, repo, r } = setupRoot()
    const sync = (pattern: RegExp) => {
      const res = conary(["source", "sync", ...r])
      expect(res.code).toBe(1)
      expect(res.stderr.trim().split("\n")).toHaveLength(1)
      expect(res.stderr).toMatch(pattern)
    }
    const good = fs.readFileSync(path.join(FIXTURES, "tree_2.1.0-1_amd64.deb"))
    const p = (n: string) => path.join(repo, n)
    fs.writeFileSync(p("cut.deb"), good.subarray(0, Math.floor(good.length / 2)))
    sync(/cut\.deb: truncated ar archive/)
    fs.rmSync(p("cut.deb"))
    fs.writeFileSync(p("magic.deb"), Buffer.concat([Buffer.from("!<arkh>\n"), good.subarray(8)]))
    sync(/magic\.deb: not an ar archive \(bad magic\)/)
    fs.rmSync(p("magic.deb"))
    fs.writeFileSync(p("nodebian.deb"), arArchive([["data.tar.gz", Buffer.from("x")]]))
    sync(/nodebian\.deb: not a Debian package/)
    fs.rmSync(p("nodebian.deb"))

    const file = (name: string, body = "x") => ({ name, type: "file" as const, mode: 0o644, data: Buffer.from(body) })
    const hostile: Array<[string, RawEntry[], RegExp]> = [
      ["dotdot", [file("./usr/../../etc/evil")], /unsafe path '\.\/usr\/\.\.\/\.\.\/etc\/evil'/],
      ["absolute", [file("/etc/evil")], /unsafe path '\/etc\/evil'/],
      ["through-link", [{ name: "./usr/lib", type: "symlink", linkname: "/etc" }, file("./usr/lib/passwd")], /\/usr\/lib\/passwd would be written through the symlink \/usr\/lib/],
      ["hardlink", [{ name: "./usr/shadow", type: "link", linkname: "../../etc/shadow" }], /\/usr\/shadow is a hard link to \.\.\/\.\.\/etc\/shadow, which is not a file in this package/],
      ["device", [{ name: "./dev/sda", type: "block-device", devmajor: 8, devminor: 0 }], /\/dev\/sda is a block-device \(device nodes and fifos are not installed\)/],
    ]
    for (const [name, entries, pattern] of hostile) {
      await rawDeb(p(`${name}.deb`), name, entries)
      sync(pattern)
      fs.rmSync(p(`${name}.deb`))
    }

    // A decompression bomb: 600 MiB of zeros in a data.tar.gz of well under a megabyte.
    await rawDeb(p("bomb.deb"), "bomb", await zerosTarGz(600 * 1024 * 1024))
    expect(fs.statSync(p("bomb.deb")).size).toBeLessThan(2 * 1024 * 1024)
    sync(/bomb\.deb: unpacks to more than \d+ bytes \(decompression bomb\?\)/)
    fs.rmSync(p("bomb.deb"))

    expect(Object.keys(listTree(root))).toEqual([])
    expect(JSON.parse(ok(["source", "list", "--json", ...r])).sources[0].troves).toBe(0)
  }, 120_000)
})
