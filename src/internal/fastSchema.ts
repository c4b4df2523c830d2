/**
 * Schemas compiled to plain functions, for the hot paths (every append, every
 * replayed record, every send).
 *
 * Internal, and used only where a benchmark shows it to matter: the event
 * codec (`src/schema/Event.ts`), the envelope on `Router.send` and the ACK
 * request of `Router.ack` / `ackMany` (once per message, like the send: in
 * the router bench, Schema's decoder for it costs 1.9 µs against 0.25 µs
 * here, a tenth of the router's own work per message). It reads
 * SchemaAST's node kinds, which are Schema's own business and may change
 * under it; every other decoder is Schema itself (`./decode.ts`).
 *
 * Schema's parser interprets the AST node by node and wraps every step in an
 * Either: for a message event that costs several times the JSON and SQL work
 * around it, on every append and every replay. `compileFast` turns an AST into
 * plain closures that only know how to succeed. Whatever they cannot vouch for
 * (a failure, an effectful transformation, a kind of node they do not handle)
 * goes back to Schema, which stays the reference: a value the fast path returns
 * is the value Schema returns, and every error is Schema's own.
 *
 * Decoders that refuse excess properties look at every own key, as Schema's
 * check does (`Reflect.ownKeys`), so a non-enumerable or symbol key is refused
 * too. Those compiled for JSON data (as `JSON.parse` and the upcasters give
 * it, on the read path of every record), whose keys are all own, enumerable
 * strings, look at `Object.keys`: the same keys, at a fraction of the cost.
 */
import { Either, Option, ParseResult, Schema, SchemaAST } from "effect"
import { ValidationError } from "../schema/Errors.js"
import { tooDeep } from "./bounds.js"
import { guarded, schemaDecoder } from "./decode.js"

/** Schema refuses the input too. */
export const Invalid: unique symbol = Symbol("Invalid")
/** Only Schema can tell. */
export const Unsure: unique symbol = Symbol("Unsure")
export type Fast = (input: unknown) => unknown

export const isRecord = (input: unknown): input is { readonly [key: PropertyKey]: unknown } =>
  typeof input === "object" && input !== null && !Array.isArray(input)

const hasOwn = (value: object, key: PropertyKey) => Object.prototype.hasOwnProperty.call(value, key)

/** What a parse step of Schema's gave: anything but an Either is an Effect, which only Schema runs. */
const outcome = (result: unknown): unknown =>
  Either.isEither(result) ? (Either.isRight(result) ? result.right : Invalid) : Unsure

const then = (first: Fast, next: (value: unknown, input: unknown) => unknown): Fast => (input) => {
  const value = first(input)
  return value === Invalid || value === Unsure ? value : next(value, input)
}

/**
 * The fast path for `ast`. A throw on the way (a stack overflow on deeply
 * nested input, a getter that throws) means only that it cannot vouch for the
 * input: Schema then decides, and `guarded` turns its own throws into ParseErrors.
 */
export const compileFast = (
  ast: SchemaAST.AST,
  isDecoding: boolean,
  options: SchemaAST.ParseOptions,
  input: "unknown" | "json" = "unknown"
): Fast => {
  const fast = compileNode(ast, isDecoding, options, input === "json")
  return (input) => {
    try {
      return fast(input)
    } catch {
      return Unsure
    }
  }
}

const compileNode = (
  ast: SchemaAST.AST,
  isDecoding: boolean,
  options: SchemaAST.ParseOptions,
  isJson: boolean
): Fast => {
  const bySchema = (): Fast => {
    const parse = (isDecoding ? ParseResult.decodeUnknownEither : ParseResult.encodeUnknownEither)(
      Schema.make(ast),
      options
    )
    return (input) => outcome(parse(input))
  }
  if (
    Option.isSome(SchemaAST.getParseOptionsAnnotation(ast)) ||
    Option.isSome(SchemaAST.getDecodingFallbackAnnotation(ast))
  ) return bySchema()

  switch (ast._tag) {
    case "Literal": {
      const literal = ast.literal
      return (input) => input === literal ? input : Invalid
    }
    case "StringKeyword":
      return (input) => typeof input === "string" ? input : Invalid
    case "NumberKeyword":
      return (input) => typeof input === "number" ? input : Invalid
    case "BooleanKeyword":
      return (input) => typeof input === "boolean" ? input : Invalid
    case "UndefinedKeyword":
      return (input) => input === undefined ? input : Invalid
    case "UnknownKeyword":
    case "AnyKeyword":
      return (input) => input
    case "Declaration": {
      const parse = (isDecoding ? ast.decodeUnknown : ast.encodeUnknown)(...ast.typeParameters)
      return (input) => outcome(parse(input, options, ast))
    }
    case "Refinement": {
      if (isDecoding) {
        return then(
          compileNode(ast.from, true, options, isJson),
          (value) => Option.isNone(ast.filter(value, options, ast)) ? value : Invalid
        )
      }
      // Schema checks the whole type, then encodes. One pass does both: encoding
      // `from` checks every part of the input (each inner refinement with it),
      // and the filter then runs on the input, the value of the refined type.
      const filter = ast.filter
      return then(
        compileNode(ast.from, false, options, isJson),
        (encoded, input) => Option.isNone(filter(input, options, ast)) ? encoded : Invalid
      )
    }
    case "Transformation": {
      const transformation = ast.transformation
      if (transformation._tag === "TypeLiteralTransformation") return bySchema()
      const from = isDecoding ? compileNode(ast.from, true, options, isJson) : compileNode(ast.to, false, options, isJson)
      const to = compileNode(isDecoding ? ast.to : ast.from, isDecoding, options, isJson)
      if (transformation._tag === "ComposeTransformation") return then(from, to)
      const transform = isDecoding ? transformation.decode : transformation.encode
      return then(from, (value, input) => {
        const result = outcome(transform(value, options, ast, input))
        return result === Invalid || result === Unsure ? result : to(result)
      })
    }
    case "TypeLiteral": {
      if (
        ast.indexSignatures.length > 0 || options.exact === true || options.onExcessProperty === "preserve" ||
        options.propertyOrder === "original"
      ) return bySchema()
      const properties = ast.propertySignatures.map((property) => ({
        name: property.name,
        isOptional: property.isOptional,
        parse: compileNode(property.type, isDecoding, options, isJson)
      }))
      const names = new Set(properties.map((property) => property.name))
      const refuseExcess = options.onExcessProperty === "error"
      return (input) => {
        if (!isRecord(input)) return Invalid
        if (refuseExcess) {
          const keys = isJson ? Object.keys(input) : Reflect.ownKeys(input)
          for (let i = 0; i < keys.length; i++) if (!names.has(keys[i])) return Invalid
        }
        const output: Record<PropertyKey, unknown> = {}
        for (const property of properties) {
          if (property.isOptional && !hasOwn(input, property.name)) continue
          const value = property.parse(input[property.name])
          if (value === Invalid || value === Unsure) return value
          output[property.name] = value
        }
        return output
      }
    }
    case "TupleType": {
      // Arrays (`Schema.Array(item)`): no fixed elements, one rest type.
      if (ast.elements.length > 0 || ast.rest.length !== 1) return bySchema()
      const item = compileNode(ast.rest[0].type, isDecoding, options, isJson)
      return (input) => {
        if (!Array.isArray(input)) return Invalid
        const output: Array<unknown> = new Array(input.length)
        for (let i = 0; i < input.length; i++) {
          const value = item(input[i])
          if (value === Invalid || value === Unsure) return value
          output[i] = value
        }
        return output
      }
    }
    case "Union": {
      const literals = ast.types.map((member) => SchemaAST.isLiteral(member) ? member.literal : undefined)
      if (literals.every((literal) => typeof literal === "string")) {
        const allowed = new Set(literals)
        return (input) => allowed.has(input as string) ? input : Invalid
      }
      // Each member checks for itself: a value of one member proves nothing about another.
      const members = ast.types.map((member) => compileNode(member, isDecoding, options, isJson))
      // Schema gives the first of its candidates that succeeds: when exactly one
      // member succeeds, that is the one.
      return (input) => {
        let found: unknown = Invalid
        for (const member of members) {
          const value = member(input)
          if (value === Unsure) return Unsure
          if (value !== Invalid) {
            if (found !== Invalid) return Unsure
            found = value
          }
        }
        return found
      }
    }
    default:
      return bySchema()
  }
}

/**
 * A decoder from `unknown` (what `Schema.decodeUnknownEither(schema, options)`
 * does), on the fast path; Schema gives every error. Input nested more than
 * `maxDepth` deep is refused, as by every decoder of outside input (the
 * check is a loop over a few keys for a flat value such as an envelope).
 */
export const fastDecoder = <A, I>(schema: Schema.Schema<A, I>, options: SchemaAST.ParseOptions = {}) => {
  const fast = compileFast(schema.ast, true, options)
  const slow = schemaDecoder(schema, options)
  return (input: unknown): Either.Either<A, ParseResult.ParseError> => {
    // Too deep: `slow` says so.
    const result = tooDeep(input) === undefined ? fast(input) : Invalid
    return result === Invalid || result === Unsure ? slow(input) : Either.right(result as A)
  }
}

/**
 * A validator of values already of the schema's type (what `Schema.validateEither`
 * does), on the fast path; Schema gives every error.
 */
export const fastValidator = <A, I>(schema: Schema.Schema<A, I>) => fastDecoder(Schema.typeSchema(schema))

/**
 * `inputDecoder` (`./decode.ts`) on the fast path: what does not decode is a
 * ValidationError about `subject`, naming every problem.
 */
export const fastInputDecoder = <A, I>(schema: Schema.Schema<A, I>, subject: string, options?: SchemaAST.ParseOptions) => {
  const decode = fastDecoder(schema, options)
  return (input: unknown): Either.Either<A, ValidationError> =>
    Either.mapLeft(decode(input), (error) => ValidationError.fromParseError(subject, error))
}

/**
 * An encoder of values of the schema's type to its encoded form (what
 * `Schema.encodeEither(schema)` does), on the fast path; Schema gives every
 * error. For what the runtime itself built: frames it sends, not input.
 */
export const fastEncoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const fast = compileFast(schema.ast, false, {})
  const slow = guarded(schema.ast, Schema.encodeEither(schema))
  return (value: A): Either.Either<I, ParseResult.ParseError> => {
    const result = fast(value)
    return result === Invalid || result === Unsure ? slow(value) : Either.right(result as I)
  }
}
