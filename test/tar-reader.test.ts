import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { compress, plainTar, rawDeb } from "./deb-helpers.js"
import { conary, setupRoot } from "./helpers.js"

// `source sync` reads a .deb's data.tar.xz (and a plain data.tar) here and
// now, without streams (src/source/tar-reader.ts), and every other
// compression through tar-stream's extract. Both must read the same archive
// the same way: the same files (and contents stored), or the same refusal.
// Each tar below goes into three packages (gz, xz, plain), all synced at once.

/** A ustar (or GNU) header block, its checksum computed unless `checksum` is given. */
const header = (
  name: string,
  o: { type?: string; size?: number; sizeField?: Buffer; linkname?: string; magic?: "ustar" | "gnu" | "none"; mode?: number; nameBytes?: Buffer } = {},
): Buffer => {
  const b = Buffer.alloc(512)
  if (o.nameBytes) o.nameBytes.copy(b, 0)
  else b.write(name, 0, 100, "latin1")
  b.write(`${(o.mode ?? 0o644).toString(8).padStart(7, "0")}\0`, 100, "latin1")
  b.write("0000000\0", 108, "latin1")
  b.write("0000000\0", 116, "latin1")
  if (o.sizeField) o.sizeField.copy(b, 124)
  else b.write(`${(o.size ?? 0).toString(8).padStart(11, "0")}\0`, 124, "latin1")
  b.write("14000000000\0", 136, "latin1")
  b.write(o.type ?? "0", 156, "latin1")
  if (o.linkname) b.write(o.linkname, 157, 100, "latin1")
  if (o.magic === "gnu") b.write("ustar  \0", 257, "latin1")
  else if (o.magic !== "none") b.write("ustar\u000000", 257, "latin1")
  b.write("root", 265, "latin1")
  b.write("root", 297, "latin1")
  b.fill(" ", 148, 156)
  let sum = 0
  for (const byte of b) sum += byte
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1")
  return b
}

/** Data padded to whole blocks. */
const blocks = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)])
const end = Buffer.alloc(1024)
const file = (name: string, data: Buffer, o: Parameters<typeof header>[1] = {}) => [header(name, { ...o, size: data.length }), blocks(data)]
/** A pax or GNU long-name entry's data, as its header names it. */
const paxRecord = (key: string, value: string) => {
  const body = ` ${key}=${value}\n`
  let n = body.length + 1
  while (String(n).length + body.length !== n) n++
  return Buffer.from(`${n}${body}`)
}

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex")

describe("data.tar read here and now", () => {
  it("reads every archive as tar-stream does: the same files and contents, or the same refusal", async () => {
    const small = Buffer.from("small\n")
    const big = randomBytes(1_500_000) // held past the store writer's 1 MiB: spilled to a temp file
    const longName = `./usr/share/${"d".repeat(90)}/${"f".repeat(80)}`
    const good = await plainTar([
      { name: "./", type: "directory", mode: 0o755 },
      { name: "./usr/", type: "directory", mode: 0o755 },
      { name: "./usr/share/", type: "directory", mode: 0o755 },
      { name: "./usr/share/a", type: "file", mode: 0o644, data: small },
      { name: "./usr/share/empty", type: "file", mode: 0o600, data: Buffer.alloc(0) },
      { name: "./usr/share/big", type: "file", mode: 0o755, data: big },
      { name: "./usr/share/l", type: "symlink", linkname: "a" },
      { name: "./usr/share/h", type: "link", linkname: "./usr/share/a" },
      { name: longName, type: "file", mode: 0o644, data: small },
      { name: "./usr/share/\u00fcber", type: "file", mode: 0o644, data: Buffer.from("utf-8 name\n") },
    ])
    const gnuLong = `./usr/share/${"g".repeat(120)}`
    const tars: Record<string, Buffer> = {
      good,
      empty: Buffer.alloc(0),
      gnuLongName: Buffer.concat([
        header("././@LongLink", { type: "L", size: gnuLong.length + 1, magic: "gnu" }),
        blocks(Buffer.from(`${gnuLong}\0`)),
        ...file(gnuLong.slice(0, 99), small, { magic: "gnu" }),
        end,
      ]),
      paxPath: Buffer.concat([
        header("./PaxHeaders/x", { type: "x", size: paxRecord("path", "./usr/share/from-pax").length }),
        blocks(paxRecord("path", "./usr/share/from-pax")),
        ...file("./usr/share/not-this-name", small),
        end,
      ]),
      // a directory's size is not its data: tar-stream reads the next block as a header
      dirWithSize: Buffer.concat([header("./usr/", { type: "5", size: 512, mode: 0o755 }), blocks(Buffer.from("not a header")), end]),
      escape: Buffer.concat([...file("./../escape", small), end]),
      absolute: Buffer.concat([...file("/etc/passwd", small), end]),
      twice: Buffer.concat([...file("./usr/a", small), ...file("./usr/a", small), end]),
      throughSymlink: Buffer.concat([header("./usr/lib", { type: "2", linkname: "/tmp" }), ...file("./usr/lib/x", small), end]),
      linkToNothing: Buffer.concat([header("./usr/h", { type: "1", linkname: "./usr/nothing" }), end]),
      device: Buffer.concat([header("./dev/null", { type: "3" }), end]),
      badChecksum: (() => {
        const t = Buffer.concat([...file("./usr/a", small), ...file("./usr/b", small), end])
        t[1024 + 1] ^= 1
        return t
      })(),
      cutInData: Buffer.concat([...file("./usr/big", big), end]).subarray(0, 512 + 100_000),
      cutInPadding: Buffer.concat([...file("./usr/a", small)]).subarray(0, 512 + 300),
      cutInHeader: Buffer.concat([...file("./usr/a", small), header("./usr/b").subarray(0, 200)]),
      trailingGarbage: Buffer.concat([...file("./usr/a", small), end, Buffer.alloc(512, "x")]),
      notUtf8: Buffer.concat([...file("", small, { nameBytes: Buffer.from("./usr/caf\xe9", "latin1") }), end]),
      negativeSize: Buffer.concat([header("./usr/a", { sizeField: Buffer.from([...Array(11).fill(0xff), 0xfe]) }), end]),
      unknownFormat: Buffer.concat([...file("./usr/a", small, { magic: "none" }), end]),
    }

    const { root, repo, r } = setupRoot()
    const kinds = { gz: "data.tar.gz", xz: "data.tar.xz", tar: "data.tar" } as const
    const cases = Object.keys(tars)
    for (const [i, name] of cases.entries())
      for (const [kind, member] of Object.entries(kinds)) {
        const tar = tars[name]!
        const data = kind === "gz" ? zlib.gzipSync(tar) : kind === "xz" ? compress(tar, "xz") : tar
        await rawDeb(path.join(repo, `c${i}${kind}.deb`), `c${i}${kind}`, data, { dataMember: member })
      }
    const sync = conary(["source", "sync", ...r])
    expect(sync.code).toBe(1)
    const refusals = new Map<string, string>()
    for (const line of sync.stderr.trim().split("\n")) {
      const m = /^conary: archive .*\/c(\d+)(gz|xz|tar)\.deb: (.*)$/.exec(line)
      expect(m, line).not.toBeNull()
      refusals.set(`${m![1]}${m![2]}`, m![3]!)
    }
    const db = new Database(path.join(root, "var/lib/conary/conary.db"), { readonly: true })
    const filesOf = db.prepare(
      "SELECT f.path, f.kind, f.mode, f.owner, f.grp, f.sha256, f.size, f.link_target, f.hardlink, f.mtime, f.is_config, f.component FROM trove_files f JOIN troves t ON t.id = f.trove_id WHERE t.name = ? ORDER BY f.path",
    )
    try {
      const seen: Record<string, string> = {}
      for (const [i, name] of cases.entries()) {
        const outcome = (kind: string) => refusals.get(`${i}${kind}`) ?? JSON.stringify(filesOf.all(`c${i}${kind}`))
        expect(outcome("xz"), name).toBe(outcome("gz"))
        expect(outcome("tar"), name).toBe(outcome("gz"))
        seen[name] = refusals.has(`${i}gz`) ? refusals.get(`${i}gz`)! : "read"
      }
      // Each case is what it says: the good ones read, each bad one refused.
      expect(seen).toEqual({
        good: "read",
        empty: "read",
        gnuLongName: "read",
        paxPath: "read",
        dirWithSize: expect.stringMatching(/Invalid tar header/),
        escape: "unsafe path './../escape' (absolute or with '..')",
        absolute: "unsafe path '/etc/passwd' (absolute or with '..')",
        twice: "/usr/a appears twice",
        throughSymlink: "/usr/lib/x would be written through the symlink /usr/lib",
        linkToNothing: "/usr/h is a hard link to ./usr/nothing, which is not a file in this package",
        device: "/dev/null is a character-device (device nodes and fifos are not installed)",
        badChecksum: expect.stringMatching(/Invalid tar header/),
        cutInData: "truncated archive (its compressed data ends early)",
        cutInPadding: "truncated archive (its compressed data ends early)",
        cutInHeader: "truncated archive (its compressed data ends early)",
        trailingGarbage: expect.stringMatching(/Invalid tar header/),
        notUtf8: expect.stringMatching(/^file name '.*caf\\xe9' is not UTF-8/),
        negativeSize: "Invalid header",
        unknownFormat: "Invalid tar header: unknown format.",
      })
      const goodFiles = filesOf.all(`c${cases.indexOf("good")}xz`) as Array<{ path: string; sha256: string | null }>
      expect(goodFiles.map((f) => f.path)).toContain(longName.slice(1))
      expect(filesOf.all(`c${cases.indexOf("gnuLongName")}xz`)).toEqual([expect.objectContaining({ path: gnuLong.slice(1) })])
      expect(filesOf.all(`c${cases.indexOf("paxPath")}xz`)).toEqual([expect.objectContaining({ path: "/usr/share/from-pax" })])
    } finally {
      db.close()
    }
    // Every object stored holds the bytes its name says, the big one too.
    const objects = path.join(root, "var/lib/conary/store/objects")
    const stored = fs.readdirSync(objects).flatMap((p) => fs.readdirSync(path.join(objects, p)).map((n) => p + n))
    expect(stored).toEqual(expect.arrayContaining([sha(small), sha(big)]))
    for (const name of stored) expect(sha(fs.readFileSync(path.join(objects, name.slice(0, 2), name.slice(2)))), name).toBe(name)
  })
})
