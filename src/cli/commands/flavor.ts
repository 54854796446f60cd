import { setSystemFlavor, systemFlavor } from "../../db/desired.js"
import { type Flavor, clashingArches, formatFlavor, parseFlavor } from "../../desired/flavor.js"
import { UsageError } from "../../errors.js"
import { type Conary, attempt, withConary } from "../context.js"
import { printJson, println } from "../format.js"
import type { Parsed } from "../tree/common.js"
import type { addConfig, removeConfig, setConfig, showConfig } from "../tree/flavor.js"

const change = (c: Conary, next: (current: Flavor) => Flavor) =>
  attempt(() => {
    const flavor = next(systemFlavor(c.db))
    const clash = clashingArches(flavor)
    if (clash) throw new UsageError({ message: `instruction sets ${clash[0]} and ${clash[1]} cannot coexist on one system` })
    setSystemFlavor(c.db, flavor)
    println(`System flavor: ${formatFlavor(systemFlavor(c.db)) || "(empty)"}`)
  })

export const show = (args: Parsed<typeof showConfig>) =>
  withConary(args, { write: false, command: "flavor show" }, (c) =>
    attempt(() => {
      const flavor = formatFlavor(systemFlavor(c.db))
      if (args.json) return printJson({ formatVersion: 1, flavor })
      println(flavor || "(empty)")
    }),
  )

export const set = (args: Parsed<typeof setConfig>) =>
  withConary(args, { write: true, command: "flavor set" }, (c) => change(c, () => parseFlavor(args.flavor)))

export const add = (args: Parsed<typeof addConfig>) =>
  withConary(args, { write: true, command: "flavor add" }, (c) =>
    change(c, (current) => {
      const extra = parseFlavor(args.flavor)
      const arches = new Map(current.arches)
      for (const [arch, sub] of extra.arches) arches.set(arch, new Map([...(arches.get(arch) ?? []), ...sub]))
      return { flags: new Map([...current.flags, ...extra.flags]), arches }
    }),
  )

export const remove = (args: Parsed<typeof removeConfig>) =>
  withConary(args, { write: true, command: "flavor remove" }, (c) =>
    change(c, (current) => {
      const gone = parseFlavor(args.flavor)
      const flags = new Map([...current.flags].filter(([f]) => !gone.flags.has(f)))
      const arches = new Map([...current.arches].filter(([a]) => !gone.arches.has(a) || gone.arches.get(a)!.size > 0))
      for (const [arch, sub] of gone.arches) {
        const kept = arches.get(arch)
        if (kept && sub.size > 0) arches.set(arch, new Map([...kept].filter(([f]) => !sub.has(f))))
      }
      return { flags, arches }
    }),
  )
