import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { type Dep, depKey, formatDep, formatDepGroup, parseDep, parseDepGroup } from "../src/model/trove.js"

// Dependency texts: the classes, their canonical spelling, and what is refused.

describe("dependency classes", () => {
  it("reads plain names as before, with or without a relation", () => {
    expect(parseDep("bash")).toEqual({ class: "name", name: "bash" })
    expect(parseDep(" libc6 (>= 2.34) ")).toEqual({ class: "name", name: "libc6", relation: ">=", version: "2.34" })
    expect(parseDep("libc6>=2.34")).toEqual({ class: "name", name: "libc6", relation: ">=", version: "2.34" })
    expect(parseDep("foo (< 2)")).toEqual({ class: "name", name: "foo", relation: "<=", version: "2" })
    expect(formatDep(parseDep("libc6>=2.34")!)).toBe("libc6 (>= 2.34)")
  })

  it("reads file: and soname: deps, and writes them canonically", () => {
    expect(parseDep("file: /bin/sh")).toEqual({ class: "file", name: "/bin/sh" })
    expect(parseDep("file:/usr/bin/env")).toEqual({ class: "file", name: "/usr/bin/env" })
    expect(parseDep("soname: libc.so.6(GLIBC_2.34)(64bit)")).toEqual({ class: "soname", name: "libc.so.6(GLIBC_2.34)(64bit)" })
    expect(parseDep("soname: libz.so.1()(64bit)")).toEqual({ class: "soname", name: "libz.so.1()(64bit)" })
    expect(parseDep("soname:libfoo.so.1")).toEqual({ class: "soname", name: "libfoo.so.1" })
    expect(formatDep(parseDep("file:/bin/sh")!)).toBe("file: /bin/sh")
    expect(formatDep(parseDep("soname:libfoo.so.1")!)).toBe("soname: libfoo.so.1")
    expect(depKey({ class: "name", name: "bash" })).toBe("bash")
    expect(depKey({ class: "file", name: "/bin/sh" })).toBe("file: /bin/sh")
  })

  it("takes alternatives across classes", () => {
    const group = parseDepGroup("sh | file: /bin/sh | soname: libsh.so.1()(64bit)")
    expect(group?.map((d) => d.class)).toEqual(["name", "file", "soname"])
    expect(formatDepGroup(group!)).toBe("sh | file: /bin/sh | soname: libsh.so.1()(64bit)")
  })

  it("refuses a file: path that is not absolute and normalised, and a soname with spaces or a relation", () => {
    for (const bad of [
      "file: bin/sh",
      "file: /",
      "file: /bin//sh",
      "file: /bin/./sh",
      "file: /bin/../sh",
      "file: /bin/",
      "file: /bin/sh (>= 1)",
      "file: /my file",
      "file: /x\u0001",
      "file:",
      "soname: libc.so.6 (64bit)",
      "soname: libfoo.so.1 (>= 1)",
      "soname: (64bit)",
      "soname: lib\u001b[31m.so.1",
      "soname: lib(a",
      "soname:",
      "abi: foo",
      "bash (>= )",
      "",
    ])
      expect(parseDep(bad), bad).toBeUndefined()
  })

  it("parses what it formats, for every class", () => {
    const seg = fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,8}$/)
    const dep: fc.Arbitrary<Dep> = fc.oneof(
      fc.record({ class: fc.constant("name" as const), name: seg }),
      fc.record({
        class: fc.constant("name" as const),
        name: seg,
        relation: fc.constantFrom("<<" as const, "<=" as const, "=" as const, ">=" as const, ">>" as const),
        version: fc.stringMatching(/^[0-9][a-z0-9.~+-]{0,6}$/),
      }),
      fc.record({ class: fc.constant("file" as const), name: fc.array(seg, { minLength: 1, maxLength: 4 }).map((p) => "/" + p.join("/")) }),
      fc.record({
        class: fc.constant("soname" as const),
        name: fc.tuple(seg, fc.constantFrom("", "()(64bit)", "(GLIBC_2.34)(64bit)", "(V1)")).map(([s, v]) => `lib${s}.so.1${v}`),
      }),
    )
    fc.assert(fc.property(fc.array(dep, { minLength: 1, maxLength: 3 }), (group) => {
      expect(parseDepGroup(formatDepGroup(group))).toEqual(group)
    }))
  })
})
