import type * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Types from "effect/Types"

// The command tree (names, options, help) is all that loads at start-up; a
// command's code (src/cli/commands) loads when it runs, so `--help`, a typo
// and a quick read do not pay for the planner, the archive readers, etc.

/** Options every command that touches a root accepts. */
export const rootOptions = {
  root: Options.text("root").pipe(
    Options.withDescription("filesystem root to manage (env CONARY_ROOT)"),
    Options.withFallbackConfig(Config.string("CONARY_ROOT")),
    Options.withDefault("/"),
  ),
  db: Options.text("db").pipe(
    Options.withDescription("database file (env CONARY_DB; default <root>/var/lib/conary/conary.db)"),
    Options.withFallbackConfig(Config.string("CONARY_DB")),
    Options.optional,
  ),
  store: Options.text("store").pipe(
    Options.withDescription("content store to use, shared with other roots (env CONARY_STORE; default <db dir>/store); recorded by commands that change state"),
    Options.withFallbackConfig(Config.string("CONARY_STORE")),
    Options.optional,
  ),
  lockTimeout: Options.float("lock-timeout").pipe(
    Options.withDescription("seconds to wait for another conary working on this root (default 0: fail at once)"),
    // SQLite reads a negative busy timeout as "never wait": say so instead of guessing.
    Options.filterMap((s) => (s >= 0 && Number.isFinite(s) ? Option.some(s) : Option.none()), "--lock-timeout takes seconds, 0 or more"),
    Options.withDefault(0),
  ),
}

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print data as JSON"))

/** What a command's handler receives for a config of options and arguments. */
export type Parsed<C extends Command.Command.Config> = Types.Simplify<Command.Command.ParseConfig<C>>

/** A handler that loads the command's code (`() => import(...)`) when the command runs. */
export const lazily =
  <A, E, R>(load: () => Promise<(args: A) => Effect.Effect<void, E, R>>) =>
  (args: A): Effect.Effect<void, E, R> =>
    Effect.flatMap(
      Effect.promise(load),
      (handler) => handler(args),
    )
