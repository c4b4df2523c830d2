/**
 * The envelopes coordination sends on its own account (producer
 * `switchboard`): a task's message, a request to yield, a proposal for a
 * critic, a worktree change. They go through the router like any message,
 * so each has the ACK lifecycle, redelivery and dead letters, but they are
 * the runtime's, not an agent's: no policy governs them (an agent's own
 * task messages are sent as that agent, through `decideSend`).
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type { CommunicationClass, MessageType } from "../schema/Envelope.js"
import type { Json } from "../schema/Json.js"
import type { MessageAccepted } from "../schema/RouterEvents.js"
import { buildEnvelope } from "./Envelopes.js"
import { type RouteError, resolveRoute } from "./Placement.js"
import type { RuntimeState } from "./State.js"

/** The producer of the runtime's own envelopes, as of its stage notices. */
export const runtimeProducer = "switchboard"

export interface Notice {
  readonly to: string
  readonly message_id: string
  readonly message_type: MessageType
  /** The conversation: a task's id, a room's id. */
  readonly correlation_id: string
  readonly payload: Json
  readonly lane?: CommunicationClass | undefined
}

/** The runtime's envelope to one agent, admitted to its mailbox; or why it cannot be. */
export const sendNotice = (
  state: RuntimeState,
  config: RuntimeConfig,
  notice: Notice,
  now: number
): MessageAccepted | RouteError => {
  const routed = resolveRoute(state, config, { _tag: "Agent", agent_id: notice.to })
  if (typeof routed !== "string") return routed
  return {
    _tag: "MessageAccepted",
    to: routed,
    route: { _tag: "Agent", agent_id: routed },
    lane: notice.lane ?? "STANDARD",
    envelope: buildEnvelope(
      {
        producer_id: runtimeProducer,
        message_type: notice.message_type,
        correlation_id: notice.correlation_id,
        payload: notice.payload
      },
      notice.message_id,
      now
    ),
    expires_at: undefined,
    at: now
  }
}

/**
 * A notice the agent may miss without harm (it can read the same from the
 * status it concerns): nothing when the agent cannot take it now, or when
 * its id is taken.
 */
export const bestEffortNotice = (
  state: RuntimeState,
  config: RuntimeConfig,
  notice: Notice,
  now: number
): ReadonlyArray<MessageAccepted> => {
  if (state.messages.has(notice.message_id)) return []
  const sent = sendNotice(state, config, notice, now)
  return "_tag" in sent && sent._tag === "MessageAccepted" ? [sent] : []
}
