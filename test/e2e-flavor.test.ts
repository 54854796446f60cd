import { describe, expect, it } from "vitest"
import { buildTrove, conary, listTree, ok, setupRoot } from "./helpers.js"

describe("flavors end to end", () => {
  it("chooses by flavor, shows flavors, treats a flavor change as an update, and explains misfits", () => {
    const { root, repo, r } = setupRoot()
    expect(ok(["flavor", "show", ...r]).trim()).toMatch(/^is: [\w ]+$/)
    ok(["flavor", "set", "~ssl is: x86_64", ...r])
    expect(JSON.parse(ok(["flavor", "show", "--json", ...r])).flavor).toBe("~ssl is: x86_64")
    buildTrove(repo, "nginx", "1.24-1-1", { "usr/sbin/nginx": "with ssl" }, { flavor: "ssl is: x86_64" })
    buildTrove(repo, "nginx", "1.24-1-1", { "usr/sbin/nginx": "without ssl" }, { flavor: "~!ssl is: x86_64" })
    buildTrove(repo, "nginx", "1.25-1-1", { "usr/sbin/nginx": "arm" }, { flavor: "ssl is: aarch64" })
    ok(["source", "sync", ...r])

    // The system prefers ssl: the ssl build scores 1 + 1, the other -1 + 1; 1.25 is for another arch.
    ok(["desired", "add", "nginx", ...r])
    expect(ok(["plan", ...r])).toContain("+ nginx 1.24-1-1 [ssl is: x86_64]")
    ok(["apply", ...r])
    expect(listTree(root)["usr/sbin/nginx"]).toBeDefined()

    // Asking for the build without ssl is an update of the same trove.
    ok(["desired", "remove", "nginx", ...r])
    ok(["desired", "add", "nginx[!ssl]", ...r])
    const plan = JSON.parse(ok(["plan", "--json", ...r]))
    expect(plan.troves).toEqual([
      expect.objectContaining({ op: "update", from: expect.objectContaining({ flavor: "ssl is: x86_64" }), to: expect.objectContaining({ flavor: "~!ssl is: x86_64" }) }),
    ])
    expect(ok(["plan", ...r])).toContain("~ nginx 1.24-1-1 [ssl is: x86_64] → 1.24-1-1 [~!ssl is: x86_64]")
    ok(["apply", ...r])
    expect(JSON.parse(ok(["list", "--json", ...r])).troves[0].flavor).toBe("~!ssl is: x86_64")

    // Nothing fits: every candidate's flavor and why it was rejected.
    ok(["desired", "add", "nginx[gtk]", ...r])
    const bad = conary(["plan", ...r])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("nginx[gtk]: nothing fits the flavor:")
    expect(bad.stderr).toContain("1.24-1-1 [ssl is: x86_64] asked for gtk, trove is not built with it")
    expect(bad.stderr).toContain("1.25-1-1 [ssl is: aarch64] asked for gtk, trove is not built with it")
    ok(["desired", "remove", "nginx", ...r])
    ok(["desired", "add", "nginx=1.25", ...r])
    expect(conary(["plan", ...r]).stderr).toContain("nginx=1.25: nothing fits the flavor: 1.25-1-1 [ssl is: aarch64] built for aarch64, system is not")
  })

  it("installs two flavors of one trove side by side when the desired rows ask for both", () => {
    const { root, repo, r } = setupRoot()
    ok(["flavor", "set", "is: x86 x86_64", ...r])
    buildTrove(repo, "libz", "1.3-1-1", { "usr/lib/x86_64-linux-gnu/libz.so.1": "64", "usr/share/doc/libz/README": "same" }, { flavor: "is: x86_64" })
    buildTrove(repo, "libz", "1.3-1-1", { "usr/lib/i386-linux-gnu/libz.so.1": "32", "usr/share/doc/libz/README": "same" }, { flavor: "is: x86" })
    ok(["source", "sync", ...r])
    // Without a flavor the wider instruction set wins.
    ok(["desired", "add", "libz", ...r])
    expect(ok(["plan", ...r])).toContain("+ libz 1.3-1-1 [is: x86_64]")
    ok(["desired", "add", "libz[is: x86]", ...r])
    const plan = ok(["plan", ...r])
    expect(plan).toContain("+ libz 1.3-1-1 [is: x86]")
    expect(plan).toContain("+ libz 1.3-1-1 [is: x86_64]")
    ok(["apply", ...r])
    const paths = Object.keys(listTree(root))
    expect(paths).toContain("usr/lib/x86_64-linux-gnu/libz.so.1")
    expect(paths).toContain("usr/lib/i386-linux-gnu/libz.so.1")
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
    // Dropping one flavor erases just that one; the shared README stays.
    ok(["desired", "remove", "libz", ...r])
    ok(["desired", "add", "libz[is: x86_64]", ...r])
    expect(ok(["plan", ...r])).toMatch(/^- libz 1\.3-1-1 \[is: x86\]$/m)
    ok(["apply", ...r])
    const after = Object.keys(listTree(root))
    expect(after).not.toContain("usr/lib/i386-linux-gnu/libz.so.1")
    expect(after).toContain("usr/share/doc/libz/README")
  })

  it("writes and keeps flavors as Conary does: use:, built-without flags, x86 beside x86_64, installed-flavor affinity", () => {
    const { base, root, repo, r } = setupRoot()
    if (process.arch === "x64") {
      expect(ok(["flavor", "show", ...r]).trim()).toBe("is: x86 x86_64")
      buildTrove(repo, "old32", "1.0-1-1", { "usr/lib/i386-linux-gnu/libold.so.1": "32" }, { flavor: "is: x86" })
      ok(["source", "sync", ...r])
      ok(["desired", "add", "old32", ...r])
      expect(ok(["plan", ...r])).toContain("+ old32 1.0-1-1 [is: x86]")
      ok(["desired", "remove", "old32", ...r])
    }

    // Instruction sets that cannot run on one system are refused; nothing changes.
    const before = ok(["flavor", "show", ...r])
    const clash = conary(["flavor", "set", "is: x86 ppc", ...r])
    expect(clash.code).toBe(1)
    expect(clash.stderr.trim()).toBe("conary: instruction sets ppc and x86 cannot coexist on one system")
    expect(conary(["flavor", "add", "is: aarch64", ...r]).code).toBe(process.arch === "x64" ? 1 : 0)
    if (process.arch === "x64") expect(ok(["flavor", "show", ...r])).toBe(before)

    // A build without a flag records ~!flag, however it is written; use: is accepted.
    const built = ok(["trove", "build", root, "--name", "x", "--trove-version", "1", "--flavor", "use: !ssl is: x86_64", "--out", `${base}/x.ctrv`, "--json"])
    expect(JSON.parse(built).flavor).toBe("~!ssl is: x86_64")
    expect(ok(["desired", "add", "nginx[use: ssl]", ...r])).toBe("desired: nginx[ssl]\n")
    ok(["desired", "remove", "nginx", ...r])

    // Installed readline,~!ssl; the system now prefers ~readline,~ssl, which scores higher,
    // but the update keeps the installed flavor, unless asked to --reflavor.
    ok(["flavor", "set", "readline,!ssl is: x86_64", ...r])
    buildTrove(repo, "shell", "1.0-1-1", { "usr/bin/shell": "1.0 plain" }, { flavor: "readline,~!ssl is: x86_64" })
    buildTrove(repo, "shell", "1.0-1-1", { "usr/bin/shell": "1.0 ssl" }, { flavor: "~readline,~ssl is: x86_64" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "shell", ...r])
    expect(ok(["apply", ...r])).toContain("+ shell 1.0-1-1 [readline,~!ssl is: x86_64]")
    ok(["flavor", "set", "~readline,~ssl is: x86_64", ...r])
    expect(conary(["plan", "--detailed-exitcode", ...r]).code).toBe(0)
    buildTrove(repo, "shell", "1.1-1-1", { "usr/bin/shell": "1.1 plain" }, { flavor: "readline,~!ssl is: x86_64" })
    buildTrove(repo, "shell", "1.1-1-1", { "usr/bin/shell": "1.1 ssl" }, { flavor: "~readline,~ssl is: x86_64" })
    ok(["source", "sync", ...r])
    expect(ok(["plan", ...r])).toContain("~ shell 1.0-1-1 [readline,~!ssl is: x86_64] → 1.1-1-1 [readline,~!ssl is: x86_64]")
    expect(ok(["plan", "--reflavor", ...r])).toContain("~ shell 1.0-1-1 [readline,~!ssl is: x86_64] → 1.1-1-1 [~readline,~ssl is: x86_64]")
  })
})
