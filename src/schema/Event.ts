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
import { Either, ParseResult, Schema } from "effect"
import { UndecodableRecord, ValidationError } from "./Errors.js"
import { RouterEvent } from "./RouterEvents.js"

// ---------------------------------------------------------------------------
// Events

export const Event = Schema.Union(...RouterEvent.members)
export type Event = typeof Event.Type
export type EventType = Event["_tag"]

/** The current schema version of every event type. */
export const eventVersions: { readonly [K in EventType]: number } = {
  AgentRegistered: 1,
  AgentHeartbeat: 1,
  AgentDeregistered: 1,
  AgentLivenessLost: 1,
  MessageAccepted: 1,
  MessageDelivered: 1,
  MessageAcked: 1,
  MessageRequeued: 1,
  MessageTimedOut: 1,
  MessageRedriven: 1
}

/**
 * Upcasters: `upcasters[type][v]` turns the encoded payload of version `v` into
 * that of version `v + 1`. Empty while every event is at version 1.
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

const encodeEventEither = Schema.encodeEither(Event)
const decodeEventEither = Schema.decodeUnknownEither(Event, { onExcessProperty: "error" })

export const encodeEvent = (event: Event): Either.Either<StoredEvent, ValidationError> =>
  Either.match(encodeEventEither(event), {
    onLeft: (error) => Either.left(ValidationError.fromParseError("event", error)),
    onRight: (encoded) =>
      Either.right({ type: encoded._tag, version: eventVersions[encoded._tag], payload: JSON.stringify(encoded) })
  })

export const decodeEvent = (offset: number, stored: StoredEvent): Either.Either<Event, UndecodableRecord> => {
  const fail = (reason: string) => Either.left(new UndecodableRecord({ offset, reason }))
  const current = eventVersions[stored.type as EventType] as number | undefined
  if (current === undefined) return fail(`unknown event type ${JSON.stringify(stored.type)}`)
  if (!Number.isInteger(stored.version) || stored.version < 1) return fail(`invalid version ${stored.version}`)
  if (stored.version > current) {
    return fail(`${stored.type} version ${stored.version} is newer than this version of Switchboard knows (${current})`)
  }
  let encoded: unknown
  try {
    encoded = JSON.parse(stored.payload)
  } catch (error) {
    return fail(`payload is not JSON: ${(error as Error).message}`)
  }
  const steps = upcasters[stored.type as EventType]
  for (let version = stored.version; version < current; version++) {
    const step = steps?.[version]
    if (step === undefined) return fail(`no upcaster for ${stored.type} from version ${version}`)
    encoded = step(encoded)
  }
  const decoded = decodeEventEither(encoded)
  if (Either.isLeft(decoded)) return fail(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
  if (decoded.right._tag !== stored.type) return fail(`payload is a ${decoded.right._tag}, stored as ${stored.type}`)
  return Either.right(decoded.right)
}
