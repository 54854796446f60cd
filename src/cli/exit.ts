import * as Cause from "effect/Cause"
import { type ConaryError, printable } from "../errors.js"

// Exit codes, in one place (documented in README):
//   0  success; for `plan --detailed-exitcode`, no changes
//   1  error
//   2  `plan --detailed-exitcode`: changes pending
export const EXIT_OK = 0
export const EXIT_ERROR = 1
export const EXIT_CHANGES = 2

/** What a user sees for a failure: one line, or one per problem when it names several (unresolvable items, bad archives). */
export const errorLines = (e: ConaryError): string[] => {
  if (e._tag === "UnresolvableError" && e.problems.length > 1)
    return [...e.problems.map((p) => `conary: unresolvable: ${printable(p)}`), `conary: ${e.problems.length} unresolvable; nothing was planned`]
  if (e._tag === "BadArchivesError") return e.problems.map((p) => `conary: ${printable(p.message)}`)
  return [`conary: ${printable(e.message)}`]
}

/** Under --json, a failure is also a document on stdout, for scripts. */
export const errorDocument = (type: string, message: string) => ({ formatVersion: 1, error: { type, message } })

/**
 * For defects (bugs): say so plainly, in one line like every error; the
 * stack, for a report, with CONARY_DEBUG=1.
 */
export const defectLine = (cause: Cause.Cause<unknown>): string => {
  if (process.env.CONARY_DEBUG) return `conary: internal error: ${Cause.pretty(cause)}`
  const e = Cause.squash(cause)
  const text = (e instanceof Error ? e.message : String(e)).split("\n")[0]!
  return `conary: internal error (a bug; CONARY_DEBUG=1 shows where): ${printable(text)}`
}
