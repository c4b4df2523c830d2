/**
 * Where messages go (PROTOCOLS.md §1, "addressing"): the recipient of a send,
 * by id or by capability (the live agent with the fewest messages), and
 * where work moves when its agent is lost, killed or deregistered, when the
 * runtime restarts, or when a subscriber leaves with deliveries untaken or
 * unsettled.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import { AgentShutdown, AgentUnavailable, BufferFull, NoRoute } from "../schema/Errors.js"
import { MessageRequeued, MessageTimedOut, type Route, type RouterEvent } from "../schema/RouterEvents.js"
import { isAvailable } from "./Agents.js"
import { blockedReason } from "./Governance.js"
import { load, queuedMessages } from "./Mailboxes.js"
import type { MessageEntry } from "./Messages.js"
import type { RuntimeState } from "./State.js"

/**
 * What one decision knows beyond the state while it moves several messages:
 * the agents it finds gone (the state still has them available until its
 * events are applied), and the messages it has already sent to each agent.
 */
export interface Placement {
  readonly gone: ReadonlySet<string>
  readonly extraLoad: Map<string, number>
}

export const placement = (gone: Iterable<string> = []): Placement => ({ gone: new Set(gone), extraLoad: new Map() })

/** A message and the agent it moves to. */
export interface Move {
  readonly message: MessageEntry
  readonly to: string
}

/**
 * The live agent with the capability that has the fewest messages, ties to
 * the earliest registered; `undefined` when none has room.
 */
const pickByCapability = (
  state: RuntimeState,
  capability: string,
  moving: Placement | undefined,
  capacity = Number.POSITIVE_INFINITY
) => {
  // A suspended agent would hold the work until it is resumed: one that is not
  // comes first, but with none, the work waits in a suspended one's mailbox.
  let free: string | undefined
  let freeLoad = Number.POSITIVE_INFINITY
  let held: string | undefined
  let heldLoad = Number.POSITIVE_INFINITY
  for (const [id, agent] of state.agents) {
    if (moving?.gone.has(id) || !isAvailable(agent) || !agent.descriptor.capabilities.includes(capability)) continue
    const agentLoad = load(state, id) + (moving?.extraLoad.get(id) ?? 0)
    if (agentLoad >= capacity) continue
    if (blockedReason(state, id) === undefined) {
      if (agentLoad < freeLoad) {
        free = id
        freeLoad = agentLoad
      }
    } else if (agentLoad < heldLoad) {
      held = id
      heldLoad = agentLoad
    }
  }
  return free ?? held
}

/** Picks an agent for one of several messages that a decision moves, and counts it against that agent. */
const placeByCapability = (state: RuntimeState, capability: string, moving: Placement) => {
  const target = pickByCapability(state, capability, moving)
  if (target !== undefined) moving.extraLoad.set(target, (moving.extraLoad.get(target) ?? 0) + 1)
  return target
}

export type RouteError = NoRoute | AgentUnavailable | AgentShutdown | BufferFull

/** The recipient of a send, or why there is none. */
export const resolveRoute = (state: RuntimeState, config: RuntimeConfig, route: Route): string | RouteError => {
  if (route._tag === "Agent") {
    const agent = state.agents.get(route.agent_id)
    if (agent === undefined || !agent.registered) return new NoRoute({ to: route.agent_id })
    if (agent.state === "SHUTTING_DOWN") return new AgentShutdown({ agent_id: route.agent_id }, true)
    if (!agent.live || agent.state === "FAILED") return new AgentUnavailable({ agent_id: route.agent_id }, true)
    if (load(state, route.agent_id) >= config.mailboxCapacity) {
      return new BufferFull({ agent_id: route.agent_id, capacity: config.mailboxCapacity })
    }
    return route.agent_id
  }
  const picked = pickByCapability(state, route.capability, undefined, config.mailboxCapacity)
  if (picked !== undefined) return picked
  const withCapability = [...state.agents.values()].filter((agent) =>
    agent.registered && agent.descriptor.capabilities.includes(route.capability)
  )
  const to = `capability ${route.capability}`
  if (withCapability.length === 0) return new NoRoute({ to })
  if (!withCapability.some(isAvailable)) return new AgentUnavailable({ agent_id: to }, true)
  return new BufferFull({ agent_id: to, capacity: config.mailboxCapacity })
}

/** Where a message goes when it is sent again: elsewhere only if routed by capability and its agent is gone. */
export const reroute = (state: RuntimeState, message: MessageEntry, moving: Placement = placement()) => {
  if (message.route._tag !== "Capability") return message.to
  if (isAvailable(state.agents.get(message.to)) && !moving.gone.has(message.to)) return message.to
  return placeByCapability(state, message.route.capability, moving) ?? message.to
}

/**
 * Requeues for several messages at once. One delivered before goes to the
 * front of its lane, so those are emitted last-accepted first: they end up in
 * the order they were accepted, which is the order they were first delivered
 * (FIFO), not reversed. One never delivered takes its place by acceptance
 * order, found from the back of the lane: emitted first-accepted first, each
 * finds it at once.
 */
export const requeueAll = (
  moves: ReadonlyArray<Move>,
  reason: MessageRequeued["reason"],
  now: number
): ReadonlyArray<MessageRequeued> => {
  const fresh = moves.filter(({ message }) => message.attempts === 0)
  const redelivered = moves.filter(({ message }) => message.attempts > 0)
  return [
    ...fresh.sort((a, b) => a.message.order - b.message.order),
    ...redelivered.sort((a, b) => b.message.order - a.message.order)
  ].map(({ message, to }) => MessageRequeued.make({ message_id: message.id, to, reason, at: now }, true))
}

/** Queued messages routed by capability leave an agent that is gone for another live one. */
export const moveQueuedCapabilityMessages = (state: RuntimeState, agentId: string, moving: Placement) => {
  const mailbox = state.mailboxes.get(agentId)
  if (mailbox === undefined || mailbox.queued === 0) return []
  const moves: Array<Move> = []
  for (const message of queuedMessages(state, mailbox)) {
    if (message.route._tag !== "Capability") continue
    const target = placeByCapability(state, message.route.capability, moving)
    if (target !== undefined) moves.push({ message, to: target })
  }
  return moves
}

/**
 * What becomes of the work of an agent being killed (it never registers
 * again). Queued and in-flight messages routed by capability go to another
 * live agent with the capability, or wait for one (`adoptStranded`); those
 * sent to it by id time out at once with AGENT_SHUTDOWN into its dead
 * letters, and their producers are told.
 */
export const decideKilledAgentWork = (state: RuntimeState, agentId: string, now: number): ReadonlyArray<RouterEvent> => {
  const moving = placement([agentId])
  const moves = moveQueuedCapabilityMessages(state, agentId, moving)
  const moved = new Set(moves.map(({ message }) => message.id))
  const inFlight: Array<Move> = []
  const timeouts: Array<RouterEvent> = []
  for (const message of state.messages.values()) {
    if (message.to !== agentId || message.location === "done" || moved.has(message.id)) continue
    if (message.route._tag === "Agent") {
      timeouts.push(MessageTimedOut.make({ message_id: message.id, error_code: "AGENT_SHUTDOWN", at: now }, true))
    } else if (message.location === "in_flight") {
      const to = reroute(state, message, moving)
      if (to !== agentId) inFlight.push({ message, to })
    }
  }
  return [...requeueAll([...moves, ...inFlight], "recipient_lost", now), ...timeouts]
}

/**
 * Queued messages routed by capability that wait on agents no longer
 * available, because no live agent had the capability when theirs was lost:
 * they move to `agentId`, becoming available with some of those capabilities.
 */
export const adoptStranded = (
  state: RuntimeState,
  agentId: string,
  capabilities: ReadonlyArray<string>,
  now: number
): ReadonlyArray<MessageRequeued> => {
  if (capabilities.length === 0) return []
  const moves: Array<Move> = []
  for (const [id, mailbox] of state.mailboxes) {
    if (id === agentId || mailbox.queued === 0 || isAvailable(state.agents.get(id))) continue
    for (const message of queuedMessages(state, mailbox)) {
      if (message.route._tag === "Capability" && capabilities.includes(message.route.capability)) {
        moves.push({ message, to: agentId })
      }
    }
  }
  return requeueAll(moves, "recipient_lost", now)
}

/**
 * After a restart no subscriber holds a delivery any more: every message in
 * flight with attempts left is queued again now; one on its last attempt
 * waits for its ack wait as before, then times out.
 */
export const decideReconcile = (
  state: RuntimeState,
  config: RuntimeConfig,
  now: number
): ReadonlyArray<MessageRequeued> => {
  const moves: Array<Move> = []
  const moving = placement()
  for (const message of state.messages.values()) {
    if (message.location === "in_flight" && message.attempts < config.maxAttempts) {
      moves.push({ message, to: reroute(state, message, moving) })
    }
  }
  return requeueAll(moves, "restart", now)
}

type Handed = ReadonlyArray<{ readonly message_id: string; readonly delivery_seq: number }>

/**
 * Requeues those of `deliveries` that are still in flight to `agentId` as
 * they were handed out (same delivery_seq) and `eligible`; one that has
 * moved on since (settled, requeued, delivered again) stays.
 */
const requeueHanded = (
  state: RuntimeState,
  agentId: string,
  deliveries: Handed,
  eligible: (message: MessageEntry) => boolean,
  reason: MessageRequeued["reason"],
  now: number
): ReadonlyArray<MessageRequeued> => {
  const moves: Array<Move> = []
  const moving = placement()
  for (const delivery of deliveries) {
    const message = state.messages.get(delivery.message_id)
    if (
      message === undefined || message.location !== "in_flight" || message.to !== agentId ||
      message.deliverySeq !== delivery.delivery_seq || !eligible(message)
    ) continue
    moves.push({ message, to: reroute(state, message, moving) })
  }
  return requeueAll(moves, reason, now)
}

/**
 * Deliveries that a subscriber of the agent still had in its inbox when it
 * left: no consumer ever saw them, so they are queued again at once, their
 * attempt given back, rather than waiting out an ack wait for nothing. One
 * that has moved on since (acknowledged, requeued, delivered again) stays.
 */
export const decideUntakenDeliveries = (
  state: RuntimeState,
  agentId: string,
  deliveries: Handed,
  now: number
): ReadonlyArray<MessageRequeued> =>
  requeueHanded(state, agentId, deliveries, (message) => message.stage === "RECEIVED", "subscriber_left", now)

/**
 * Deliveries that a subscriber's consumer took and had not settled when the
 * subscription ended asking for them to be released (a network consumer that
 * will reconnect, and wants them again at once rather than after their ack
 * wait). The consumer saw each one, so its attempt counts, as after an ack
 * wait: a message that kills its consumer's connection every time still ends
 * in the dead letters. One on its last attempt stays in flight, as after a
 * restart: it may still be acknowledged until its ack wait runs out, then it
 * times out. One that has moved on since (settled, requeued, delivered
 * again) stays.
 */
export const decideReleasedDeliveries = (
  state: RuntimeState,
  config: RuntimeConfig,
  agentId: string,
  deliveries: Handed,
  now: number
): ReadonlyArray<MessageRequeued> =>
  // In flight, it is not finished: a terminal ACK takes it out of its mailbox at once.
  requeueHanded(state, agentId, deliveries, (message) => message.attempts < config.maxAttempts, "released", now)
