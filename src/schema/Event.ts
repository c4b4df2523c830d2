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
import { Either, type ParseResult, Schema, SchemaAST } from "effect"
import { depthError, maxDepth, maxShownText, preview, treeOf } from "../internal/bounds.js"
import { UndecodableRecord, ValidationError } from "./Errors.js"
import { guarded } from "../internal/decode.js"
import { compileFast, type Fast, Invalid, isRecord, Unsure } from "../internal/fastSchema.js"
import { ArcpEvent } from "./ArcpEvents.js"
import { GatewayEvent } from "./GatewayEvents.js"
import { HitlEvent } from "./Hitl.js"
import { NegotiationEvent } from "./Negotiation.js"
import { RouterEvent } from "./RouterEvents.js"
import { SchedulerEvent } from "./SchedulerEvents.js"
import { WorktreeEvent } from "./Worktree.js"

// ---------------------------------------------------------------------------
// Events

export const Event = Schema.Union(
  ...RouterEvent.members,
  ...GatewayEvent.members,
  ...ArcpEvent.members,
  ...SchedulerEvent.members,
  ...WorktreeEvent.members,
  ...NegotiationEvent.members,
  ...HitlEvent.members
)
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
  MessageAcked: 3,
  MessageRequeued: 3,
  MessageTimedOut: 2,
  MessageRedriven: 1,
  AuditRecorded: 1,
  PolicyLoaded: 1,
  PolicyRemoved: 1,
  ApprovalOpened: 2,
  ApprovalResolved: 1,
  ApprovalUsed: 1,
  ApprovalLapsed: 1,
  AgentSuspended: 1,
  AgentResumed: 1,
  AgentKilled: 1,
  GatewayHalted: 1,
  GatewayUnhalted: 1,
  BudgetCharged: 1,
  BudgetExhaustedRecorded: 1,
  LeaseGranted: 1,
  ArcpSessionOpened: 1,
  ArcpSessionResumed: 1,
  ArcpSessionDetached: 1,
  ArcpSessionExpired: 1,
  ArcpSessionAcked: 1,
  ArcpJobAccepted: 1,
  ArcpJobRejected: 1,
  ArcpJobEvent: 1,
  ArcpJobCancelRequested: 1,
  ArcpJobFinished: 1,
  ArcpJobSubscribed: 1,
  ArcpJobUnsubscribed: 1,
  TaskSubmitted: 1,
  TaskDispatched: 1,
  TaskPreemptionRequested: 1,
  TaskSectionEntered: 1,
  TaskSectionExited: 1,
  TaskRequeued: 1,
  TaskFinished: 1,
  TaskModified: 1,
  AgentStateTimedOut: 1,
  AgentShutdownRequested: 1,
  ActivityPurged: 1,
  WorktreeBound: 1,
  WorktreeUnbound: 1,
  WorktreeSwitchRequested: 1,
  WorktreeSwitchApproved: 1,
  WorktreeReturnedHome: 1,
  WorktreeBindFailed: 1,
  WorktreeBindRetried: 1,
  RoomOpened: 1,
  VoteCast: 1,
  RoomDecided: 1,
  RoomResolved: 1,
  HitlInvoked: 1,
  HitlDecided: 1,
  HitlExtended: 1,
  HitlWithdrawn: 1
}

/**
 * Upcasters: `upcasters[type][v]` turns the encoded payload of version `v` into
 * that of version `v + 1`, JSON data into JSON data.
 *
 * Every change so far only widened an event, so a version 1 payload is
 * already a valid version 2 one; the bump is for older readers, which then
 * refuse a record as newer than they know instead of as invalid.
 */
export const upcasters: {
  readonly [K in EventType]?: { readonly [version: number]: (encoded: unknown) => unknown }
} = {
  // 2 adds the reason "subscriber_left"; 3 the reason "released".
  MessageRequeued: { 1: (encoded) => encoded, 2: (encoded) => encoded },
  // 2 adds `redact`, the paths still redacted once approved.
  ApprovalOpened: { 1: (encoded) => encoded },
  // 2 adds the error code AGENT_SHUTDOWN.
  MessageTimedOut: { 1: (encoded) => encoded },
  // 2 adds `delivery_seq`, the delivery an ACK names; 3 adds `dead_letter`,
  // and a recipient's RECEIVED (recorded, changing nothing).
  MessageAcked: { 1: (encoded) => encoded, 2: (encoded) => encoded }
}

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
// Stored events

const decodeOptions: SchemaAST.ParseOptions = { onExcessProperty: "error" }
/**
 * How deeply a record read back may nest before Schema is asked about it:
 * twice what input may (`maxDepth`), so that every event built from input
 * within that bound, wrapped in its record, reads back. The fast path takes a
 * valid record of any depth it can walk; this guards only Schema's fallback.
 */
const maxRecordDepth = 2 * maxDepth
const encodeEventEither = guarded(Event.ast, Schema.encodeEither(Event))
const decodeEventEither = guarded(Event.ast, Schema.decodeUnknownEither(Event, decodeOptions))

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
    codec = {
      decode: compileFast(member.ast, true, decodeOptions, "json"),
      encode: compileFast(member.ast, false, {})
    }
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
  let payload: string
  try {
    payload = JSON.stringify(encoded.right)
  } catch (error) {
    // Json values are checked by shape; `JSON.stringify` can still throw (a non-enumerable `toJSON`, deep nesting).
    const reason = error instanceof Error ? error.message : "it cannot be written"
    return Either.left(ValidationError.single("event", "", `cannot be written as JSON: ${reason}`))
  }
  return Either.right({ type, version: eventVersions[type], payload })
}

const undecodable = (offset: number, reason: string) => Either.left(new UndecodableRecord({ offset, reason }))

export const decodeEvent = (offset: number, stored: StoredEvent): Either.Either<Event, UndecodableRecord> => {
  const current = eventVersions[stored.type as EventType] as number | undefined
  if (current === undefined) return undecodable(offset, `unknown event type ${preview(stored.type, maxShownText)}`)
  if (!Number.isInteger(stored.version) || stored.version < 1) {
    return undecodable(offset, `invalid version ${preview(stored.version)}`)
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
  const deep = depthError(encoded, maxRecordDepth)
  const decoded = deep === undefined ? decodeEventEither(encoded) : Either.left(deep)
  if (Either.isLeft(decoded)) return undecodable(offset, treeOf(decoded.left.issue))
  if (decoded.right._tag !== stored.type) {
    return undecodable(offset, `payload is a ${decoded.right._tag}, stored as ${stored.type}`)
  }
  return Either.right(decoded.right)
}
