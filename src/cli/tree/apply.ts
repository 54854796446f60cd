import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { jsonOption, lazily, rootOptions } from "./common.js"
import { trustOptions } from "./changeset.js"
import { resolveOptions } from "./plan.js"

export const applyConfig = { ...rootOptions, ...resolveOptions, ...trustOptions, json: jsonOption, file: Args.text({ name: "PLAN" }).pipe(Args.optional) }

export const applyCommand = Command.make(
  "apply",
  applyConfig,
  lazily(() => import("../commands/apply.js").then((m) => m.apply)),
).pipe(Command.withDescription("apply the changeset (or a plan saved by `plan --out`, or a changeset file from `changeset create`) to the root, making a new generation"))
