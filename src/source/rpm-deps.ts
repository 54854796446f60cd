// rpm dependencies (name, RPMSENSE flags, version) as conary's dependency
// text: `name`, `name (>= 1.2-3)`, alternatives `a | b`, and the classes
// `file: /bin/sh` and `soname: libc.so.6(GLIBC_2.34)(64bit)`.

// RPMSENSE bits (rpm's rpmds.h)
const LESS = 1 << 1
const GREATER = 1 << 2
const EQUAL = 1 << 3
const MISSINGOK = 1 << 19
const RPMLIB = 1 << 24

/**
 * rpmlib(...) features conary meets: the header, payload and version syntax
 * it reads, and the scriptlet features of scripts it records but never runs.
 * The others rpm 4.x knows are refused with a reason; any it does not know, too.
 */
const MET_RPMLIB = new Set([
  "VersionedDependencies",
  "CompressedFileNames",
  "PayloadIsBzip2",
  "PayloadIsXz",
  "PayloadIsLzma",
  "PayloadIsZstd",
  "PayloadFilesHavePrefix",
  "ExplicitPackageProvide",
  "HeaderLoadSortsTags",
  "PartialHardlinkSets",
  "ConcurrentAccess",
  "FileDigests",
  "TildeInVersions",
  "CaretInVersions",
  "RichDependencies",
  "ScriptletInterpreterArgs",
  "BuiltinLuaScripts",
  "ScriptletExpansion",
])
const UNMET_RPMLIB: Record<string, string> = {
  FileCaps: "file capabilities, which conary does not set",
  LargeFiles: "rpm's large-file payload format, which conary does not read",
  DynamicBuildRequires: "a source package feature",
}

/**
 * An rpm soname dependency as rpm's elfdeps spells it: `libc.so.6`,
 * `libfoo.so.1()(64bit)`, `libc.so.6(GLIBC_2.34)(64bit)`, `libfoo.so`.
 */
export const SONAME = /^[^\s()/]+\.so(\.[^\s()]*)?(\([^\s()]*\))*$/

export class DepError extends Error {}

const RELATIONS: Record<number, string> = { [LESS]: "<<", [GREATER]: ">>", [EQUAL]: "=", [LESS | EQUAL]: "<=", [GREATER | EQUAL]: ">=" }

/** `name` in its class: paths are `file:`, sonames `soname:`. */
const classed = (name: string): string => (name.startsWith("/") ? `file: ${name}` : SONAME.test(name) ? `soname: ${name}` : name)

const simple = (name: string, relation: string | undefined, version: string): string => {
  if (name === "" || /[\s|,]/.test(name)) throw new DepError(`dependency name '${name}' cannot be written as a conary dependency`)
  // A path or soname is there or not: rpm's file and soname dependencies carry no version.
  if (!version || !relation || classed(name) !== name) return classed(name)
  if (/[\s()|,]/.test(version)) throw new DepError(`dependency '${name}' has version '${version}', which cannot be written as a conary dependency`)
  return `${classed(name)} (${relation} ${version})`
}

const RICH_RELATIONS: Record<string, string> = { "<": "<<", "<=": "<=", "=": "=", ">=": ">=", ">": ">>" }

/**
 * A rich dependency that is an `or` of plain ones (nested or not) as
 * alternatives; undefined for any other (`and`, `if`, `with`, ...).
 */
export const richAlternatives = (text: string): string[] | undefined => {
  let i = 0
  const space = () => {
    while (text[i] === " ") i++
  }
  const plain = (): string | undefined => {
    const start = i
    let depth = 0
    for (; i < text.length; i++) {
      const c = text[i]
      if (c === " " && depth === 0) break
      if (c === "(") depth++
      else if (c === ")") {
        if (depth === 0) break
        depth--
      }
    }
    const name = text.slice(start, i)
    if (name === "" || depth !== 0 || ["and", "or", "if", "else", "with", "without", "unless"].includes(name)) return undefined
    space()
    const op = /^(<=|>=|<|>|=)/.exec(text.slice(i))?.[1]
    if (op === undefined) return simple(name, undefined, "")
    i += op.length
    space()
    const v = /^[^\s()]+/.exec(text.slice(i))?.[0]
    if (v === undefined) return undefined
    i += v.length
    return simple(name, RICH_RELATIONS[op], v)
  }
  const expression = (): string[] | undefined => {
    i++ // (
    const alternatives: string[] = []
    for (;;) {
      space()
      if (text[i] === "(") {
        const nested = expression()
        if (nested === undefined) return undefined
        alternatives.push(...nested)
      } else {
        const dep = plain()
        if (dep === undefined) return undefined
        alternatives.push(dep)
      }
      space()
      if (text[i] === ")") {
        i++
        return alternatives
      }
      if (!text.startsWith("or ", i)) return undefined
      i += 3
    }
  }
  if (!text.startsWith("(")) return undefined
  const out = expression()
  space()
  return out !== undefined && i === text.length ? out : undefined
}

export interface RpmDepList {
  readonly names: ReadonlyArray<string>
  readonly flags: ReadonlyArray<number>
  readonly versions: ReadonlyArray<string>
}

/**
 * One relation list (requires, provides, conflicts, obsoletes) as conary
 * text. rpmlib() requirements conary meets are dropped and the others
 * refused; optional (missingok) requirements are dropped.
 */
export const rpmDeps = ({ names, flags, versions }: RpmDepList): string[] => {
  const out: string[] = []
  names.forEach((name, i) => {
    const f = flags[i] ?? 0
    const version = versions[i] ?? ""
    if (name.startsWith("rpmlib(") || f & RPMLIB) {
      const feature = /^rpmlib\((.*)\)$/.exec(name)?.[1] ?? name
      if (MET_RPMLIB.has(feature)) return
      const why = UNMET_RPMLIB[feature]
      throw new DepError(`needs rpmlib(${feature})${why ? `: ${why}` : ", a feature conary does not know"}`)
    }
    if (f & MISSINGOK) return
    if (name.startsWith("(")) {
      const alternatives = richAlternatives(name)
      if (!alternatives) throw new DepError(`rich dependency '${name}' cannot be written as a conary dependency (only 'or' of plain dependencies can)`)
      out.push(alternatives.join(" | "))
      return
    }
    const sense = f & (LESS | GREATER | EQUAL)
    const relation = RELATIONS[sense]
    if (version !== "" && sense !== 0 && relation === undefined) throw new DepError(`dependency '${name}' has flags ${f}, which name no relation conary knows`)
    out.push(simple(name, relation, version))
  })
  return out
}
