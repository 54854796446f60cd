import * as Schema from "effect/Schema"

// The Plan is data: rendered as text or JSON, saved, and applied.

export const PLAN_FORMAT_VERSION = 1

export const TroveRef = Schema.Struct({
  troveId: Schema.Int,
  version: Schema.String,
  flavor: Schema.String,
  components: Schema.Array(Schema.String),
})
export type TroveRef = typeof TroveRef.Type

export const Reason = Schema.Literal("explicit", "dependency")
export type Reason = typeof Reason.Type

export const TroveOp = Schema.Struct({
  op: Schema.Literal("install", "update", "erase"),
  name: Schema.String,
  reason: Reason,
  from: Schema.optional(TroveRef),
  to: Schema.optional(TroveRef),
  /** the trove carries maintainer scripts, which conary does not run */
  scripts: Schema.Boolean,
})
export type TroveOp = typeof TroveOp.Type

export const FileOp = Schema.Struct({
  /**
   * add/replace/remove/chmod follow from trove changes; repair restores a
   * drifted file; merge is a config file changed both locally and by the
   * package (3-way merge, else FILE.conary-new); save keeps a locally changed
   * config file of an erased trove as FILE.conary-save.
   */
  op: Schema.Literal("add", "replace", "remove", "chmod", "repair", "merge", "save"),
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
})
export type FileOp = typeof FileOp.Type

export const TargetTrove = Schema.Struct({
  troveId: Schema.Int,
  name: Schema.String,
  version: Schema.String,
  flavor: Schema.String,
  components: Schema.Array(Schema.String),
  reason: Reason,
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
  files: Schema.Array(FileOp),
  /** the whole trove set after apply */
  target: Schema.Array(TargetTrove),
  summary: PlanSummary,
})
export type Plan = typeof Plan.Type

export const isEmptyPlan = (p: Plan): boolean => p.troves.length === 0 && p.files.length === 0
