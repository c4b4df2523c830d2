/**
 * SW4RM's gRPC messages (PROTOCOLS.md §1, "SW4RM over gRPC", and the
 * `.proto` files in `proto/`) as the edge receives them from the protobuf
 * decoder, decoded into the runtime's own types, and the envelope back.
 *
 * The decoder (`@grpc/proto-loader` with `keepCase`, `longs: Number` and
 * `defaults: true`) gives every field, unset ones at protobuf's default:
 * enums as their numbers (an unknown number stays a number), 64-bit integers
 * as numbers (one past 2^53 comes out unsafe, and is refused here rather
 * than rounded), bytes as a Buffer, repeated fields as arrays, maps as
 * objects, and an unset message as `null`.
 *
 * Decisions where protobuf's defaults meet the runtime's rules:
 * - an enum's 0 (UNSPECIFIED) is refused where a value is required (a
 *   message's type), and stands for the default where there is one (an
 *   envelope's state is SENT, an agent's class STANDARD, a heartbeat's state
 *   RUNNING);
 * - an empty string is an absent optional field (`idempotency_token`,
 *   `repo_id`, ...), and fails where an id is required;
 * - what Switchboard has no place for is read and dropped: an envelope's
 *   `parent_correlation_id`, a descriptor's `reasoning_connectors`,
 *   `public_key`, `registration_type` and `max_concurrent_delegations`
 *   (bounded all the same: nothing unbounded is read).
 */
import { DateTime, ParseResult, Schema } from "effect"
import { AgentDescriptor } from "./Agent.js"
import {
  AgentState,
  AgentStateNumber,
  atMost,
  atMostItems,
  CommunicationClass,
  CommunicationClassNumber,
  Envelope,
  EnvelopeState,
  EnvelopeStateNumber,
  Header,
  Id,
  maxListLength,
  MessageType,
  MessageTypeNumber,
  Note,
  rfc3339Range,
  Uint32,
  Uint64
} from "./Envelope.js"

// ---------------------------------------------------------------------------
// Fields

/**
 * A protobuf enum, by number, as the runtime's name. Its 0 is `zero` where
 * the field has a default, and refused where a value is required.
 */
export const enumFromNumber = <L extends string>(
  members: Schema.Schema<L>,
  numbers: { readonly [K in L]: number },
  what: string,
  zero?: L
) => {
  const byNumber = new Map(Object.entries<number>(numbers).map(([name, number]) => [number, name as L]))
  return Schema.transformOrFail(Schema.Number, members, {
    strict: true,
    decode: (number, _, ast) => {
      const name = number === 0 ? zero : byNumber.get(number)
      if (name !== undefined) return ParseResult.succeed(name)
      return ParseResult.fail(
        new ParseResult.Type(ast, number, number === 0 ? `is required (0 is ${what}_UNSPECIFIED)` : `${number} is not a ${what}`)
      )
    },
    encode: (name) => ParseResult.succeed(numbers[name])
  })
}

/** An optional enum: 0 (UNSPECIFIED) is none, and the runtime's default applies. */
const optionalEnumFromNumber = <L extends string>(
  members: Schema.Schema<L>,
  numbers: { readonly [K in L]: number },
  what: string
) =>
  Schema.Union(
    Schema.transform(Schema.Literal(0), Schema.Undefined, { strict: true, decode: () => undefined, encode: () => 0 as const }),
    enumFromNumber(members, numbers, what)
  )

/** protobuf's empty string, an absent optional field. */
export const EmptyAsAbsent = Schema.transform(Schema.String, Schema.UndefinedOr(Schema.String), {
  strict: true,
  decode: (text) => text === "" ? undefined : text,
  encode: (text) => text ?? ""
})

/** A message field protobuf leaves null when unset, where one is required. */
export const Present = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.compose(
    Schema.transformOrFail(Schema.Unknown, Schema.Unknown, {
      strict: true,
      decode: (value, _, ast) =>
        value === null || value === undefined ? ParseResult.fail(new ParseResult.Type(ast, value, "is required")) : ParseResult.succeed(value),
      encode: ParseResult.succeed
    }),
    schema,
    { strict: false }
  )

export const ProtoTimestamp = Schema.Struct({ seconds: Schema.Number, nanos: Schema.Number })

/**
 * `google.protobuf.Timestamp`, kept to the millisecond like every timestamp
 * of the runtime, and within the years 0000 to 9999. Required: a TTL counts
 * from it.
 */
export const TimestampFromProto = Schema.transformOrFail(Schema.NullOr(ProtoTimestamp), Schema.DateTimeUtcFromSelf, {
  strict: true,
  decode: (timestamp, _, ast) => {
    if (timestamp === null) return ParseResult.fail(new ParseResult.Type(ast, timestamp, "is required"))
    const { nanos, seconds } = timestamp
    if (!Number.isSafeInteger(seconds) || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
      return ParseResult.fail(
        new ParseResult.Type(ast, timestamp, "must be whole seconds and 0 to 999,999,999 nanoseconds")
      )
    }
    const millis = seconds * 1000 + Math.floor(nanos / 1_000_000)
    if (millis < rfc3339Range.min || millis > rfc3339Range.max) {
      return ParseResult.fail(new ParseResult.Type(ast, timestamp, "must be between the years 0000 and 9999"))
    }
    return ParseResult.succeed(DateTime.unsafeMake(millis))
  },
  encode: (time) => {
    const seconds = Math.floor(time.epochMillis / 1000)
    return ParseResult.succeed({ seconds, nanos: (time.epochMillis - seconds * 1000) * 1_000_000 })
  }
})

/** Bytes, at most `limit` of them. */
const BytesUpTo = (limit: number) =>
  Schema.Uint8ArrayFromSelf.pipe(
    Schema.filter((bytes) => bytes.length <= limit || `must be at most ${limit} bytes, got ${bytes.length}`)
  )

const Names = Schema.Array(Header).pipe(atMostItems(maxListLength))

// ---------------------------------------------------------------------------
// The envelope

const ProtoEnvelope = Schema.Struct({
  message_id: Schema.String,
  idempotency_token: EmptyAsAbsent,
  producer_id: Schema.String,
  correlation_id: Schema.String,
  sequence_number: Uint64,
  retry_count: Uint32,
  message_type: enumFromNumber(MessageType, MessageTypeNumber, "MESSAGE_TYPE"),
  content_type: Schema.String,
  content_length: Uint64,
  repo_id: EmptyAsAbsent,
  worktree_id: EmptyAsAbsent,
  hlc_timestamp: EmptyAsAbsent,
  ttl_ms: Uint64,
  timestamp: TimestampFromProto,
  payload: Schema.Uint8ArrayFromSelf,
  state: enumFromNumber(EnvelopeState, EnvelopeStateNumber, "ENVELOPE_STATE", "SENT"),
  parent_correlation_id: Schema.String.pipe(atMost(256))
})

/**
 * `sw4rm.common.Envelope` as decoded from protobuf, to the runtime's
 * `Envelope` (every rule of which it is then checked against: ids and their
 * bounds, `content_length` against the payload), and back.
 */
export const EnvelopeFromProto = Schema.transform(ProtoEnvelope, Schema.typeSchema(Envelope), {
  strict: false,
  decode: ({ parent_correlation_id: _, ...envelope }) => envelope,
  encode: (envelope) => ({ ...envelope, parent_correlation_id: "" })
})
export type ProtoEnvelope = typeof ProtoEnvelope.Encoded

// ---------------------------------------------------------------------------
// RouterService

export const SendMessageRequest = Schema.Struct({ msg: Present(EnvelopeFromProto) })

export const StreamRequest = Schema.Struct({ agent_id: Id })

/** A delivery's `seq` is its delivery_seq, from 1; 0 (unset) names none. */
const Seq = Schema.Number.pipe(
  Schema.filter((seq) => (Number.isSafeInteger(seq) && seq >= 0) || "must be a whole number from 0 to 2^53 - 1")
)

export const DeliveryAckOutcome = Schema.Literal("DELIVERED", "PERMANENT_FAILURE")

export const DeliveryAckRequest = Schema.Struct({
  /** Empty: the agent of the caller's key. */
  agent_id: Header,
  seq: Seq,
  /** Empty: the message delivered as `seq`. */
  message_id: Header,
  outcome: enumFromNumber(DeliveryAckOutcome, { DELIVERED: 0, PERMANENT_FAILURE: 1 }, "DELIVERY_ACK_OUTCOME", "DELIVERED")
})

// ---------------------------------------------------------------------------
// RegistryService

const ProtoAgentDescriptor = Schema.Struct({
  agent_id: Id,
  name: Header,
  description: Note,
  capabilities: Names,
  communication_class: optionalEnumFromNumber(CommunicationClass, CommunicationClassNumber, "COMM_CLASS"),
  modalities_supported: Names,
  reasoning_connectors: Names,
  public_key: BytesUpTo(4096),
  registration_type: enumFromNumber(
    Schema.Literal("UNSPECIFIED", "STANDARD_AGENT", "SWARM_GATEWAY"),
    { UNSPECIFIED: 0, STANDARD_AGENT: 1, SWARM_GATEWAY: 2 },
    "REGISTRATION_TYPE",
    "UNSPECIFIED"
  ),
  max_concurrent_delegations: Uint32
})

/** `sw4rm.registry.AgentDescriptor` to the registry's own descriptor: what it has no place for is dropped. */
export const AgentDescriptorFromProto = Schema.transform(ProtoAgentDescriptor, Schema.encodedSchema(AgentDescriptor), {
  strict: false,
  decode: (agent) => ({
    agent_id: agent.agent_id,
    name: agent.name,
    description: agent.description,
    capabilities: agent.capabilities,
    ...(agent.communication_class === undefined ? {} : { communication_class: agent.communication_class }),
    modalities_supported: agent.modalities_supported
  }),
  encode: (agent) => ({
    agent_id: agent.agent_id,
    name: agent.name,
    description: agent.description ?? "",
    capabilities: agent.capabilities ?? [],
    communication_class: agent.communication_class,
    modalities_supported: agent.modalities_supported ?? [],
    reasoning_connectors: [],
    public_key: new Uint8Array(0),
    registration_type: "UNSPECIFIED" as const,
    max_concurrent_delegations: 0
  })
})

export const RegisterAgentRequest = Schema.Struct({ agent: Present(AgentDescriptorFromProto) })

/** What an agent reports of its health: at most `maxListLength` entries, each name an id's length, each value a note's. */
const Health = Schema.Record({ key: Header, value: Note }).pipe(
  Schema.filter((health) =>
    Object.keys(health).length <= maxListLength ||
    `must have at most ${maxListLength} entries, got ${Object.keys(health).length}`
  )
)

export const HeartbeatRequest = Schema.Struct({
  agent_id: Id,
  state: optionalEnumFromNumber(AgentState, AgentStateNumber, "AGENT_STATE"),
  health: Health
})

export const DeregisterAgentRequest = Schema.Struct({ agent_id: Id, reason: Note })
