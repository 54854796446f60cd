import * as Option from "effect/Option"
import * as path from "node:path"
import { UsageError } from "../../errors.js"
import { selectFromRepo } from "../../source/promote.js"
import { buildRepo, generateKey, rotateKey } from "../../source/repo.js"
import { attempt } from "../context.js"
import { count, printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { buildConfig, generateConfig, rotateConfig } from "../tree/repo.js"

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
