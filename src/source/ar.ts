import * as fs from "node:fs"

// The ar container of .deb files: "!<arch>\n", then members, each a 60-byte
// header (name, mtime, uid, gid, mode, size, "`\n") and data padded to an even
// length. Only the member table is read here; members are streamed by offset.

export interface ArMember {
  readonly name: string
  readonly offset: number
  readonly size: number
}

const MAGIC = "!<arch>\n"

/** Lists an ar archive's members; throws a one-line reason when it is not one or is cut short. */
export const readArMembers = (file: string): ArMember[] => {
  const fd = fs.openSync(file, "r")
  try {
    const total = fs.fstatSync(fd).size
    const head = Buffer.alloc(60)
    if (fs.readSync(fd, head, 0, 8, 0) < 8 || head.toString("latin1", 0, 8) !== MAGIC) throw new Error("not an ar archive (bad magic)")
    const members: ArMember[] = []
    let pos = 8
    while (pos < total) {
      if (fs.readSync(fd, head, 0, 60, pos) < 60) throw new Error("truncated ar archive (member header cut short)")
      if (head.toString("latin1", 58, 60) !== "`\n") throw new Error(`corrupt ar archive (bad member header at byte ${pos})`)
      const name = head.toString("latin1", 0, 16).trim().replace(/\/$/, "")
      const sizeText = head.toString("latin1", 48, 58).trim()
      if (!/^\d+$/.test(sizeText)) throw new Error(`corrupt ar archive (bad size for ${name})`)
      const size = Number(sizeText)
      const offset = pos + 60
      if (offset + size > total) throw new Error(`truncated ar archive (${name} needs ${size} bytes, ${Math.max(0, total - offset)} remain)`)
      members.push({ name, offset, size })
      pos = offset + size + (size % 2)
    }
    return members
  } finally {
    fs.closeSync(fd)
  }
}

export const memberStream = (file: string, m: ArMember) =>
  m.size === 0 ? fs.createReadStream(file, { start: 0, end: -1 }) : fs.createReadStream(file, { start: m.offset, end: m.offset + m.size - 1 })
