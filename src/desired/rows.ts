import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { decodeOrProblem } from "../decode.js"
import { UsageError } from "../errors.js"
import { parseJson } from "../files.js"
import { FlavorError, normalizeFlavor } from "./flavor.js"

/** One row of the desired state: a trove name with optional constraints. */
export interface DesiredRow {
  readonly name: string
  /** '' = the package's default components */
  readonly component: string
  /** '' = newest */
  readonly version: string
  /** canonical flavor, '' = no constraint */
  readonly flavor: string
  /**
   * an optional member of the group `name` that this row asks for
   * (`group-web/nginx-extras`), at the group's pin; absent or '' otherwise
   */
  readonly member?: string
}

export const NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/
export const COMPONENT = /^[a-z][a-z0-9-]*$/
export const VERSION = /^[A-Za-z0-9][A-Za-z0-9.+~:_-]*$/

// name[:component][=version][[flavor]]
const SPEC = /^([^:=[\]]+)(?::([^=[\]]+))?(?:=([^[\]]+))?(?:\[([^\]]*)\])?$/

/**
 * Parses `nginx`, `nginx:runtime`, `nginx=1.24`, `'nginx=1.24[ssl is: x86_64]'`,
 * and `group-web/nginx-extras` (an optional member of a group).
 */
export const parseSpec = (spec: string): DesiredRow => {
  const m = SPEC.exec(spec.trim())
  if (!m) throw new UsageError({ message: `bad trove spec '${spec}': expected name[:component][=version][[flavor]] or group/member` })
  const [name, ...member] = m[1]!.split("/")
  return checkRow(
    { name: name!, component: m[2] ?? "", version: m[3] ?? "", flavor: m[4] ?? "", ...(member.length > 0 ? { member: member.join("/") } : {}) },
    `'${spec}'`,
  )
}

const checkRow = (row: DesiredRow, where: string): DesiredRow => {
  const bad = (what: string) => new UsageError({ message: `bad trove spec ${where}: ${what}` })
  if (!NAME.test(row.name)) throw bad(`invalid name '${row.name}'`)
  if (row.member !== undefined) {
    if (!NAME.test(row.member)) throw bad(`invalid member name '${row.member}'`)
    if (row.component || row.version || row.flavor)
      throw bad(`a group's member takes no component, version or flavor (the group pins them): write ${row.name}/${row.member}`)
  }
  if (row.component !== "" && !COMPONENT.test(row.component)) throw bad(`invalid component '${row.component}'`)
  if (row.version !== "" && !VERSION.test(row.version)) throw bad(`invalid version '${row.version}'`)
  try {
    return { ...row, flavor: normalizeFlavor(row.flavor) }
  } catch (e) {
    if (e instanceof FlavorError) throw bad(e.message)
    throw e
  }
}

export const formatSpec = (row: DesiredRow): string =>
  `${row.name}${row.member ? "/" + row.member : ""}${row.component ? ":" + row.component : ""}${row.version ? "=" + row.version : ""}${row.flavor ? `[${row.flavor}]` : ""}`

// ---- the JSON form of the whole desired state (desired set/export) ---------

export const DESIRED_FORMAT_VERSION = 1

const DesiredEntry = Schema.Struct({
  name: Schema.String,
  member: Schema.optional(Schema.String),
  component: Schema.optional(Schema.String),
  version: Schema.optional(Schema.String),
  flavor: Schema.optional(Schema.String),
})

const DesiredDocument = Schema.Struct({
  formatVersion: Schema.Literal(DESIRED_FORMAT_VERSION),
  troves: Schema.Array(DesiredEntry),
})

export const toDocument = (rows: ReadonlyArray<DesiredRow>) => ({
  formatVersion: DESIRED_FORMAT_VERSION,
  troves: rows.map((r) => ({
    name: r.name,
    ...(r.member ? { member: r.member } : {}),
    ...(r.component ? { component: r.component } : {}),
    ...(r.version ? { version: r.version } : {}),
    ...(r.flavor ? { flavor: r.flavor } : {}),
  })),
})

/** Decodes a desired-state document; errors name the bad entry. */
export const fromDocument = (text: string, origin: string): DesiredRow[] => {
  const json = parseJson(text, (reason) => new UsageError({ message: `${origin}: ${reason}` }))
  const decoded = decodeOrProblem(DesiredDocument, json)
  if (Either.isLeft(decoded)) throw new UsageError({ message: `${origin}: ${decoded.left}` })
  const rows = decoded.right.troves.map((t, i) =>
    checkRow(
      {
        name: t.name,
        component: t.component ?? "",
        version: t.version ?? "",
        flavor: t.flavor ?? "",
        ...(t.member !== undefined ? { member: t.member } : {}),
      },
      `in ${origin} at troves.${i}`,
    ),
  )
  // One row per name, component and flavor: a second would silently replace the first.
  const first = new Map<string, number>()
  const twice: string[] = []
  rows.forEach((r, i) => {
    const key = JSON.stringify([r.name, r.member ?? "", r.component, r.flavor])
    const at = first.get(key)
    if (at === undefined) first.set(key, i)
    else twice.push(`troves.${at} and troves.${i} (${formatSpec({ ...r, version: "" })})`)
  })
  if (twice.length > 0) throw new UsageError({ message: `${origin}: the same trove is desired twice: ${twice.join(", ")}` })
  return rows
}
