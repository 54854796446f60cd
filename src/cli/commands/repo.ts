import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Option from "effect/Option"
import * as path from "node:path"
import { UsageError, printable } from "../../errors.js"
import { silentReport } from "../../model/report.js"
import { selectFromRepo } from "../../source/promote.js"
import { buildRepo, generateKey } from "../../source/repo.js"
import { differenceLine } from "../../reconcile/group-state.js"
import { rootStatus } from "../../reconcile/status.js"
import { attempt, jsonOption, rootOptions, withConary } from "../context.js"
import { EXIT_CHANGES, EXIT_OK } from "../exit.js"
import { count, printJson, println } from "../format.js"

const build = Command.make(
  "build",
  {
    json: jsonOption,
    sign: Options.text("sign").pipe(Options.withDescription("ed25519 private key (from `conary key generate`) to sign the index"), Options.optional),
    from: Options.text("from").pipe(Options.withDescription("promote: another repository (directory or URL) to copy --trove troves from"), Options.optional),
    trove: Options.text("trove").pipe(Options.withDescription("promote: a trove of --from (name=version), a group with all its members"), Options.repeated),
    trust: Options.text("trust").pipe(Options.withDescription("promote: the public key --from's index must be signed with"), Options.optional),
    out: Args.text({ name: "OUTDIR" }),
    inputs: Args.text({ name: "INPUT" }).pipe(Args.repeated),
  },
  (args) =>
    attempt(async () => {
      const from = Option.getOrUndefined(args.from)
      if (from === undefined && (args.trove.length > 0 || Option.isSome(args.trust)))
        throw new UsageError({ message: "repo build: --trove and --trust choose troves of another repository, given with --from" })
      if (from !== undefined && args.trove.length === 0) throw new UsageError({ message: "repo build: --from needs the troves to copy (--trove group-web=VERSION)" })
      if (from === undefined && args.inputs.length === 0) throw new UsageError({ message: "repo build: give archives (INPUT...) or --from REPO --trove SPEC" })
      const imported = from === undefined ? undefined : await selectFromRepo(from, args.trove, Option.getOrUndefined(args.trust), silentReport)
      const r = await buildRepo(path.resolve(args.out), args.inputs.map((i) => path.resolve(i)), Option.getOrUndefined(args.sign), new Date().toISOString(), imported)
      if (args.json) return printJson({ formatVersion: 1, repository: path.resolve(args.out), ...r })
      println(
        `Repository ${path.resolve(args.out)}: ${count(r.troves, "trove")} (${r.added} new), ${count(r.objects, "content object")}, ` +
          (r.signed ? "index signed." : "index not signed."),
      )
    }),
).pipe(Command.withDescription("publish archives (native, .deb, groups) into a static repository, adding to it; --from promotes troves of another"))

export const repoCommand = Command.make("repo").pipe(
  Command.withDescription("static trove repositories, for any HTTP server or object store"),
  Command.withSubcommands([build]),
)

const generate = Command.make("generate", { name: Args.text({ name: "NAME" }) }, (args) =>
  attempt(async () => {
    const k = await generateKey(path.resolve(args.name))
    println(`Private key: ${k.privateKey} (keep it secret)\nPublic key:  ${k.publicKey} (give it to \`conary source add ... --trust\`)`)
  }),
).pipe(Command.withDescription("make an ed25519 key pair: NAME.key and NAME.pub"))

export const keyCommand = Command.make("key").pipe(Command.withDescription("signing keys for repositories"), Command.withSubcommands([generate]))

export const statusCommand = Command.make("status", { ...rootOptions, json: jsonOption }, (args) =>
  withConary(args, { write: false, command: "status" }, (c) =>
    attempt(async () => {
      const s = await rootStatus(c.db, c.root, c.dbPath)
      if (args.json) printJson(s)
      else {
        println(`root ${s.root}: generation ${s.generation}${s.lastApply ? `, last applied ${s.lastApply}` : ", never applied"}`)
        println(`desired ${count(s.desired, "row")}, installed ${count(s.installed, "trove")}`)
        if ("error" in s.pending) println(`plan: ${s.pending.error}`)
        else
          println(
            `plan: ${s.pending.install} to install, ${s.pending.update} to update, ${s.pending.erase} to erase, ${s.pending.repair} to repair` +
              (s.pending.blocked > 0 ? `, ${s.pending.blocked} blocked` : ""),
          )
        println(`drift: ${s.drift.drifted} of ${count(s.drift.files, "file")} (${s.drift.missing} missing, ${s.drift.config} config)`)
        for (const src of s.sources)
          println(
            printable(
              `source ${src.name}: ${[src.location, ...src.mirrors].join(" ")}, ${src.syncedAt ? `synced ${src.syncedAt}` : "never synced"}` +
                (src.mirrors.length > 0 && src.syncedFrom ? ` from ${src.syncedFrom}` : ""),
            ),
          )
        if (s.groups.installed > 0) {
          println(`groups: ${s.groups.installed} installed, ${count(s.groups.differences.length, "member")} not as pinned`)
          for (const d of s.groups.differences) println(`  ${printable(differenceLine(d))}`)
        }
        println(s.converged ? "converged" : "not converged")
      }
      process.exitCode = s.converged ? EXIT_OK : EXIT_CHANGES
    }),
  ),
).pipe(Command.withDescription("the root's generation, pending changes and drift in one report (exit 0 converged, 2 not)"))
