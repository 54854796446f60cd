// The shape of a trove as every package format is mapped to it.

/** which ordering a trove's versions follow (src/desired/version.ts compares them) */
export const VERSION_SCHEMES = ["native", "deb"] as const
export type VersionScheme = (typeof VERSION_SCHEMES)[number]

export type FileKind = "file" | "dir" | "symlink"

export interface TroveFile {
  /** absolute inside the root: `/usr/bin/hello` */
  readonly path: string
  readonly kind: FileKind
  /** permission bits (07777) */
  readonly mode: number
  readonly owner: string
  readonly group: string
  readonly sha256: string | null
  readonly size: number
  readonly target: string | null
  readonly config: boolean
  readonly component: string
  /** modification time from the archive, in seconds; apply sets it on the installed file */
  readonly mtime?: number
  /** another file of the same trove this one is a hard link to (they share an inode when installed) */
  readonly hardlink?: string
}

export interface TroveMeta {
  readonly id: number
  readonly name: string
  readonly version: string
  readonly scheme: VersionScheme
  /** canonical flavor text, '' for none */
  readonly flavor: string
  readonly components: ReadonlyArray<string>
  /** each entry: alternatives separated by ' | ' */
  readonly requires: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
  /** Debian relations the planner honours: may not be installed together / may overwrite files of */
  readonly conflicts: ReadonlyArray<string>
  readonly breaks: ReadonlyArray<string>
  readonly replaces: ReadonlyArray<string>
  readonly fileCount: number
  readonly totalSize: number
  readonly hasScripts: boolean
}

export const DEP_KINDS = ["requires", "provides", "conflicts", "breaks", "replaces"] as const
export type DepKind = (typeof DEP_KINDS)[number]

export const troveLabel = (t: { readonly name: string; readonly version: string; readonly flavor: string }): string =>
  t.flavor === "" ? `${t.name}=${t.version}` : `${t.name}=${t.version}[${t.flavor}]`

// ---- components -----------------------------------------------------------

// Path rules, first match wins (Conary splits packages the same way).
const COMPONENT_RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/usr\/lib\/debug(\/|$)/, "debuginfo"],
  [/^\/etc(\/|$)/, "config"],
  [/^\/usr\/(share|lib)\/locale(\/|$)/, "locale"],
  [/^\/usr\/share\/(doc|man|info|gtk-doc|help)(\/|$)/, "doc"],
  [/^\/usr\/include(\/|$)/, "devel"],
  [/^\/usr\/(lib\d*|lib\/[^/]+-linux-gnu[^/]*|share)\/pkgconfig(\/|$)/, "devel"],
  [/^\/usr\/share\/aclocal(\/|$)/, "devel"],
  [/^(\/usr)?\/lib\d*(\/[^/]+-linux-gnu[^/]*)?\/[^/]+\.(a|la|so)$/, "devel"],
  [/^(\/usr)?\/lib\d*\/.*\.so(\.\d+)+$/, "lib"],
  [/^(\/usr)?\/lib\d*\/.*\.so\.\d/, "lib"],
]

export const componentOf = (path: string): string => {
  for (const [rule, component] of COMPONENT_RULES) if (rule.test(path)) return component
  return "runtime"
}

/** What a bare package name installs: everything but debug info. */
export const isDefaultComponent = (component: string): boolean => component !== "debuginfo"

// ---- dependencies ---------------------------------------------------------

export interface Dep {
  readonly name: string
  readonly relation?: "<<" | "<=" | "=" | ">=" | ">>"
  readonly version?: string
}

const DEP = /^\s*([A-Za-z0-9][A-Za-z0-9+._:-]*?)\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^\s)]+)\s*\)|(<<|<=|>=|>>|=)\s*(\S+))?\s*$/

/** `name`, `name (>= 1.2)` or `name>=1.2`; `<`/`>` mean `<=`/`>=` as in dpkg. */
export const parseDep = (text: string): Dep | undefined => {
  const m = DEP.exec(text)
  if (!m) return undefined
  const rel = m[2] ?? m[4]
  const version = m[3] ?? m[5]
  if (rel === undefined || version === undefined) return { name: m[1]! }
  const relation = rel === "<" ? "<=" : rel === ">" ? ">=" : (rel as Dep["relation"])
  return { name: m[1]!, relation, version }
}

/** A requirement with alternatives: `a (>= 1) | b`. */
export const parseDepGroup = (text: string): Dep[] | undefined => {
  const alternatives = text.split("|").map(parseDep)
  return alternatives.every((d): d is Dep => d !== undefined) ? alternatives : undefined
}

export const formatDep = (d: Dep): string => (d.relation ? `${d.name} (${d.relation} ${d.version})` : d.name)

/**
 * The entries a trove installs for a set of its components: their files, plus
 * the trove's own directories above them (a `:doc`-only install still needs
 * `/usr/share`, which the package files under `:runtime`).
 */
export const filesForComponents = (files: ReadonlyArray<TroveFile>, components: ReadonlyArray<string>): TroveFile[] => {
  const wanted = new Set(components)
  const chosen = files.filter((f) => wanted.has(f.component))
  if (chosen.length === files.length) return chosen
  const ancestors = new Set<string>()
  for (const f of chosen) {
    for (let i = f.path.lastIndexOf("/"); i > 0; i = f.path.lastIndexOf("/", i - 1)) {
      const dir = f.path.slice(0, i)
      if (ancestors.has(dir)) break
      ancestors.add(dir)
    }
  }
  return files.filter((f) => wanted.has(f.component) || (f.kind === "dir" && ancestors.has(f.path)))
}
