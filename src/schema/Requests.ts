/**
 * The requests the services take from outside, each a Schema: the services
 * decode them at the edge and their types are derived from here, so a
 * request's shape is written once (the ack, charge, lease-check and edge
 * requests live beside the data they are about).
 */
import { Schema } from "effect"
import { clip, maxMessage } from "../internal/bounds.js"
import { AgentHealth } from "./Agent.js"
import { AgentState, EnvelopeState, Id, maxIdLength } from "./Envelope.js"

export const HeartbeatRequest = Schema.Struct({
  agent_id: Id,
  /** Default RUNNING. */
  state: Schema.optional(AgentState),
  /** Default none. */
  health: Schema.optional(AgentHealth)
})
export type HeartbeatRequest = typeof HeartbeatRequest.Type

export const DeregisterRequest = Schema.Struct({ agent_id: Id, reason: Schema.String })
export type DeregisterRequest = typeof DeregisterRequest.Type

export const AwaitStageRequest = Schema.Struct({ message_id: Id, stage: EnvelopeState })
export type AwaitStageRequest = typeof AwaitStageRequest.Type

/**
 * How a subscription ends, for the deliveries its consumer took and had not
 * settled (no terminal ACK) by then. `hold` (the default): they stay in
 * flight until their ack wait runs out, as after a crash, and may still be
 * acknowledged meanwhile. `release`: they go back to the mailbox at once,
 * for the agent's next subscription, as a consumer that reconnects wants.
 * Deliveries its consumer never took go back at once either way.
 */
export const SubscriptionOptions = Schema.Struct({ unsettled: Schema.optional(Schema.Literal("hold", "release")) })
export type SubscriptionOptions = typeof SubscriptionOptions.Type

/** A human's answer to an approval. */
export const ApprovalAnswer = Schema.Struct({ approval_id: Id, by: Schema.String, note: Schema.optional(Schema.String) })
export type ApprovalAnswer = typeof ApprovalAnswer.Type

export const ApprovalStatus = Schema.Literal("open", "approved", "rejected", "timed_out", "used", "lapsed")
export type ApprovalStatus = typeof ApprovalStatus.Type

export const ApprovalsFilter = Schema.Struct({ status: Schema.optional(ApprovalStatus) })
export type ApprovalsFilter = typeof ApprovalsFilter.Type

/** Who pulls the kill switch: recorded in the audit; default "operator". */
const By = { by: Schema.optional(Schema.String) }

export const SuspendRequest = Schema.Struct({ agent_id: Id, reason: Schema.String, ...By })
export type SuspendRequest = typeof SuspendRequest.Type
export const ResumeRequest = Schema.Struct({ agent_id: Id, ...By })
export type ResumeRequest = typeof ResumeRequest.Type
export const KillRequest = SuspendRequest
export type KillRequest = SuspendRequest
export const HaltRequest = Schema.Struct({ reason: Schema.String, ...By })
export type HaltRequest = typeof HaltRequest.Type
export const UnhaltRequest = Schema.Struct(By)
export type UnhaltRequest = typeof UnhaltRequest.Type

/**
 * Non-empty text, cut to `limit` characters (marked `…`) rather than refused:
 * what a refusal is recorded with comes from the refused request itself, and
 * a request too long to describe must still be recorded, within bounds.
 */
const ClippedText = (limit: number) =>
  Schema.transform(Schema.NonEmptyString, Schema.String, {
    strict: true,
    decode: (text) => clip(text, limit),
    encode: (text) => text
  })

/**
 * A request the network edge refused (403) before it reached any service, to
 * be recorded in the audit: an API key acting as another agent, or an
 * agent's key on an operator route.
 */
export const DeniedAccess = Schema.Struct({
  /** The agent the key belongs to; absent for a key that has none. */
  agent_id: Schema.optional(ClippedText(maxIdLength)),
  /** The key's id, never the key itself. */
  key_id: ClippedText(maxIdLength),
  /** What was attempted, `transport:what`, e.g. `http:POST /agents/x/messages`. */
  action: ClippedText(maxIdLength),
  reason: ClippedText(maxMessage)
})
export type DeniedAccess = typeof DeniedAccess.Type
