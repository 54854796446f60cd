import type * as CliApp from "@effect/cli/CliApp"
import type * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { commandAt } from "./suggest.js"

// @effect/cli reaches the disk and the terminal through @effect/platform's
// services, but only to check an argument that must name an existing path
// (`trove build DIR`) and for --wizard's prompts. Node's implementations
// (@effect/platform-node, a sixth of the start-up) load only for those.

/** Whether a value of @effect/cli's option and argument trees holds a path primitive. */
const hasPath = (x: unknown, seen = new Set<object>()): boolean => {
  if (typeof x !== "object" || x === null || seen.has(x)) return false
  seen.add(x)
  if ((x as { readonly _tag?: unknown })._tag === "Path") return true
  return Object.values(x).some((v) => hasPath(v, seen))
}

const nodeContext = Layer.unwrapEffect(Effect.promise(() => import("@effect/platform-node/NodeContext")).pipe(Effect.map((m) => m.layer)))

/** Runs the parsed command line with the platform services when it needs them. */
export const withPlatform = <Name extends string, R, E, A, B, F>(
  root: Command.Command<Name, R, E, A>,
  args: ReadonlyArray<string>,
  effect: Effect.Effect<B, F, CliApp.CliApp.Environment>,
): Effect.Effect<B, F> => {
  const at = commandAt(root, args)
  if (args.includes("--wizard") || (at.leaf && hasPath(at.descriptor))) return Effect.provide(effect, nodeContext)
  // Nothing on this command line reads them.
  return effect as Effect.Effect<B, F>
}
