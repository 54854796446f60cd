// The shape of a trove as every package format is mapped to it.

/** which ordering a trove's versions follow (src/desired/version.ts compares them) */
export const VERSION_SCHEMES = ["native", "deb", "alpm", "rpm"] as const
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
  /**
   * owned but never shipped (rpm's %ghost: a log or state file the software
   * makes): listed, never created or removed, and never drift
   */
  readonly ghost?: boolean
}

/** Whether apply puts a file on disk (ghosts it never does). */
export const onDisk = (f: TroveFile): boolean => f.ghost !== true

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
  /** optional dependencies (Arch's optdepend): recorded and shown, never required */
  readonly optional: ReadonlyArray<string>
  readonly fileCount: number
  readonly totalSize: number
  readonly hasScripts: boolean
  /** the licence the package declares (an SPDX expression, or the package's own words); absent when it says none */
  readonly license?: string
}

/**
 * A member of a group trove: a trove (or another group) at an exact version
 * and flavor, like a lockfile's entry.
 */
export interface GroupMember {
  readonly name: string
  readonly version: string
  /** canonical */
  readonly flavor: string
  /** the components it installs; empty: the trove's defaults */
  readonly components: ReadonlyArray<string>
  /** installed with the group, or only when a desired row names it (`group-web/extras`) */
  readonly byDefault: boolean
}

export const DEP_KINDS = ["requires", "provides", "conflicts", "breaks", "replaces", "optional"] as const
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

/**
 * What a dependency names, in Conary's spirit: a trove name (or a name some
 * trove provides), a file path any trove owning it satisfies (`file: /bin/sh`),
 * or a shared library's soname as rpm spells it (`soname: libc.so.6(GLIBC_2.34)(64bit)`).
 */
export const DEP_CLASSES = ["name", "file", "soname"] as const
export type DepClass = (typeof DEP_CLASSES)[number]

export interface Dep {
  readonly class: DepClass
  /** the trove name; for `file:` the absolute path, for `soname:` the soname text */
  readonly name: string
  /** name deps only */
  readonly relation?: "<<" | "<=" | "=" | ">=" | ">>"
  readonly version?: string
}

// A version never starts with a relation's character: `(>= )` is no `>` relation to version `=`.
// A name may carry rpm's parenthesized qualifiers, `perl(Foo::Bar)`, `demo(x86-64)`,
// `config(demo)`: parentheses right after the name that do not start a relation.
const DEP = /^\s*([A-Za-z0-9][A-Za-z0-9+._:-]*?(?:\((?![<>=])[^()\s]*\))*)\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^\s)<>=][^\s)]*)\s*\)|(<<|<=|>=|>>|=)\s*([^\s<>=]\S*))?\s*$/
const CLASSED = /^\s*(file|soname):\s*(\S+)\s*$/
/** rpm's soname spelling: `libfoo.so.1`, `libfoo.so.1()(64bit)`, `libc.so.6(GLIBC_2.34)(64bit)` */
const SONAME = /^[^\s|(),\x00-\x1f\x7f]+(?:\([^\s|(),\x00-\x1f\x7f]*\))*$/

/** An absolute path with no empty, `.` or `..` component, no trailing slash, nothing but printable non-space characters and no `|`. */
const isNormalPath = (p: string): boolean =>
  p.startsWith("/") && p.length > 1 && !/[\s|\x00-\x1f\x7f]/.test(p) && p.slice(1).split("/").every((s) => s !== "" && s !== "." && s !== "..")

/**
 * `name`, `name (>= 1.2)` or `name>=1.2` (`<`/`>` mean `<=`/`>=` as in dpkg);
 * `file: /abs/path`; `soname: text`. The class prefix may omit its space
 * (`file:/bin/sh`); formatDep writes the canonical text.
 */
export const parseDep = (text: string): Dep | undefined => {
  const c = CLASSED.exec(text)
  if (c) {
    const what = c[2]!
    if (c[1] === "file") return isNormalPath(what) ? { class: "file", name: what } : undefined
    return SONAME.test(what) ? { class: "soname", name: what } : undefined
  }
  // A name that starts like a class but is not one (`file: relative`) is no name either.
  if (/^\s*(file|soname):/.test(text)) return undefined
  const m = DEP.exec(text)
  if (!m) return undefined
  const rel = m[2] ?? m[4]
  const version = m[3] ?? m[5]
  if (rel === undefined || version === undefined) return { class: "name", name: m[1]! }
  const relation = rel === "<" ? "<=" : rel === ">" ? ">=" : (rel as Dep["relation"])
  return { class: "name", name: m[1]!, relation, version }
}

/** A requirement with alternatives: `a (>= 1) | b | file: /bin/sh`. */
export const parseDepGroup = (text: string): Dep[] | undefined => {
  const alternatives = text.split("|").map(parseDep)
  return alternatives.every((d): d is Dep => d !== undefined) ? alternatives : undefined
}

/** What a dependency names, without its version: the key providers are found by (`bash`, `file: /bin/sh`, `soname: libz.so.1()(64bit)`). */
export const depKey = (d: Pick<Dep, "class" | "name">): string => (d.class === "name" ? d.name : `${d.class}: ${d.name}`)

/** The canonical text of a dependency. */
export const formatDep = (d: Dep): string => (d.relation ? `${d.name} (${d.relation} ${d.version})` : depKey(d))

/** The canonical text of a requirement with alternatives. */
export const formatDepGroup = (group: ReadonlyArray<Dep>): string => group.map(formatDep).join(" | ")

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
