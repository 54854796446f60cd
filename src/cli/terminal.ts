import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

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

/**
 * A reader that stops early (`conary verify | head -1`) closes the pipe: the
 * command then runs to its end, writing nothing more, and exits with the code
 * it would have had, without a stack trace.
 */
export const quietOnClosedPipe = (): void => {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE" && e.code !== "ERR_STREAM_DESTROYED") throw e
    })
  }
}
