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
import type { createConfig, showConfig } from "../tree/changeset.js"
import type { Parsed } from "../tree/common.js"
import { planLines, refreshOf, showPlan } from "./plan.js"

// The code of `changeset create|show` and what `apply FILE.ccs` shares with them (see tree/changeset.ts).

export const trustOf = (c: Conary, args: { readonly trust: ReadonlyArray<string>; readonly insecure: boolean }): Trust => {
  if (args.trust.length > 0 && args.insecure) throw new UsageError({ message: "give --trust KEY or --insecure, not both" })
  return { keys: [...sourceKeys(c), ...args.trust.map(publicKeyString)], insecure: args.insecure }
}

/** Loads and checks a changeset against this root (see changeset/load.ts). */
export const loadingChangeset = (c: Conary, file: string, trust: Trust, refresh: RefreshOptions) =>
  loadChangeset(c, file, trust, { ...refresh, keep: (rows) => keepRefreshed(c.db, rows) })

export const create = (args: Parsed<typeof createConfig>) =>
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
  )

export const show = (args: Parsed<typeof showConfig>) =>
  withConary(args, { write: false, command: "changeset show" }, (c) =>
    attempt(async () => {
      const file = path.resolve(args.file)
      const loaded = await loadingChangeset(c, file, trustOf(c, args), refreshOf(args))
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
  )
