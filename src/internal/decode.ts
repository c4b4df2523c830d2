/**
 * Schema's own decoders, made safe for input from outside: whatever the
 * input, they give a value or a typed error, never a throw. Input nested more
 * than `maxDepth` deep (`./bounds.ts`) is refused before Schema sees it, and
 * errors show the input within bounds.
 *
 * Most requests are rare (a lease, a charge, a registration, a heartbeat):
 * Schema's interpreter costs nothing there that anyone could measure, and it
 * is the reference, so they go through it as it is. Only the paths a
 * benchmark shows to matter (the event codec, the envelope on send) take the
 * compiled fast path of `./fastSchema.ts`, which falls back to these.
 */
import { Either, ParseResult, Schema, type SchemaAST } from "effect"
import { ValidationError } from "../schema/Errors.js"
import { depthError, maxDepth } from "./bounds.js"

/**
 * Schema's own parser, with a throw turned into a ParseError. To pick a
 * union's member, Schema calls `String` on the value of its tag field, which
 * throws for an object such as `{ "toString": "" }` (valid JSON): bad input
 * must fail as bad input, never as a crash.
 */
export const guarded = <I, A>(
  ast: SchemaAST.AST,
  parse: (input: I) => Either.Either<A, ParseResult.ParseError>
) =>
(input: I): Either.Either<A, ParseResult.ParseError> => {
  try {
    return parse(input)
  } catch (error) {
    const reason = error instanceof Error ? error.message : "it cannot be read"
    return Either.left(ParseResult.parseError(new ParseResult.Type(ast, input, `cannot be checked: ${reason}`)))
  }
}

/**
 * Schema's decoder from `unknown`, reporting every problem, guarded, for
 * input nested at most `depth` deep.
 */
export const schemaDecoder = <A, I>(
  schema: Schema.Schema<A, I>,
  options: SchemaAST.ParseOptions = {},
  depth: number = maxDepth
) => {
  const decode = guarded(schema.ast, Schema.decodeUnknownEither(schema, { ...options, errors: "all" }))
  return (input: unknown): Either.Either<A, ParseResult.ParseError> => {
    const deep = depthError(input, depth)
    return deep === undefined ? decode(input) : Either.left(deep)
  }
}

/**
 * A decoder of a request from outside: what does not decode is a
 * ValidationError about `subject`, naming every problem.
 */
export const inputDecoder = <A, I>(schema: Schema.Schema<A, I>, subject: string, options?: SchemaAST.ParseOptions) => {
  const decode = schemaDecoder(schema, options)
  return (input: unknown): Either.Either<A, ValidationError> =>
    Either.mapLeft(decode(input), (error) => ValidationError.fromParseError(subject, error))
}

/**
 * A validator of a value that should already be of the schema's type (what
 * `Schema.validateEither` does), with the errors of `inputDecoder`.
 */
export const inputValidator = <A, I>(schema: Schema.Schema<A, I>, subject: string) =>
  inputDecoder(Schema.typeSchema(schema), subject)
