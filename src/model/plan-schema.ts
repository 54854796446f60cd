import * as Schema from "effect/Schema"
import { FileOps } from "./file-ops.js"

// The Plan is data: rendered as text or JSON, saved, and applied.

export const PLAN_FORMAT_VERSION = 1

export const TroveRef = Schema.Struct({
  troveId: Schema.Int,
  version: Schema.String,
  flavor: Schema.String,
  components: Schema.Array(Schema.String),
})
export type TroveRef = typeof TroveRef.Type

/** explicit: a desired row names it; group: a group's pin brought it in; dependency: another trove requires it */
export const Reason = Schema.Literal("explicit", "dependency", "group")
export type Reason = typeof Reason.Type

export const TroveOp = Schema.Struct({
  op: Schema.Literal("install", "update", "erase"),
  name: Schema.String,
  reason: Reason,
  /** reason group: the group whose pin it is */
  group: Schema.optional(Schema.String),
  from: Schema.optional(TroveRef),
  to: Schema.optional(TroveRef),
  /** the trove carries maintainer scripts, which conary does not run */
  scripts: Schema.Boolean,
})
export type TroveOp = typeof TroveOp.Type

/** A file that was on disk before any trove owned its path, kept in the store. */
export const Displaced = Schema.Struct({
  kind: Schema.Literal("file", "symlink"),
  sha256: Schema.NullOr(Schema.String),
  size: Schema.Int,
  mode: Schema.Int,
  uid: Schema.Int,
  gid: Schema.Int,
  target: Schema.NullOr(Schema.String),
})
export type Displaced = typeof Displaced.Type

export const FileOp = Schema.Struct({
  /**
   * add/replace/remove/chmod follow from trove changes; repair restores a
   * drifted file; merge is a config file changed both locally and by the
   * package (3-way merge, else FILE.conary-new); save keeps a locally changed
   * config file of an erased trove as FILE.conary-save; restore puts back
   * what was on disk before a trove displaced it.
   */
  op: Schema.Literal("add", "replace", "remove", "chmod", "repair", "merge", "save", "restore"),
  path: Schema.String,
  kind: Schema.Literal("file", "dir", "symlink"),
  /** the trove the operation belongs to, and its label */
  troveId: Schema.Int,
  trove: Schema.String,
  sha256: Schema.NullOr(Schema.String),
  size: Schema.Int,
  mode: Schema.Int,
  owner: Schema.String,
  group: Schema.String,
  target: Schema.NullOr(Schema.String),
  config: Schema.Boolean,
  /** why: for repairs, what drifted */
  note: Schema.optional(Schema.String),
  /** merge: the content the user's file started from */
  baseSha256: Schema.optional(Schema.String),
  /** add of a directory the root already has: its mode and owner stay, and erase keeps it */
  kept: Schema.optional(Schema.Boolean),
  /** add over a file no trove owns: apply saves it into the store first (`saved`) */
  unowned: Schema.optional(Schema.Boolean),
  saved: Schema.optional(Displaced),
  /** installed troves whose entry for this path passes to this trove (Replaces) */
  takesOver: Schema.optional(Schema.Array(Schema.Struct({ troveId: Schema.Int, path: Schema.String }))),
})
export type FileOp = typeof FileOp.Type

/** A plan's file operations: a JSON array outside, columns (FileOps) in memory. */
export const FileOpList = Schema.transform(Schema.Array(FileOp), Schema.declare((u): u is FileOps => u instanceof FileOps), {
  strict: true,
  decode: (ops) => FileOps.from(ops),
  encode: (ops) => ops.toArray(),
})

/** A path the plan leaves alone because what is on disk is in the way (a directory where a file belongs, or the reverse). */
export const Blocked = Schema.Struct({
  path: Schema.String,
  trove: Schema.String,
  reason: Schema.String,
})
export type Blocked = typeof Blocked.Type

/** A desired row for a trove some group pins: the row wins, and plan says so. */
export const Override = Schema.Struct({
  name: Schema.String,
  group: Schema.String,
  /** the group's pin, as name=version[flavor] */
  pinned: Schema.String,
})
export type Override = typeof Override.Type

export const TargetTrove = Schema.Struct({
  troveId: Schema.Int,
  name: Schema.String,
  version: Schema.String,
  flavor: Schema.String,
  components: Schema.Array(Schema.String),
  reason: Reason,
  /** reason group: the group whose pin it is */
  group: Schema.optional(Schema.String),
})
export type TargetTrove = typeof TargetTrove.Type

export const PlanSummary = Schema.Struct({
  install: Schema.Int,
  update: Schema.Int,
  erase: Schema.Int,
  repair: Schema.Int,
  files: Schema.Int,
  bytes: Schema.Int,
})
export type PlanSummary = typeof PlanSummary.Type

export const Plan = Schema.Struct({
  formatVersion: Schema.Literal(PLAN_FORMAT_VERSION),
  troves: Schema.Array(TroveOp),
  files: FileOpList,
  /** the whole trove set after apply */
  target: Schema.Array(TargetTrove),
  /** paths left alone: the rest of the plan goes on without them */
  blocked: Schema.optionalWith(Schema.Array(Blocked), { default: () => [] }),
  /** desired rows that override a group's pin of the same trove */
  overrides: Schema.optionalWith(Schema.Array(Override), { default: () => [] }),
  summary: PlanSummary,
})
export type Plan = typeof Plan.Type

export const isEmptyPlan = (p: Plan): boolean => p.troves.length === 0 && p.files.length === 0
