/**
 * The SW4RM envelope (PROTOCOLS.md §1), its enums, the ACK payload, and their
 * JSON wire form.
 *
 * Wire decisions:
 * - enums travel by name (`"DATA"`), as in protobuf's JSON mapping; the
 *   protocol numbers are in the `*Number` tables;
 * - `payload` travels base64-encoded whatever the content type, so a payload
 *   round-trips byte for byte;
 * - uint64 fields travel as JSON numbers and must be safe integers
 *   (≤ 2^53 − 1); larger values fail with `ValidationError`;
 * - `timestamp` travels as an RFC 3339 date-time (`2024-05-01T12:00:00Z`,
 *   with any offset and any number of fraction digits); other date formats are
 *   refused. It is kept to the millisecond: finer fractions are truncated, and
 *   it is written back in UTC with three fraction digits
 *   (`2024-05-01T12:00:00.000Z`);
 * - `payload` must be canonical base64: the unused bits before the padding
 *   are zero, so each byte string has one encoding (`QR==` is refused, not
 *   read as `QQ==`);
 * - ids and headers (`message_id`, `idempotency_token`, `producer_id`,
 *   `correlation_id`, `content_type`, `repo_id`, `worktree_id`,
 *   `hlc_timestamp`) are at most `maxIdLength` (256) UTF-16 code units long,
 *   an ACK's `note` at most `maxNoteLength` (4,096): every header is kept in
 *   the log and in memory for as long as its message is known, so its size
 *   must not be the sender's choice. Code units (JavaScript's `length`,
 *   JSON Schema's `maxLength` counts close to it) rather than bytes: checked
 *   without encoding, and 256 of them are at most 768 bytes of UTF-8.
 */
import { Arbitrary, Effect, Either, ParseResult, Schema } from "effect"
import { ValidationError } from "./Errors.js"
import { preview } from "../internal/bounds.js"
import { guarded, schemaDecoder } from "../internal/decode.js"

// ---------------------------------------------------------------------------
// Enums

const numbered = <const Names extends ReadonlyArray<string>, const Numbers extends ReadonlyArray<number>>(
  names: Names,
  numbers: Numbers
) => Object.fromEntries(names.map((name, i) => [name, numbers[i]])) as { readonly [K in Names[number]]: number }

const messageTypes = [
  "CONTROL",
  "DATA",
  "HEARTBEAT",
  "NOTIFICATION",
  "ACKNOWLEDGEMENT",
  "HITL_INVOCATION",
  "WORKTREE_CONTROL",
  "NEGOTIATION",
  "TOOL_CALL",
  "TOOL_RESULT",
  "TOOL_ERROR"
] as const
export const MessageType = Schema.Literal(...messageTypes)
export type MessageType = typeof MessageType.Type
export const MessageTypeNumber = numbered(messageTypes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])

const envelopeStates = ["SENT", "RECEIVED", "READ", "FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"] as const
export const EnvelopeState = Schema.Literal(...envelopeStates)
export type EnvelopeState = typeof EnvelopeState.Type
export const EnvelopeStateNumber = numbered(envelopeStates, [1, 2, 3, 4, 5, 6, 7])

const ackStages = ["RECEIVED", "READ", "FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"] as const
export const AckStage = Schema.Literal(...ackStages)
export type AckStage = typeof AckStage.Type
export const AckStageNumber = numbered(ackStages, [1, 2, 3, 4, 5, 6])

const errorCodes = [
  "BUFFER_FULL",
  "NO_ROUTE",
  "ACK_TIMEOUT",
  "AGENT_UNAVAILABLE",
  "AGENT_SHUTDOWN",
  "VALIDATION_ERROR",
  "PERMISSION_DENIED",
  "UNSUPPORTED_MESSAGE_TYPE",
  "OVERSIZE_PAYLOAD",
  "TOOL_TIMEOUT",
  "FORCED_PREEMPTION",
  "TTL_EXPIRED",
  "DUPLICATE_DETECTED",
  "ALREADY_IN_PROGRESS",
  "INTERNAL_ERROR"
] as const
export const ErrorCode = Schema.Literal(...errorCodes)
export type ErrorCode = typeof ErrorCode.Type
export const ErrorCodeNumber = numbered(errorCodes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 99])

const communicationClasses = ["PRIVILEGED", "STANDARD", "BULK"] as const
export const CommunicationClass = Schema.Literal(...communicationClasses)
export type CommunicationClass = typeof CommunicationClass.Type
export const CommunicationClassNumber = numbered(communicationClasses, [1, 2, 3])

const agentStates = [
  "INITIALIZING",
  "RUNNABLE",
  "SCHEDULED",
  "RUNNING",
  "WAITING",
  "WAITING_RESOURCES",
  "SUSPENDED",
  "RESUMED",
  "COMPLETED",
  "FAILED",
  "SHUTTING_DOWN",
  "RECOVERING"
] as const
export const AgentState = Schema.Literal(...agentStates)
export type AgentState = typeof AgentState.Type
export const AgentStateNumber = numbered(agentStates, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])

// ---------------------------------------------------------------------------
// Scalars

/**
 * A non-negative safe integer: the JSON form of protobuf's uint64. The range is
 * checked first: `Schema.int` refuses unsafe integers too, and 2^60 is out of
 * range, not "not an integer".
 */
export const Uint64 = Schema.Number.pipe(
  Schema.between(0, Number.MAX_SAFE_INTEGER, { message: () => `must be between 0 and ${Number.MAX_SAFE_INTEGER}` }),
  Schema.int({ message: () => "must be an integer" })
)
export const Uint32 = Schema.Number.pipe(
  Schema.between(0, 0xffffffff, { message: () => "must be between 0 and 4294967295" }),
  Schema.int({ message: () => "must be an integer" })
)
/** The longest id or header value, in UTF-16 code units. */
export const maxIdLength = 256
/** The longest ACK note, in UTF-16 code units (4 KiB). */
export const maxNoteLength = 4096
/** The most items of a list in a request (an agent's capabilities, its modalities). */
export const maxListLength = 256

const lengthOf = (value: unknown) => typeof value === "string" || Array.isArray(value) ? value.length : 0

/** At most `limit` UTF-16 code units, with a message that says so and how long the value was. */
export const atMost = <S extends Schema.Schema.Any>(limit: number) =>
  Schema.maxLength<S>(limit, {
    message: (issue) => `must be at most ${limit} characters (UTF-16 code units), got ${lengthOf(issue.actual)}`
  })

/** At most `limit` items. */
export const atMostItems = <S extends Schema.Schema.Any>(limit: number) =>
  Schema.maxItems<S>(limit, { message: (issue) => `must have at most ${limit} items, got ${lengthOf(issue.actual)}` })

export const Id = Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }), atMost(maxIdLength))
/** A header that may be empty: as long as an id at most. */
export const Header = Schema.String.pipe(atMost(maxIdLength))
/** Free text a caller adds (an ACK's note). */
export const Note = Schema.String.pipe(atMost(maxNoteLength))

const rfc3339DateTime = new RegExp(
  "^(\\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])" +
    "[Tt]([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d+)?" +
    "([Zz]|[+-]([01]\\d|2[0-3]):[0-5]\\d)$"
)

// `Date` reads far more than RFC 3339 ("2024", "May 1, 2024") and rolls a 30 February over into March.
const isRfc3339DateTime = (text: string) => {
  const parts = rfc3339DateTime.exec(text)
  if (parts === null) return false
  const day = Number(parts[3])
  if (day <= 28) return true
  const date = new Date(0)
  date.setUTCFullYear(Number(parts[1]), Number(parts[2]) - 1, day)
  return date.getUTCDate() === day
}

const Rfc3339DateTime = Schema.String.pipe(
  Schema.filter(isRfc3339DateTime, { message: () => "must be an RFC 3339 date-time, e.g. 2024-05-01T12:00:00Z" })
)

/** 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z: the instants RFC 3339 can write. */
export const rfc3339Range = { min: -62167219200000, max: 253402300799999 }

/**
 * RFC 3339 on the wire, and only instants it can write (four-digit years): an
 * envelope built in code with a later one must fail at `send`, not when its
 * event is written to the log, along with everything appended with it.
 * Arbitrary values stay within that range so they print back the same way.
 */
export const Timestamp = Schema.compose(
  Rfc3339DateTime,
  Schema.DateTimeUtc.pipe(
    Schema.filter((time) => time.epochMillis >= rfc3339Range.min && time.epochMillis <= rfc3339Range.max, {
      message: () => "must be between the years 0000 and 9999"
    })
  )
).annotations({
  arbitrary: () => (fc) =>
    fc.integer({ min: 0, max: 253402300799999 }).map((ms) => Schema.decodeSync(Schema.DateTimeUtcFromNumber)(ms))
})

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/** Bits that no byte uses must be zero, or a byte string would have several encodings ("QR==" reading as "QQ=="). */
const hasZeroUnusedBits = (text: string) => {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0
  if (padding === 0) return true
  const last = base64Alphabet.indexOf(text[text.length - 1 - padding])
  return (last & (padding === 2 ? 0b1111 : 0b11)) === 0
}

/**
 * Bytes as standard base64 (RFC 4648, padded). Node's own codec does the work:
 * Effect's portable one builds the string a character at a time, which costs
 * more than the rest of an append. Decoding is strict (alphabet, padding,
 * length, unused bits), so a payload that is not base64 fails instead of
 * being read as something else.
 */
export const Base64Bytes = Schema.transformOrFail(Schema.String, Schema.Uint8ArrayFromSelf, {
  strict: true,
  decode: (text, _, ast) => {
    if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
      return ParseResult.fail(new ParseResult.Type(ast, text, "must be base64 (RFC 4648, padded)"))
    }
    if (!hasZeroUnusedBits(text)) {
      return ParseResult.fail(new ParseResult.Type(ast, text, "must be canonical base64: unused bits must be zero"))
    }
    return ParseResult.succeed(new Uint8Array(Buffer.from(text, "base64")))
  },
  encode: (bytes) => ParseResult.succeed(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"))
}).annotations({ identifier: "Base64Bytes" })

// ---------------------------------------------------------------------------
// Envelope

const EnvelopeFields = Schema.Struct({
  message_id: Id,
  idempotency_token: Schema.optional(Id),
  producer_id: Id,
  correlation_id: Header,
  sequence_number: Uint64,
  retry_count: Uint32,
  message_type: MessageType,
  content_type: Id,
  content_length: Uint64,
  repo_id: Schema.optional(Header),
  worktree_id: Schema.optional(Header),
  hlc_timestamp: Schema.optional(Header),
  ttl_ms: Uint64,
  timestamp: Timestamp,
  payload: Base64Bytes,
  state: EnvelopeState
})

export const Envelope = EnvelopeFields.pipe(
  Schema.filter((envelope) =>
    envelope.content_length === envelope.payload.length ||
    {
      path: ["content_length"],
      message: `must equal the payload's byte length (${envelope.payload.length}), got ${envelope.content_length}`
    }, {
    identifier: "Envelope",
    arbitrary: () => () =>
      Arbitrary.make(EnvelopeFields).map((envelope) => ({ ...envelope, content_length: envelope.payload.length }))
  })
)
export type Envelope = typeof Envelope.Type
/** The JSON wire form of an envelope. */
export type EnvelopeJson = typeof Envelope.Encoded

// ---------------------------------------------------------------------------
// ACK payload (the payload of an ACKNOWLEDGEMENT envelope)

export const AckPayload = Schema.Struct({
  ack_for_message_id: Id,
  ack_stage: AckStage,
  error_code: Schema.optional(ErrorCode),
  note: Schema.optional(Note)
})
export type AckPayload = typeof AckPayload.Type
export type AckPayloadJson = typeof AckPayload.Encoded

/**
 * An enum by its name or by its protocol number: SW4RM's own clients write
 * an ACK's JSON payload with the protobuf numbers (`"ack_stage": 1`),
 * Switchboard with the names. `none` are the values that mean "not given"
 * (protobuf's 0, `..._UNSPECIFIED`), where the field is optional.
 */
const byNameOrNumber = <L extends string>(
  members: Schema.Schema<L>,
  numbers: { readonly [K in L]: number },
  what: string,
  none: ReadonlyArray<string | number> = []
) => {
  const byNumber = new Map(Object.entries<number>(numbers).map(([name, number]) => [number, name as L]))
  const names = new Set<string>(Object.keys(numbers))
  const to = none.length === 0 ? members : Schema.UndefinedOr(members)
  return Schema.transformOrFail(Schema.Union(Schema.String, Schema.Number), to as Schema.Schema<L>, {
    strict: true,
    decode: (value, _, ast) => {
      if (none.includes(value)) return ParseResult.succeed(undefined as unknown as L)
      const name = typeof value === "number" ? byNumber.get(value) : names.has(value) ? value as L : undefined
      return name !== undefined ? ParseResult.succeed(name) : ParseResult.fail(
        new ParseResult.Type(ast, value, `Expected an ${what} (one of ${[...names].join(", ")}) or its number, actual ${preview(value)}`)
      )
    },
    encode: (name) => ParseResult.succeed(name)
  })
}

/**
 * The payload of an ACKNOWLEDGEMENT envelope as it is taken from outside:
 * `ack_stage` and `error_code` by name or by number (an error code of 0, or
 * `ERROR_CODE_UNSPECIFIED`, is none), decoded to `AckPayload`.
 */
export const AckPayloadInput = Schema.Struct({
  ack_for_message_id: Id,
  ack_stage: byNameOrNumber(AckStage, AckStageNumber, "AckStage"),
  error_code: Schema.optional(byNameOrNumber(ErrorCode, ErrorCodeNumber, "ErrorCode", [0, "ERROR_CODE_UNSPECIFIED"])),
  note: Schema.optional(Note)
})

/** An ACK as `Router.ack` takes it: the acknowledging agent, the message and the stage. */
export const AckRequest = Schema.Struct({
  /** The acknowledging agent: a recipient of the message. */
  agent_id: Id,
  message_id: Id,
  stage: AckStage,
  error_code: Schema.optional(ErrorCode),
  note: Schema.optional(Note),
  /**
   * The delivery acknowledged, as it came (`Delivery.delivery_seq`). With it,
   * an ACK of a delivery made before the message was redriven is only
   * recorded, late; without it, the ACK is taken for the message's current
   * deliveries.
   */
  delivery_seq: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /**
   * FAILED only: the message also goes to the dead letters, to be redriven
   * (SW4RM's `AckDelivery` with PERMANENT_FAILURE). A FAILED without it
   * just ends the message.
   */
  dead_letter: Schema.optional(Schema.Boolean)
})
export type AckRequest = typeof AckRequest.Type

// ---------------------------------------------------------------------------
// Wire codecs: every failure is a ValidationError naming the field

const decodeEither = <A, I>(schema: Schema.Schema<A, I>, subject: string) => {
  const decode = schemaDecoder(schema, { onExcessProperty: "error" })
  return (input: unknown): Either.Either<A, ValidationError> =>
    Either.mapLeft(decode(input), (error) => ValidationError.fromParseError(subject, error))
}
const decodeWith = <A, I>(schema: Schema.Schema<A, I>, subject: string): (input: unknown) => Effect.Effect<A, ValidationError> =>
  decodeEither(schema, subject)
/** JSON text is parsed first: what it holds is then checked (its depth too) like any other input. */
const decodeJsonWith = <A, I>(schema: Schema.Schema<A, I>, subject: string) => {
  const parse = decodeEither(Schema.parseJson(), subject)
  const decode = decodeEither(schema, subject)
  return (input: unknown): Effect.Effect<A, ValidationError> => Either.flatMap(parse(input), decode)
}
const encodeWith = <A, I>(schema: Schema.Schema<A, I>, subject: string) => {
  const encode = guarded(schema.ast, Schema.encodeEither(schema, { errors: "all" }))
  return (value: A): Effect.Effect<I, ValidationError> =>
    Either.mapLeft(encode(value), (error) => ValidationError.fromParseError(subject, error))
}

/** Decodes an envelope from its JSON wire form (an already parsed value). */
export const decodeEnvelope = decodeWith(Envelope, "envelope")
/** Encodes an envelope to its JSON wire form. */
export const encodeEnvelope = encodeWith(Envelope, "envelope")
/** Decodes an envelope from JSON text. */
export const decodeEnvelopeJson = decodeJsonWith(Envelope, "envelope")
/** Encodes an envelope to JSON text. */
export const encodeEnvelopeJson = encodeWith(Schema.parseJson(Envelope), "envelope")

/** Decodes an ACK payload from outside: enums by name or by number (`AckPayloadInput`). */
export const decodeAckPayload = decodeWith(AckPayloadInput, "ack")
export const encodeAckPayload = encodeWith(AckPayload, "ack")
