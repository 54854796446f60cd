import type { Displaced, Reason } from "./plan-schema.js"
import type { FileKind, TroveMeta } from "./trove.js"

// The installed state as apply records it and plan and verify read it back.

export interface InstalledTrove {
  readonly trove: TroveMeta
  readonly components: ReadonlyArray<string>
  readonly reason: Reason
  /** reason group: the group whose pin brought it in */
  readonly group?: string
}

/** What was at a path before troves came: a kept directory or a displaced file. */
export type Foreign = Displaced | { readonly kind: "dir" }

/** A file apply wrote, with the stat cache that vouches for its bytes. */
export interface RecordedFile {
  readonly troveId: number
  readonly trove: string
  readonly path: string
  readonly kind: FileKind
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly sha256: string | null
  readonly size: number
  readonly target: string | null
  readonly config: boolean
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
  readonly ino: bigint
}

/** A clean file whose stat fields moved (a touch): its cache row is refreshed. */
export interface StatRefresh {
  readonly troveId: number
  readonly path: string
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
  readonly ino: bigint
}
