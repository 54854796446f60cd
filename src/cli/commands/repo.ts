import * as Option from "effect/Option"
import * as path from "node:path"
import { UsageError, printable } from "../../errors.js"
import { selectFromRepo } from "../../source/promote.js"
import { buildRepo, generateKey, rotateKey } from "../../source/repo.js"
import { differenceLine } from "../../reconcile/group-state.js"
import { rootStatus } from "../../reconcile/status.js"
import { installedState } from "../../changeset/state.js"
import { defaultStoreDir, sameStore } from "../../store/location.js"
import { attempt, withConary } from "../context.js"
import { EXIT_CHANGES, EXIT_OK } from "../exit.js"
import { count, printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { buildConfig, generateConfig, rotateConfig, statusConfig } from "../tree/repo.js"

export const build = (args: Parsed<typeof buildConfig>) =>
  attempt(async () => {
    const from = Option.getOrUndefined(args.from)
    if (from === undefined && (args.trove.length > 0 || Option.isSome(args.trust)))
      throw new UsageError({ message: "repo build: --trove and --trust choose troves of another repository, given with --from" })
    if (from !== undefined && args.trove.length === 0) throw new UsageError({ message: "repo build: --from needs the troves to copy (--trove group-web=VERSION)" })
    if (args.deltas < 0) throw new UsageError({ message: `--deltas ${args.deltas}: give 0 or more previous versions` })
    const out = path.resolve(args.out)
    const now = new Date().toISOString()
    const imported = from === undefined ? [] : await selectFromRepo(from, args.trove, Option.getOrUndefined(args.trust), now)
    const r = await buildRepo(
      out,
      args.inputs.map((i) => path.resolve(i)),
      { signKey: Option.getOrUndefined(args.sign), expires: args.expires, now, deltas: args.deltas },
      imported,
    )
    if (args.json) return printJson({ formatVersion: 1, repository: out, ...r })
    println(
      `Repository ${out}: ${count(r.troves, "trove")} (${r.added} new), ${count(r.objects, "new object")}, ${count(r.deltas, "delta")}; ` +
        `metadata version ${r.version}, expires ${r.expires}, ` +
        (r.signed ? `signed (root ${r.root}).` : "not signed."),
    )
  })

export const rotate = (args: Parsed<typeof rotateConfig>) =>
  attempt(async () => {
    const r = await rotateKey(path.resolve(args.out), args.old, args.new, { expires: args.expires, now: new Date().toISOString() })
    println(`Root ${r.root} lists only the new key (signed by the old one); metadata version ${r.version} signed with the new key.`)
  })

export const generate = (args: Parsed<typeof generateConfig>) =>
  attempt(async () => {
    const k = await generateKey(path.resolve(args.name))
    println(`Private key: ${k.privateKey} (keep it secret)\nPublic key:  ${k.publicKey} (give it to \`conary source add ... --trust\`)`)
  })

export const status = (args: Parsed<typeof statusConfig>) =>
  withConary(args, { write: false, command: "status" }, (c) =>
    attempt(async () => {
      const shared = !sameStore(c.store.dir, defaultStoreDir(c.dbPath))
      const s = { ...(await rootStatus(c.db, c.root, c.dbPath)), store: { path: c.store.dir, shared } }
      const state = args.installed ? installedState(c.db) : undefined
      if (args.json) printJson(state ? { ...s, state } : s)
      else {
        println(`root ${s.root}: generation ${s.generation}${s.lastApply ? `, last applied ${s.lastApply}` : ", never applied"}`)
        println(`desired ${count(s.desired, "row")}, installed ${count(s.installed, "trove")}`)
        println(printable(`store ${s.store.path}${shared ? " (shared with other roots)" : " (the root's own)"}`))
        if ("error" in s.pending) println(`plan: ${s.pending.error}`)
        else
          println(
            `plan: ${s.pending.install} to install, ${s.pending.update} to update, ${s.pending.erase} to erase, ${s.pending.repair} to repair` +
              (s.pending.blocked > 0 ? `, ${s.pending.blocked} blocked` : ""),
          )
        println(`drift: ${s.drift.drifted} of ${count(s.drift.files, "file")} (${s.drift.missing} missing, ${s.drift.config} config)`)
        for (const src of s.sources.filter((x) => x.kind === "repo"))
          println(
            printable(
              `source ${src.name}: ` +
                (src.version === null ? "never synced" : `metadata version ${src.version}, expires ${src.expires}`) +
                (src.mirrors.length > 0 ? `; mirrors ${src.mirrors.join(" ")}${src.syncedFrom ? `, synced from ${src.syncedFrom}` : ""}` : "") +
                (src.insecure ? " (INSECURE: unsigned metadata accepted)" : ""),
            ),
          )
        if (s.groups.installed > 0) {
          println(`groups: ${s.groups.installed} installed, ${count(s.groups.differences.length, "member")} not as pinned`)
          for (const d of s.groups.differences) println(`  ${printable(differenceLine(d))}`)
        }
        for (const t of state?.troves ?? []) println(printable(`installed ${t.name} ${t.version}${t.flavor ? ` [${t.flavor}]` : ""} (${t.components.join(",")})`))
        println(s.converged ? "converged" : "not converged")
      }
      process.exitCode = s.converged ? EXIT_OK : EXIT_CHANGES
    }),
  )
