import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"
import { refreshOptions } from "./plan.js"

// Changeset files (Conary's .ccs): `changeset create` on a host that can
// reach the sources, `apply FILE.ccs` (and `changeset show`) on a root that
// cannot. See src/changeset/.

/** Options of the commands that read a changeset: which signatures it must carry. */
export const trustOptions = {
  trust: Options.text("trust").pipe(
    Options.withDescription("changeset: also accept one signed by this ed25519 public key (a .pub file or its text); repeatable"),
    Options.repeated,
  ),
  insecure: Options.boolean("insecure").pipe(Options.withDescription("changeset: accept it unsigned (or signed by a key not trusted)")),
}

export const createConfig = {
  ...rootOptions,
  json: jsonOption,
  for: Options.text("for").pipe(
    Options.withDescription("the target's state, as `conary status --json --installed` printed it there; without it the changeset is absolute (everything, for any root)"),
    Options.optional,
  ),
  sign: Options.text("sign").pipe(Options.withDescription("ed25519 private key (from `conary key generate`) to sign it with"), Options.optional),
  out: Args.text({ name: "OUT" }),
}

const create = Command.make(
  "create",
  createConfig,
  lazily(() => import("../commands/changeset.js").then((m) => m.create)),
).pipe(Command.withDescription("write the plan from a target's state (--for) to this root's desired state, with every content the target lacks, into one file"))

export const showConfig = { ...rootOptions, ...refreshOptions, ...trustOptions, json: jsonOption, file: Args.text({ name: "CHANGESET" }) }

const show = Command.make(
  "show",
  showConfig,
  lazily(() => import("../commands/changeset.js").then((m) => m.show)),
).pipe(Command.withDescription("check a changeset (signature, state, every digest) and show what `apply CHANGESET` would do to this root"))

export const changesetCommand = Command.make("changeset").pipe(
  Command.withDescription("changeset files: a plan with its contents, for roots that cannot reach a source"),
  Command.withSubcommands([create, show]),
)
