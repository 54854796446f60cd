import { desiredRows } from "../../db/desired.js"
import { generations, installedTroves } from "../../db/state.js"
import { availableTroves, groupMembers, provenanceOf, troveFilesLookup, troveScripts } from "../../db/troves.js"
import { type MemberState, type MemberStatus, memberStatus } from "../../reconcile/group-state.js"
import { compareVersions, matchesVersionSpec } from "../../desired/version.js"
import { parseSpec } from "../../desired/rows.js"
import { NotFoundError, printable } from "../../errors.js"
import { type DepClass, type TroveMeta, filesForComponents, formatDepGroup, parseDepGroup } from "../../model/trove.js"
import { attempt, withConary } from "../context.js"
import { count, formatBytes, printJson, println, table } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { historyConfig, listConfig, showConfig } from "../tree/query.js"

// Read-only views of the installed state: list, show, history.

/** Dependencies by class, as canonical texts; a requirement whose alternatives are of several classes is `mixed`. */
const byClass = (deps: ReadonlyArray<string>): Record<DepClass | "mixed", string[]> => {
  const out: Record<DepClass | "mixed", string[]> = { name: [], file: [], soname: [], mixed: [] }
  for (const text of deps) {
    const group = parseDepGroup(text)
    const classes = new Set((group ?? []).map((d) => d.class))
    out[classes.size === 1 ? [...classes][0]! : classes.size === 0 ? "name" : "mixed"].push(group ? formatDepGroup(group) : text)
  }
  return out
}

/**
 * `Requires:` with the names on one line (`-` when there is nothing of any
 * class), then one line per file and soname (`Requires soname:`), without their prefix.
 */
const classRows = (label: string, deps: Record<DepClass | "mixed", string[]>): string[][] => {
  const named = [...deps.name, ...deps.mixed]
  const rows = named.length > 0 || deps.file.length + deps.soname.length === 0 ? [[`${label}:`, printable(named.join(", ")) || "-"]] : []
  for (const cls of ["file", "soname"] as const)
    deps[cls].forEach((text, i) => rows.push([i === 0 ? `${label} ${cls}:` : "", printable(text.slice(cls.length + 2))]))
  return rows
}

export const list = (args: Parsed<typeof listConfig>) =>
  withConary(args, { write: false, command: "list" }, (c) =>
    attempt(() => {
      const installed = installedTroves(c.db)
        .map((i) => ({
          name: i.trove.name,
          version: i.trove.version,
          flavor: i.trove.flavor,
          components: i.components,
          reason: i.reason,
          /** the group whose pin brought it in */
          group: i.group ?? null,
        }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      if (args.json) return printJson({ formatVersion: 1, troves: installed })
      if (installed.length === 0) return println("Nothing is installed.")
      for (const line of table([
        ["NAME", "VERSION", "FLAVOR", "COMPONENTS", "REASON", "GROUP"],
        ...installed.map((t) => [t.name, t.version, t.flavor || "-", t.components.join(",") || "-", t.reason, t.group ?? "-"]),
      ]))
        println(line)
    }),
  )

export const show = (args: Parsed<typeof showConfig>) =>
  withConary(args, { write: false, command: "show" }, (c) =>
    attempt(async () => {
      const spec = parseSpec(args.trove)
      const fits = (t: TroveMeta) => t.name === spec.name && matchesVersionSpec(t.version, spec.version) && (!spec.flavor || t.flavor === spec.flavor)
      const installed = installedTroves(c.db).find((i) => fits(i.trove))
      // Not installed: the newest available one, so `show` also answers "what would I get".
      const available = installed
        ? undefined
        : availableTroves(c.db)
            .filter(fits)
            .sort((a, b) => compareVersions(b.scheme, b.version, a.version))[0]
      const trove = installed?.trove ?? available
      if (!trove) throw new NotFoundError({ what: "installed or available trove", name: args.trove })
      // A repository trove's files come with its manifest, fetched the first time they are wanted.
      // (The repository client loads only then: `list` and a plain `show` start without it.)
      if (args.files || args.scripts) await (await import("../../source/repo-client.js")).ensureManifests(c.db, [trove.id])
      const members = groupMembers(c.db).get(trove.id)
      const status = members ? memberStatus(trove, members, installedTroves(c.db), desiredRows(c.db)) : undefined
      const all = troveFilesLookup(c.db)(trove.id)
      const files = installed ? filesForComponents(all, installed.components) : all
      const data = {
        formatVersion: 1,
        name: trove.name,
        version: trove.version,
        flavor: trove.flavor,
        installed: installed !== undefined,
        reason: installed?.reason ?? null,
        group: installed?.group ?? null,
        ...(status ? { members: status.map((s) => ({ ...s.member, state: s.state, installed: s.installed })) } : {}),
        components: installed?.components ?? trove.components,
        availableComponents: trove.components,
        requires: trove.requires,
        provides: trove.provides,
        requiresByClass: byClass(trove.requires),
        providesByClass: byClass(trove.provides),
        conflicts: trove.conflicts,
        replaces: trove.replaces,
        optional: trove.optional,
        license: trove.license ?? null,
        // Known without the files (a repository trove's manifest may not be fetched yet).
        fileCount: installed ? files.length : trove.fileCount,
        size: installed ? files.reduce((n, f) => n + f.size, 0) : trove.totalSize,
        scripts: troveScripts(c.db, trove.id),
        provenance: provenanceOf(c.db, trove.id),
        ...(args.files ? { files } : {}),
      }
      if (args.json) return printJson(data)
      const rows: string[][] = [
        ["Name:", data.name],
        ["Version:", data.version],
        ["Flavor:", data.flavor || "(none)"],
        ["Status:", installed ? `installed (${whyInstalled(installed)})` : "available, not installed"],
        ["Components:", data.components.map((x) => ":" + x).join(" ")],
        ...classRows("Requires", data.requiresByClass),
        ...classRows("Provides", data.providesByClass),
        ...(data.optional.length > 0 ? [["Optional:", printable(data.optional.join(", "))]] : []),
        ...(data.conflicts.length > 0 ? [["Conflicts:", printable(data.conflicts.join(", "))]] : []),
        ...(data.replaces.length > 0 ? [["Replaces:", printable(data.replaces.join(", "))]] : []),
        ["License:", data.license === null ? "-" : printable(data.license)],
        ["Files:", `${data.fileCount} (${formatBytes(data.size)})`],
        ["Scripts:", Object.keys(data.scripts).join(", ") || "-"],
        ...data.provenance.map((p) => ["From:", `${p.source}: ${p.origin} (sha256 ${p.archiveSha256.slice(0, 16)}…, ${p.importedAt})`]),
      ]
      for (const line of table(rows)) println(line)
      if (status) {
        println()
        for (const line of table([["MEMBER", "PINNED", "COMPONENTS", "DEFAULT", "STATE"], ...status.map(memberRow)])) println(printable(line))
      }
      if (args.scripts) {
        for (const [name, body] of Object.entries(data.scripts)) {
          println()
          println(`--- ${name} ---`)
          process.stdout.write(body.endsWith("\n") ? body : body + "\n")
        }
      }
      if (args.files) {
        println()
        for (const f of files) {
          const mode = f.mode.toString(8).padStart(4, "0")
          const what = f.kind === "symlink" ? ` -> ${f.target}` : f.kind === "dir" ? "/" : ""
          println(`${mode} ${f.config ? "c" : " "} ${printable(f.path + what)}${f.ghost ? " (ghost: owned, not installed)" : ""}`)
        }
      }
    }),
  )

const whyInstalled = (i: { reason: string; group?: string }) =>
  i.reason === "explicit" ? "desired" : i.reason === "group" ? `pinned by ${i.group}` : "pulled in as a dependency"

const STATES: Record<MemberState, (s: MemberStatus) => string> = {
  pinned: () => "installed as pinned",
  overridden: (s) => `overridden by a desired row${s.installed.length > 0 ? `: ${s.installed.join(", ")} installed` : ""}`,
  differs: (s) => `differs: ${s.installed.join(", ")} installed`,
  missing: () => "not installed",
  "not-selected": () => "optional, not selected",
}

const memberRow = (s: MemberStatus): string[] => [
  s.member.name,
  s.member.flavor ? `${s.member.version} [${s.member.flavor}]` : s.member.version,
  s.member.components.join(",") || "-",
  s.member.byDefault ? "yes" : "no",
  STATES[s.state](s),
]

export const history = (args: Parsed<typeof historyConfig>) =>
  withConary(args, { write: false, command: "history" }, (c) =>
    attempt(() => {
      const gens = generations(c.db)
      if (args.json) return printJson({ formatVersion: 1, generations: gens })
      if (gens.length === 0) return println("No generations yet.")
      for (const g of gens) {
        const s = g.summary
        println(`generation ${g.id}  ${g.createdAt}  ${g.command}: ${s.install} installed, ${s.update} updated, ${s.erase} erased, ${count(s.files, "file")}`)
        for (const o of g.operations) {
          const sign = o.op === "install" ? "+" : o.op === "erase" ? "-" : "~"
          println(`  ${sign} ${o.name} ${o.op === "update" ? `${o.from} → ${o.to}` : (o.to ?? o.from)}`)
        }
      }
    }),
  )
