/**
 * Messages and their ACK lifecycle (PROTOCOLS.md §1): what `send` admits,
 * what an ACK may change, and how long a finished message is remembered.
 * What counts as a duplicate is `Dedup.ts`; where a message waits (its
 * mailbox and lane), `Mailboxes.ts`; where it goes, `Placement.ts`.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type {
  AckRequest,
  CommunicationClass,
  Envelope,
  EnvelopeState,
  ErrorCode
} from "../schema/Envelope.js"
import {
  type AgentShutdown,
  type AgentUnavailable,
  type BufferFull,
  DuplicateDetected,
  MessageNotFound,
  NoRoute,
  OversizePayload,
  PermissionDenied,
  TtlExpired,
  UnsupportedMessageType,
  ValidationError
} from "../schema/Errors.js"
import {
  type MessageAccepted,
  type MessageAcked,
  MessageRedriven,
  MessageRefused,
  type Route
} from "../schema/RouterEvents.js"
import { newEdge } from "./Agents.js"
import { later } from "./Deadlines.js"
import { Deque } from "./Deque.js"
import { checkMessage } from "./Checks.js"
import { copyId, maxBroadcastIdLength } from "./Broadcast.js"
import { findDuplicate } from "./Dedup.js"
import { blockedReason } from "./Governance.js"
import { resolveRoute, reroute } from "./Placement.js"
import { accept, type Decision, refuse, type RuntimeState, type Slice, sortedRecord, timeOf } from "./State.js"
import { bindingMismatch } from "./Worktrees.js"

export type Location = "queued" | "in_flight" | "done"

/**
 * A message the runtime knows. `location`, `enqueued` and `to` follow its
 * moves between mailboxes and are written by `Mailboxes.ts`; the rest here.
 */
export interface MessageEntry {
  readonly id: string
  readonly producerId: string
  readonly correlationId: string
  /**
   * The message as sent, held while it can still be delivered: once it
   * finishes it is let go, unless it is a dead letter (kept for a re-drive).
   * A finished message is remembered for `retentionMs` (for `status` and
   * dedup), and at up to `payloadLimit` a payload each, holding them that long
   * would tie up memory in proportion to the traffic of the last hour.
   */
  envelope: Envelope | undefined
  readonly route: Route
  readonly lane: CommunicationClass
  readonly acceptedAt: number
  /** Acceptance order across the runtime (breaks ties between lanes), taken again when a dead letter is redriven. */
  order: number
  to: string
  stage: EnvelopeState
  location: Location
  attempts: number
  /** Bumped at every enqueue, so stale queue entries are recognised. */
  enqueued: number
  ackDeadline: number | undefined
  expiresAt: number | undefined
  deliverySeq: number | undefined
  errorCode: ErrorCode | undefined
  deadLetter: boolean
  /**
   * Its deliveries since it was accepted or last redriven, flat: the agent
   * and the delivery_seq of each, in turn (one small list per message, kept
   * as long as the message is). Each recipient may acknowledge its own.
   */
  readonly deliveries: Array<string | number>
  lateAcks: number
  finishedAt: number | undefined
}

export interface MessagesState {
  readonly messages: Map<string, MessageEntry>
  readonly finished: Deque<{ readonly id: string; readonly at: number }>
  /** Messages accepted so far: the next acceptance order. */
  accepted: number
}

export const isTerminal = (stage: EnvelopeState) =>
  stage === "FULFILLED" || stage === "REJECTED" || stage === "FAILED" || stage === "TIMED_OUT"

// ---------------------------------------------------------------------------
// Dedup

// ---------------------------------------------------------------------------
// Sending

export type SendError =
  | NoRoute
  | AgentUnavailable
  | AgentShutdown
  | BufferFull
  | OversizePayload
  | UnsupportedMessageType
  | TtlExpired
  | DuplicateDetected
  | ValidationError
  | PermissionDenied

/** The agent a message was admitted for. */
export interface Admitted {
  readonly message_id: string
  readonly to: string
}

export const decideSend = (
  state: RuntimeState,
  config: RuntimeConfig,
  command: { readonly route: Route; readonly envelope: Envelope },
  now: number
): Decision<Admitted, SendError> => {
  const { envelope, route } = command
  if (envelope.payload.length > config.payloadLimit) {
    return refuse(new OversizePayload({ size: envelope.payload.length, limit: config.payloadLimit }))
  }
  if (config.supportedMessageTypes !== undefined && !config.supportedMessageTypes.includes(envelope.message_type)) {
    return refuse(new UnsupportedMessageType({ message_type: envelope.message_type }))
  }
  if (envelope.message_type === "ACKNOWLEDGEMENT") {
    return refuse(
      ValidationError.single("envelope", "message_type", "an ACKNOWLEDGEMENT is an ack, not a message to deliver")
    )
  }
  const duplicate = findDuplicate(state, config, envelope, route, now)
  if (duplicate !== undefined) {
    return refuse(new DuplicateDetected({ original_message_id: duplicate.id, stage: duplicate.stage }))
  }
  const expiresAt = envelope.ttl_ms > 0 ? later(envelope.timestamp.epochMillis, envelope.ttl_ms) : undefined
  if (expiresAt !== undefined && expiresAt <= now) {
    return refuse(new TtlExpired({ message_id: envelope.message_id }))
  }
  const routed = resolveRoute(state, config, route)
  if (typeof routed !== "string") return refuse(routed)
  const to = routed
  const mismatch = bindingMismatch(state, to, envelope)
  if (mismatch !== undefined) return refuse(mismatch)
  const checked = checkMessage(state, { agent_id: envelope.producer_id, to, message_type: envelope.message_type }, now)
  if (checked.denial !== undefined) {
    const { reason, rule } = checked.denial
    // The kill switch refuses for a while: such a message is not recorded as
    // refused, so that sent again once its producer is resumed, it is not
    // taken for a duplicate of a REJECTED one. A policy's refusal stands.
    const refused = rule === "kill switch"
      ? []
      : [MessageRefused.make({ to, envelope, error_code: "PERMISSION_DENIED", reason, at: now }, true)]
    return refuse(new PermissionDenied({ reason }), [...checked.events, ...refused])
  }
  return accept([
    ...checked.events,
    ...newEdge(state, envelope.producer_id, to, "messages", now),
    {
      _tag: "MessageAccepted",
      to,
      route,
      lane: state.agents.get(envelope.producer_id)?.descriptor.communication_class ?? "STANDARD",
      envelope,
      expires_at: expiresAt,
      at: now
    } satisfies MessageAccepted
  ], { message_id: envelope.message_id, to })
}

// ---------------------------------------------------------------------------
// Acknowledging

export type AckError = MessageNotFound | PermissionDenied | ValidationError

/** What an ACK did: the message's stage after it, and whether it came too late to change anything. */
export interface AckOutcome {
  readonly message_id: string
  readonly stage: EnvelopeState
  readonly late: boolean
}

/** Whether the message was delivered to the agent since it was last (re)accepted: as `seq`, if given, else at all. */
const deliveredAs = (message: MessageEntry, agentId: string, seq: number | undefined) => {
  for (let i = 0; i < message.deliveries.length; i += 2) {
    if (message.deliveries[i] === agentId && (seq === undefined || message.deliveries[i + 1] === seq)) return true
  }
  return false
}

/** Whether an ACK can no longer change its message: it is finished, or the ACK names a delivery since superseded. */
const isLate = (message: MessageEntry, ack: { readonly agent_id: string; readonly delivery_seq?: number | undefined }) =>
  isTerminal(message.stage) ||
  (ack.delivery_seq !== undefined &&
    !deliveredAs(message, ack.agent_id, ack.delivery_seq))

/**
 * The message an ACK is about: the one with its id, or, for an agent that is
 * not its recipient, that agent's own copy of a broadcast with that id, if
 * there is one (`Broadcast.ts`: a copy's recipient sees the producer's id).
 */
const ackedMessage = (state: RuntimeState, agentId: string, messageId: string) => {
  const message = state.messages.get(messageId)
  if (message !== undefined && (message.to === agentId || deliveredAs(message, agentId, undefined))) return message
  return messageId.length > maxBroadcastIdLength ? message : state.messages.get(copyId(messageId, agentId)) ?? message
}

export const decideAck = (
  state: RuntimeState,
  config: RuntimeConfig,
  command: AckRequest,
  now: number
): Decision<AckOutcome, AckError> => {
  const message = ackedMessage(state, command.agent_id, command.message_id)
  if (message === undefined) return refuse(new MessageNotFound({ message_id: command.message_id }, true))
  if (command.agent_id !== message.to && !deliveredAs(message, command.agent_id, undefined)) {
    return refuse(
      new PermissionDenied({ reason: `${command.agent_id} is not a recipient of message ${command.message_id}` })
    )
  }
  // An ACK is something the agent sends: a suspended (or killed, or halted) one sends nothing.
  const blocked = blockedReason(state, command.agent_id)
  if (blocked !== undefined) return refuse(new PermissionDenied({ reason: blocked }))
  // RECEIVED is the router's to record, once the message is in the mailbox; a
  // recipient that says it too (SW4RM's clients do, on receipt) is recorded
  // and told to the producer, and changes nothing.
  if (command.stage === "TIMED_OUT") {
    return refuse(ValidationError.single("ack", "ack_stage", "TIMED_OUT is recorded by the router, not acknowledged"))
  }
  if ((command.stage === "REJECTED" || command.stage === "FAILED") && command.error_code === undefined) {
    return refuse(ValidationError.single("ack", "error_code", `${command.stage} must carry an error code`))
  }
  if (command.dead_letter === true && command.stage !== "FAILED") {
    return refuse(ValidationError.single("ack", "dead_letter", `only a FAILED makes a dead letter, not ${command.stage}`))
  }
  const late = isLate(message, command)
  const restartsWait = !late && command.stage === "READ" && message.location === "in_flight"
  return accept([
    {
      _tag: "MessageAcked",
      message_id: message.id,
      agent_id: command.agent_id,
      stage: command.stage,
      error_code: command.error_code,
      note: command.note,
      delivery_seq: command.delivery_seq,
      ack_deadline: restartsWait ? later(now, config.ackWaitMs) : undefined,
      dead_letter: command.dead_letter === true ? true : undefined,
      at: now
    } satisfies MessageAcked
  ], { message_id: message.id, stage: late || command.stage === "RECEIVED" ? message.stage : command.stage, late })
}

// ---------------------------------------------------------------------------
// Dead letters

export const decideRedrive = (
  state: RuntimeState,
  messageId: string,
  now: number
): Decision<Admitted, MessageNotFound | ValidationError | NoRoute> => {
  const message = state.messages.get(messageId)
  if (message === undefined) return refuse(new MessageNotFound({ message_id: messageId }, true))
  // A dead letter keeps its envelope: testing both is one test, and tells the compiler so.
  if (!message.deadLetter || message.envelope === undefined) {
    return refuse(ValidationError.single("redrive", "message_id", `message ${messageId} is not a dead letter`))
  }
  const to = reroute(state, message)
  // A killed agent never registers again: sent to it by id, the message would wait
  // forever. By capability, it waits for the next agent able to take it, as any other.
  if (message.route._tag === "Agent" && state.killed.has(to)) return refuse(new NoRoute({ to }))
  const ttl = message.envelope.ttl_ms
  return accept(
    [MessageRedriven.make({ message_id: messageId, to, expires_at: ttl > 0 ? later(now, ttl) : undefined, at: now }, true)],
    { message_id: messageId, to }
  )
}

// ---------------------------------------------------------------------------
// Evolve

/** The entry of a message accepted (queued for its recipient), or refused (finished, never to be delivered). */
const newEntry = (state: RuntimeState, event: MessageAccepted | MessageRefused): MessageEntry => {
  const accepted = event._tag === "MessageAccepted"
  return {
    id: event.envelope.message_id,
    producerId: event.envelope.producer_id,
    correlationId: event.envelope.correlation_id,
    envelope: accepted ? event.envelope : undefined,
    route: accepted ? event.route : { _tag: "Agent", agent_id: event.to },
    lane: accepted ? event.lane : "STANDARD",
    acceptedAt: event.at,
    order: state.accepted++,
    to: event.to,
    stage: accepted ? "RECEIVED" : "REJECTED",
    location: accepted ? "queued" : "done",
    attempts: 0,
    enqueued: 0,
    ackDeadline: undefined,
    expiresAt: accepted ? event.expires_at : undefined,
    deliverySeq: undefined,
    errorCode: accepted ? undefined : event.error_code,
    deadLetter: false,
    deliveries: [],
    lateAcks: 0,
    finishedAt: accepted ? undefined : event.at
  }
}

/** Finished: let go of its envelope unless it is a dead letter, and remember it for retention. */
const finish = (state: RuntimeState, message: MessageEntry, stage: EnvelopeState, at: number) => {
  message.stage = stage
  message.ackDeadline = undefined
  message.finishedAt = at
  if (!message.deadLetter) message.envelope = undefined
  state.finished.pushBack({ id: message.id, at })
}

/** Forgets finished messages past retention (never before the dedup window, which answers with them). */
const housekeep = (state: RuntimeState, config: RuntimeConfig, at: number) => {
  const retentionHorizon = at - Math.max(config.retentionMs, config.dedupWindowMs)
  while (state.finished.length > 0 && state.finished.at(0).at <= retentionHorizon) {
    const { id } = state.finished.popFront()!
    const message = state.messages.get(id)
    if (
      message !== undefined && message.location === "done" && !message.deadLetter &&
      message.finishedAt !== undefined && message.finishedAt <= retentionHorizon
    ) state.messages.delete(id)
  }
}

export const messagesSlice: Slice<MessagesState> = {
  initial: () => ({
    messages: new Map(),
    finished: new Deque(),
    accepted: 0
  }),
  evolve: {
    MessageAccepted: (state, event) => {
      state.messages.set(event.envelope.message_id, newEntry(state, event))
    },
    MessageRefused: (state, event) => {
      state.messages.set(event.envelope.message_id, newEntry(state, event))
      state.finished.pushBack({ id: event.envelope.message_id, at: event.at })
    },
    MessageDelivered: (state, event) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined) return
      message.stage = "RECEIVED"
      message.attempts = event.attempt
      message.deliverySeq = event.delivery_seq
      message.ackDeadline = event.ack_deadline
      message.deliveries.push(event.to, event.delivery_seq)
    },
    MessageAcked: (state, event) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined) return
      if (isLate(message, event)) {
        message.lateAcks++
      } else if (event.stage === "READ") {
        message.stage = "READ"
        if (event.ack_deadline !== undefined) message.ackDeadline = event.ack_deadline
      } else if (event.stage !== "RECEIVED") {
        message.errorCode = event.error_code
        // Before it finishes: a dead letter keeps its envelope, to be redriven.
        if (event.dead_letter === true) message.deadLetter = true
        finish(state, message, event.stage, event.at)
      }
    },
    MessageRequeued: (state, event) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined || message.location === "done") return
      message.stage = "RECEIVED"
      message.ackDeadline = undefined
      if (event.reason === "subscriber_left") message.attempts--
    },
    MessageTimedOut: (state, event) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined || message.location === "done") return
      message.errorCode = event.error_code
      message.deadLetter = true
      finish(state, message, "TIMED_OUT", event.at)
    },
    MessageRedriven: (state, event) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined || !message.deadLetter) return
      message.deadLetter = false
      // Accepted again: it joins the back of its lane, where the order of acceptance must hold.
      message.order = state.accepted++
      message.stage = "RECEIVED"
      message.attempts = 0
      message.errorCode = undefined
      message.finishedAt = undefined
      message.expiresAt = event.expires_at
      // Acks of the deliveries before it change nothing any more.
      message.deliveries.length = 0
    }
  },
  after: (state, event, config) => housekeep(state, config, timeOf(event)),
  snapshot: (state) => ({
    messages: sortedRecord(state.messages, (message) => ({
      to: message.to,
      producer_id: message.producerId,
      stage: message.stage,
      location: message.location,
      lane: message.lane,
      attempts: message.attempts,
      delivery_seq: message.deliverySeq,
      ack_deadline: message.ackDeadline,
      expires_at: message.expiresAt,
      error_code: message.errorCode,
      dead_letter: message.deadLetter,
      recipients: [...new Set(message.deliveries.filter((_, i) => i % 2 === 0))],
      late_acks: message.lateAcks
    }))
  })
}
