import { addDesired, desiredRows, removeDesired, replaceDesired } from "../../db/desired.js"
import { formatSpec, fromDocument, parseSpec, toDocument } from "../../desired/rows.js"
import { UsageError } from "../../errors.js"
import { JSON_INPUT_LIMIT, readInputFile } from "../../files.js"
import { installedTroves, setInstalledReasons } from "../../db/state.js"
import { groupMembers } from "../../db/troves.js"
import { reasonsFor } from "../../reconcile/resolve.js"
import { type Conary, attempt, withConary } from "../context.js"
import { printJson, println } from "../format.js"
import type { Parsed, rootOptions } from "../tree/common.js"
import type { addConfig, listConfig, removeConfig, setConfig } from "../tree/desired.js"

/**
 * Changes the desired rows and, in the same transaction, why each installed
 * trove is there: that is desired state too, and `list` shows it at once.
 */
const changeDesired = <A>(c: Conary, change: () => A): A =>
  // Immediate: a removal reads first (see connection.ts).
  c.db.transaction(() => {
    const result = change()
    setInstalledReasons(c.db, reasonsFor(desiredRows(c.db), installedTroves(c.db).map((i) => i.trove), groupMembers(c.db)))
    return result
  }).immediate()

export const add = (args: Parsed<typeof addConfig>) =>
  withConary(args, { write: true, command: "desired add" }, (c) =>
    attempt(() => {
      const rows = args.specs.map(parseSpec)
      changeDesired(c, () => addDesired(c.db, rows, c.now()))
      for (const r of rows) println(`desired: ${formatSpec(r)}`)
    }),
  )

export const remove = (args: Parsed<typeof removeConfig>) =>
  withConary(args, { write: true, command: "desired remove" }, (c) =>
    attempt(() => {
      const rows = args.specs.map(parseSpec)
      const missing = changeDesired(c, () => removeDesired(c.db, rows))
      if (missing.length > 0) throw new UsageError({ message: `not desired: ${missing.join(", ")} (nothing removed)` })
      for (const r of rows) println(`no longer desired: ${formatSpec(r)}`)
    }),
  )

export const list = (args: Parsed<typeof listConfig>) =>
  withConary(args, { write: false, command: "desired list" }, (c) =>
    attempt(() => {
      const rows = desiredRows(c.db)
      if (args.json) return printJson(toDocument(rows))
      if (rows.length === 0) return println("Nothing is desired.")
      for (const r of rows) println(formatSpec(r))
    }),
  )

export const set = (args: Parsed<typeof setConfig>) =>
  withConary(args, { write: true, command: "desired set" }, (c) =>
    attempt(() => {
      const origin = args.file === "-" ? "standard input" : args.file
      const text = readInputFile(args.file === "-" ? 0 : args.file, JSON_INPUT_LIMIT, (reason) => new UsageError({ message: `${origin}: ${reason}` }))
      const rows = fromDocument(text, origin)
      changeDesired(c, () => replaceDesired(c.db, rows, c.now()))
      println(`Desired state replaced: ${rows.length} trove${rows.length === 1 ? "" : "s"}.`)
    }),
  )

export const exportDesired = (args: Parsed<typeof rootOptions>) =>
  withConary(args, { write: false, command: "desired export" }, (c) => attempt(() => printJson(toDocument(desiredRows(c.db)))))
