import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"

const expiresOption = Options.text("expires").pipe(
  Options.withDescription("how long the signed metadata stays valid (7d, 12h, 90m); clients refuse it afterwards, so rebuild (no inputs needed) before then"),
  Options.withDefault("7d"),
)

export const buildConfig = {
  json: jsonOption,
  sign: Options.text("sign").pipe(Options.withDescription("ed25519 private key (from `conary key generate`) to sign the metadata"), Options.optional),
  expires: expiresOption,
  deltas: Options.integer("deltas").pipe(
    Options.withDescription("for each new trove version, deltas from the contents of this many previous versions (0: none)"),
    Options.withDefault(2),
  ),
  from: Options.text("from").pipe(Options.withDescription("promote: another repository (directory or URL) to copy --trove troves from"), Options.optional),
  trove: Options.text("trove").pipe(Options.withDescription("promote: a trove of --from (name=version), a group with all its members"), Options.repeated),
  trust: Options.text("trust").pipe(Options.withDescription("promote: the public key --from's index must be signed with"), Options.optional),
  out: Args.text({ name: "OUTDIR" }),
  inputs: Args.text({ name: "INPUT" }).pipe(Args.repeated),
}

const build = Command.make(
  "build",
  buildConfig,
  lazily(() => import("../commands/repo.js").then((m) => m.build)),
).pipe(Command.withDescription("publish archives (native, .deb, rpm, Arch, groups) into a static repository, adding to it (no INPUT: sign the metadata anew); --from promotes troves of another"))

export const rotateConfig = {
  old: Options.text("old").pipe(Options.withDescription("the private key the repository is signed with now")),
  new: Options.text("new").pipe(Options.withDescription("the private key to sign with from now on")),
  expires: expiresOption,
  out: Args.text({ name: "REPO" }),
}

const rotate = Command.make(
  "rotate-key",
  rotateConfig,
  lazily(() => import("../commands/repo.js").then((m) => m.rotate)),
).pipe(Command.withDescription("replace (or revoke) the signing key: a new root, signed by the old key, that clients follow"))

export const repoCommand = Command.make("repo").pipe(
  Command.withDescription("static trove repositories, for any HTTP server or object store"),
  Command.withSubcommands([build, rotate]),
)

export const generateConfig = { name: Args.text({ name: "NAME" }) }

const generate = Command.make(
  "generate",
  generateConfig,
  lazily(() => import("../commands/repo.js").then((m) => m.generate)),
).pipe(Command.withDescription("make an ed25519 key pair: NAME.key and NAME.pub"))

export const keyCommand = Command.make("key").pipe(Command.withDescription("signing keys for repositories"), Command.withSubcommands([generate]))

export const statusConfig = {
  ...rootOptions,
  json: jsonOption,
  installed: Options.boolean("installed").pipe(
    Options.withDescription("also the installed troves (and the flavor and provides): with --json, what `changeset create --for` takes"),
  ),
}

export const statusCommand = Command.make(
  "status",
  statusConfig,
  lazily(() => import("../commands/status.js").then((m) => m.status)),
).pipe(Command.withDescription("the root's generation, pending changes and drift in one report (exit 0 converged, 2 not)"))
