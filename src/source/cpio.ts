// cpio's "new ASCII" format (newc, magic 070701; 070702 adds a checksum we
// do not need), as rpm payloads carry it: read as a stream, entry by entry,
// with each entry's data handed out as chunks and skipped when not read.

export interface CpioEntry {
  /** the name's bytes, as stored (`./usr/bin/x`) */
  readonly name: Buffer
  readonly ino: number
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly nlink: number
  readonly mtime: number
  readonly size: number
  /** the entry's data; read it before asking for the next entry, or it is skipped */
  readonly data: AsyncIterable<Buffer>
}

export class CpioError extends Error {}

const HEADER = 110
const MAX_NAME = 4096
const TRAILER = "TRAILER!!!"

/** Pulls exact byte counts out of a stream of chunks. */
class Bytes {
  private chunk: Buffer = Buffer.alloc(0)
  private readonly it: AsyncIterator<Buffer>
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]()
  }
  private async more(): Promise<boolean> {
    const next = await this.it.next()
    if (next.done) return false
    this.chunk = this.chunk.length === 0 ? next.value : Buffer.concat([this.chunk, next.value])
    return true
  }
  /** Exactly n bytes (n is small: a header or a name). */
  async take(n: number): Promise<Buffer> {
    while (this.chunk.length < n) if (!(await this.more())) throw new CpioError("truncated cpio archive")
    const out = this.chunk.subarray(0, n)
    this.chunk = this.chunk.subarray(n)
    return out
  }
  /** The next n bytes as chunks. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n
    while (left > 0) {
      if (this.chunk.length === 0 && !(await this.more())) throw new CpioError("truncated cpio archive")
      const part = this.chunk.subarray(0, left)
      this.chunk = this.chunk.subarray(part.length)
      left -= part.length
      yield part
    }
  }
  async drain(): Promise<void> {
    this.chunk = Buffer.alloc(0)
    while (await this.more()) this.chunk = Buffer.alloc(0)
  }
  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n));
  }
}

const pad4 = (n: number) => (4 - (n % 4)) % 4

const field = (header: Buffer, i: number): number => {
  const text = header.toString("latin1", 6 + i * 8, 14 + i * 8)
  if (!/^[0-9a-fA-F]{8}$/.test(text)) throw new CpioError(`bad cpio header field '${text.replace(/[^\x20-\x7e]/g, "?")}'`)
  return parseInt(text, 16)
}

/** The entries of a newc cpio stream, up to its trailer. */
export async function* cpioEntries(source: AsyncIterable<Buffer>): AsyncGenerator<CpioEntry> {
  const bytes = new Bytes(source)
  for (;;) {
    const header = await bytes.take(HEADER)
    const magic = header.toString("latin1", 0, 6)
    if (magic !== "070701" && magic !== "070702")
      throw new CpioError(magic === "07070X" ? "payload is in rpm's large-file cpio format, which conary does not read" : `bad cpio magic '${magic.replace(/[^\x20-\x7e]/g, "?")}'`)
    const f = (i: number) => field(header, i)
    const [ino, mode, uid, gid, nlink, mtime, size] = [f(0), f(1), f(2), f(3), f(4), f(5), f(6)]
    const nameSize = f(11)
    if (nameSize < 2 || nameSize > MAX_NAME) throw new CpioError(`cpio name of ${nameSize} bytes`)
    const nameField = await bytes.take(nameSize + pad4(HEADER + nameSize))
    if (nameField[nameSize - 1] !== 0) throw new CpioError("cpio name is not NUL-terminated")
    const name = Buffer.from(nameField.subarray(0, nameSize - 1))
    if (name.includes(0)) throw new CpioError("cpio name has a NUL byte inside")
    if (name.toString("latin1") === TRAILER) {
      // What follows the trailer is padding: read (so a digest of the stream covers it) and dropped.
      await bytes.drain()
      return
    }
    let started = false
    let consumed = 0
    const data: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => {
        if (started) throw new CpioError("cpio entry data read twice")
        started = true
        return (async function* () {
          for await (const chunk of bytes.stream(size)) {
            consumed += chunk.length
            yield chunk
          }
        })()
      },
    }
    yield { name, ino, mode, uid, gid, nlink, mtime, size, data }
    // What the reader left (all of it, or the rest after it stopped) is skipped.
    await bytes.skip(size - consumed)
    await bytes.take(pad4(size))
  }
}
