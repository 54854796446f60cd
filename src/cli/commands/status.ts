import { printable } from "../../errors.js"
import { differenceLine } from "../../reconcile/group-state.js"
import { rootStatus } from "../../reconcile/status.js"
import { defaultStoreDir, sameStore } from "../../store/location.js"
import { attempt, withConary } from "../context.js"
import { EXIT_CHANGES, EXIT_OK } from "../exit.js"
import { count, printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { statusConfig } from "../tree/repo.js"

// Apart from the repository commands: it loads none of the publishing code.

export const status = (args: Parsed<typeof statusConfig>) =>
  withConary(args, { write: false, command: "status" }, (c) =>
    attempt(async () => {
      const shared = !sameStore(c.store.dir, defaultStoreDir(c.dbPath))
      const s = { ...(await rootStatus(c.db, c.root, c.dbPath)), store: { path: c.store.dir, shared } }
      // The installed state document (and the schemas and readers it imports) loads only for --installed.
      const state = args.installed ? (await import("../../changeset/state.js")).installedState(c.db) : undefined
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
