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
 * Writes what `JSON.stringify(value, null, 2)` makes, piece by piece: arrays
 * (and a plan's FileOps, one operation at a time) and plain objects are
 * walked, each leaf is stringified alone. A plan of 200,000 file operations
 * is never one string.
 */
export const writeJson = (value: unknown, write: (text: string) => void, indent = "", leaf = false): void => {
  if (!leaf && value !== null && typeof value === "object" && (Array.isArray(value) || value instanceof FileOps || isPlain(value))) {
    const inner = indent + "  "
    if (Array.isArray(value) || value instanceof FileOps) {
      if (value.length === 0) return write("[]")
      write("[\n")
      for (let i = 0; i < value.length; i++) {
        write(inner)
        const v: unknown = Array.isArray(value) ? value[i] : value.at(i)
        // as JSON.stringify: what has no JSON form is null in an array
        if (v === undefined || typeof v === "function" || typeof v === "symbol") write("null")
        // a file operation is a leaf: one string, not one per field
        else writeJson(v, write, inner, value instanceof FileOps)
        write(i === value.length - 1 ? "\n" : ",\n")
      }
      return write(`${indent}]`)
    }
    let first = true
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue
      write(`${first ? "{\n" : ",\n"}${inner}${JSON.stringify(k)}: `)
      writeJson(v, write, inner)
      first = false
    }
    return write(first ? "{}" : `\n${indent}}`)
  }
  const text = JSON.stringify(value, null, 2)
  // JSON strings hold no raw newline: every newline is the layout's
  write(indent === "" ? text : text.replaceAll("\n", `\n${indent}`))
}

const CHUNK = 1 << 16

/**
 * Prints a JSON document (as JSON.stringify(value, null, 2) lays it out), in
 * chunks gathered as bytes: the pieces die young instead of piling up in one
 * string that lives until the chunk is written.
 */
export const printJson = (value: unknown): void => {
  let chunk = Buffer.allocUnsafe(CHUNK)
  let used = 0
  const flush = () => {
    if (used === 0) return
    process.stdout.write(chunk.subarray(0, used))
    chunk = Buffer.allocUnsafe(CHUNK)
    used = 0
  }
  const write = (text: string) => {
    // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (3 * text.length > CHUNK - used) {
      flush()
      if (3 * text.length > CHUNK) return void process.stdout.write(text)
    }
    used += chunk.write(text, used)
  }
  writeJson(value, write)
  write("\n")
  flush()
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
