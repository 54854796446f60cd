import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { publish } from "../src/source/repo.js"
import { buildDeb } from "./deb-helpers.js"
import { buildTrove, conary, listTree, ok, setupRoot, sha256, writeRawArchive, writeTree } from "./helpers.js"

// Roots shaped like real systems: merged /usr, directories and files that
// were there before any trove, conary's own files inside the root.

/** The Debian 12 / Fedora layout: bin, sbin, lib, lib64 are links into /usr. */
export const mergedUsr = (root: string) => {
  for (const d of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "tmp", "var"]) fs.mkdirSync(path.join(root, d), { recursive: true })
  for (const d of ["bin", "sbin", "lib", "lib64"]) fs.symlinkSync(`usr/${d}`, path.join(root, d))
}

const mode = (p: string) => fs.statSync(p).mode & 0o7777

/** Files left beside targets by staging. */
const staged = (root: string) => Object.keys(listTree(root)).filter((p) => p.includes(".conary-"))

describe("merged /usr", () => {
  it("follows bin -> usr/bin as dpkg does, keeps the links, and erase leaves them", () => {
    const { root, repo, r } = setupRoot()
    mergedUsr(root)
    buildTrove(repo, "tool", "1.0", { "bin/tool": { content: "#!/bin/sh\n", mode: 0o755 }, "lib/libtool.so.1": "elf" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool", ...r])
    ok(["plan", ...r])
    ok(["apply", ...r])
    expect(fs.lstatSync(path.join(root, "bin")).isSymbolicLink()).toBe(true)
    expect(fs.readlinkSync(path.join(root, "bin"))).toBe("usr/bin")
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("#!/bin/sh\n")
    expect(fs.readFileSync(path.join(root, "usr/lib/libtool.so.1"), "utf8")).toBe("elf")
    expect(ok(["verify", ...r])).not.toMatch(/tool/)
    ok(["desired", "remove", "tool", ...r])
    ok(["apply", ...r])
    for (const d of ["bin", "lib"]) expect(fs.readlinkSync(path.join(root, d))).toBe(`usr/${d}`)
    expect(fs.existsSync(path.join(root, "usr/bin"))).toBe(true)
    expect(fs.existsSync(path.join(root, "usr/bin/tool"))).toBe(false)
  })

  it("refuses at plan a directory symlink leading outside the root", () => {
    const { base, root, repo, r } = setupRoot()
    const outside = path.join(base, "outside")
    fs.mkdirSync(outside)
    fs.symlinkSync(outside, path.join(root, "bin"))
    buildTrove(repo, "tool", "1.0", { "bin/tool": "x" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "tool", ...r])
    const plan = conary(["plan", ...r])
    expect(plan.code).toBe(1)
    expect(plan.stderr).toMatch(/^conary: tool=1\.0 cannot install \/bin\/tool: its directory resolves outside the root\n$/)
    expect(conary(["apply", ...r]).code).toBe(1)
    expect(fs.readdirSync(outside)).toEqual([])
  })

  it("refuses at plan a file name too long to stage beside it, naming the path", () => {
    const { root, repo, r } = setupRoot()
    const long = "n".repeat(255)
    buildTrove(repo, "long", "1.0", { [`usr/share/${long}`]: "x" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "long", ...r])
    const plan = conary(["plan", ...r])
    expect(plan.code).toBe(1)
    expect(plan.stderr).toBe(`conary: long=1.0 cannot install /usr/share/${long}: its name is too long to stage beside it (243 bytes at most)\n`)
    expect(conary(["apply", ...r]).code).toBe(1)
    expect(fs.existsSync(path.join(root, "usr"))).toBe(false)
  })

  it("says remove, not install, when an erase meets a directory symlink leading outside the root", () => {
    const { base, root, repo, r } = setupRoot()
    buildTrove(repo, "app", "1.0", { "usr/bin/app": "x" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app", ...r])
    ok(["apply", ...r])
    const outside = path.join(base, "outside")
    fs.renameSync(path.join(root, "usr/bin"), outside)
    fs.symlinkSync(outside, path.join(root, "usr/bin"))
    ok(["desired", "remove", "app", ...r])
    const plan = conary(["plan", ...r])
    expect(plan.code).toBe(1)
    expect(plan.stderr).toBe("conary: app=1.0 cannot remove /usr/bin/app: its directory resolves outside the root\n")
    expect(fs.readdirSync(outside)).toEqual(["app"])
  })

  it("sees /bin/x and /usr/bin/x as one file: a conflict when they differ, and erase of one keeps the other's", () => {
    const { root, repo, r } = setupRoot()
    mergedUsr(root)
    buildTrove(repo, "old", "1.0", { "bin/x": "old" })
    buildTrove(repo, "new", "1.0", { "usr/bin/x": "new" })
    buildTrove(repo, "same", "1.0", { "usr/bin/x": "old" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "old", ...r])
    ok(["apply", ...r])
    ok(["desired", "add", "new", ...r])
    const conflict = conary(["plan", ...r])
    expect(conflict.code).toBe(1)
    expect(conflict.stderr).toMatch(/file conflict: \/usr\/bin\/x differs between old=1\.0 and new=1\.0/)
    ok(["desired", "remove", "new", ...r])
    // Identical contents may share the file; erasing one trove leaves it for the other.
    ok(["desired", "add", "same", ...r])
    ok(["apply", ...r])
    ok(["desired", "remove", "old", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/x"), "utf8")).toBe("old")
    expect(ok(["verify", ...r])).not.toMatch(/x/)
  })
})

describe("what was there first", () => {
  it("keeps the mode and owner of directories the root had, and erase never removes them", () => {
    const { root, repo, r } = setupRoot()
    writeTree(root, { etc: { dir: true, mode: 0o750 }, tmp: { dir: true, mode: 0o1777 } })
    buildTrove(repo, "base", "1.0", { etc: { dir: true, mode: 0o755 }, tmp: { dir: true, mode: 0o755 }, "etc/base.conf": "b", "opt/base/x": "x" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "base", ...r])
    ok(["apply", ...r])
    expect(mode(path.join(root, "etc"))).toBe(0o750)
    expect(mode(path.join(root, "tmp"))).toBe(0o1777)
    expect(ok(["verify", ...r])).not.toMatch(/etc|tmp/)
    ok(["desired", "remove", "base", ...r])
    ok(["apply", ...r])
    expect(mode(path.join(root, "tmp"))).toBe(0o1777)
    expect(fs.existsSync(path.join(root, "etc"))).toBe(true)
    // What the trove made itself goes with it.
    expect(fs.existsSync(path.join(root, "opt"))).toBe(false)
  })

  it("refuses at plan a file where a directory goes, or on the way to one, keeping it", async () => {
    const { root, repo, r } = setupRoot()
    writeTree(root, { opt: "the admin's file" })
    const file = { path: "opt/tool/x", kind: "file", mode: 0o644, owner: "root", group: "root", sha256: sha256("x"), size: 1, config: false, component: "runtime" }
    await writeRawArchive(
      path.join(repo, "bare.ctrv"),
      { formatVersion: 1, name: "bare", version: "1.0", flavor: "", requires: [], provides: [], files: [file] },
      { [`objects/${sha256("x")}`]: "x" },
    )
    buildTrove(repo, "tool", "1.0", { "opt/tool/y": "y" })
    ok(["source", "sync", ...r])
    for (const [name, why] of [
      ["bare", "bare=1.0 cannot install /opt/tool/x: a file on its way is in the way on disk"],
      ["tool", "tool=1.0 cannot install /opt: a file is in the way on disk"],
    ]) {
      ok(["desired", "add", name!, ...r])
      expect(conary(["plan", ...r]).stderr).toBe(`conary: ${why}\n`)
      expect(conary(["apply", ...r]).code).toBe(1)
      ok(["desired", "remove", name!, ...r])
    }
    expect(fs.readFileSync(path.join(root, "opt"), "utf8")).toBe("the admin's file")
  })

  it("saves a file no trove owns, says so in the plan, and erase and rollback put it back", () => {
    const { root, repo, r } = setupRoot()
    writeTree(root, { "usr/bin/tool": { content: "the admin's\n", mode: 0o700 } })
    buildTrove(repo, "tool", "1.0", { "usr/bin/tool": { content: "packaged\n", mode: 0o755 } })
    buildTrove(repo, "other", "1.0", { "usr/bin/other": "o" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "other", ...r])
    ok(["apply", ...r])
    ok(["desired", "add", "tool", ...r])
    expect(ok(["plan", ...r])).toContain("! replaces unowned /usr/bin/tool")
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("packaged\n")
    ok(["rollback", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("the admin's\n")
    expect(mode(path.join(root, "usr/bin/tool"))).toBe(0o700)
    // Installed again (the admin's file saved again), then erased.
    ok(["desired", "add", "tool", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("packaged\n")
    // Garbage collection keeps what a trove displaced.
    ok(["gc", "--keep", "1", ...r])
    ok(["desired", "remove", "tool", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("the admin's\n")
    expect(ok(["plan", ...r])).toMatch(/No changes/)
  })

  it("forgets the admin's file once erase has put it back: deleted afterwards, a later erase does not bring it back", () => {
    const { root, repo, r } = setupRoot()
    const tool = path.join(root, "usr/bin/tool")
    writeTree(root, { "usr/bin/tool": "the admin's\n" })
    buildTrove(repo, "tool", "1.0", { "usr/bin/tool": "packaged\n" })
    ok(["source", "sync", ...r])
    const install = () => {
      ok(["desired", "add", "tool", ...r])
      ok(["apply", ...r])
      expect(fs.readFileSync(tool, "utf8")).toBe("packaged\n")
    }
    const erase = () => {
      ok(["desired", "remove", "tool", ...r])
      ok(["apply", ...r])
    }
    install()
    erase()
    expect(fs.readFileSync(tool, "utf8")).toBe("the admin's\n")
    fs.rmSync(tool)
    install()
    erase()
    expect(fs.existsSync(tool)).toBe(false)
    expect(ok(["plan", ...r])).toMatch(/No changes/)
  })

  it("keeps a config file no trove owns and writes the package's beside it; erase leaves it", () => {
    const { root, repo, r } = setupRoot()
    writeTree(root, { "etc/x.conf": "mine\n" })
    buildTrove(repo, "x", "1.0", { "etc/x.conf": "packaged\n" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "x", ...r])
    expect(ok(["plan", ...r])).toContain("! keep unowned /etc/x.conf")
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "etc/x.conf"), "utf8")).toBe("mine\n")
    expect(fs.readFileSync(path.join(root, "etc/x.conf.conary-new"), "utf8")).toBe("packaged\n")
    ok(["desired", "remove", "x", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "etc/x.conf"), "utf8")).toBe("mine\n")
  })
})

describe("apply never breaks the root", () => {
  it("refuses at plan a file under another trove's new symlink, staging nothing", async () => {
    const { root, repo, r } = setupRoot()
    fs.mkdirSync(path.join(root, "usr/share/real"), { recursive: true })
    buildTrove(repo, "link", "1.0", { "usr/share/doc": { symlink: "real" } })
    // A trove that names no directories, only the file under the other's link.
    const file = { path: "usr/share/doc/under/README", kind: "file", mode: 0o644, owner: "root", group: "root", sha256: sha256("r"), size: 1, config: false, component: "doc" }
    await writeRawArchive(
      path.join(repo, "under.ctrv"),
      { formatVersion: 1, name: "under", version: "1.0", flavor: "", requires: [], provides: [], files: [file] },
      { [`objects/${sha256("r")}`]: "r" },
    )
    ok(["source", "sync", ...r])
    ok(["desired", "add", "link", ...r])
    ok(["desired", "add", "under", ...r])
    const plan = conary(["plan", ...r])
    expect(plan.code).toBe(1)
    expect(plan.stderr).toMatch(/cannot install \/usr\/share\/doc(\/under)?(\/README)?: it would be written through the symlink \/usr\/share\/doc of link=1\.0/)
    expect(conary(["apply", ...r]).code).toBe(1)
    expect(staged(root)).toEqual([])
  })

  it("refuses a trove shipping conary's staging names or its database, store or lock (also with --db)", () => {
    const plain = setupRoot()
    // A second root whose database lives elsewhere in it (one database per root).
    const other = path.join(plain.base, "other")
    fs.mkdirSync(other)
    const custom = ["--root", other, "--db", path.join(other, "srv/state/conary.db")]
    ok(["init", ...custom])
    ok(["source", "add", "local", plain.repo, ...custom])
    const cases = [
      ["dot", { "usr/bin/foo": "a", "usr/bin/.conary-new.foo": "b" }, plain.r, /\.conary-new\.foo: names starting with \.conary-/],
      ["db", { "var/lib/conary/conary.db": "x" }, plain.r, /conary\.db: it is conary's own/],
      ["rootid", { "var/lib/conary/root-id": "x" }, plain.r, /root-id: it is conary's own/],
      ["store", { "var/lib/conary/store/objects/aa/bb": "x" }, plain.r, /store(\/objects\/aa\/bb)?: it is conary's own/],
      ["otherdb", { "srv/state/conary.db": "x" }, custom, /srv\/state\/conary\.db: it is conary's own/],
      ["otherstore", { "srv/state/store/x": "x" }, custom, /srv\/state\/store(\/x)?: it is conary's own/],
    ] as const
    for (const [name, tree] of cases) buildTrove(plain.repo, name, "1.0", tree)
    for (const [name, , r, why] of cases) {
      ok(["source", "sync", ...r])
      ok(["desired", "add", name, ...r])
      const plan = conary(["plan", ...r])
      expect(plan.code).toBe(1)
      expect(plan.stderr).toMatch(why)
      expect(plan.stderr.split("\n").length).toBe(2)
      expect(conary(["apply", ...r]).code).toBe(1)
      // The root stays manageable.
      ok(["desired", "remove", name, ...r])
      expect(ok(["plan", ...r])).toMatch(/No changes/)
      expect(staged(r[1]!)).toEqual([])
    }
  })

  it("refuses a repository manifest path with '..' when the plan fetches it, writing nothing", async () => {
    const { base, root, r } = setupRoot()
    const out = path.join(base, "published")
    // A repository signed as any other: only its manifest says where the file goes.
    const file = { path: "/usr/bin/../../../sneaky", kind: "file", mode: 0o644, owner: "root", group: "root", sha256: sha256("s"), size: 1, target: null, config: false, component: "runtime" } as const
    const trove = { digest: sha256("sneaky"), name: "sneaky", version: "1.0", scheme: "native", flavor: "", format: "native", requires: [], provides: [], files: [file] } as const
    await publish(out, [{ trove, contents: () => Buffer.from("s") }], { expires: "7d", now: new Date().toISOString() })
    ok(["source", "add", "web", out, "--insecure", ...r])
    ok(["source", "sync", ...r])
    ok(["desired", "add", "sneaky", ...r])
    const plan = conary(["plan", ...r])
    expect(plan.code).toBe(1)
    expect(plan.stderr).toBe("conary: source web: manifest of sneaky 1.0: unsafe path 'usr/bin/../../../sneaky' (absolute or with '..')\n")
    expect(conary(["apply", ...r]).code).toBe(1)
    expect(fs.existsSync(path.join(base, "sneaky"))).toBe(false)
    expect(staged(root)).toEqual([])
  })

  it("refuses before staging a directory where the package's config file would go beside the admin's", () => {
    const { root, repo, r } = setupRoot()
    writeTree(root, { "etc/x.conf": "mine\n", "etc/x.conf.conary-new": { dir: true } })
    buildTrove(repo, "x", "1.0", { "etc/x.conf": "packaged\n" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "x", ...r])
    const before = listTree(root)
    const apply = conary(["apply", ...r])
    expect(apply.stderr).toBe("conary: apply failed at /etc/x.conf: etc/x.conf.conary-new is a directory in the way of the names apply writes beside it\n")
    expect(listTree(root)).toEqual(before)
    fs.rmdirSync(path.join(root, "etc/x.conf.conary-new"))
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "etc/x.conf.conary-new"), "utf8")).toBe("packaged\n")
  })

  it("applies a first generation without any regular file", () => {
    const { root, repo, r } = setupRoot()
    buildTrove(repo, "links", "1.0", { "usr/lib/x": { symlink: "y" }, "srv/empty": { dir: true } })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "links", ...r])
    ok(["apply", ...r])
    expect(fs.readlinkSync(path.join(root, "usr/lib/x"))).toBe("y")
  })
})

describe("troves across sources and packages", () => {
  it("Replaces of an installed package takes the file over, and erase of either does the right thing", () => {
    const { base, root, repo, r } = setupRoot()
    buildDeb(base, path.join(repo, "pa_1.0_amd64.deb"), { Package: "pa", Version: "1.0" }, { "usr/bin/shared": "from a", "usr/bin/a": "a" })
    buildDeb(
      base,
      path.join(repo, "pb_1.0_amd64.deb"),
      { Package: "pb", Version: "1.0", Replaces: "pa (<< 2)" },
      { "usr/bin/shared": "from b", "usr/bin/b": "b" },
    )
    ok(["source", "sync", ...r])
    ok(["desired", "add", "pa", ...r])
    ok(["apply", ...r])
    ok(["desired", "add", "pb", ...r])
    expect(ok(["plan", ...r])).toMatch(/take over \/usr\/bin\/shared/)
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/shared"), "utf8")).toBe("from b")
    expect(ok(["verify", ...r])).not.toMatch(/shared/)
    // a no longer owns it: erasing a keeps b's file.
    ok(["desired", "remove", "pa", ...r])
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/shared"), "utf8")).toBe("from b")
    ok(["desired", "remove", "pb", ...r])
    ok(["apply", ...r])
    expect(fs.existsSync(path.join(root, "usr/bin/shared"))).toBe(false)
  })

  it("keeps troves a source dropped installed and manageable", () => {
    const { root, repo, r } = setupRoot()
    const archive = buildTrove(repo, "gone", "1.0", { "usr/bin/gone": "g" })
    buildTrove(repo, "stays", "1.0", { "usr/bin/stays": "s" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "gone", ...r])
    ok(["desired", "add", "stays", ...r])
    ok(["apply", ...r])
    fs.rmSync(archive)
    ok(["source", "sync", ...r])
    expect(ok(["plan", ...r])).toMatch(/No changes/)
    expect(JSON.parse(ok(["status", "--json", ...r])).pending).not.toHaveProperty("error")
    // Repaired from the store, then erased.
    fs.writeFileSync(path.join(root, "usr/bin/gone"), "drifted")
    expect(conary(["verify", ...r]).code).not.toBe(0)
    ok(["apply", ...r])
    expect(fs.readFileSync(path.join(root, "usr/bin/gone"), "utf8")).toBe("g")
    ok(["desired", "remove", "gone", ...r])
    ok(["apply", ...r])
    expect(fs.existsSync(path.join(root, "usr/bin/gone"))).toBe(false)
  })
})
