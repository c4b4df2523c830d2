/**
 * The facts of the registry and the router. Every event that depends on time
 * carries `at` (epoch ms from Effect's Clock, given to `decide` as `now`), so
 * folding the log never needs a clock.
 */
import { Schema } from "effect"
import { AgentDescriptor, EdgeType } from "./Agent.js"
import { AckStage, AgentState, CommunicationClass, Envelope, ErrorCode, Id } from "./Envelope.js"

/** Epoch milliseconds. */
const At = Schema.Int
const Count = Schema.Int.pipe(Schema.positive())

// ---------------------------------------------------------------------------
// Registry

export const AgentRegistered = Schema.TaggedStruct("AgentRegistered", {
  agent: AgentDescriptor,
  /** When it counts as lost without a heartbeat; absent when liveness is not checked. */
  liveness_deadline: Schema.optional(At),
  at: At
})
export type AgentRegistered = typeof AgentRegistered.Type

export const AgentHeartbeat = Schema.TaggedStruct("AgentHeartbeat", {
  agent_id: Id,
  state: AgentState,
  health: Schema.Record({ key: Schema.String, value: Schema.String }),
  liveness_deadline: Schema.optional(At),
  at: At
})
export type AgentHeartbeat = typeof AgentHeartbeat.Type

export const AgentDeregistered = Schema.TaggedStruct("AgentDeregistered", {
  agent_id: Id,
  reason: Schema.String,
  at: At
})
export type AgentDeregistered = typeof AgentDeregistered.Type

/** A typed edge of the agent topology, recorded the first time it is seen. */
export const TopologyEdgeAdded = Schema.TaggedStruct("TopologyEdgeAdded", {
  from: Id,
  /** An agent id, or the name of what was called, read or written. */
  to: Id,
  edge_type: EdgeType,
  at: At
})
export type TopologyEdgeAdded = typeof TopologyEdgeAdded.Type

/** Heartbeats stopped for longer than the liveness interval. The next heartbeat makes it available again. */
export const AgentLivenessLost = Schema.TaggedStruct("AgentLivenessLost", {
  agent_id: Id,
  at: At
})
export type AgentLivenessLost = typeof AgentLivenessLost.Type

// ---------------------------------------------------------------------------
// Messages

/** How a message was addressed: to one agent, or to any live agent with a capability. */
export const Route = Schema.Union(
  Schema.TaggedStruct("Agent", { agent_id: Id }),
  Schema.TaggedStruct("Capability", { capability: Id })
)
export type Route = typeof Route.Type

/** Admitted durably to the recipient's mailbox: stage RECEIVED. */
export const MessageAccepted = Schema.TaggedStruct("MessageAccepted", {
  /** The recipient chosen by routing. */
  to: Id,
  route: Route,
  lane: CommunicationClass,
  envelope: Envelope,
  /** When the TTL runs out (epoch ms), if the envelope has one. */
  expires_at: Schema.optional(At),
  at: At
})
export type MessageAccepted = typeof MessageAccepted.Type

/** Refused by the gateway before admission: REJECTED with PERMISSION_DENIED, never delivered. */
export const MessageRefused = Schema.TaggedStruct("MessageRefused", {
  to: Id,
  envelope: Envelope,
  error_code: ErrorCode,
  reason: Schema.String,
  at: At
})
export type MessageRefused = typeof MessageRefused.Type

/** Handed to a subscriber of the recipient. */
export const MessageDelivered = Schema.TaggedStruct("MessageDelivered", {
  message_id: Id,
  to: Id,
  attempt: Count,
  delivery_seq: Count,
  /** The lane it was served from: a PRIVILEGED message over its rate is served as STANDARD. */
  lane: CommunicationClass,
  /** When its ack wait runs out. */
  ack_deadline: At,
  at: At
})
export type MessageDelivered = typeof MessageDelivered.Type

/** An ACK from a consumer: READ, or a terminal FULFILLED / REJECTED / FAILED. Late ones are kept too. */
export const MessageAcked = Schema.TaggedStruct("MessageAcked", {
  message_id: Id,
  agent_id: Id,
  stage: AckStage,
  error_code: Schema.optional(ErrorCode),
  note: Schema.optional(Schema.String),
  /** The delivery it names, if it names one: an ACK of a delivery made before a redrive changes nothing. */
  delivery_seq: Schema.optional(Count),
  /** The restarted ack wait, for a READ of a delivery in flight. */
  ack_deadline: Schema.optional(At),
  /** A FAILED that also makes the message a dead letter. */
  dead_letter: Schema.optional(Schema.Boolean),
  at: At
})
export type MessageAcked = typeof MessageAcked.Type

/**
 * Back in a mailbox to be delivered again: its ack wait ran out, the router
 * restarted, its recipient was lost, the subscriber it was handed to left
 * before its consumer took it (that delivery never counts as an attempt), or
 * its consumer took it and its subscription ended asking for what it had
 * not settled to be released at once (that delivery counts).
 */
export const MessageRequeued = Schema.TaggedStruct("MessageRequeued", {
  message_id: Id,
  /** The recipient from now on: another live agent when a capability route moves it. */
  to: Id,
  reason: Schema.Literal("ack_wait", "restart", "recipient_lost", "subscriber_left", "released"),
  at: At
})
export type MessageRequeued = typeof MessageRequeued.Type

/** TIMED_OUT: no terminal ACK after the last attempt (ACK_TIMEOUT), or the TTL ran out (TTL_EXPIRED). Now a dead letter. */
export const MessageTimedOut = Schema.TaggedStruct("MessageTimedOut", {
  message_id: Id,
  /** AGENT_SHUTDOWN: its recipient, by id, was killed and will never take it. */
  error_code: Schema.Literal("ACK_TIMEOUT", "TTL_EXPIRED", "AGENT_SHUTDOWN"),
  at: At
})
export type MessageTimedOut = typeof MessageTimedOut.Type

/** A dead letter sent again: back to RECEIVED with fresh attempts and, if it has a TTL, a fresh lifetime. */
export const MessageRedriven = Schema.TaggedStruct("MessageRedriven", {
  message_id: Id,
  to: Id,
  expires_at: Schema.optional(At),
  at: At
})
export type MessageRedriven = typeof MessageRedriven.Type

export const RouterEvent = Schema.Union(
  AgentRegistered,
  AgentHeartbeat,
  AgentDeregistered,
  AgentLivenessLost,
  TopologyEdgeAdded,
  MessageAccepted,
  MessageRefused,
  MessageDelivered,
  MessageAcked,
  MessageRequeued,
  MessageTimedOut,
  MessageRedriven
)
export type RouterEvent = typeof RouterEvent.Type
