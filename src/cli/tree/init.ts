import * as Command from "@effect/cli/Command"
import { jsonOption, lazily, rootOptions } from "./common.js"

export const initConfig = { ...rootOptions, json: jsonOption }

export const initCommand = Command.make(
  "init",
  initConfig,
  lazily(() => import("../commands/init.js").then((m) => m.init)),
).pipe(Command.withDescription("create the database for a root (safe to run again)"))
