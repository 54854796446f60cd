import { createHash, getHashes } from "node:crypto"
import * as fs from "node:fs"
import { type Readable, Transform, pipeline } from "node:stream"
import { rpmArchFlavor } from "../desired/flavor.js"
import { ArchiveError, StoreError, describeIo } from "../errors.js"
import { type TroveFile, componentOf } from "../model/trove.js"
import { type ContentStore, sha256OfFile, storeFailure } from "../store/store.js"
import { type CpioEntry, CpioError, cpioEntries } from "./cpio.js"
import { type Compression, bound, decompressor, unpackLimit } from "./decompress.js"
import type { FormatReader } from "./package-format.js"
import { RpmHeader, readAt } from "./rpm-header.js"
import { DepError, type RpmDepList, rpmDeps } from "./rpm-deps.js"
import { archiveFailure, memberPath, utf8Name } from "./tar-payload.js"

// An .rpm as rpm reads it: a 96-byte lead, the signature header (padded to
// 8 bytes), the main header, and the payload, a compressed cpio archive.
// Headers are read whole within caps; the payload is streamed with bounded
// memory, every file hashed and checked against the header's digests.

export interface RpmTrove {
  readonly name: string
  readonly version: string
  readonly flavor: string
  /** the License tag, as written (an SPDX expression on current distributions) */
  readonly license: string | undefined
  readonly requires: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
  /** Conflicts, and Obsoletes: what a package obsoletes it replaces and is never installed beside */
  readonly conflicts: ReadonlyArray<string>
  /** Obsoletes: this package takes the place of those it names (the planner's replace-and-conflict rule) */
  readonly replaces: ReadonlyArray<string>
  readonly files: ReadonlyArray<TroveFile>
  readonly scripts: Readonly<Record<string, string>>
  /** sha256 of the .rpm itself: the trove's identity */
  readonly digest: string
}

const LEAD_MAGIC = Buffer.from([0xed, 0xab, 0xee, 0xdb])
const LEAD_SIZE = 96
const HEADER_SIGNED = 5
// rpm itself refuses more than 65535 entries; the stores are capped well above any real package's.
const SIGNATURE_LIMITS = { entries: 0xffff, data: 32 * 1024 * 1024 }
const HEADER_LIMITS = { entries: 0xffff, data: 64 * 1024 * 1024 }

// Tags (rpm's rpmtag.h) and signature tags.
const T = {
  NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, LICENSE: 1014, ARCH: 1022,
  PREIN: 1023, POSTIN: 1024, PREUN: 1025, POSTUN: 1026, OLDFILENAMES: 1027,
  FILESIZES: 1028, FILEMODES: 1030, FILEMTIMES: 1034, FILEDIGESTS: 1035, FILELINKTOS: 1036, FILEFLAGS: 1037,
  FILEUSERNAME: 1039, FILEGROUPNAME: 1040,
  PROVIDENAME: 1047, REQUIREFLAGS: 1048, REQUIRENAME: 1049, REQUIREVERSION: 1050,
  CONFLICTFLAGS: 1053, CONFLICTNAME: 1054, CONFLICTVERSION: 1055,
  TRIGGERSCRIPTS: 1065, TRIGGERNAME: 1066, TRIGGERVERSION: 1067, TRIGGERFLAGS: 1068, TRIGGERINDEX: 1069,
  VERIFYSCRIPT: 1079, PREINPROG: 1085, POSTINPROG: 1086, PREUNPROG: 1087, POSTUNPROG: 1088,
  OBSOLETENAME: 1090, VERIFYSCRIPTPROG: 1091, TRIGGERSCRIPTPROG: 1092, FILEDEVICES: 1095, FILEINODES: 1096,
  PROVIDEFLAGS: 1112, PROVIDEVERSION: 1113, OBSOLETEFLAGS: 1114, OBSOLETEVERSION: 1115,
  DIRINDEXES: 1116, BASENAMES: 1117, DIRNAMES: 1118, PAYLOADFORMAT: 1124, PAYLOADCOMPRESSOR: 1125,
  PRETRANS: 1151, POSTTRANS: 1152, PRETRANSPROG: 1153, POSTTRANSPROG: 1154,
  LONGFILESIZES: 5008, FILEDIGESTALGO: 5011, PAYLOADDIGEST: 5092, PAYLOADDIGESTALGO: 5093,
} as const
const SIG = { SIZE: 1000, LONGSIZE: 270, SHA1: 269, SHA256: 273 } as const

// RPMFILE_* flags
const CONFIG = 1 << 0
const DOC = 1 << 1
const GHOST = 1 << 6

const S_IFMT = 0o170000
const TYPES: Record<number, string> = {
  0o100000: "file", 0o040000: "directory", 0o120000: "symlink",
  0o020000: "character device", 0o060000: "block device", 0o010000: "fifo", 0o140000: "socket",
}

// PGPHASHALGO_* as node names
const DIGEST_ALGOS: Record<number, string> = { 1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224" }

const COMPRESSORS: Record<string, Compression> = { gzip: "gzip", bzip2: "bzip2", xz: "xz", lzma: "lzma", zstd: "zstd" }

const SCRIPTS: ReadonlyArray<readonly [string, number, number]> = [
  ["pretrans", T.PRETRANS, T.PRETRANSPROG],
  ["prein", T.PREIN, T.PREINPROG],
  ["postin", T.POSTIN, T.POSTINPROG],
  ["preun", T.PREUN, T.PREUNPROG],
  ["postun", T.POSTUN, T.POSTUNPROG],
  ["posttrans", T.POSTTRANS, T.POSTTRANSPROG],
  ["verifyscript", T.VERIFYSCRIPT, T.VERIFYSCRIPTPROG],
]
const TRIGGER_KINDS: ReadonlyArray<readonly [number, string]> = [
  [1 << 25, "triggerprein"],
  [1 << 16, "triggerin"],
  [1 << 17, "triggerun"],
  [1 << 18, "triggerpostun"],
]

const bad = (archive: string) => (reason: string): never => {
  throw new ArchiveError({ archive, reason })
}

interface Opened {
  readonly header: RpmHeader
  readonly payloadOffset: number
  readonly payloadSize: number
  readonly compression: Compression
}

/** Reads and checks the lead and both headers. */
const openRpm = (rpm: string): Opened => {
  const fail = bad(rpm)
  let fd: number
  try {
    fd = fs.openSync(rpm, "r")
  } catch (e) {
    // gone since sync (or never a file): the archive's failure, so apply tries the trove's next source
    return fail(describeIo(e))
  }
  try {
    const size = fs.fstatSync(fd).size
    const lead = readAt(fd, 0, LEAD_SIZE)
    if (lead.length < 4 || !lead.subarray(0, 4).equals(LEAD_MAGIC)) fail("not an rpm package (bad lead magic)")
    if (lead.length < LEAD_SIZE) fail("truncated lead")
    if (lead.readUInt16BE(6) !== 0) fail("is a source package (only binary packages are installed)")
    if (lead.readUInt16BE(78) !== HEADER_SIGNED) fail(`lead has signature type ${lead.readUInt16BE(78)} (rpm writes only ${HEADER_SIGNED})`)
    const sig = RpmHeader.read(fd, LEAD_SIZE, SIGNATURE_LIMITS, "signature header", fail)
    const headerOffset = sig.end + ((8 - (sig.end % 8)) % 8)
    const main = RpmHeader.read(fd, headerOffset, HEADER_LIMITS, "header", fail)
    const header = main.header
    // The signature header's digests cover the main header: refuse an altered one before reading it.
    const sha256 = sig.header.string(SIG.SHA256, "SHA256HEADER")
    const sha1 = sig.header.string(SIG.SHA1, "SHA1HEADER")
    if (sha256 !== undefined && createHash("sha256").update(header.bytes).digest("hex") !== sha256.toLowerCase()) fail("header does not match its sha256 digest (corrupt or altered)")
    if (sha256 === undefined && sha1 !== undefined && createHash("sha1").update(header.bytes).digest("hex") !== sha1.toLowerCase()) fail("header does not match its sha1 digest (corrupt or altered)")
    const signedSize = sig.header.number(SIG.LONGSIZE, "LONGSIZE") ?? sig.header.number(SIG.SIZE, "SIZE")
    if (signedSize !== undefined && size - headerOffset !== signedSize)
      fail(size - headerOffset < signedSize ? `truncated archive (header and payload are ${size - headerOffset} bytes, the signature says ${signedSize})` : `has ${size - headerOffset - signedSize} bytes after its payload`)
    const format = header.string(T.PAYLOADFORMAT, "PAYLOADFORMAT") ?? "cpio"
    if (format !== "cpio") fail(`payload format '${format}' is not cpio`)
    const compressor = header.string(T.PAYLOADCOMPRESSOR, "PAYLOADCOMPRESSOR") ?? "gzip"
    const compression = COMPRESSORS[compressor]
    if (compression === undefined) fail(`payload compressor '${compressor}' is not one conary reads (gzip, bzip2, xz, lzma, zstd)`)
    return { header, payloadOffset: main.end, payloadSize: size - main.end, compression: compression! }
  } finally {
    fs.closeSync(fd)
  }
}

/** Hashes what passes through. */
class Digest extends Transform {
  readonly hash
  constructor(algo: string) {
    super()
    this.hash = createHash(algo)
  }
  override _transform(chunk: Buffer, _: BufferEncoding, done: (e?: Error | null, c?: Buffer) => void) {
    this.hash.update(chunk)
    done(null, chunk)
  }
}

/**
 * Streams the payload's cpio entries to `visit`, each with its path in the
 * root; when the header carries a payload digest, the compressed payload
 * must match it (checked at the end).
 */
const walkPayload = async (rpm: string, opened: Opened, visit: (entry: CpioEntry, path: string | undefined) => Promise<void>): Promise<void> => {
  const fail = bad(rpm)
  const { header } = opened
  const wanted = header.strings(T.PAYLOADDIGEST, "PAYLOADDIGEST")?.[0]
  const algo = DIGEST_ALGOS[header.number(T.PAYLOADDIGESTALGO, "PAYLOADDIGESTALGO") ?? 8]
  const digest = wanted !== undefined && algo !== undefined ? new Digest(algo) : undefined
  const raw = fs.createReadStream(rpm, { start: opened.payloadOffset })
  const stages: Array<NodeJS.ReadWriteStream> = [...(digest ? [digest] : []), decompressor(opened.compression), bound(unpackLimit(opened.payloadSize))]
  const out = pipeline([raw, ...stages] as unknown as [Readable, ...NodeJS.ReadWriteStream[]], () => undefined) as unknown as Readable
  try {
    for await (const entry of cpioEntries(out)) await visit(entry, memberPath(rpm, utf8Name(rpm, entry.name.toString("latin1"))))
  } catch (e) {
    out.destroy()
    if (e instanceof CpioError) fail(`payload: ${e.message}`)
    archiveFailure(rpm, e)
  }
  if (digest && digest.hash.digest("hex") !== wanted!.toLowerCase()) fail("payload does not match its digest (corrupt or altered)")
}

/** Reads up to `max` bytes; undefined when there are more. */
const readUpTo = async (data: AsyncIterable<Buffer>, max: number): Promise<Buffer | undefined> => {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of data) {
    n += c.length
    if (n > max) return undefined
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}

/** The header's file list, one record per file, every per-file tag checked against it. */
const headerFiles = (rpm: string, h: RpmHeader) => {
  const fail = bad(rpm)
  if (h.has(T.OLDFILENAMES) && !h.has(T.BASENAMES)) fail("uses the pre-3.0.4 file list (OLDFILENAMES), which conary does not read")
  const basenames = h.raw(T.BASENAMES, "BASENAMES") ?? []
  const n = basenames.length
  const per = <A>(name: string, get: () => A[] | undefined, fallback: A | undefined): A[] => {
    const values = get()
    if (values === undefined) {
      if (fallback === undefined && n > 0) fail(`header lacks ${name}`)
      return new Array<A>(n).fill(fallback as A)
    }
    if (values.length !== n) fail(`header has ${values.length} ${name} for ${n} files`)
    return values
  }
  const dirnames = h.raw(T.DIRNAMES, "DIRNAMES") ?? []
  const dirIndexes = per("DIRINDEXES", () => h.numbers(T.DIRINDEXES, "DIRINDEXES"), undefined)
  const modes = per("FILEMODES", () => h.numbers(T.FILEMODES, "FILEMODES"), undefined)
  const sizes = per("FILESIZES", () => h.numbers(T.LONGFILESIZES, "LONGFILESIZES") ?? h.numbers(T.FILESIZES, "FILESIZES"), 0)
  const mtimes = per("FILEMTIMES", () => h.numbers(T.FILEMTIMES, "FILEMTIMES"), 0)
  const flags = per("FILEFLAGS", () => h.numbers(T.FILEFLAGS, "FILEFLAGS"), 0)
  const digests = per("FILEDIGESTS", () => h.strings(T.FILEDIGESTS, "FILEDIGESTS"), "")
  const links = per("FILELINKTOS", () => h.raw(T.FILELINKTOS, "FILELINKTOS"), Buffer.alloc(0))
  const users = per("FILEUSERNAME", () => h.strings(T.FILEUSERNAME, "FILEUSERNAME"), "root")
  const groups = per("FILEGROUPNAME", () => h.strings(T.FILEGROUPNAME, "FILEGROUPNAME"), "root")
  // Without inode numbers no two files are one.
  const inodes = per("FILEINODES", () => h.numbers(T.FILEINODES, "FILEINODES"), -1)
  const devices = per("FILEDEVICES", () => h.numbers(T.FILEDEVICES, "FILEDEVICES"), 0)
  const algoId = h.number(T.FILEDIGESTALGO, "FILEDIGESTALGO") ?? 1
  const algo = DIGEST_ALGOS[algoId]
  if (algo === undefined || !getHashes().includes(algo)) fail(`file digest algorithm ${algoId} is not one conary knows`)
  const files = basenames.map((base, i) => {
    const dir = dirnames[dirIndexes[i]!]
    if (dir === undefined) fail(`file ${i} names directory ${dirIndexes[i]} of ${dirnames.length}`)
    const full = utf8Name(rpm, Buffer.concat([dir!, base]).toString("latin1"))
    if (!full.startsWith("/")) fail(`file path '${full}' is not absolute`)
    // The root itself (a filesystem package lists it) is the root's already.
    const path = memberPath(rpm, `.${full}`) ?? "/"
    const mode = modes[i]!
    const type = TYPES[mode & S_IFMT]
    if (type === undefined) fail(`${path} has mode ${mode.toString(8)}, of no file type`)
    for (const [what, name] of [["owner", users[i]!], ["group", groups[i]!]] as const)
      if (!/^[^\s:\x00-\x1f]+$/.test(name)) fail(`${path} has ${what} '${name}', not a user or group name`)
    return {
      path: path!,
      mode,
      type: type!,
      size: sizes[i]!,
      mtime: mtimes[i]!,
      flags: flags[i]!,
      digest: digests[i]!.toLowerCase(),
      link: links[i]!,
      user: users[i]!,
      group: groups[i]!,
      inode: inodes[i] === -1 ? `#${i}` : `${devices[i]}:${inodes[i]}`,
    }
  })
  return { files, algo: algo! }
}

const depList = (h: RpmHeader, name: number, flags: number, version: number, label: string): RpmDepList => ({
  names: h.strings(name, `${label}NAME`) ?? [],
  flags: h.numbers(flags, `${label}FLAGS`) ?? [],
  versions: h.strings(version, `${label}VERSION`) ?? [],
})

/** Scriptlets by rpm's names, each with its interpreter as a `#!` line; triggers by their condition. */
const scriptsOf = (h: RpmHeader): Record<string, string> => {
  const scripts: Record<string, string> = {}
  const withProg = (prog: string[] | undefined, body: string | undefined) => (prog && prog.length > 0 ? `#!${prog.join(" ")}\n` : "") + (body ?? "")
  for (const [name, body, prog] of SCRIPTS) {
    if (h.has(body) || h.has(prog)) scripts[name] = withProg(h.strings(prog, `${name}prog`, true), h.string(body, name, true))
  }
  const bodies = h.strings(T.TRIGGERSCRIPTS, "TRIGGERSCRIPTS", true) ?? []
  const progs = h.strings(T.TRIGGERSCRIPTPROG, "TRIGGERSCRIPTPROG", true) ?? []
  const names = h.strings(T.TRIGGERNAME, "TRIGGERNAME") ?? []
  const versions = h.strings(T.TRIGGERVERSION, "TRIGGERVERSION") ?? []
  const flags = h.numbers(T.TRIGGERFLAGS, "TRIGGERFLAGS") ?? []
  const indexes = h.numbers(T.TRIGGERINDEX, "TRIGGERINDEX") ?? []
  bodies.forEach((body, i) => {
    const condition = (j: number) => {
      try {
        return rpmDeps({ names: [names[j]!], flags: [flags[j] ?? 0], versions: [versions[j] ?? ""] })[0] ?? names[j]!
      } catch {
        return names[j]!
      }
    }
    const conditions = names.flatMap((_, j) => (indexes[j] === i ? [condition(j)] : []))
    const first = names.findIndex((_, j) => indexes[j] === i)
    const kind = TRIGGER_KINDS.find(([bit]) => (flags[first] ?? 0) & bit)?.[1] ?? "trigger"
    scripts[`${kind} -- ${conditions.join(", ")}`] = withProg(progs[i] === undefined ? undefined : [progs[i]!], body)
  })
  return scripts
}

const RPM_NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/
const RPM_VERSION = /^[A-Za-z0-9._+~^]+$/

/** Reads an .rpm's metadata and the metadata (with sha256) of every file it holds; `store` takes the contents too. */
export const readRpm = async (rpm: string, store?: ContentStore): Promise<RpmTrove> => {
  const fail = bad(rpm)
  const opened = openRpm(rpm)
  const h = opened.header
  const name = h.string(T.NAME, "NAME")
  const version = h.string(T.VERSION, "VERSION")
  const release = h.string(T.RELEASE, "RELEASE")
  const epoch = h.number(T.EPOCH, "EPOCH")
  if (name === undefined || !RPM_NAME.test(name)) fail(`bad package name '${name ?? ""}'`)
  for (const [what, v] of [["version", version], ["release", release]] as const)
    if (v === undefined || !RPM_VERSION.test(v)) fail(`bad ${what} '${v ?? ""}' (rpm allows letters, digits and . _ + ~ ^)`)
  const arch = h.string(T.ARCH, "ARCH") ?? "noarch"
  if (!/^[A-Za-z0-9_]+$/.test(arch)) fail(`bad architecture '${arch}'`)

  let deps: Pick<RpmTrove, "requires" | "provides" | "conflicts" | "replaces">
  try {
    const provides = rpmDeps(depList(h, T.PROVIDENAME, T.PROVIDEFLAGS, T.PROVIDEVERSION, "PROVIDE"))
    // What the package provides itself (rpm's automatic config(name) = version) needs nothing else.
    const own = new Set(provides)
    // An obsoleted package is replaced and conflicted with: the planner then puts this one in its place (an update across a rename).
    const obsoletes = rpmDeps(depList(h, T.OBSOLETENAME, T.OBSOLETEFLAGS, T.OBSOLETEVERSION, "OBSOLETE"))
    deps = {
      requires: [...new Set(rpmDeps(depList(h, T.REQUIRENAME, T.REQUIREFLAGS, T.REQUIREVERSION, "REQUIRE")))].filter((r) => !own.has(r)),
      provides,
      conflicts: [...rpmDeps(depList(h, T.CONFLICTNAME, T.CONFLICTFLAGS, T.CONFLICTVERSION, "CONFLICT")), ...obsoletes],
      replaces: obsoletes,
    }
  } catch (e) {
    if (e instanceof DepError) fail(`${name}: ${e.message}`)
    throw e
  }

  const { files: listed, algo } = headerFiles(rpm, h)
  const byPath = new Map(listed.map((f, i) => [f.path, i]))
  if (byPath.size !== listed.length) fail("header lists a file twice")
  // What the payload says of each file: its content's sha256, owner ids.
  const found: Array<{ sha256: string | null; uid: number; gid: number; empty: boolean } | undefined> = new Array(listed.length)
  await walkPayload(rpm, opened, async (entry, p) => {
    if (p === undefined) return
    const i = byPath.get(p)
    if (i === undefined) fail(`payload holds ${p}, which the header does not list`)
    const f = listed[i!]!
    if (found[i!]) fail(`${p} appears twice in the payload`)
    if (f.flags & GHOST) fail(`${p} is a %ghost file but is in the payload`)
    const type = TYPES[entry.mode & S_IFMT] ?? "special file"
    if (type !== f.type) fail(`${p} is a ${type} in the payload but a ${f.type} in the header`)
    let sha256: string | null = null
    if (f.type === "file") {
      // Of a hard link set, only one member carries the content.
      const empty = entry.size === 0 && f.size > 0
      if (!empty && entry.size !== f.size) fail(`${p} is ${entry.size} bytes in the payload, ${f.size} in the header`)
      const hash = createHash("sha256")
      const check = algo === "sha256" ? undefined : createHash(algo)
      const stored = empty ? undefined : store?.writer()
      try {
        for await (const c of entry.data) {
          hash.update(c)
          check?.update(c)
          stored?.write(c)
        }
        sha256 = hash.digest("hex")
        const actual = check ? check.digest("hex") : sha256
        if (!empty && actual !== f.digest) fail(`content of ${p} does not match its ${algo} digest in the header`)
        stored?.keep(sha256)
      } finally {
        stored?.drop()
      }
      found[i!] = { sha256: empty ? null : sha256, uid: entry.uid, gid: entry.gid, empty }
      return
    }
    if (f.type === "symlink") {
      const target = (await readUpTo(entry.data, 4096)) ?? fail(`${p} has a symlink target longer than 4096 bytes`)
      if (!target.equals(f.link)) fail(`${p} links to '${target.toString("latin1")}' in the payload, '${f.link.toString("latin1")}' in the header`)
    } else if (f.type !== "directory") fail(`${p} is a ${f.type} (device nodes and fifos are not installed)`)
    found[i!] = { sha256, uid: entry.uid, gid: entry.gid, empty: false }
  })

  // Hard link sets: members share a device and inode in the header; the first by path is the original.
  const sets = new Map<string, number[]>()
  listed.forEach((f, i) => {
    if (f.flags & GHOST || f.path === "/") return
    if (!found[i]) fail(`${f.path} is missing from the payload`)
    if (f.type !== "file") return
    let set = sets.get(f.inode)
    if (!set) sets.set(f.inode, (set = []))
    set.push(i)
  })
  const original = new Map<number, { path: string; sha256: string }>()
  for (const members of sets.values()) {
    const first = members.reduce((a, b) => (listed[b]!.path < listed[a]!.path ? b : a))
    const carriers = members.filter((i) => !found[i]!.empty)
    if (carriers.length === 0) fail(`${listed[first]!.path} has no content in the payload`)
    const content = found[carriers[0]!]!.sha256!
    const a = listed[first]!
    for (const i of members) {
      const b = listed[i]!
      if (found[i]!.sha256 !== null && found[i]!.sha256 !== content) fail(`hard links ${a.path} and ${b.path} differ in the payload`)
      if (b.digest !== a.digest || b.mode !== a.mode || b.user !== a.user || b.group !== a.group) fail(`hard links ${a.path} and ${b.path} differ in the header`)
      original.set(i, { path: a.path, sha256: content })
    }
  }

  const files: TroveFile[] = listed.flatMap((f, i): TroveFile[] => {
    if (f.path === "/") return []
    const ghost = (f.flags & GHOST) !== 0
    const got = found[i]
    const kind = f.type === "directory" ? "dir" : f.type === "symlink" ? "symlink" : f.type === "file" ? "file" : fail(`${f.path} is a ${f.type} (device nodes and fifos are not installed)`)
    const link = original.get(i)
    return [{
      path: f.path,
      kind,
      mode: kind === "symlink" ? 0o777 : f.mode & 0o7777,
      // name:id: the name is looked up in the target root, the payload's id is the fallback
      owner: got ? `${f.user}:${got.uid}` : f.user,
      group: got ? `${f.group}:${got.gid}` : f.group,
      sha256: kind === "file" && !ghost ? link!.sha256 : null,
      size: kind === "file" && !ghost ? f.size : 0,
      target: kind === "symlink" ? utf8Name(rpm, f.link.toString("latin1")) : null,
      config: (f.flags & CONFIG) !== 0 && kind === "file",
      component: f.flags & DOC ? "doc" : componentOf(f.path),
      mtime: f.mtime,
      ...(link && link.path !== f.path ? { hardlink: link.path } : {}),
      ...(ghost ? { ghost: true } : {}),
    }]
  })
  // rpm makes the directories above its files that the package does not list (0755, root), as cpio -d does.
  const listedPaths = new Set(files.map((f) => f.path))
  for (const f of files.filter((x) => !x.ghost)) {
    for (let k = f.path.lastIndexOf("/"); k > 0; k = f.path.lastIndexOf("/", k - 1)) {
      const dir = f.path.slice(0, k)
      if (listedPaths.has(dir)) break
      listedPaths.add(dir)
      files.push({ path: dir, kind: "dir", mode: 0o755, owner: "root", group: "root", sha256: null, size: 0, target: null, config: false, component: componentOf(dir) })
    }
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

  return {
    name: name!,
    version: `${epoch === undefined ? "" : `${epoch}:`}${version}-${release}`,
    flavor: rpmArchFlavor(arch),
    license: h.string(T.LICENSE, "LICENSE", true),
    ...deps,
    files,
    scripts: scriptsOf(h),
    digest: await sha256OfFile(rpm),
  }
}

/** Streams the wanted contents of an .rpm into the store, each verified against its sha256. */
export const extractRpmObjects = async (rpm: string, files: ReadonlyArray<TroveFile>, wanted: ReadonlySet<string>, store: ContentStore): Promise<void> => {
  const pending = new Set([...wanted].filter((sha) => !store.has(sha)))
  if (pending.size === 0) return
  const byPath = new Map(files.filter((f) => f.sha256 !== null && pending.has(f.sha256)).map((f) => [f.path, f]))
  await walkPayload(rpm, openRpm(rpm), async (entry, p) => {
    const f = p === undefined ? undefined : byPath.get(p)
    // A hard link set's content comes with one member only.
    if (!f || !pending.has(f.sha256!) || entry.size !== f.size) return
    try {
      await store.putStream(entry.data, f.sha256!)
    } catch (e) {
      if (e instanceof StoreError) throw new ArchiveError({ archive: rpm, reason: `content of ${p} does not match its sha256 (changed since sync?)` })
      throw storeFailure(e)
    }
    pending.delete(f.sha256!)
  })
  if (pending.size > 0) throw new ArchiveError({ archive: rpm, reason: "lacks some content it listed at sync" })
}

export const rpmReader: FormatReader = {
  read: async (file, store) => {
    const trove = await readRpm(file, store)
    return { trove, archiveSha256: trove.digest }
  },
  fetch: extractRpmObjects,
}
