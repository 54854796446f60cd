// Licences as SPDX expressions. A package says its licence in its own words:
// an SPDX expression (`trove build --license`, rpm's License tag today), or
// Debian's short names (`GPL-2+ or Artistic`). SBOMs want SPDX: the words are
// mapped where the mapping is certain, and otherwise kept as a name.
// The SPDX parser and licence list load only when a licence is looked at.

import type { Parsed } from "spdx-expression-parse"

export type SpdxLicense = { readonly expression: string } | { readonly name: string }

const load = async () => {
  const [{ default: parse }, { default: ids }, { default: deprecated }] = await Promise.all([
    import("spdx-expression-parse"),
    import("spdx-license-ids"),
    import("spdx-license-ids/deprecated.json"),
  ])
  const byLower = new Map([...deprecated, ...ids].map((id) => [id.toLowerCase(), id]))
  return { parse, byLower }
}
let loaded: ReturnType<typeof load> | undefined
const spdx = () => (loaded ??= load())

/** The canonical text of a parsed expression: upper-case operators, parentheses only where needed. */
const format = (p: Parsed, parent?: "and" | "or"): string => {
  if ("license" in p) return `${p.license}${p.plus ? "+" : ""}${p.exception ? ` WITH ${p.exception}` : ""}`
  const text = `${format(p.left, p.conjunction)} ${p.conjunction.toUpperCase()} ${format(p.right, p.conjunction)}`
  // AND binds tighter than OR: only an OR inside an AND needs parentheses.
  return parent === "and" && p.conjunction === "or" ? `(${text})` : text
}

/** The text as a canonical SPDX expression, or undefined when it is not one. */
export const parseSpdx = async (text: string): Promise<string | undefined> => {
  if (text.length > 4096) return undefined
  const { parse } = await spdx()
  try {
    return format(parse(text.trim()))
  } catch {
    return undefined
  }
}

const GNU = /^(A?GPL|LGPL|GFDL)-(\d+)(\.\d+)?$/

/** One Debian short name (`GPL-2+`, `BSD-3-clause`, `Expat`) as an SPDX id, when the mapping is certain. */
const debianId = (name: string, byLower: ReadonlyMap<string, string>): string | undefined => {
  if (name.toLowerCase() === "expat") return "MIT"
  const plus = name.endsWith("+")
  const base = plus ? name.slice(0, -1) : name
  const gnu = GNU.exec(base)
  if (gnu) return byLower.get(`${gnu[1]}-${gnu[2]}${gnu[3] ?? ".0"}-${plus ? "or-later" : "only"}`.toLowerCase())
  const id = byLower.get(base.toLowerCase())
  return id === undefined ? undefined : plus ? `${id}+` : id
}

/**
 * A package's licence for an SBOM: a canonical SPDX expression when the text
 * is one or maps to one (Debian short names joined by `and`/`or`), otherwise
 * the text as a licence name.
 */
export const toSpdx = async (text: string): Promise<SpdxLicense> => {
  const direct = await parseSpdx(text)
  if (direct !== undefined) return { expression: direct }
  const { byLower } = await spdx()
  const parts = text.trim().split(/(\(|\)|\s+or\s+|\s+and\s+|\s*,\s*)/i)
  const mapped: string[] = []
  for (const part of parts) {
    const t = part.trim().toLowerCase()
    if (t === "(" || t === ")") mapped.push(part.trim())
    else if (t === "or" || t === ",") mapped.push(" OR ")
    else if (t === "and") mapped.push(" AND ")
    else if (t !== "") {
      const id = debianId(part.trim(), byLower)
      if (id === undefined) return { name: text }
      mapped.push(id)
    }
  }
  const expression = await parseSpdx(mapped.join(""))
  return expression === undefined ? { name: text } : { expression }
}
