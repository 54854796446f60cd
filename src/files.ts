import * as fs from "node:fs"
import * as path from "node:path"
import { UsageError } from "./errors.js"

// Files the user names, in and out. An output replaces only a regular file
// (a rename over /dev/null or a symlink would replace the node itself); an
// input is read with a cap (/dev/zero never ends) and parsed without letting
// a deep nest exhaust the stack.

/** Refuses an output path that exists and is not a regular file, or whose directory does not exist. */
export const checkOutputFile = (file: string): void => {
  const st = fs.lstatSync(file, { throwIfNoEntry: false })
  if (st && !st.isFile())
    throw new UsageError({ message: `${file}: exists and is not a regular file; give the name of a new or regular file` })
  if (!st && !fs.statSync(path.dirname(file), { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError({ message: `cannot write ${file}: its directory does not exist` })
}

/**
 * Writes `file` whole or not at all: `write` fills a temp file beside it,
 * which then replaces it by rename.
 */
export const writeOutputFile = async <A>(file: string, write: (temp: string) => A | Promise<A>): Promise<A> => {
  checkOutputFile(file)
  const temp = `${file}.tmp-${process.pid}`
  try {
    const result = await write(temp)
    fs.renameSync(temp, file)
    return result
  } finally {
    fs.rmSync(temp, { force: true })
  }
}

const MiB = 1024 * 1024

/** The largest JSON document (a saved plan, a desired state) conary reads: far beyond any real one. */
export const JSON_INPUT_LIMIT = 256 * MiB

/** Blocks this thread for `ms` milliseconds (readInputFile is synchronous). */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Reads a file (or standard input, fd 0) of at most `limit` bytes; throws `fail(reason)`. */
export const readInputFile = (file: string | 0, limit: number, fail: (reason: string) => Error): string => {
  let fd: number
  try {
    fd = file === 0 ? 0 : fs.openSync(file, "r")
  } catch (e) {
    throw fail(`cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
  }
  const chunks: Buffer[] = []
  let total = 0
  const tooLarge = () => fail(`larger than ${limit >= MiB ? `${limit / MiB} MiB` : `${limit} bytes`}, the most conary reads`)
  try {
    // A regular file says its size; anything else (a device, a pipe) is read until the limit.
    if (fs.fstatSync(fd).size > limit) throw tooLarge()
    let idle = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(MiB, limit + 1 - total))
      let n: number
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        // A non-blocking standard input with nothing yet: wait (up to 50 ms at a time), not spin.
        if (code === "EAGAIN") {
          pause(Math.min(50, 2 ** idle++))
          continue
        }
        if (code === "EOF") break
        throw fail(`cannot read it (${code ?? (e as Error).message})`)
      }
      if (n === 0) break
      idle = 0
      chunks.push(chunk.subarray(0, n))
      total += n
      if (total > limit) throw tooLarge()
    }
  } finally {
    if (fd !== 0) fs.closeSync(fd)
  }
  return Buffer.concat(chunks, total).toString("utf8")
}

/** Deeper than any document conary reads; far shallower than what overflows the stack of code walking it. */
const MAX_JSON_DEPTH = 256

/** Whether arrays and objects nest deeper than `max` (a plain scan, skipping strings). */
const nestsDeeper = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/** JSON.parse, with its messages said as one reason ("not valid JSON (...)"); throws `fail(reason)`. */
export const parseJson = (text: string, fail: (reason: string) => Error): unknown => {
  // V8 parses any depth, but decoding and printing a value recurse: a deep nest would overflow the stack.
  if (nestsDeeper(text, MAX_JSON_DEPTH)) throw fail("not valid JSON (nested too deeply)")
  try {
    return JSON.parse(text)
  } catch (e) {
    throw fail(`not valid JSON (${(e as Error).message})`)
  }
}
