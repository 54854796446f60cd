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
  op: Schema.Literal("add", "replace", "remove", "chmod"),
  path: Schema.String,
  kind: Schema.Literal("file", "dir", "symlink"),
  /** label of the trove the operation belongs to */
  trove: Schema.String,
  sha256: Schema.NullOr(Schema.String),
  size: Schema.Int,
  mode: Schema.Int,
  owner: Schema.String,
  group: Schema.String,
  target: Schema.NullOr(Schema.String),
  config: Schema.Boolean,
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
