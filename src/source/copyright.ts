// A Debian package's licence, from its machine-readable copyright file
// (DEP-5, https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/):
// the `License:` of the `Files: *` paragraph, or else every licence the file
// names. A copyright file in free form says nothing we can read: no licence.

/** How much of /usr/share/doc/PKG/copyright is read; a longer one gives no licence. */
export const MAX_COPYRIGHT = 1024 * 1024

interface Paragraph {
  readonly fields: Map<string, string>
}

/** Paragraphs of a deb822 file: only the first line of each field is kept (the licence text follows it). */
const paragraphs = (text: string): Paragraph[] => {
  const out: Paragraph[] = []
  let fields = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") {
      if (fields.size > 0) out.push({ fields })
      fields = new Map()
    } else if (line.startsWith(" ") || line.startsWith("\t") || line.startsWith("#")) continue
    else {
      const i = line.indexOf(":")
      if (i > 0) {
        const key = line.slice(0, i).trim().toLowerCase()
        if (!fields.has(key)) fields.set(key, line.slice(i + 1).trim())
      }
    }
  }
  if (fields.size > 0) out.push({ fields })
  return out
}

/** The licence a DEP-5 copyright file declares for the package; undefined when it is not DEP-5 or names none. */
export const dep5License = (text: string): string | undefined => {
  const all = paragraphs(text)
  const header = all[0]
  if (!header || !/copyright-format/i.test(header.fields.get("format") ?? "")) return undefined
  const files = all.slice(1).filter((p) => p.fields.has("files"))
  const star = files.find((p) => p.fields.get("files")!.split(/\s+/).includes("*"))
  const license = star?.fields.get("license")
  if (license) return license
  const names = new Set(files.flatMap((p) => (p.fields.get("license") ? [p.fields.get("license")!] : [])))
  if (names.size === 0) return undefined
  const sorted = [...names].sort()
  return sorted.length === 1 ? sorted[0] : sorted.map((n) => (/\s/.test(n) ? `(${n})` : n)).join(" and ")
}
