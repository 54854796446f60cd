import { PackageURL } from "packageurl-js"
import { debianArchOf } from "../desired/flavor.js"

// Package URLs (https://github.com/package-url/purl-spec), keyed off the
// format a trove was read from (troves.format):
//
//   deb     pkg:deb/debian/NAME@VERSION?arch=ARCH          arch from the flavor (`is: x86_64` -> amd64, none -> all)
//   rpm     pkg:rpm/NAME@VERSION?arch=ARCH                 arch as rpm names it (x86 -> i686), none -> noarch
//   arch    pkg:alpm/arch/NAME@VERSION?arch=ARCH           arch as Arch names it (x86 -> i686, armhf -> armv7h), none -> any
//   native  pkg:generic/NAME@VERSION?checksum=sha256:ARCHIVE_SHA256&flavor=FLAVOR
//           (generic has no registry to say what a name means: the archive's digest and the flavor pin it down;
//           either is left out when unknown or empty)
//
// A `+` in a version is written %2B, as Syft and Trivy write it (vulnerability
// databases match on that form); parsers read both.

export interface PurlInput {
  readonly name: string
  readonly version: string
  readonly flavor: string
  readonly format: string
  readonly archiveSha256?: string
}

const isaOf = (flavor: string): string | undefined => {
  const isa = /(?:^|\s)is: (\S+)$/.exec(flavor)?.[1]
  return isa?.replace(/\(.*$/, "")
}

/** Instruction sets as Arch and rpm name them, where they differ (their readers fold i386-i686 into x86). */
const ALPM_ARCHES: Readonly<Record<string, string>> = { x86: "i686", armhf: "armv7h" }
const RPM_ARCHES: Readonly<Record<string, string>> = { x86: "i686", armhf: "armv7hl" }

export const purlOf = (t: PurlInput): string => {
  let purl: PackageURL
  switch (t.format) {
    case "deb":
      purl = new PackageURL("deb", "debian", t.name, t.version, { arch: debianArchOf(t.flavor) }, undefined)
      break
    case "rpm":
      purl = new PackageURL("rpm", undefined, t.name, t.version, { arch: RPM_ARCHES[isaOf(t.flavor) ?? ""] ?? isaOf(t.flavor) ?? "noarch" }, undefined)
      break
    case "arch":
    case "alpm":
    case "pacman":
      purl = new PackageURL("alpm", "arch", t.name, t.version, { arch: ALPM_ARCHES[isaOf(t.flavor) ?? ""] ?? isaOf(t.flavor) ?? "any" }, undefined)
      break
    default: {
      const qualifiers: Record<string, string> = {}
      if (t.archiveSha256) qualifiers.checksum = `sha256:${t.archiveSha256}`
      if (t.flavor) qualifiers.flavor = t.flavor
      purl = new PackageURL("generic", undefined, t.name, t.version, qualifiers, undefined)
    }
  }
  return purl.toString().replace(/@[^?#]*/, (version) => version.replace(/\+/g, "%2B"))
}
