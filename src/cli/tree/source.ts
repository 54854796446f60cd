import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { jsonOption, lazily, rootOptions } from "./common.js"

export const addConfig = {
  ...rootOptions,
  json: jsonOption,
  trust: Options.text("trust").pipe(
    Options.withDescription("ed25519 public key (a .pub file or its text): the repository's index must be signed with it"),
    Options.optional,
  ),
  mirror: Options.text("mirror").pipe(
    Options.withDescription("another base location of the same repository, tried in order when the ones before fail (repeatable)"),
    Options.repeated,
  ),
  insecure: Options.boolean("insecure").pipe(
    Options.withDescription("accept a repository's metadata unsigned (anyone between you and it can change what you install); `status` shows it"),
  ),
  name: Args.text({ name: "NAME" }),
  locations: Args.text({ name: "DIR|URL" }).pipe(Args.atLeast(1)),
}

const add = Command.make(
  "add",
  addConfig,
  lazily(() => import("../commands/source.js").then((m) => m.add)),
).pipe(Command.withDescription("add a source: a directory of trove archives, or a repository (directory or http(s) URL, with any mirrors after it)"))

export const listConfig = { ...rootOptions, json: jsonOption }

const list = Command.make(
  "list",
  listConfig,
  lazily(() => import("../commands/source.js").then((m) => m.list)),
).pipe(Command.withDescription("list sources"))

export const removeConfig = { ...rootOptions, name: Args.text({ name: "NAME" }) }

const remove = Command.make(
  "remove",
  removeConfig,
  lazily(() => import("../commands/source.js").then((m) => m.remove)),
).pipe(Command.withDescription("remove a source and its index"))

export const syncConfig = {
  ...rootOptions,
  json: jsonOption,
  allowExpired: Options.boolean("allow-expired").pipe(Options.withDescription("accept a repository's expired metadata (labs; it may hide a frozen mirror)")),
  names: Args.text({ name: "NAME" }).pipe(Args.repeated),
}

const sync = Command.make(
  "sync",
  syncConfig,
  lazily(() => import("../commands/source.js").then((m) => m.sync)),
).pipe(Command.withDescription("index the troves each source offers (metadata only)"))

export const sourceCommand = Command.make("source").pipe(
  Command.withDescription("manage trove sources"),
  Command.withSubcommands([add, list, remove, sync]),
)
