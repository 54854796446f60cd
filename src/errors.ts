import * as Data from "effect/Data"
import type { FlavorError } from "./desired/flavor.js"

// Every failure a user can see. Each carries the facts needed for a one-line
// message; the CLI turns them into text and an exit code in one place
// (src/cli/exit.ts).

/**
 * Text from outside (a file name, a package field, an SQLite message) as one
 * printable line: control characters are escaped, so no input can split a
 * message, forge a line of output or drive the terminal.
 */
export const printable = (text: string): string =>
  text.replace(/[\x00-\x08\x0a-\x1f\x7f\x9b]/g, (c) =>
    c === "\n" ? "\\n" : c === "\r" ? "\\r" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  )

export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

export class RootError extends Data.TaggedError("RootError")<{ readonly root: string; readonly reason: string }> {
  override get message() {
    return `root ${this.root}: ${this.reason}`
  }
}

export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `database ${this.path}: ${this.reason}`
  }
}

export class ArchiveError extends Data.TaggedError("ArchiveError")<{
  readonly archive: string
  readonly reason: string
}> {
  override get message() {
    return `archive ${this.archive}: ${this.reason}`
  }
}

/** Archives a sync could not read, one line each; the good ones beside them were indexed. */
export class BadArchivesError extends Data.TaggedError("BadArchivesError")<{
  readonly problems: ReadonlyArray<ArchiveError>
}> {
  override get message() {
    return this.problems.map((p) => p.message).join("\n")
  }
}

export class SourceError extends Data.TaggedError("SourceError")<{
  readonly source: string
  readonly reason: string
  /** the source did not answer (network, HTTP), as opposed to answering with something wrong */
  readonly unreachable?: boolean
}> {
  override get message() {
    return `source ${this.source}: ${this.reason}`
  }
}

export class StoreError extends Data.TaggedError("StoreError")<{
  readonly sha256: string
  readonly reason: string
}> {
  override get message() {
    return `content ${this.sha256.slice(0, 16)}: ${this.reason}`
  }
}

export class NotFoundError extends Data.TaggedError("NotFoundError")<{
  readonly what: string
  readonly name: string
}> {
  override get message() {
    return `no ${this.what} named ${this.name}`
  }
}

/** Desired rows or dependencies that no available trove satisfies. */
export class UnresolvableError extends Data.TaggedError("UnresolvableError")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return this.problems.length === 1
      ? `unresolvable: ${this.problems[0]}`
      : `unresolvable (${this.problems.length}): ${this.problems.join("; ")}`
  }
}

export class FileConflictError extends Data.TaggedError("FileConflictError")<{
  readonly path: string
  readonly troves: readonly [string, string]
}> {
  override get message() {
    return `file conflict: ${this.path} differs between ${this.troves[0]} and ${this.troves[1]}`
  }
}

/** A trove path the root cannot take: reserved, unsafe, or in the way of what the disk has. */
export class PathError extends Data.TaggedError("PathError")<{
  readonly path: string
  readonly trove: string
  /** what the plan would do with the path: install unless said */
  readonly action?: "install" | "remove"
  readonly reason: string
}> {
  override get message() {
    return `${this.trove} cannot ${this.action ?? "install"} ${this.path}: ${this.reason}`
  }
}

export class ApplyError extends Data.TaggedError("ApplyError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `apply failed at ${this.path}: ${this.reason}`
  }
}

export class LockError extends Data.TaggedError("LockError")<{
  readonly root: string
  readonly holder: string
  readonly waited: number
}> {
  override get message() {
    return `root ${this.root} is locked by ${this.holder}; gave up after ${this.waited} s (see --lock-timeout)`
  }
}

/** A content store that cannot be used: not a directory, not writable, inside the root, busy. */
export class StoreDirError extends Data.TaggedError("StoreDirError")<{
  readonly store: string
  readonly reason: string
}> {
  override get message() {
    return `store ${this.store}: ${this.reason}`
  }
}

export class StalePlanError extends Data.TaggedError("StalePlanError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message() {
    return `saved plan ${this.file} refused: ${this.reason}`
  }
}

/** A changeset file that cannot be applied here: damaged, untrusted, or made for another state. */
export class ChangesetError extends Data.TaggedError("ChangesetError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message() {
    return `changeset ${this.file} refused: ${this.reason}`
  }
}

/** A system call on a path failed in a way no other error explains (disk full, I/O error). */
export class IoError extends Data.TaggedError("IoError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

export type ConaryError =
  | UsageError
  | RootError
  | DatabaseError
  | ArchiveError
  | BadArchivesError
  | SourceError
  | StoreError
  | NotFoundError
  | UnresolvableError
  | FileConflictError
  | PathError
  | ApplyError
  | FlavorError
  | LockError
  | StoreDirError
  | StalePlanError
  | ChangesetError
  | IoError

const TAGS = new Set([
  "UsageError",
  "RootError",
  "DatabaseError",
  "ArchiveError",
  "BadArchivesError",
  "SourceError",
  "StoreError",
  "NotFoundError",
  "UnresolvableError",
  "FileConflictError",
  "PathError",
  "ApplyError",
  "FlavorError",
  "LockError",
  "StoreDirError",
  "StalePlanError",
  "ChangesetError",
  "IoError",
])

export const isConaryError = (e: unknown): e is ConaryError =>
  typeof e === "object" && e !== null && TAGS.has((e as { _tag?: string })._tag ?? "")

/** A system error as a user reads it: disk full and permissions said plainly. */
export const describeIo = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  if (err.code === "ENOSPC") return "no space left on device (disk full)"
  if (err.code === "EDQUOT") return "disk quota exceeded"
  if (err.code === "EACCES" || err.code === "EPERM") return `permission denied (${err.syscall ?? "write"})`
  if (err.code === "EROFS") return "read-only file system"
  if (err.code === "EISDIR" || err.code === "ERR_FS_EISDIR") return "is a directory"
  if (err.code === "ENOTEMPTY") return "is a non-empty directory"
  if (err.code === "EBUSY") return "busy (a mount point?)"
  // "ENOTDIR: not a directory, lstat '/x'" -> "not a directory (lstat)": the path is said by the caller.
  const m = /^[A-Z]+: (.*?), (\w+)(?: '.*')?$/.exec(err.message ?? "")
  if (m) return `${m[1]} (${m[2]})`
  return err.message ?? String(e)
}
