import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { UsageError, isConaryError, printable } from "../errors.js"
import { applyCommand } from "./tree/apply.js"
import { changesetCommand } from "./tree/changeset.js"
import { dbCommand } from "./tree/db.js"
import { desiredCommand } from "./tree/desired.js"
import { flavorCommand } from "./tree/flavor.js"
import { generationCommands } from "./tree/generations.js"
import { groupCommand } from "./tree/group.js"
import { initCommand } from "./tree/init.js"
import { planCommand } from "./tree/plan.js"
import { provideCommand } from "./tree/provide.js"
import { queryCommands } from "./tree/query.js"
import { keyCommand, repoCommand, statusCommand } from "./tree/repo.js"
import { sbomCommand } from "./tree/sbom.js"
import { sourceCommand } from "./tree/source.js"
import { troveCommand } from "./tree/trove.js"
import { verifyCommand } from "./tree/verify.js"
import { EXIT_ERROR, defectLine, errorDocument, errorLines } from "./exit.js"
import { printJson } from "./format.js"
import { keepHelp, keptHelp, topLevelHelp } from "./help-memo.js"
import { withPlatform } from "./platform.js"
import { explainParseError, unknownOption } from "./suggest.js"
import { quietOnClosedPipe, stripAnsi, withCliConsole, writeDocument } from "./terminal.js"

declare const CONARY_VERSION: string

const conary = Command.make("conary").pipe(
  Command.withDescription("declarative system-state reconciler: desired troves in SQLite; plan, apply, verify"),
  Command.withSubcommands([
    initCommand,
    troveCommand,
    groupCommand,
    sourceCommand,
    desiredCommand,
    provideCommand,
    flavorCommand,
    planCommand,
    applyCommand,
    changesetCommand,
    verifyCommand,
    sbomCommand,
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

const args = process.argv.slice(2)
const json = args.includes("--json")

/**
 * @effect/cli reserves `--version` for printing its own, so the trove's
 * version is `--trove-version`; `trove build --version V` would otherwise
 * print conary's version and build nothing.
 */
const versionMistaken = (): boolean => {
  const words = args.filter((a) => !a.startsWith("-"))
  return (words[0] === "trove" || words[0] === "group") && words[1] === "build" && args.some((a) => a === "--version" || a.startsWith("--version="))
}

const fail = (type: string, lines: ReadonlyArray<string>, message: string) => {
  process.stderr.write(lines.map((l) => l + "\n").join(""))
  if (json) printJson(errorDocument(type, message))
  process.exitCode = EXIT_ERROR
}

/** What is wrong with the command line before @effect/cli parses it, if anything. */
const preflight = (): UsageError | undefined => {
  if (versionMistaken())
    return new UsageError({ message: `${args.find((a) => !a.startsWith("-"))} build: the trove's version is given as --trove-version V (--version prints conary's)` })
  const unknown = unknownOption(conary, args)
  return unknown === undefined ? undefined : new UsageError({ message: unknown })
}

const program = Effect.suspend(() => {
  const wrong = preflight()
  return wrong ? Effect.fail(wrong) : withPlatform(conary, args, cli(process.argv))
}).pipe(
  (effect) => withCliConsole(effect, topLevelHelp(args) ? keepHelp : undefined),
  Effect.catchAll((e) =>
    Effect.sync(() => {
      if (ValidationError.isValidationError(e)) {
        const message = explainParseError(conary, args, stripAnsi(HelpDoc.toAnsiText(e.error)))
        fail("UsageError", [`conary: ${printable(message)}`], message)
      } else if (isConaryError(e)) fail(e._tag, errorLines(e), e.message)
      else fail("Error", [`conary: ${printable(String(e))}`], String(e))
    }),
  ),
)

quietOnClosedPipe()
const help = topLevelHelp(args) ? keptHelp() : undefined
if (help !== undefined) writeDocument(help)
else
  Effect.runPromiseExit(program).then((exit) => {
    if (Exit.isFailure(exit)) fail("InternalError", [defectLine(exit.cause)], Cause.pretty(exit.cause))
  })
