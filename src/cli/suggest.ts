import * as Command from "@effect/cli/Command"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import type * as Usage from "@effect/cli/Usage"

// What was wrong with a command line, said against the command at hand:
// `conary desired ad` -> unknown command 'desired ad'; did you mean 'desired add'?

interface Node {
  readonly path: string
  readonly descriptor: Descriptor.Command<unknown>
  readonly subcommands: ReadonlyMap<string, Descriptor.Command<unknown>>
  /** option name -> whether it takes a value */
  readonly options: ReadonlyMap<string, boolean>
}

// The shape of @effect/cli's command descriptors (its getSubcommands flattens
// a subcommand's own subcommands away, so the tree is walked here).
type Shape =
  | { readonly _tag: "Standard" | "GetUserInput"; readonly name: string }
  | { readonly _tag: "Map"; readonly command: Shape }
  | { readonly _tag: "Subcommands"; readonly parent: Shape; readonly children: ReadonlyArray<Shape> }

const nameOf = (d: Shape): string => (d._tag === "Map" ? nameOf(d.command) : d._tag === "Subcommands" ? nameOf(d.parent) : d.name)

const childrenOf = (d: Shape): ReadonlyArray<Shape> =>
  d._tag === "Map" ? childrenOf(d.command) : d._tag === "Subcommands" ? d.children : []

const nodeOf = (path: string, descriptor: Descriptor.Command<unknown>): Node => {
  const children = childrenOf(descriptor as unknown as Shape)
  const subcommands = new Map(
    children.map((c) => [nameOf(c), c as unknown as Descriptor.Command<unknown>] as const).sort(([a], [b]) => (a < b ? -1 : 1)),
  )
  return { path, descriptor, subcommands, options: subcommands.size > 0 ? new Map() : optionsOf(Descriptor.getUsage(descriptor)) }
}

/** The named options in a command's usage (its own only, not its subcommands'). */
const optionsOf = (usage: Usage.Usage, into = new Map<string, boolean>()): Map<string, boolean> => {
  const u = usage as Usage.Usage & { readonly _tag: string }
  switch (u._tag) {
    case "Named": {
      const named = u as Usage.Named
      for (const n of named.names) if (n.startsWith("-")) into.set(n, named.acceptedValues._tag === "Some")
      break
    }
    case "Optional":
    case "Repeated":
      optionsOf((u as Usage.Optional).usage, into)
      break
    case "Concat":
      optionsOf((u as Usage.Concat).left, into)
      optionsOf((u as Usage.Concat).right, into)
      break
  }
  return into
}

/** Edit distance, for "did you mean". */
const distance = (a: string, b: string): number => {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length]!
}

/** The closest of `names` to `word`, if close enough to be what was meant. */
export const closest = (word: string, names: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestD = Infinity
  for (const n of names) {
    const d = n.startsWith(word) ? 0.5 : distance(word, n)
    if (d < bestD) [best, bestD] = [n, d]
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

const quoteList = (names: Iterable<string>) => [...names].join(", ")

// Options @effect/cli gives every command (not in their usage); value-taking ones true.
const BUILT_IN = new Map([["--help", false], ["-h", false], ["--version", false], ["--wizard", false], ["--completions", true], ["--log-level", true]])

/**
 * Follows the command words typed to the command at hand, checking options on
 * the way: the first unknown command or option is the problem, said with the
 * closest name the command at hand has.
 */
const walk = (
  root: Descriptor.Command<unknown>,
  args: ReadonlyArray<string>,
  missingValue?: string,
): { readonly node: Node; readonly problem?: string } => {
  let node = nodeOf("", root)
  const at = () => (node.path ? `${node.path}: ` : "")
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") break
    if (arg.startsWith("-") && arg !== "-") {
      const name = arg.split("=")[0]!
      const takesValue = node.options.get(name) ?? BUILT_IN.get(name)
      if (takesValue === undefined && node.subcommands.size > 0)
        return { node, problem: `${at()}unknown option '${name}'; first a command: ${quoteList(node.subcommands.keys())}` }
      if (takesValue === undefined) {
        const guess = closest(name, node.options.keys())
        return { node, problem: `${at()}unknown option '${name}'` + (guess ? `; did you mean '${guess}'?` : `; options: ${quoteList(node.options.keys())}`) }
      }
      if (name === missingValue && takesValue) return { node, problem: `${at()}option ${name} needs a value` }
      if (takesValue && !arg.includes("=")) i++
      continue
    }
    if (node.subcommands.size === 0) continue
    const sub = node.subcommands.get(arg)
    if (sub === undefined) {
      const guess = closest(arg, node.subcommands.keys())
      const prefix = node.path ? `${node.path} ` : ""
      return {
        node,
        problem: `unknown command '${prefix}${arg}'` + (guess ? `; did you mean '${prefix}${guess}'?` : `; commands: ${quoteList(node.subcommands.keys())}`),
      }
    }
    node = nodeOf(`${node.path ? `${node.path} ` : ""}${arg}`, sub)
  }
  return { node }
}

/**
 * An unknown option, found before parsing: @effect/cli takes one before a
 * command's variadic arguments for an argument, and options after it are
 * then lost (`desired add --rot /x foo --root /r`).
 */
export const unknownOption = <Name extends string, R, E, A>(root: Command.Command<Name, R, E, A>, args: ReadonlyArray<string>) => {
  const { problem } = walk(root.descriptor as Descriptor.Command<unknown>, args)
  return problem?.includes("unknown option") ? problem : undefined
}

/** The command the words typed lead to (the root when they lead nowhere known), and whether it has subcommands. */
export const commandAt = <Name extends string, R, E, A>(root: Command.Command<Name, R, E, A>, args: ReadonlyArray<string>) => {
  const { node } = walk(root.descriptor as Descriptor.Command<unknown>, args)
  return { descriptor: node.descriptor, leaf: node.subcommands.size === 0 }
}

/**
 * One line for what @effect/cli rejected (`text`, its message), naming the
 * command at hand and the closest subcommand or option to what was typed.
 */
export const explainParseError = <Name extends string, R, E, A>(
  root: Command.Command<Name, R, E, A>,
  args: ReadonlyArray<string>,
  text: string,
): string => {
  const unknown = /unknown argument: '(.*)'/.exec(text)?.[1]
  const { node, problem } = walk(root.descriptor as Descriptor.Command<unknown>, args, unknown)
  if (problem !== undefined) return problem
  const at = node.path ? `${node.path}: ` : ""
  if (unknown !== undefined) return `${at}unexpected argument '${unknown}'`
  return at + text.trim().split(/\n+/).map((l) => l.trim()).filter((l) => l !== "").join("; ")
}
