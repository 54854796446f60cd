import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { describeIo, printable } from "../errors.js"
import { EXIT_ERROR } from "./exit.js"

// How output meets terminals, pipes and scripts.

/** Color only for a terminal, and never with NO_COLOR set (no-color.org) or TERM=dumb. */
export const colorWanted = (stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean =>
  stream.isTTY === true && !env.NO_COLOR && env.TERM !== "dumb"

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g

export const stripAnsi = (text: string): string => text.replace(ANSI, "")

/** Writes a document of @effect/cli's to stdout, without color where color is not wanted. */
export const writeDocument = (text: string): void => {
  process.stdout.write((colorWanted(process.stdout) ? text : stripAnsi(text)) + "\n")
}

/**
 * The console @effect/cli prints through: help and version on stdout (each
 * document also to `printed`), without color where color is not wanted. Its
 * parser errors go nowhere here: the CLI reports them itself, as one `conary: `
 * line with a suggestion.
 */
export const withCliConsole = <A, E, R>(effect: Effect.Effect<A, E, R>, printed?: (text: string) => void): Effect.Effect<A, E, R> =>
  Console.consoleWith((base) => {
    const log = (...args: ReadonlyArray<unknown>) => {
      // Its documents end in a newline already.
      const text = args.join(" ").replace(/\n$/, "")
      printed?.(text)
      writeDocument(text)
    }
    const console: Console.Console = {
      ...base,
      log: (...args) => Effect.sync(() => log(...args)),
      error: () => Effect.void,
      unsafe: { ...base.unsafe, log, error: () => {} },
    }
    return Console.withConsole(effect, console)
  })

const quiet = (stream: NodeJS.WriteStream, failed?: (e: NodeJS.ErrnoException) => void): void => {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE" && e.code !== "ERR_STREAM_DESTROYED") failed?.(e)
  })
}

let outputLost = false

/** stdout failed for a reason of its own (a full disk under `> file`): said once, and the run exits 1, whatever else it would have. */
const loseOutput = (e: NodeJS.ErrnoException): void => {
  if (outputLost) return
  outputLost = true
  process.stderr.write(`conary: cannot write the output: ${printable(describeIo(e))}\n`)
  process.once("exit", () => {
    process.exitCode = EXIT_ERROR
  })
}

/**
 * A reader that stops early (`conary verify | head -1`) closes the pipe: the
 * command then runs to its end, writing nothing more, and exits with the code
 * it would have had, without a stack trace. Any other failure to write (a
 * full disk, a terminal gone: ENOSPC, EIO) does not end the command midway
 * either, as an uncaught error would (an apply between its stage and its
 * commit): stdout's is said on stderr, stderr's cannot be said anywhere.
 * Node makes process.stderr when it is first used, and most runs write
 * nothing there: making a pipe's or a terminal's stream costs milliseconds
 * (node:net), so stderr is made quiet as it is made.
 */
export const quietOnClosedPipe = (): void => {
  quiet(process.stdout, loseOutput)
  const node = Object.getOwnPropertyDescriptor(process, "stderr")
  if (node?.get === undefined || node.configurable !== true) return quiet(process.stderr)
  Object.defineProperty(process, "stderr", {
    configurable: true,
    enumerable: node.enumerable,
    get: () => {
      // Node's getter again: it gives this same stream from now on.
      Object.defineProperty(process, "stderr", node)
      const stream = process.stderr
      quiet(stream)
      return stream
    },
  })
}

/** Whether stderr is a terminal; where it cannot be one (a pipe, a file) without making process.stderr. */
export const stderrIsTerminal = (): boolean => {
  try {
    if (!fs.fstatSync(2).isCharacterDevice()) return false
  } catch {
    return false
  }
  return process.stderr.isTTY === true
}
