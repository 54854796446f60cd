import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as zlib from "node:zlib"
import * as tar from "tar-stream"
import { type TreeSpec, writeTree } from "./helpers.js"

/** Builds a real .deb with dpkg-deb from a control paragraph and a tree. */
export const buildDeb = (
  work: string,
  out: string,
  control: Record<string, string>,
  tree: TreeSpec,
  options: {
    compression?: "gzip" | "xz" | "zstd" | "none"
    conffiles?: string[]
    scripts?: Record<string, string>
    /** keep the tree's own owners instead of root:root */
    keepOwners?: boolean
    /** adjust the tree (owners, modes) before it is packed */
    prepare?: (dir: string) => void
  } = {},
): string => {
  const dir = fs.mkdtempSync(path.join(work, "deb-"))
  writeTree(dir, tree)
  fs.mkdirSync(path.join(dir, "DEBIAN"))
  const fields = { Architecture: "amd64", Maintainer: "Test <test@example.com>", Description: "test package", ...control }
  fs.writeFileSync(path.join(dir, "DEBIAN/control"), Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n")
  if (options.conffiles) fs.writeFileSync(path.join(dir, "DEBIAN/conffiles"), options.conffiles.join("\n") + "\n")
  for (const [name, body] of Object.entries(options.scripts ?? {})) fs.writeFileSync(path.join(dir, "DEBIAN", name), body, { mode: 0o755 })
  options.prepare?.(dir)
  const owners = options.keepOwners ? [] : ["--root-owner-group"]
  execFileSync("dpkg-deb", [...owners, `-Z${options.compression ?? "xz"}`, "--build", dir, out], { stdio: "pipe" })
  return out
}

export type RawEntry = Partial<tar.Header> & { name: string; data?: Buffer }

/** An uncompressed tar of the given entries. */
export const plainTar = async (entries: ReadonlyArray<RawEntry>): Promise<Buffer> => {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = pipeline(pack, new Writable({ write: (c: Buffer, _, next) => (chunks.push(c), next()) }))
  for (const { data, ...header } of entries)
    await new Promise<void>((resolve, reject) => pack.entry({ ...header, size: data?.length ?? 0 }, data ?? Buffer.alloc(0), (e) => (e ? reject(e) : resolve())))
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

const tarGz = async (entries: ReadonlyArray<RawEntry>): Promise<Buffer> => zlib.gzipSync(await plainTar(entries))

/** An ar archive of the given members, as dpkg-deb would lay them out. */
export const arArchive = (members: ReadonlyArray<[string, Buffer]>): Buffer => {
  const parts: Buffer[] = [Buffer.from("!<arch>\n")]
  for (const [name, data] of members) {
    const header = `${name.padEnd(16)}${"0".padEnd(12)}${"0".padEnd(6)}${"0".padEnd(6)}${"100644".padEnd(8)}${String(data.length).padEnd(10)}\`\n`
    parts.push(Buffer.from(header, "latin1"), data)
    if (data.length % 2) parts.push(Buffer.from("\n"))
  }
  return Buffer.concat(parts)
}

/** Compresses a tar with the system's tools, as dpkg-deb once did (it no longer builds bzip2 or lzma). */
export const compress = (data: Buffer, tool: "bzip2" | "lzma" | "xz" | "zstd"): Buffer =>
  execFileSync(tool, tool === "zstd" ? ["-q", "-c"] : ["-c"], { input: data, maxBuffer: 1 << 30 })

/** A .deb written by hand, for packages dpkg-deb would refuse to build. */
export const rawDeb = async (
  out: string,
  name: string,
  data: ReadonlyArray<RawEntry> | Buffer,
  options: {
    /** the whole control file instead of Package/Version/Architecture */
    control?: string
    conffiles?: string
    /** the data member's name, when `data` is already compressed */
    dataMember?: string
    /** control.tar.gz unless told */
    controlCompression?: "gz" | "xz"
  } = {},
): Promise<string> => {
  const controlEntries: RawEntry[] = [{ name: "./control", data: Buffer.from(options.control ?? `Package: ${name}\nVersion: 1.0-1\nArchitecture: amd64\n`) }]
  if (options.conffiles !== undefined) controlEntries.push({ name: "./conffiles", data: Buffer.from(options.conffiles) })
  const xz = options.controlCompression === "xz"
  const control = xz ? compress(await plainTar(controlEntries), "xz") : await tarGz(controlEntries)
  const dataTar = Buffer.isBuffer(data) ? data : await tarGz(data)
  const members: Array<[string, Buffer]> = [["debian-binary", Buffer.from("2.0\n")], [xz ? "control.tar.xz" : "control.tar.gz", control], [options.dataMember ?? "data.tar.gz", dataTar]]
  fs.writeFileSync(out, arArchive(members))
  return out
}

/** A data.tar.gz holding one file of `size` zero bytes, streamed (it compresses about 1000:1). */
export const zerosTarGz = async (size: number): Promise<Buffer> => {
  const pack = tar.pack()
  const gz = zlib.createGzip({ level: 9 })
  const chunks: Buffer[] = []
  gz.on("data", (c: Buffer) => chunks.push(c))
  const done = pipeline(pack, gz)
  const entry = pack.entry({ name: "./usr/share/zeros", size })
  const zero = Buffer.alloc(1 << 20)
  for (let written = 0; written < size; written += zero.length) {
    if (!entry.write(zero)) await new Promise<void>((resolve) => entry.once("drain", () => resolve()))
  }
  await new Promise<void>((resolve) => entry.end(() => resolve()))
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}
