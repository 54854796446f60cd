import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Option from "effect/Option"
import * as path from "node:path"
import { createChangeset } from "../../changeset/create.js"
import { type Trust, loadChangeset, sourceKeys, verifyObjects } from "../../changeset/load.js"
import { readStateFile } from "../../changeset/state.js"
import { keepRefreshed } from "../../db/state.js"
import { UsageError, printable } from "../../errors.js"
import type { RefreshOptions } from "../../reconcile/load.js"
import { publicKeyString } from "../../source/repo.js"
import { type Conary, attempt, withConary } from "../context.js"
import { count, formatBytes, printJson, println } from "../format.js"
import { jsonOption, rootOptions } from "../tree/common.js"
import { refreshOptions } from "../tree/plan.js"
import { planLines, refreshOf, showPlan } from "./plan.js"

// Changeset files (Conary's .ccs): `changeset create` on a host that can
// reach the sources, `apply FILE.ccs` (and `changeset show`) on a root that
// cannot. See src/changeset/.

/** Options of the commands that read a changeset: which signatures it must carry. */
export const trustOptions = {
  trust: Options.text("trust").pipe(
    Options.withDescription("changeset: also accept one signed by this ed25519 public key (a .pub file or its text); repeatable"),
    Options.repeated,
  ),
  insecure: Options.boolean("insecure").pipe(Options.withDescription("changeset: accept it unsigned (or signed by a key not trusted)")),
}

export const trustOf = (c: Conary, args: { readonly trust: ReadonlyArray<string>; readonly insecure: boolean }): Trust => {
  if (args.trust.length > 0 && args.insecure) throw new UsageError({ message: "give --trust KEY or --insecure, not both" })
  return { keys: [...sourceKeys(c), ...args.trust.map(publicKeyString)], insecure: args.insecure }
}

/** Loads and checks a changeset against this root (see changeset/load.ts). */
export const loadingChangeset = (c: Conary, file: string, trust: Trust, refresh: RefreshOptions, command: string, holdsLock: boolean) =>
  loadChangeset(c, file, trust, {
    ...refresh,
    keep: (rows) => keepRefreshed(c.db, { dbPath: c.dbPath, root: c.root, command, holdsLock }, rows),
  })

const create = Command.make(
  "create",
  {
    ...rootOptions,
    json: jsonOption,
    for: Options.text("for").pipe(
      Options.withDescription("the target's state, as `conary status --json --installed` printed it there; without it the changeset is absolute (everything, for any root)"),
      Options.optional,
    ),
    sign: Options.text("sign").pipe(Options.withDescription("ed25519 private key (from `conary key generate`) to sign it with"), Options.optional),
    out: Args.text({ name: "OUT" }),
  },
  (args) =>
    withConary(args, { write: false, command: "changeset create" }, (c) =>
      attempt(async () => {
        const state = Option.isSome(args.for) ? readStateFile(path.resolve(args.for.value)) : undefined
        const out = path.resolve(args.out)
        const r = await createChangeset(c, out, { ...(state ? { state } : {}), ...(Option.isSome(args.sign) ? { signKey: path.resolve(args.sign.value) } : {}) })
        if (args.json) return printJson({ formatVersion: 1, changeset: out, ...r })
        for (const line of planLines(r.plan)) println(printable(line))
        if (r.plan.troves.length > 0) println()
        println(
          `Changeset ${out}: ${r.madeFor ? `for generation ${r.madeFor.generation} of root ${r.madeFor.rootId}` : "absolute"}; ` +
            `${count(r.troves, "trove")}, ${count(r.contents, "content")} (${formatBytes(r.contentBytes)}), ${formatBytes(r.bytes)} in all; ` +
            (r.signed ? "signed." : "not signed."),
        )
      }),
    ),
).pipe(Command.withDescription("write the plan from a target's state (--for) to this root's desired state, with every content the target lacks, into one file"))

const show = Command.make(
  "show",
  { ...rootOptions, ...refreshOptions, ...trustOptions, json: jsonOption, file: Args.text({ name: "CHANGESET" }) },
  (args) =>
    withConary(args, { write: false, command: "changeset show" }, (c) =>
      attempt(async () => {
        const file = path.resolve(args.file)
        const loaded = await loadingChangeset(c, file, trustOf(c, args), refreshOf(args), "changeset show", false)
        await verifyObjects(c, loaded, { store: false })
        const { header } = loaded.cs
        if (args.json)
          return printJson({
            formatVersion: 1,
            changeset: file,
            madeFor: header.madeFor,
            createdAt: header.createdAt,
            verified: loaded.verified,
            troves: header.troves.length,
            objects: header.objects.length,
            desired: JSON.parse(loaded.desired) as unknown,
            plan: loaded.plan,
          })
        println(
          printable(
            `Changeset made ${header.createdAt} ${header.madeFor ? `for generation ${header.madeFor.generation} of root ${header.madeFor.rootId}` : "(absolute)"}, ` +
              `${loaded.verified ? "signed by a trusted key" : "NOT VERIFIED (--insecure)"}; ${count(header.objects.length, "object")} verified.`,
          ),
        )
        println()
        showPlan(loaded.plan)
      }),
    ),
).pipe(Command.withDescription("check a changeset (signature, state, every digest) and show what `apply CHANGESET` would do to this root"))

export const changesetCommand = Command.make("changeset").pipe(
  Command.withDescription("changeset files: a plan with its contents, for roots that cannot reach a source"),
  Command.withSubcommands([create, show]),
)
