import type { VersionScheme } from "../model/trove.js"

// Version ordering per scheme. Native versions are `upstream-source-build`
// (Conary's shape); Debian versions use dpkg's algorithm, Arch's pacman's,
// rpm's rpm's. Each scheme splits a version into a parsed form, then compares
// parsed forms.

/** How many parsed versions a scheme keeps before it starts afresh (a bound on memory, far above a catalog's distinct versions). */
const PARSED_KEPT = 100_000

/**
 * A scheme's comparison that parses each version once: the resolver compares
 * the same few thousand versions again and again. Equal text is equal in every scheme.
 */
const parsingOnce = <P>(parse: (v: string) => P, compare: (a: P, b: P) => number) => {
  const parsed = new Map<string, P>()
  const of = (v: string): P => {
    let p = parsed.get(v)
    if (p === undefined) {
      if (parsed.size >= PARSED_KEPT) parsed.clear()
      parsed.set(v, (p = parse(v)))
    }
    return p
  }
  return (a: string, b: string): number => (a === b ? 0 : compare(of(a), of(b)))
}

const COMPARE: Record<VersionScheme, (a: string, b: string) => number> = {
  native: parsingOnce((v) => parseNative(v), (a, b) => compareParsedNative(a, b)),
  deb: parsingOnce((v) => splitDebian(v), (a, b) => compareParsedDebian(a, b)),
  alpm: parsingOnce((v) => splitEvr(asBytes(v)), (a, b) => compareParsedAlpm(a, b)),
  rpm: parsingOnce((v) => splitRpm(v), (a, b) => compareParsedRpm(a, b)),
}

export const compareVersions = (scheme: VersionScheme, a: string, b: string): number => COMPARE[scheme](a, b)

// ---- native ---------------------------------------------------------------

const NATIVE = /^[0-9A-Za-z][0-9A-Za-z.+_~]*(-[0-9A-Za-z.+_~]+){0,2}$/

/** `upstream[-source[-build]]`; the last two `-` fields are source and build. */
export const isNativeVersion = (v: string): boolean => NATIVE.test(v)

/** A native version's fields: each as its text and its dot-separated parts, each part as its runs of digits and of other characters. */
type NativeVersion = ReadonlyArray<{ readonly text: string; readonly parts: ReadonlyArray<ReadonlyArray<string>> }>

const RUN = /\d+|\D+/g

const parseNative = (v: string): NativeVersion => {
  const fields = v.split("-")
  return [0, 1, 2].map((i) => {
    const text = fields[i] ?? ""
    return { text, parts: text === "" ? [] : text.split(".").map((part) => part.match(RUN) ?? []) }
  })
}

export const compareNative = (a: string, b: string): number => compareParsedNative(parseNative(a), parseNative(b))

const compareParsedNative = (a: NativeVersion, b: NativeVersion): number => {
  for (let i = 0; i < 3; i++) {
    const fa = a[i]!
    const fb = b[i]!
    if (fa.text === fb.text) continue
    // Dot-separated parts, each compared numerically where both are numeric.
    const n = Math.min(fa.parts.length, fb.parts.length)
    let c = 0
    for (let k = 0; k < n && c === 0; k++) c = compareNatural(fa.parts[k]!, fb.parts[k]!)
    if (c === 0) c = fa.parts.length - fb.parts.length
    if (c !== 0) return c
  }
  return 0
}

/** "10a" > "9b": runs of digits compare as numbers, other runs as text. */
const compareNatural = (ra: ReadonlyArray<string>, rb: ReadonlyArray<string>): number => {
  const n = Math.min(ra.length, rb.length)
  for (let i = 0; i < n; i++) {
    const x = ra[i]!
    const y = rb[i]!
    const dx = x.charCodeAt(0) <= 57 && x.charCodeAt(0) >= 48
    const dy = y.charCodeAt(0) <= 57 && y.charCodeAt(0) >= 48
    let c: number
    if (dx && dy) c = compareDigits(x, y)
    else if (dx !== dy) c = dx ? 1 : -1 // a number sorts after text: 1.0 > 1.rc
    else c = x < y ? -1 : x > y ? 1 : 0
    if (c !== 0) return c
  }
  return ra.length - rb.length
}

const compareDigits = (x: string, y: string): number => {
  const a = x.replace(/^0+/, "")
  const b = y.replace(/^0+/, "")
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}

// ---- Debian ---------------------------------------------------------------

export interface DebianVersion {
  readonly epoch: number
  readonly upstream: string
  readonly revision: string
}

/**
 * Splits a version as dpkg's parseversion does, valid or not: the epoch runs
 * to the first ':', the revision from the last '-'.
 */
const splitDebian = (v: string): DebianVersion => {
  let rest = v.trim()
  let epoch = 0
  const colon = rest.indexOf(":")
  if (colon >= 0 && /^[+-]?\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon))
    rest = rest.slice(colon + 1)
  }
  const hyphen = rest.lastIndexOf("-")
  return hyphen < 0 ? { epoch, upstream: rest, revision: "" } : { epoch, upstream: rest.slice(0, hyphen), revision: rest.slice(hyphen + 1) }
}

/**
 * Why dpkg would refuse a package with this version, in dpkg's words
 * (lib/dpkg/parsehelp.c); undefined when it is valid. dpkg only warns about
 * the last three when comparing, but refuses them in a package's control file.
 */
export const debianVersionProblem = (v: string): string | undefined => {
  const text = v.trim()
  if (text === "") return "version string is empty"
  if (/\s/.test(text)) return "version string has embedded spaces"
  let rest = text
  const colon = text.indexOf(":")
  if (colon >= 0) {
    const epoch = text.slice(0, colon)
    if (!/^[+-]?\d/.test(epoch)) return "epoch in version is empty"
    if (!/^[+-]?\d+$/.test(epoch)) return "epoch in version is not number"
    if (epoch.startsWith("-") && /[1-9]/.test(epoch)) return "epoch in version is negative"
    if (Number(epoch) > 2 ** 31 - 1) return "epoch in version is too big"
    rest = text.slice(colon + 1)
    if (rest === "") return "nothing after colon in version number"
  }
  const hyphen = rest.lastIndexOf("-")
  if (hyphen >= 0 && hyphen === rest.length - 1) return "revision number is empty"
  const upstream = hyphen < 0 ? rest : rest.slice(0, hyphen)
  const revision = hyphen < 0 ? "" : rest.slice(hyphen + 1)
  if (upstream === "") return "version number is empty"
  if (!/^\d/.test(upstream)) return "version number does not start with digit"
  if (!/^[A-Za-z0-9.+~:-]*$/.test(upstream)) return "invalid character in version number"
  if (!/^[A-Za-z0-9.+~]*$/.test(revision)) return "invalid character in revision number"
  return undefined
}

export const compareDebian = (a: string, b: string): number => compareParsedDebian(splitDebian(a), splitDebian(b))

const compareParsedDebian = (va: DebianVersion, vb: DebianVersion): number => {
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1
  return verrevcmp(va.upstream, vb.upstream) || verrevcmp(va.revision, vb.revision)
}

// dpkg's character order: '~' before everything (even the end of the string),
// then the end, then letters, then everything else by code point.
const order = (c: number): number => {
  if (c >= 48 && c <= 57) return 0
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return c
  if (c === 126) return -1
  if (c) return c + 256
  return 0
}

const isDigit = (s: string, i: number) => {
  const c = s.charCodeAt(i)
  return c >= 48 && c <= 57
}

const verrevcmp = (a: string, b: string): number => {
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    let firstDiff = 0
    while ((i < a.length && !isDigit(a, i)) || (j < b.length && !isDigit(b, j))) {
      const ac = i < a.length ? order(a.charCodeAt(i)) : 0
      const bc = j < b.length ? order(b.charCodeAt(j)) : 0
      if (ac !== bc) return ac - bc
      i++
      j++
    }
    while (a.charCodeAt(i) === 48) i++
    while (b.charCodeAt(j) === 48) j++
    while (i < a.length && isDigit(a, i) && j < b.length && isDigit(b, j)) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j)
      i++
      j++
    }
    if (i < a.length && isDigit(a, i)) return 1
    if (j < b.length && isDigit(b, j)) return -1
    if (firstDiff) return firstDiff
  }
  return 0
}

// ---- Arch (alpm) -----------------------------------------------------------

/**
 * Why makepkg would refuse this `[epoch:]pkgver-pkgrel` (its lint rules:
 * an integer epoch, a pkgver without colons, slashes, hyphens or
 * whitespace, a pkgrel of the form integer[.integer]); undefined when valid.
 */
export const alpmVersionProblem = (v: string): string | undefined => {
  const m = /^(?:([^:]*):)?(.*)-([^-]*)$/s.exec(v)
  if (!m) return "not of the form [epoch:]pkgver-pkgrel"
  const [, epoch, pkgver, pkgrel] = m
  if (epoch !== undefined && !/^\d+$/.test(epoch)) return "epoch must be an integer"
  if (pkgver === "") return "pkgver is empty"
  if (/[\s/:-]/.test(pkgver!)) return "pkgver is not allowed to contain colons, forward slashes, hyphens or whitespace"
  if (!/^[\x21-\x7e]+$/.test(pkgver!)) return "pkgver may only contain printable ASCII characters"
  if (!/^\d+(\.\d+)?$/.test(pkgrel!)) return "pkgrel must be of the form 'integer[.integer]'"
  return undefined
}

/**
 * pacman's vercmp (alpm_pkg_vercmp in lib/libalpm/version.c): the epoch, the
 * pkgver, then the pkgrel (only when both have one), each by its rpmvercmp.
 * It works on bytes; so does this (UTF-8 bytes as latin1 text).
 */
export const compareAlpm = (a: string, b: string): number => (a === b ? 0 : compareParsedAlpm(splitEvr(asBytes(a)), splitEvr(asBytes(b))))

type Evr = ReturnType<typeof splitEvr>

const compareParsedAlpm = (ea: Evr, eb: Evr): number => {
  let c = alpmSegments(ea.epoch, eb.epoch)
  if (c === 0) c = alpmSegments(ea.version, eb.version)
  if (c === 0 && ea.release !== undefined && eb.release !== undefined) c = alpmSegments(ea.release, eb.release)
  return c
}

const asBytes = (s: string) => (/^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, "utf8").toString("latin1"))

/** pacman's parseEVR: leading digits then ':' are the epoch (else 0); the release follows the last '-' after them. */
const splitEvr = (evr: string): { epoch: string; version: string; release: string | undefined } => {
  let s = 0
  while (s < evr.length && isDigitAt(evr, s)) s++
  const dash = evr.lastIndexOf("-")
  const se = dash >= s ? dash : -1
  let epoch = "0"
  let start = 0
  if (evr.charCodeAt(s) === 58) {
    if (s > 0) epoch = evr.slice(0, s)
    start = s + 1
  }
  return se < 0 ? { epoch, version: evr.slice(start), release: undefined } : { epoch, version: evr.slice(start, se), release: evr.slice(se + 1) }
}

const isDigitAt = (s: string, i: number) => {
  const c = s.charCodeAt(i)
  return c >= 48 && c <= 57
}
// C's isalpha/isalnum in the C locale: ASCII only; every other byte separates segments.
const isAlphaAt = (s: string, i: number) => {
  const c = s.charCodeAt(i) | 0x20
  return c >= 97 && c <= 122
}
const isAlnumAt = (s: string, i: number) => isDigitAt(s, i) || isAlphaAt(s, i)

/** pacman's rpmvercmp: runs of digits or letters; separator runs of different lengths decide too. */
const alpmSegments = (a: string, b: string): number => {
  if (a === b) return 0
  let one = 0
  let two = 0
  let end1 = 0
  let end2 = 0
  while (one < a.length && two < b.length) {
    while (one < a.length && !isAlnumAt(a, one)) one++
    while (two < b.length && !isAlnumAt(b, two)) two++
    if (one >= a.length || two >= b.length) break
    // Separators of different lengths: the shorter run is older.
    if (one - end1 !== two - end2) return one - end1 < two - end2 ? -1 : 1
    end1 = one
    end2 = two
    const numeric = isDigitAt(a, one)
    const inRun = numeric ? isDigitAt : isAlphaAt
    while (end1 < a.length && inRun(a, end1)) end1++
    while (end2 < b.length && inRun(b, end2)) end2++
    // The other has a run of the other kind here: a number is newer than letters.
    if (end2 === two) return numeric ? 1 : -1
    if (numeric) {
      while (a.charCodeAt(one) === 48) one++
      while (b.charCodeAt(two) === 48) two++
      if (end1 - one !== end2 - two) return end1 - one > end2 - two ? 1 : -1
    }
    const x = a.slice(one, end1)
    const y = b.slice(two, end2)
    if (x !== y) return x < y ? -1 : 1
    one = end1
    two = end2
  }
  if (one >= a.length && two >= b.length) return 0
  // What is left decides: letters never beat the end, anything else does.
  return (one >= a.length && !isAlphaAt(b, two)) || isAlphaAt(a, one) ? -1 : 1
}

// ---- rpm ------------------------------------------------------------------

/**
 * `[epoch:]version[-release]` split as rpm's parseEVR does (rpmver.c): the
 * epoch is the digits before a ':', the release follows the last '-'.
 */
const splitRpm = (evr: string): { epoch: string | undefined; version: string; release: string | undefined } => {
  let s = 0
  while (s < evr.length && isDigit(evr, s)) s++
  const hyphen = evr.lastIndexOf("-")
  const colon = evr.charAt(s) === ":"
  const epoch = colon ? evr.slice(0, s) || "0" : undefined
  const start = colon ? s + 1 : 0
  return hyphen >= start ? { epoch, version: evr.slice(start, hyphen), release: evr.slice(hyphen + 1) } : { epoch, version: evr.slice(start), release: undefined }
}

/**
 * rpm's rpmverCmp: epochs (none is 0), then versions, then releases when
 * both have one (so a requirement on `1.0` is met by `1.0-3`).
 */
export const compareRpm = (a: string, b: string): number => compareParsedRpm(splitRpm(a), splitRpm(b))

const compareParsedRpm = (va: ReturnType<typeof splitRpm>, vb: ReturnType<typeof splitRpm>): number =>
  (
    rpmvercmp(va.epoch ?? "0", vb.epoch ?? "0") ||
    rpmvercmp(va.version, vb.version) ||
    (va.release !== undefined && vb.release !== undefined ? rpmvercmp(va.release, vb.release) : 0)
  )

const isAlpha = (s: string, i: number) => {
  const c = s.charCodeAt(i)
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
}

/**
 * rpm's rpmvercmp (rpmio/rpmvercmp.c), step for step: alphanumeric segments
 * compared in turn, numbers numerically and newer than letters; '~' sorts
 * before anything, even the end; '^' after the end but before anything else.
 */
export const rpmvercmp = (a: string, b: string): number => {
  if (a === b) return 0
  let i = 0
  let j = 0
  const sep = (s: string, k: number) => k < s.length && !isDigit(s, k) && !isAlpha(s, k) && s[k] !== "~" && s[k] !== "^"
  while (i < a.length || j < b.length) {
    while (sep(a, i)) i++
    while (sep(b, j)) j++
    const ca = a[i]
    const cb = b[j]
    if (ca === "~" || cb === "~") {
      if (ca !== "~") return 1
      if (cb !== "~") return -1
      i++
      j++
      continue
    }
    if (ca === "^" || cb === "^") {
      if (ca === undefined) return -1
      if (cb === undefined) return 1
      if (ca !== "^") return 1
      if (cb !== "^") return -1
      i++
      j++
      continue
    }
    if (ca === undefined || cb === undefined) break
    const numeric = isDigit(a, i)
    const inSegment = numeric ? isDigit : isAlpha
    let ei = i
    let ej = j
    while (ei < a.length && inSegment(a, ei)) ei++
    while (ej < b.length && inSegment(b, ej)) ej++
    // one numeric, the other alphabetic (an empty segment of its kind): numbers are newer
    if (ej === j) return numeric ? 1 : -1
    let x = a.slice(i, ei)
    let y = b.slice(j, ej)
    if (numeric) {
      x = x.replace(/^0+/, "")
      y = y.replace(/^0+/, "")
      if (x.length !== y.length) return x.length > y.length ? 1 : -1
    }
    if (x !== y) return x < y ? -1 : 1
    i = ei
    j = ej
  }
  if (i >= a.length && j >= b.length) return 0
  return i >= a.length ? -1 : 1
}

// ---- constraints ----------------------------------------------------------

export type Relation = "<<" | "<=" | "=" | ">=" | ">>"

export const satisfiesRelation = (
  scheme: VersionScheme,
  version: string,
  relation: Relation,
  wanted: string,
): boolean => {
  const c = compareVersions(scheme, version, wanted)
  switch (relation) {
    case "<<":
      return c < 0
    case "<=":
      return c <= 0
    case "=":
      return c === 0
    case ">=":
      return c >= 0
    case ">>":
      return c > 0
  }
}

/**
 * A desired row's version spec: the full version, or a prefix of it ending at
 * a field boundary (`1.24` matches `1.24-1-1`, `1.6` matches Debian `1.6-2`).
 */
export const matchesVersionSpec = (version: string, spec: string): boolean =>
  spec === "" ||
  version === spec ||
  (version.startsWith(spec) && "-.:+~".includes(version.charAt(spec.length)))
