import * as Cause from "effect/Cause"
import type { ConaryError } from "../errors.js"

// Exit codes, in one place (documented in README):
//   0  success; for `plan --detailed-exitcode`, no changes
//   1  error
//   2  `plan --detailed-exitcode`: changes pending
export const EXIT_OK = 0
export const EXIT_ERROR = 1
export const EXIT_CHANGES = 2

/** The one line a user sees for a failure. */
export const errorLine = (e: ConaryError): string => `conary: ${e.message}`

/** For defects (bugs): say so plainly, with the cause for a report. */
export const defectLine = (cause: Cause.Cause<unknown>): string => `conary: internal error: ${Cause.pretty(cause)}`
