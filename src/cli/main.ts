import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { isConaryError } from "../errors.js"
import { applyCommand } from "./commands/apply.js"
import { dbCommand } from "./commands/db.js"
import { desiredCommand } from "./commands/desired.js"
import { flavorCommand } from "./commands/flavor.js"
import { generationCommands } from "./commands/generations.js"
import { initCommand } from "./commands/init.js"
import { planCommand } from "./commands/plan.js"
import { provideCommand } from "./commands/provide.js"
import { queryCommands } from "./commands/query.js"
import { keyCommand, repoCommand, statusCommand } from "./commands/repo.js"
import { sourceCommand } from "./commands/source.js"
import { troveCommand } from "./commands/trove.js"
import { verifyCommand } from "./commands/verify.js"
import { EXIT_ERROR, defectLine, errorLine } from "./exit.js"

declare const CONARY_VERSION: string

const conary = Command.make("conary").pipe(
  Command.withDescription("declarative system-state reconciler: desired troves in SQLite; plan, apply, verify"),
  Command.withSubcommands([
    initCommand,
    troveCommand,
    sourceCommand,
    desiredCommand,
    provideCommand,
    flavorCommand,
    planCommand,
    applyCommand,
    verifyCommand,
    statusCommand,
    repoCommand,
    keyCommand,
    ...queryCommands,
    ...generationCommands,
    dbCommand,
  ]),
)

const cli = Command.run(conary, {
  name: "conary",
  version: typeof CONARY_VERSION === "string" ? CONARY_VERSION : "dev",
})

/**
 * @effect/cli reserves `--version` for printing its own; `trove build` takes
 * `--version V` as the trove's version (the spelling users expect), so it is
 * renamed before parsing.
 */
const argv = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const words = args.slice(2).filter((a) => !a.startsWith("-"))
  if (words[0] !== "trove" || words[1] !== "build") return args
  return args.map((a) => (a === "--version" ? "--trove-version" : a.startsWith("--version=") ? "--trove-" + a.slice(2) : a))
}

const program = Effect.suspend(() => cli(argv(process.argv))).pipe(
  Effect.catchAll((e) =>
    Effect.sync(() => {
      // @effect/cli has already printed what was wrong with the command line.
      if (!ValidationError.isValidationError(e) && isConaryError(e)) process.stderr.write(errorLine(e) + "\n")
      process.exitCode = EXIT_ERROR
    }),
  ),
  Effect.provide(NodeContext.layer),
)

Effect.runPromiseExit(program).then((exit) => {
  if (Exit.isFailure(exit)) {
    process.stderr.write(defectLine(exit.cause) + "\n")
    process.exitCode = EXIT_ERROR
  }
})
