/**
 * The facts of the event log: a tagged union of events, each with a schema
 * version, and the committed record that wraps one.
 *
 * A stored event is `(type, version, payload)` where `payload` is the JSON text
 * of the event's encoded form. When an event's shape changes, its version is
 * bumped and an upcaster from the old version is added below, so old records
 * still decode; a record from a newer version than this code knows is refused
 * (never guessed at).
 */
import { Either, Option, ParseResult, Schema, SchemaAST } from "effect"
import { UndecodableRecord, ValidationError } from "./Errors.js"
import { GatewayEvent } from "./GatewayEvents.js"
import { RouterEvent } from "./RouterEvents.js"

// ---------------------------------------------------------------------------
// Events

export const Event = Schema.Union(...RouterEvent.members, ...GatewayEvent.members)
export type Event = typeof Event.Type
export type EventType = Event["_tag"]

/** The current schema version of every event type. */
export const eventVersions: { readonly [K in EventType]: number } = {
  AgentRegistered: 1,
  AgentHeartbeat: 1,
  AgentDeregistered: 1,
  AgentLivenessLost: 1,
  TopologyEdgeAdded: 1,
  MessageAccepted: 1,
  MessageRefused: 1,
  MessageDelivered: 1,
  MessageAcked: 1,
  MessageRequeued: 1,
  MessageTimedOut: 1,
  MessageRedriven: 1,
  AuditRecorded: 1,
  PolicyLoaded: 1,
  PolicyRemoved: 1,
  ApprovalOpened: 1,
  ApprovalResolved: 1,
  ApprovalUsed: 1,
  AgentSuspended: 1,
  AgentResumed: 1,
  AgentKilled: 1,
  GatewayHalted: 1,
  GatewayUnhalted: 1,
  BudgetCharged: 1,
  BudgetExhaustedRecorded: 1,
  LeaseGranted: 1
}

/**
 * Upcasters: `upcasters[type][v]` turns the encoded payload of version `v` into
 * that of version `v + 1`, JSON data into JSON data. Empty while every event is
 * at version 1.
 */
export const upcasters: {
  readonly [K in EventType]?: { readonly [version: number]: (encoded: unknown) => unknown }
} = {}

// ---------------------------------------------------------------------------
// Records

/** A committed event: its global, gap-free offset (from 1) and when it was committed (epoch ms). */
export interface EventRecord {
  readonly offset: number
  readonly committedAt: number
  readonly event: Event
}

/** An event as stored: what every EventLog backend writes and reads back. */
export interface StoredEvent {
  readonly type: string
  readonly version: number
  readonly payload: string
}

// ---------------------------------------------------------------------------
// Fast codecs
//
// Schema's parser interprets the AST node by node and wraps every step in an
// Either: for a message event that costs several times the JSON and SQL work
// around it, on every append and every replay. `compileFast` turns an AST into
// plain closures that only know how to succeed. Whatever they cannot vouch for
// (a failure, an effectful transformation, a kind of node they do not handle)
// goes back to Schema, which stays the reference: a value the fast path returns
// is the value Schema returns, and every error is Schema's own.
//
// Decoders read JSON data (as `JSON.parse` and the upcasters give it), whose
// keys are all own, enumerable strings: `Object.keys` then sees every key that
// Schema's check for excess properties (`Reflect.ownKeys`) would, at a fraction
// of the cost.

/** Schema refuses the input too. */
const Invalid: unique symbol = Symbol("Invalid")
/** Only Schema can tell. */
const Unsure: unique symbol = Symbol("Unsure")
type Fast = (input: unknown) => unknown

const isRecord = (input: unknown): input is { readonly [key: PropertyKey]: unknown } =>
  typeof input === "object" && input !== null && !Array.isArray(input)

const hasOwn = (value: object, key: PropertyKey) => Object.prototype.hasOwnProperty.call(value, key)

const withoutRefinements = (ast: SchemaAST.AST): SchemaAST.AST =>
  SchemaAST.isRefinement(ast) ? withoutRefinements(ast.from) : ast

/** What a parse step of Schema's gave: anything but an Either is an Effect, which only Schema runs. */
const outcome = (result: unknown): unknown =>
  Either.isEither(result) ? (Either.isRight(result) ? result.right : Invalid) : Unsure

const then = (first: Fast, next: (value: unknown, input: unknown) => unknown): Fast => (input) => {
  const value = first(input)
  return value === Invalid || value === Unsure ? value : next(value, input)
}

/**
 * `checked`: when encoding, the input has already passed the check of its
 * whole type (as Schema makes every refinement do before encoding), so the
 * refinements inside need not run again.
 */
const compileFast = (
  ast: SchemaAST.AST,
  isDecoding: boolean,
  options: SchemaAST.ParseOptions,
  checked = false
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
          compileFast(ast.from, true, options),
          (value) => Option.isNone(ast.filter(value, options, ast)) ? value : Invalid
        )
      }
      const encode = compileFast(withoutRefinements(ast.from), false, options, true)
      return checked ? encode : then(compileFast(SchemaAST.typeAST(ast), true, options), encode)
    }
    case "Transformation": {
      const transformation = ast.transformation
      if (transformation._tag === "TypeLiteralTransformation") return bySchema()
      const from = isDecoding ? compileFast(ast.from, true, options) : compileFast(ast.to, false, options, checked)
      const to = compileFast(isDecoding ? ast.to : ast.from, isDecoding, options)
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
        parse: compileFast(property.type, isDecoding, options, checked)
      }))
      const names = new Set(properties.map((property) => property.name))
      const refuseExcess = options.onExcessProperty === "error"
      return (input) => {
        if (!isRecord(input)) return Invalid
        if (refuseExcess) {
          const keys = Object.keys(input)
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
    case "Union": {
      const literals = ast.types.map((member) => SchemaAST.isLiteral(member) ? member.literal : undefined)
      if (literals.every((literal) => typeof literal === "string")) {
        const allowed = new Set(literals)
        return (input) => allowed.has(input as string) ? input : Invalid
      }
      // Each member checks for itself: a value of one member proves nothing about another.
      const members = ast.types.map((member) => compileFast(member, isDecoding, options))
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

// ---------------------------------------------------------------------------
// Stored events

const decodeOptions: SchemaAST.ParseOptions = { onExcessProperty: "error" }
const encodeEventEither = Schema.encodeEither(Event)
const decodeEventEither = Schema.decodeUnknownEither(Event, decodeOptions)

/** The literal `_tag` of an event schema. */
const tagOf = (member: Schema.Schema.Any) => {
  const tag = SchemaAST.getPropertySignatures(SchemaAST.typeAST(member.ast)).find((property) => property.name === "_tag")
  return tag !== undefined && SchemaAST.isLiteral(tag.type) ? tag.type.literal : undefined
}

/** Each event type's fast codecs, compiled on first use. */
const fastCodecs = new Map<string, { readonly decode: Fast; readonly encode: Fast }>()
const fastCodec = (type: string) => {
  let codec = fastCodecs.get(type)
  if (codec === undefined) {
    const member = Event.members.find((member) => tagOf(member) === type)
    if (member === undefined) return undefined
    codec = { decode: compileFast(member.ast, true, decodeOptions), encode: compileFast(member.ast, false, {}) }
    fastCodecs.set(type, codec)
  }
  return codec
}

const encodeFast = (event: Event): Either.Either<typeof Event.Encoded, ParseResult.ParseError> => {
  // Callers may hand in anything: only Schema reports on what is not an event.
  const encoded = isRecord(event) && typeof event._tag === "string" ? fastCodec(event._tag)?.encode(event) : undefined
  return encoded === undefined || encoded === Invalid || encoded === Unsure
    ? encodeEventEither(event)
    : Either.right(encoded as typeof Event.Encoded)
}

export const encodeEvent = (event: Event): Either.Either<StoredEvent, ValidationError> => {
  const encoded = encodeFast(event)
  if (Either.isLeft(encoded)) return Either.left(ValidationError.fromParseError("event", encoded.left))
  const type = encoded.right._tag
  return Either.right({ type, version: eventVersions[type], payload: JSON.stringify(encoded.right) })
}

const undecodable = (offset: number, reason: string) => Either.left(new UndecodableRecord({ offset, reason }))

export const decodeEvent = (offset: number, stored: StoredEvent): Either.Either<Event, UndecodableRecord> => {
  const current = eventVersions[stored.type as EventType] as number | undefined
  if (current === undefined) return undecodable(offset, `unknown event type ${JSON.stringify(stored.type)}`)
  if (!Number.isInteger(stored.version) || stored.version < 1) {
    return undecodable(offset, `invalid version ${stored.version}`)
  }
  if (stored.version > current) {
    return undecodable(
      offset,
      `${stored.type} version ${stored.version} is newer than this version of Switchboard knows (${current})`
    )
  }
  let encoded: unknown
  try {
    encoded = JSON.parse(stored.payload)
  } catch (error) {
    return undecodable(offset, `payload is not JSON: ${(error as Error).message}`)
  }
  const steps = upcasters[stored.type as EventType]
  for (let version = stored.version; version < current; version++) {
    const step = steps?.[version]
    if (step === undefined) return undecodable(offset, `no upcaster for ${stored.type} from version ${version}`)
    encoded = step(encoded)
  }
  const fast = fastCodec(stored.type)?.decode(encoded)
  if (fast !== undefined && fast !== Invalid && fast !== Unsure) return Either.right(fast as Event)
  const decoded = decodeEventEither(encoded)
  if (Either.isLeft(decoded)) return undecodable(offset, ParseResult.TreeFormatter.formatErrorSync(decoded.left))
  if (decoded.right._tag !== stored.type) {
    return undecodable(offset, `payload is a ${decoded.right._tag}, stored as ${stored.type}`)
  }
  return Either.right(decoded.right)
}
