import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** The first problem of a failed decode, as `files.3.mode: Expected number, actual "x"`. */
export const firstIssue = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return error.message
  const where = first.path.length > 0 ? `${first.path.join(".")}: ` : ""
  return `${where}${first.message}`.replace(/\s+/g, " ")
}

/** Decodes with Schema; returns the value or a one-line description of what is wrong. */
export const decodeOrProblem = <A, I>(schema: Schema.Schema<A, I>, value: unknown): Either.Either<A, string> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })(value), firstIssue)
