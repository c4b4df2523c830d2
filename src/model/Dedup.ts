/**
 * What counts as a duplicate (PROTOCOLS.md §1 "dedup", and "SW4RM over
 * gRPC"): within `dedupWindowMs` of a message, a send with its id, its
 * producer's idempotency token, or (without a token) its producer's sequence
 * number with the same type and payload, to the same recipient, is answered
 * as that message, never delivered twice.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type { Envelope, MessageType } from "../schema/Envelope.js"
import type { Route } from "../schema/RouterEvents.js"
import { Deque } from "./Deque.js"
import type { MessageEntry } from "./Messages.js"
import { type RuntimeState, type Slice, sortedRecord, timeOf } from "./State.js"

/** What dedup remembers of a message: which it was, since when, and for a numbered one its content's fingerprint. */
interface Seen {
  readonly message_id: string
  readonly at: number
  readonly content?: string | undefined
}

/**
 * Under a token's key, the message that took it; under a number's, the one
 * message with it, or once several shared it, each by its content.
 */
type Remembered = Seen | Map<string, Seen>

export interface DedupState {
  readonly dedup: Map<string, Remembered>
  /** What was remembered, in order: the key, and for a numbered message its content. */
  readonly dedupOrder: Deque<{ readonly key: string; readonly content: string | undefined; readonly at: number }>
}

/**
 * What makes two sends one logical message (PROTOCOLS.md, "SW4RM over
 * gRPC"): the idempotency token; else the producer's sequence number, but
 * only for a retry, with the same type and payload (SW4RM's own clients
 * number every message 1), sent the same way (to the same agent, or the same
 * capability: SW4RM's clients number alike what they send to several agents,
 * and a broadcast's copies, `Broadcast.ts`, are such sends), so its key
 * holds a fingerprint of all three: any
 * earlier message with that number and that content is found, however many
 * others reused the number since. A sequence number of 0 means "not set", as
 * in protobuf, so a producer that numbers nothing is never deduplicated by it.
 * The payload is hashed once per numbered message, when it is remembered, and
 * at send only for a number that was seen before. A number seen once keeps
 * one entry; a map of contents only once several messages share it.
 */
const tokenKey = (envelope: Envelope) => `t\u0000${envelope.producer_id}\u0000${envelope.idempotency_token}`
const numberKey = (envelope: Envelope) => `s\u0000${envelope.producer_id}\u0000${envelope.sequence_number}`
const routeKey = (route: Route) => route._tag === "Agent" ? `a:${route.agent_id}` : `c:${route.capability}`
const contentOf = (envelope: Envelope, route: Route) => `${routeKey(route)}\u0000${fingerprint(envelope.message_type, envelope.payload)}`

/** What is remembered under a key for this content, if anything (a token's key remembers one message, whatever its content). */
const seenFor = (remembered: Remembered | undefined, content: () => string | undefined): Seen | undefined => {
  if (remembered === undefined) return undefined
  if (remembered instanceof Map) return remembered.get(content()!)
  return remembered.content === undefined || remembered.content === content() ? remembered : undefined
}

/**
 * A message's type and payload in a few characters: a 53-bit hash of the
 * bytes, taken four at a time (little-endian, so every machine gives the
 * same), and their number.
 */
const fingerprint = (type: MessageType, payload: Uint8Array) => {
  const length = payload.length
  let h1 = 0xdeadbeef ^ length
  let h2 = 0x41c6ce57 ^ length
  let i = 0
  for (const whole = length - (length % 4); i < whole; i += 4) {
    const word = payload[i] | (payload[i + 1] << 8) | (payload[i + 2] << 16) | (payload[i + 3] << 24)
    h1 = Math.imul(h1 ^ word, 2654435761)
    h2 = Math.imul(h2 ^ word, 1597334677)
  }
  for (; i < length; i++) {
    h1 = Math.imul(h1 ^ payload[i], 2654435761)
    h2 = Math.imul(h2 ^ payload[i], 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  // In decimal: other radixes take a slow path of their own.
  return `${type}:${length}:${2097151 & h2}:${h1 >>> 0}`
}

/** The message a duplicate repeats, if the envelope is one. */
export const findDuplicate = (
  state: RuntimeState,
  config: RuntimeConfig,
  envelope: Envelope,
  route: Route,
  now: number
): MessageEntry | undefined => {
  const same = state.messages.get(envelope.message_id)
  if (same !== undefined) return same
  const seen = envelope.idempotency_token !== undefined
    ? seenFor(state.dedup.get(tokenKey(envelope)), () => undefined)
    : envelope.sequence_number > 0
    ? seenFor(state.dedup.get(numberKey(envelope)), () => contentOf(envelope, route))
    : undefined
  if (seen === undefined || seen.at <= now - config.dedupWindowMs) return undefined
  return state.messages.get(seen.message_id)
}

const remember = (state: RuntimeState, { at, envelope }: { readonly envelope: Envelope; readonly at: number }, route: Route) => {
  if (envelope.idempotency_token !== undefined) {
    const key = tokenKey(envelope)
    state.dedup.set(key, { message_id: envelope.message_id, at })
    state.dedupOrder.pushBack({ key, content: undefined, at })
    return
  }
  if (envelope.sequence_number <= 0) return
  const key = numberKey(envelope)
  const content = contentOf(envelope, route)
  const seen: Seen = { message_id: envelope.message_id, at, content }
  const earlier = state.dedup.get(key)
  if (earlier === undefined || (!(earlier instanceof Map) && earlier.content === content)) {
    state.dedup.set(key, seen)
  } else if (earlier instanceof Map) {
    earlier.set(content, seen)
  } else {
    state.dedup.set(key, new Map([[earlier.content!, earlier], [content, seen]]))
  }
  state.dedupOrder.pushBack({ key, content, at })
}

/** Forgets what has aged out of the window. */
const forget = (state: RuntimeState, config: RuntimeConfig, at: number) => {
  const horizon = at - config.dedupWindowMs
  while (state.dedupOrder.length > 0 && state.dedupOrder.at(0).at <= horizon) {
    const { content, key } = state.dedupOrder.popFront()!
    const remembered = state.dedup.get(key)
    if (remembered instanceof Map) {
      const seen = remembered.get(content!)
      if (seen !== undefined && seen.at <= horizon) remembered.delete(content!)
      if (remembered.size === 0) state.dedup.delete(key)
    } else if (remembered !== undefined && remembered.at <= horizon) {
      state.dedup.delete(key)
    }
  }
}

export const dedupSlice: Slice<DedupState> = {
  initial: () => ({ dedup: new Map(), dedupOrder: new Deque() }),
  evolve: {
    MessageAccepted: (state, event) => remember(state, event, event.route),
    // Refused, it stays refused: sent again to the same agent, it is its duplicate.
    MessageRefused: (state, event) => remember(state, event, { _tag: "Agent", agent_id: event.to })
  },
  after: (state, event, config) => forget(state, config, timeOf(event)),
  snapshot: (state) => ({
    dedup: sortedRecord(state.dedup, (remembered) =>
      remembered instanceof Map
        ? [...remembered.values()].map((seen) => seen.message_id).sort().join(",")
        : remembered.message_id)
  })
}
