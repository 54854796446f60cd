import { FileOps } from "../model/file-ops.js"

/** 1.2 MiB */
export const formatBytes = (n: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}

const isPlain = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v)
  return (proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== "function"
}

/**
 * What `JSON.stringify(value, null, 2)` makes, piece by piece: arrays (and a
 * plan's FileOps, one operation at a time) and plain objects are walked,
 * each leaf is stringified alone. A plan of 200,000 file operations is never
 * one string.
 */
export function* jsonPieces(value: unknown, indent = "", leaf = false): Generator<string, void, undefined> {
  if (!leaf && value !== null && typeof value === "object" && (Array.isArray(value) || value instanceof FileOps || isPlain(value))) {
    const inner = indent + "  "
    if (Array.isArray(value) || value instanceof FileOps) {
      if (value.length === 0) return yield "[]"
      yield "[\n"
      for (let i = 0; i < value.length; i++) {
        yield inner
        const v: unknown = Array.isArray(value) ? value[i] : value.at(i)
        // as JSON.stringify: what has no JSON form is null in an array
        if (v === undefined || typeof v === "function" || typeof v === "symbol") yield "null"
        // a file operation is a leaf: one string, not one per field
        else yield* jsonPieces(v, inner, value instanceof FileOps)
        yield i === value.length - 1 ? "\n" : ",\n"
      }
      return yield `${indent}]`
    }
    let first = true
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue
      yield `${first ? "{\n" : ",\n"}${inner}${JSON.stringify(k)}: `
      yield* jsonPieces(v, inner)
      first = false
    }
    return yield first ? "{}" : `\n${indent}}`
  }
  const text = JSON.stringify(value, null, 2)
  // JSON strings hold no raw newline: every newline is the layout's
  yield indent === "" ? text : text.replaceAll("\n", `\n${indent}`)
}

const CHUNK = 1 << 16

/**
 * Text for stdout gathered as bytes into 64 KiB chunks: the pieces die
 * young instead of piling up in one string until written, and a chunk
 * stdout wrote at once is reused.
 */
class StdoutChunks {
  private chunk = Buffer.allocUnsafe(CHUNK)
  private used = 0

  add(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (3 * text.length > CHUNK - this.used) {
      this.flush()
      if (3 * text.length > CHUNK) return void process.stdout.write(text)
    }
    this.used += this.chunk.write(text, this.used)
  }

  flush(): void {
    if (this.used === 0) return
    process.stdout.write(this.chunk.subarray(0, this.used))
    // one stdout still holds (a pipe it could not write to at once) is left to it
    if (process.stdout.writableLength !== 0) this.chunk = Buffer.allocUnsafe(CHUNK)
    this.used = 0
  }
}

/** Prints a JSON document (as JSON.stringify(value, null, 2) lays it out), in chunks. */
export const printJson = (value: unknown): void => {
  const out = new StdoutChunks()
  for (const piece of jsonPieces(value)) out.add(piece)
  out.add("\n")
  out.flush()
}

/** What stdout may hold unwritten before printJsonPaced waits for its reader. */
const PACE = 1 << 20

/**
 * printJson for documents that grow with the root (a plan's files, verify's
 * drift). Node queues what a pipe does not take at once, so for a reader
 * slower than conary the whole document was held (80 MiB at 200,000 files);
 * this waits for the reader past PACE instead. A reader gone (`| head`)
 * ends it: nothing more is written.
 */
export const printJsonPaced = async (value: unknown): Promise<void> => {
  const out = new StdoutChunks()
  const stdout = process.stdout
  for (const piece of jsonPieces(value)) {
    out.add(piece)
    if (stdout.writableLength <= PACE) continue
    if (stdout.destroyed) return
    await new Promise<void>((resolve) => {
      const done = () => {
        stdout.off("drain", done)
        stdout.off("close", done)
        resolve()
      }
      stdout.on("drain", done)
      stdout.on("close", done)
    })
  }
  out.add("\n")
  out.flush()
}

export const println = (line = ""): void => {
  process.stdout.write(line + "\n")
}

/** Left-aligned columns for list views. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string[] => {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd())
}

/** `1 file`, `38 files` */
export const count = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`
