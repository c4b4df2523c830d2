/**
 * The registry and the router as pure rules: `decide*` reads the state and a
 * command (with `now` as an argument) and answers with a typed error or the
 * events to append; `evolve` applies one event. The live runtime and replay
 * run the very same functions.
 *
 * The state is large and hot (every message of every mailbox), so `evolve`
 * updates it in place and returns it; `decide*` never changes it. Folding the
 * same events over `initialState()` always yields the same state.
 *
 * Events are built with validation off (`Event.make(props, true)`): their
 * inputs were validated at the service's edge, and re-validating a whole
 * envelope per event would cost more than the rest of a decision. The three
 * events of every message (accepted, delivered, acked) are plain literals:
 * even unvalidated, `make` walks the schema's fields for defaults on each call.
 */
import { Either } from "effect"
import type { AgentDescriptor, EdgeType } from "../schema/Agent.js"
import type {
  AckStage,
  AgentState,
  CommunicationClass,
  Envelope,
  EnvelopeState,
  ErrorCode,
  MessageType
} from "../schema/Envelope.js"
import {
  AgentShutdown,
  AgentUnavailable,
  BufferFull,
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
  AgentDeregistered,
  AgentHeartbeat,
  AgentLivenessLost,
  AgentRegistered,
  MessageAccepted,
  MessageAcked,
  MessageDelivered,
  MessageRedriven,
  MessageRefused,
  MessageRequeued,
  MessageTimedOut,
  type Route,
  TopologyEdgeAdded,
  type RouterEvent
} from "../schema/RouterEvents.js"
import type { Event } from "../schema/Event.js"
import type { GatewayEvent } from "../schema/GatewayEvents.js"
import { type Deadline, Deadlines } from "./Deadlines.js"
import { Deque } from "./Deque.js"
import {
  blockedReason,
  decideApprovalTimeouts,
  decideCheck,
  evolveGateway,
  type GatewayState,
  gatewaySnapshot,
  type GatewayView,
  governsMessages,
  initialGatewayState,
  nextApprovalDeadline,
  Refusal
} from "./Gateway.js"

// ---------------------------------------------------------------------------
// Configuration

export interface RouterConfig {
  /** How long a delivery waits for a terminal ACK before it is tried again (a READ restarts it). */
  readonly ackWaitMs: number
  /** Deliveries of one message before it times out with ACK_TIMEOUT. */
  readonly maxAttempts: number
  /** Messages a mailbox holds, queued or in flight; past it, BUFFER_FULL. */
  readonly mailboxCapacity: number
  /** Unacknowledged deliveries in flight per subscriber. */
  readonly maxInFlight: number
  /** Largest payload in bytes; past it, OVERSIZE_PAYLOAD. */
  readonly payloadLimit: number
  /** How long (producer, idempotency token) and (producer, sequence number) are remembered. */
  readonly dedupWindowMs: number
  /** Finished messages are forgotten this long after they finish (never before the dedup window). */
  readonly retentionMs: number
  /** Heartbeats may stop this long before an agent is marked unavailable; undefined: never. */
  readonly livenessTimeoutMs: number | undefined
  /** PRIVILEGED deliveries per recipient per second; more are served as STANDARD. */
  readonly privilegedPerSecond: number
  /** While BULK waits, at least one delivery in this many is BULK. */
  readonly bulkEvery: number
  /** Message types accepted by `send`; undefined: all. */
  readonly supportedMessageTypes: ReadonlyArray<MessageType> | undefined
  /** A registration whose depth (root 0) would reach this is refused. */
  readonly maxDelegationDepth: number
}

export const defaultRouterConfig: RouterConfig = {
  ackWaitMs: 30_000,
  maxAttempts: 5,
  mailboxCapacity: 10_000,
  maxInFlight: 1_000,
  payloadLimit: 1024 * 1024,
  dedupWindowMs: 3_600_000,
  retentionMs: 3_600_000,
  livenessTimeoutMs: 60_000,
  privilegedPerSecond: 100,
  bulkEvery: 10,
  supportedMessageTypes: undefined,
  maxDelegationDepth: 10
}

// ---------------------------------------------------------------------------
// State

export interface AgentEntry {
  descriptor: AgentDescriptor
  state: AgentState
  health: Readonly<Record<string, string>>
  /** Registered and not deregistered. */
  registered: boolean
  /** False once its heartbeats stopped for too long, until the next one. */
  live: boolean
  livenessDeadline: number | undefined
  registeredAt: number
}

export type Location = "queued" | "in_flight" | "done"

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
  /** Acceptance order across the router (breaks ties between lanes), taken again when a dead letter is redriven. */
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
  /** Agents it was delivered to: each may acknowledge it. */
  readonly recipients: Array<string>
  lateAcks: number
  finishedAt: number | undefined
}

interface QueueEntry {
  readonly id: string
  readonly enqueued: number
}

export interface Mailbox {
  readonly lanes: Readonly<Record<CommunicationClass, Deque<QueueEntry>>>
  queued: number
  inFlight: number
  /** The delivery_seq of the next delivery: per recipient, from 1, gap-free. */
  nextSeq: number
  /** Undefined while the bucket is full and untouched. */
  privilegedTokens: number | undefined
  privilegedRefilledAt: number
  /** Deliveries since the last BULK one. */
  sinceBulk: number
  /** Message ids, oldest first. */
  readonly deadLetters: Set<string>
}

export interface RouterState {
  readonly agents: Map<string, AgentEntry>
  readonly messages: Map<string, MessageEntry>
  readonly mailboxes: Map<string, Mailbox>
  readonly dedup: Map<string, { readonly message_id: string; readonly at: number }>
  readonly dedupOrder: Deque<{ readonly key: string; readonly at: number }>
  readonly finished: Deque<{ readonly id: string; readonly at: number }>
  readonly deadlines: Deadlines<RouterDeadline>
  /** Topology edges by `from, to, type`. */
  readonly edges: Map<string, Edge>
  accepted: number
  /** Policies, approvals, the kill switch, budgets, leases, the audit head. */
  readonly gateway: GatewayState
}

/** What the router waits for: an ack, a TTL, a heartbeat. */
export type RouterDeadline = "ack_wait" | "ttl" | "liveness"

export interface Edge {
  readonly from: string
  readonly to: string
  readonly edge_type: EdgeType
  readonly at: number
}

const edgeKey = (from: string, to: string, type: EdgeType) => `${from}\u0000${to}\u0000${type}`

export const initialState = (): RouterState => ({
  agents: new Map(),
  messages: new Map(),
  mailboxes: new Map(),
  dedup: new Map(),
  dedupOrder: new Deque(),
  finished: new Deque(),
  deadlines: new Deadlines(),
  edges: new Map(),
  accepted: 0,
  gateway: initialGatewayState()
})

/** The registry, as the gateway sees it. */
export const gatewayView = (state: RouterState): GatewayView => ({
  teamOf: (agentId) => state.agents.get(agentId)?.descriptor.team_id,
  modeOf: (agentId) => {
    const agent = state.agents.get(agentId)
    return agent === undefined || !agent.registered ? undefined : agent.descriptor.enforcement_mode
  },
  lineageOf: (agentId) => lineageOf(state, agentId)
})

const lanes: ReadonlyArray<CommunicationClass> = ["PRIVILEGED", "STANDARD", "BULK"]

const newMailbox = (): Mailbox => ({
  lanes: { PRIVILEGED: new Deque(), STANDARD: new Deque(), BULK: new Deque() },
  queued: 0,
  inFlight: 0,
  nextSeq: 1,
  privilegedTokens: undefined,
  privilegedRefilledAt: 0,
  sinceBulk: 0,
  deadLetters: new Set()
})

export const mailboxOf = (state: RouterState, agentId: string): Mailbox => {
  let mailbox = state.mailboxes.get(agentId)
  if (mailbox === undefined) {
    mailbox = newMailbox()
    state.mailboxes.set(agentId, mailbox)
  }
  return mailbox
}

const load = (state: RouterState, agentId: string) => {
  const mailbox = state.mailboxes.get(agentId)
  return mailbox === undefined ? 0 : mailbox.queued + mailbox.inFlight
}

export const isTerminal = (stage: EnvelopeState) =>
  stage === "FULFILLED" || stage === "REJECTED" || stage === "FAILED" || stage === "TIMED_OUT"

/**
 * What makes two sends one logical message: the idempotency token, else the
 * producer's sequence number. A sequence number of 0 means "not set", as in
 * protobuf, so a producer that numbers nothing is never deduplicated by it.
 */
const dedupKey = (envelope: Envelope): string | undefined =>
  envelope.idempotency_token !== undefined
    ? `t\u0000${envelope.producer_id}\u0000${envelope.idempotency_token}`
    : envelope.sequence_number > 0
    ? `s\u0000${envelope.producer_id}\u0000${envelope.sequence_number}`
    : undefined

export const isAvailable = (agent: AgentEntry | undefined): agent is AgentEntry =>
  agent !== undefined && agent.registered && agent.live && agent.state !== "SHUTTING_DOWN"

// ---------------------------------------------------------------------------
// Registry decisions

/** An edge to record, unless it is already known. */
const newEdge = (state: RouterState, from: string, to: string, edge_type: EdgeType, now: number) =>
  state.edges.has(edgeKey(from, to, edge_type)) ? [] : [TopologyEdgeAdded.make({ from, to, edge_type, at: now }, true)]

/** The agent and its ancestors, self first, root last. */
export const lineageOf = (state: RouterState, agentId: string): ReadonlyArray<string> => {
  const lineage: Array<string> = []
  for (let id: string | undefined = agentId; id !== undefined && !lineage.includes(id);) {
    lineage.push(id)
    id = state.agents.get(id)?.descriptor.parent_agent_id
  }
  return lineage
}

/**
 * How many registered agents are below this one, through deregistered ones
 * too: their lineages still pass through it.
 */
const registeredDescendants = (state: RouterState, agentId: string) => {
  const below = [agentId]
  let registered = 0
  for (let i = 0; i < below.length; i++) {
    for (const [id, agent] of state.agents) {
      if (agent.descriptor.parent_agent_id === below[i] && !below.includes(id)) {
        below.push(id)
        if (agent.registered) registered++
      }
    }
  }
  return registered
}

/** The agent and every agent it spawned, directly or not, breadth first. */
export const subtreeOf = (state: RouterState, agentId: string): ReadonlyArray<string> => {
  const subtree = [agentId]
  for (let i = 0; i < subtree.length; i++) {
    for (const [id, agent] of state.agents) {
      if (agent.registered && agent.descriptor.parent_agent_id === subtree[i] && !subtree.includes(id)) subtree.push(id)
    }
  }
  return subtree
}

/**
 * Registers (or re-registers) an agent. Its depth comes from its lineage: a
 * registration that would reach `maxDelegationDepth`, or whose parent
 * descends from the agent itself (a cycle), is refused.
 */
export const decideRegister = (
  state: RouterState,
  config: RouterConfig,
  agent: AgentDescriptor,
  now: number
): Either.Either<ReadonlyArray<RouterEvent>, PermissionDenied | ValidationError> => {
  if (state.gateway.killed.has(agent.agent_id)) {
    return Either.left(new PermissionDenied({ reason: `agent ${agent.agent_id} was killed and may not register again` }))
  }
  const parentId = agent.parent_agent_id
  let depth = 0
  if (parentId !== undefined) {
    const parent = state.agents.get(parentId)
    if (parent === undefined || !parent.registered) {
      return Either.left(ValidationError.single("agent", "parent_agent_id", `unknown agent ${parentId}`))
    }
    const parentLineage = lineageOf(state, parentId)
    if (parentLineage.includes(agent.agent_id)) {
      return Either.left(new PermissionDenied({
        reason: `registering ${agent.agent_id} under ${parentId} would close a cycle: ${
          [agent.agent_id, ...parentLineage.slice(0, parentLineage.indexOf(agent.agent_id) + 1)].join(" → ")
        }`
      }))
    }
    // The parent and its ancestors, as they are now: its own recorded depth could be stale.
    depth = parentLineage.length
    if (depth >= config.maxDelegationDepth) {
      return Either.left(new PermissionDenied({
        reason: `delegation depth ${depth} of ${agent.agent_id} reaches the limit ${config.maxDelegationDepth}`
      }))
    }
  }
  // Moving an agent to another depth would move its descendants too, past what
  // was checked when they registered, and make their recorded depths untrue.
  const existing = state.agents.get(agent.agent_id)
  // Deregistered or not: its registered descendants are still below it.
  if (existing !== undefined && (existing.descriptor.depth ?? 0) !== depth) {
    const descendants = registeredDescendants(state, agent.agent_id)
    if (descendants > 0) {
      return Either.left(new PermissionDenied({
        reason: `re-registering ${agent.agent_id} at depth ${depth} (it is at ${
          existing.descriptor.depth ?? 0
        }) would move its ${descendants} descendant${descendants === 1 ? "" : "s"}`
      }))
    }
  }
  if (agent.depth !== undefined && agent.depth !== depth) {
    return Either.left(ValidationError.single("agent", "depth", `is ${depth} by its lineage, not ${agent.depth}`))
  }
  return Either.right([
    AgentRegistered.make({ agent: { ...agent, depth }, liveness_deadline: livenessDeadline(config, now), at: now }, true),
    ...(parentId === undefined ? [] : newEdge(state, parentId, agent.agent_id, "delegates_to", now)),
    ...adoptStranded(state, agent.agent_id, agent.capabilities, now)
  ])
}

/** Records an edge of the topology (calls, reads, writes, approves, ...) if it is new. */
export const decideEdge = (
  state: RouterState,
  edge: { readonly from: string; readonly to: string; readonly edge_type: EdgeType },
  now: number
): ReadonlyArray<RouterEvent> => newEdge(state, edge.from, edge.to, edge.edge_type, now)

const livenessDeadline = (config: RouterConfig, now: number) =>
  config.livenessTimeoutMs === undefined ? undefined : now + config.livenessTimeoutMs

const knownAgent = (state: RouterState, agentId: string) => {
  const agent = state.agents.get(agentId)
  return agent !== undefined && agent.registered ? Either.right(agent) : Either.left(new NoRoute({ to: agentId }))
}

export const decideHeartbeat = (
  state: RouterState,
  config: RouterConfig,
  /** Without `state` and `health`, the agent keeps those it reported last: a heartbeat of liveness alone. */
  command: {
    readonly agent_id: string
    readonly state?: AgentState | undefined
    readonly health?: Readonly<Record<string, string>> | undefined
  },
  now: number
): Either.Either<ReadonlyArray<RouterEvent>, NoRoute> =>
  Either.map(knownAgent(state, command.agent_id), (agent) => {
    const reported = command.state ?? agent.state
    return [
      AgentHeartbeat.make({
        agent_id: command.agent_id,
        state: reported,
        health: command.health ?? agent.health,
        liveness_deadline: livenessDeadline(config, now),
        at: now
      }, true),
      // Back from unavailable: it may take the work that waits for its capabilities.
      ...((agent.live && agent.state !== "SHUTTING_DOWN") || reported === "SHUTTING_DOWN"
        ? []
        : adoptStranded(state, command.agent_id, agent.descriptor.capabilities, now))
    ]
  })

export const decideDeregister = (
  state: RouterState,
  command: { readonly agent_id: string; readonly reason: string },
  now: number
): Either.Either<ReadonlyArray<RouterEvent>, NoRoute> =>
  Either.map(knownAgent(state, command.agent_id), () => [
    AgentDeregistered.make({ agent_id: command.agent_id, reason: command.reason, at: now }, true),
    ...requeueAll(moveQueuedCapabilityMessages(state, command.agent_id, placement([command.agent_id])), "recipient_lost", now)
  ])

/**
 * Requeues for several messages at once. One delivered before goes to the
 * front of its lane, so those are emitted last-accepted first: they end up in
 * the order they were accepted, which is the order they were first delivered
 * (FIFO), not reversed. One never delivered takes its place by acceptance
 * order, found from the back of the lane: emitted first-accepted first, each
 * finds it at once.
 */
const requeueAll = (
  messages: ReadonlyArray<{ readonly message: MessageEntry; readonly to: string }>,
  reason: MessageRequeued["reason"],
  now: number
) => {
  const fresh = messages.filter(({ message }) => message.attempts === 0)
  const redelivered = messages.filter(({ message }) => message.attempts > 0)
  return [
    ...fresh.sort((a, b) => a.message.order - b.message.order),
    ...redelivered.sort((a, b) => b.message.order - a.message.order)
  ].map(({ message, to }) => MessageRequeued.make({ message_id: message.id, to, reason, at: now }, true))
}

/** Queued messages routed by capability leave an agent that is gone for another live one. */
const moveQueuedCapabilityMessages = (state: RouterState, agentId: string, moving: Placement) => {
  const mailbox = state.mailboxes.get(agentId)
  if (mailbox === undefined || mailbox.queued === 0) return []
  const moves: Array<{ readonly message: MessageEntry; readonly to: string }> = []
  for (const lane of lanes) {
    for (const entry of mailbox.lanes[lane]) {
      const message = state.messages.get(entry.id)
      if (message === undefined || !isQueuedEntry(message, entry) || message.route._tag !== "Capability") continue
      const target = placeByCapability(state, message.route.capability, moving)
      if (target !== undefined) moves.push({ message, to: target })
    }
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
export const decideKilledAgentWork = (state: RouterState, agentId: string, now: number): ReadonlyArray<RouterEvent> => {
  const moving = placement([agentId])
  const moves = moveQueuedCapabilityMessages(state, agentId, moving)
  const moved = new Set(moves.map(({ message }) => message.id))
  const inFlight: Array<{ readonly message: MessageEntry; readonly to: string }> = []
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
const adoptStranded = (state: RouterState, agentId: string, capabilities: ReadonlyArray<string>, now: number) => {
  if (capabilities.length === 0) return []
  const moves: Array<{ readonly message: MessageEntry; readonly to: string }> = []
  for (const [id, mailbox] of state.mailboxes) {
    if (id === agentId || mailbox.queued === 0 || isAvailable(state.agents.get(id))) continue
    for (const lane of lanes) {
      for (const entry of mailbox.lanes[lane]) {
        const message = state.messages.get(entry.id)
        if (message === undefined || !isQueuedEntry(message, entry) || message.route._tag !== "Capability") continue
        if (capabilities.includes(message.route.capability)) moves.push({ message, to: agentId })
      }
    }
  }
  return requeueAll(moves, "recipient_lost", now)
}

// ---------------------------------------------------------------------------
// Routing

/**
 * What one decision knows beyond the state while it moves several messages:
 * the agents it finds gone (the state still has them available until its
 * events are applied), and the messages it has already sent to each agent.
 */
interface Placement {
  readonly gone: ReadonlySet<string>
  readonly extraLoad: Map<string, number>
}

const placement = (gone: Iterable<string> = []): Placement => ({ gone: new Set(gone), extraLoad: new Map() })

/**
 * The live agent with the capability that has the fewest messages, ties to
 * the earliest registered; `undefined` when none has room.
 */
const pickByCapability = (
  state: RouterState,
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
    if (blockedReason(state.gateway, id) === undefined) {
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
const placeByCapability = (state: RouterState, capability: string, moving: Placement) => {
  const target = pickByCapability(state, capability, moving)
  if (target !== undefined) moving.extraLoad.set(target, (moving.extraLoad.get(target) ?? 0) + 1)
  return target
}

type RouteError = NoRoute | AgentUnavailable | AgentShutdown | BufferFull

const resolveRoute = (
  state: RouterState,
  config: RouterConfig,
  route: Route
): Either.Either<string, RouteError> => {
  if (route._tag === "Agent") {
    const agent = state.agents.get(route.agent_id)
    if (agent === undefined || !agent.registered) return Either.left(new NoRoute({ to: route.agent_id }))
    if (agent.state === "SHUTTING_DOWN") return Either.left(new AgentShutdown({ agent_id: route.agent_id }, true))
    if (!agent.live) return Either.left(new AgentUnavailable({ agent_id: route.agent_id }, true))
    if (load(state, route.agent_id) >= config.mailboxCapacity) {
      return Either.left(new BufferFull({ agent_id: route.agent_id, capacity: config.mailboxCapacity }))
    }
    return Either.right(route.agent_id)
  }
  const picked = pickByCapability(state, route.capability, undefined, config.mailboxCapacity)
  if (picked !== undefined) return Either.right(picked)
  const withCapability = [...state.agents.values()].filter((agent) =>
    agent.registered && agent.descriptor.capabilities.includes(route.capability)
  )
  const to = `capability ${route.capability}`
  if (withCapability.length === 0) return Either.left(new NoRoute({ to }))
  if (!withCapability.some(isAvailable)) return Either.left(new AgentUnavailable({ agent_id: to }, true))
  return Either.left(new BufferFull({ agent_id: to, capacity: config.mailboxCapacity }))
}

/** Where a message goes when it is sent again: elsewhere only if routed by capability and its agent is gone. */
const reroute = (state: RouterState, message: MessageEntry, moving: Placement = placement()) => {
  if (message.route._tag !== "Capability") return message.to
  if (isAvailable(state.agents.get(message.to)) && !moving.gone.has(message.to)) return message.to
  return placeByCapability(state, message.route.capability, moving) ?? message.to
}

// ---------------------------------------------------------------------------
// Sending

export type SendError =
  | RouteError
  | OversizePayload
  | UnsupportedMessageType
  | TtlExpired
  | DuplicateDetected
  | ValidationError

/** The message a duplicate repeats, if the envelope is one. */
export const findDuplicate = (
  state: RouterState,
  config: RouterConfig,
  envelope: Envelope,
  now: number
): MessageEntry | undefined => {
  const same = state.messages.get(envelope.message_id)
  if (same !== undefined) return same
  const key = dedupKey(envelope)
  const seen = key === undefined ? undefined : state.dedup.get(key)
  if (seen === undefined || seen.at <= now - config.dedupWindowMs) return undefined
  return state.messages.get(seen.message_id)
}

export const decideSend = (
  state: RouterState,
  config: RouterConfig,
  command: { readonly route: Route; readonly envelope: Envelope },
  now: number
): Either.Either<ReadonlyArray<Event>, SendError | Refusal<PermissionDenied>> => {
  const { envelope, route } = command
  if (envelope.payload.length > config.payloadLimit) {
    return Either.left(new OversizePayload({ size: envelope.payload.length, limit: config.payloadLimit }))
  }
  if (config.supportedMessageTypes !== undefined && !config.supportedMessageTypes.includes(envelope.message_type)) {
    return Either.left(new UnsupportedMessageType({ message_type: envelope.message_type }))
  }
  if (envelope.message_type === "ACKNOWLEDGEMENT") {
    return Either.left(
      ValidationError.single("envelope", "message_type", "an ACKNOWLEDGEMENT is an ack, not a message to deliver")
    )
  }
  const duplicate = findDuplicate(state, config, envelope, now)
  if (duplicate !== undefined) {
    return Either.left(
      new DuplicateDetected({ original_message_id: duplicate.id, stage: duplicate.stage })
    )
  }
  const expiresAt = envelope.ttl_ms > 0 ? envelope.timestamp.epochMillis + envelope.ttl_ms : undefined
  if (expiresAt !== undefined && expiresAt <= now) {
    return Either.left(new TtlExpired({ message_id: envelope.message_id }))
  }
  const routed = resolveRoute(state, config, route)
  if (Either.isLeft(routed)) return Either.left(routed.left)
  const to = routed.right
  // The gateway: the kill switch always, the policies when one governs messages.
  let audit: ReadonlyArray<GatewayEvent> = []
  if (blockedReason(state.gateway, envelope.producer_id) !== undefined || governsMessages(state.gateway)) {
    const checked = decideCheck(state.gateway, gatewayView(state), {
      kind: "message",
      agent_id: envelope.producer_id,
      to,
      message_type: envelope.message_type
    }, now)
    if (checked.decision.decision === "deny" || checked.decision.decision === "pending") {
      const reason = checked.decision.decision === "pending"
        ? `a message cannot wait for approval: ${checked.decision.reason}`
        : checked.decision.reason
      // The kill switch refuses for a while: such a message is not recorded as
      // refused, so that sent again once its producer is resumed, it is not
      // taken for a duplicate of a REJECTED one. A policy's refusal stands.
      const refused = checked.decision.rule === "kill switch"
        ? []
        : [MessageRefused.make({ to, envelope, error_code: "PERMISSION_DENIED", reason, at: now }, true)]
      return Either.left(new Refusal(new PermissionDenied({ reason }), [...checked.events, ...refused]))
    }
    audit = checked.events
  }
  return Either.right([
    ...audit,
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
  ])
}

// ---------------------------------------------------------------------------
// Acknowledging

export interface AckCommand {
  readonly agent_id: string
  readonly message_id: string
  readonly stage: AckStage
  readonly error_code?: ErrorCode | undefined
  readonly note?: string | undefined
}

export type AckError = MessageNotFound | PermissionDenied | ValidationError

export const decideAck = (
  state: RouterState,
  config: RouterConfig,
  command: AckCommand,
  now: number
): Either.Either<ReadonlyArray<RouterEvent>, AckError> => {
  const message = state.messages.get(command.message_id)
  if (message === undefined) return Either.left(new MessageNotFound({ message_id: command.message_id }, true))
  if (command.agent_id !== message.to && !message.recipients.includes(command.agent_id)) {
    return Either.left(
      new PermissionDenied({ reason: `${command.agent_id} is not a recipient of message ${command.message_id}` })
    )
  }
  // An ACK is something the agent sends: a suspended (or killed, or halted) one sends nothing.
  const blocked = blockedReason(state.gateway, command.agent_id)
  if (blocked !== undefined) return Either.left(new PermissionDenied({ reason: blocked }))
  if (command.stage === "RECEIVED" || command.stage === "TIMED_OUT") {
    return Either.left(
      ValidationError.single("ack", "ack_stage", `${command.stage} is recorded by the router, not acknowledged`)
    )
  }
  if ((command.stage === "REJECTED" || command.stage === "FAILED") && command.error_code === undefined) {
    return Either.left(ValidationError.single("ack", "error_code", `${command.stage} must carry an error code`))
  }
  const restartsWait = command.stage === "READ" && message.location === "in_flight" && !isTerminal(message.stage)
  return Either.right([
    {
      _tag: "MessageAcked",
      message_id: command.message_id,
      agent_id: command.agent_id,
      stage: command.stage,
      error_code: command.error_code,
      note: command.note,
      ack_deadline: restartsWait ? now + config.ackWaitMs : undefined,
      at: now
    } satisfies MessageAcked
  ])
}

// ---------------------------------------------------------------------------
// Dead letters

export const decideRedrive = (
  state: RouterState,
  messageId: string,
  now: number
): Either.Either<ReadonlyArray<RouterEvent>, MessageNotFound | ValidationError | NoRoute> => {
  const message = state.messages.get(messageId)
  if (message === undefined) return Either.left(new MessageNotFound({ message_id: messageId }, true))
  // A dead letter keeps its envelope: testing both is one test, and tells the compiler so.
  if (!message.deadLetter || message.envelope === undefined) {
    return Either.left(ValidationError.single("redrive", "message_id", `message ${messageId} is not a dead letter`))
  }
  const to = reroute(state, message)
  // A killed agent never registers again: sent to it by id, the message would wait
  // forever. By capability, it waits for the next agent able to take it, as any other.
  if (message.route._tag === "Agent" && state.gateway.killed.has(to)) return Either.left(new NoRoute({ to }))
  const ttl = message.envelope.ttl_ms
  return Either.right([
    MessageRedriven.make({
      message_id: messageId,
      to,
      expires_at: ttl > 0 ? now + ttl : undefined,
      at: now
    }, true)
  ])
}

// ---------------------------------------------------------------------------
// Time: ack waits, TTLs, liveness

const isQueuedEntry = (message: MessageEntry, entry: QueueEntry) =>
  message.location === "queued" && message.enqueued === entry.enqueued

/** Whether a deadline still matters: its message or agent has not moved on since it was set. */
const isPending = (state: RouterState, deadline: Deadline<RouterDeadline>): boolean => {
  switch (deadline.kind) {
    case "ack_wait": {
      const message = state.messages.get(deadline.id)
      return message !== undefined && message.location === "in_flight" && message.ackDeadline === deadline.at
    }
    case "ttl": {
      const message = state.messages.get(deadline.id)
      return message !== undefined && message.location !== "done" && message.expiresAt === deadline.at
    }
    case "liveness": {
      const agent = state.agents.get(deadline.id)
      return agent !== undefined && agent.registered && agent.live && agent.livenessDeadline === deadline.at
    }
  }
}

/** The events that the deadlines due at `now` call for. */
export const decideTick = (state: RouterState, config: RouterConfig, now: number): ReadonlyArray<Event> => {
  // Most turns have nothing due: they need not build anything to find that out.
  const next = nextDeadline(state)
  if (next === undefined || next > now) return []
  const events: Array<Event> = [...decideApprovalTimeouts(state.gateway, gatewayView(state), now)]
  const due = state.deadlines.due(now).filter((deadline) => isPending(state, deadline))
  // Every event of the tick is decided against the state before it: an agent
  // lost later in the tick must not take work moved earlier in it.
  const moving = placement(due.flatMap((deadline) => deadline.kind === "liveness" ? [deadline.id] : []))
  const moves: Array<{ readonly message: MessageEntry; readonly to: string }> = []
  const requeues: Array<{ readonly message: MessageEntry; readonly to: string }> = []
  const handled = new Set<string>()
  for (const deadline of due) {
    if (handled.has(deadline.id)) continue
    handled.add(deadline.id)
    if (deadline.kind === "liveness") {
      events.push(AgentLivenessLost.make({ agent_id: deadline.id, at: now }, true))
      moves.push(...moveQueuedCapabilityMessages(state, deadline.id, moving))
      continue
    }
    const message = state.messages.get(deadline.id)!
    if (deadline.kind === "ttl" || (message.expiresAt !== undefined && message.expiresAt <= now)) {
      events.push(MessageTimedOut.make({ message_id: deadline.id, error_code: "TTL_EXPIRED", at: now }, true))
    } else if (message.attempts >= config.maxAttempts) {
      events.push(MessageTimedOut.make({ message_id: deadline.id, error_code: "ACK_TIMEOUT", at: now }, true))
    } else {
      requeues.push({ message, to: reroute(state, message, moving) })
    }
  }
  return [...events, ...requeueAll(moves, "recipient_lost", now), ...requeueAll(requeues, "ack_wait", now)]
}

/** The next time `decideTick` has something to do. */
export const nextDeadline = (state: RouterState): number | undefined => {
  const router = state.deadlines.peek()?.at
  const approval = nextApprovalDeadline(state.gateway)
  return router === undefined ? approval : approval === undefined ? router : Math.min(router, approval)
}

/**
 * After a restart no subscriber holds a delivery any more: every message in
 * flight with attempts left is queued again now; one on its last attempt
 * waits for its ack wait as before, then times out.
 */
export const decideReconcile = (
  state: RouterState,
  config: RouterConfig,
  now: number
): ReadonlyArray<RouterEvent> => {
  const requeues: Array<{ readonly message: MessageEntry; readonly to: string }> = []
  const moving = placement()
  for (const message of state.messages.values()) {
    if (message.location === "in_flight" && message.attempts < config.maxAttempts) {
      requeues.push({ message, to: reroute(state, message, moving) })
    }
  }
  return requeueAll(requeues, "restart", now)
}

/**
 * Deliveries that a subscriber of the agent still had in its inbox when it
 * left: no consumer ever saw them, so they are queued again at once, their
 * attempt given back, rather than waiting out an ack wait for nothing. One
 * that has moved on since (acknowledged, requeued, delivered again) stays.
 */
export const decideUntakenDeliveries = (
  state: RouterState,
  agentId: string,
  deliveries: ReadonlyArray<{ readonly message_id: string; readonly delivery_seq: number }>,
  now: number
): ReadonlyArray<RouterEvent> => {
  const requeues: Array<{ readonly message: MessageEntry; readonly to: string }> = []
  const moving = placement()
  for (const delivery of deliveries) {
    const message = state.messages.get(delivery.message_id)
    if (
      message === undefined || message.location !== "in_flight" || message.stage !== "RECEIVED" ||
      message.to !== agentId || message.deliverySeq !== delivery.delivery_seq
    ) continue
    requeues.push({ message, to: reroute(state, message, moving) })
  }
  return requeueAll(requeues, "subscriber_left", now)
}

// ---------------------------------------------------------------------------
// Delivering

const refilledTokens = (mailbox: Mailbox, config: RouterConfig, now: number) => {
  const burst = Math.max(1, config.privilegedPerSecond)
  if (mailbox.privilegedTokens === undefined) return burst
  const refill = ((now - mailbox.privilegedRefilledAt) * config.privilegedPerSecond) / 1000
  return Math.min(burst, mailbox.privilegedTokens + refill)
}

/**
 * Up to `credit` deliveries from the agent's mailbox, in lane order:
 * PRIVILEGED while its rate allows (beyond it, PRIVILEGED messages compete
 * with STANDARD in acceptance order), then STANDARD, and BULK when nothing
 * else waits. While BULK waits, one delivery in every `bulkEvery` is BULK,
 * before PRIVILEGED too: a PRIVILEGED stream within its rate would starve it.
 * Within a lane, first accepted is first delivered.
 */
export const decideDeliveries = (
  state: RouterState,
  config: RouterConfig,
  agentId: string,
  credit: number,
  now: number
): ReadonlyArray<MessageDelivered> => {
  const mailbox = state.mailboxes.get(agentId)
  if (mailbox === undefined || mailbox.queued === 0 || credit <= 0) return []
  const agent = state.agents.get(agentId)
  // A suspended (or killed, or halted) agent receives nothing: its messages wait.
  if (!isAvailable(agent) || blockedReason(state.gateway, agentId) !== undefined) return []

  const cursor = { PRIVILEGED: 0, STANDARD: 0, BULK: 0 }
  const head = (lane: CommunicationClass): MessageEntry | undefined => {
    const queue = mailbox.lanes[lane]
    while (cursor[lane] < queue.length) {
      const entry = queue.at(cursor[lane])
      const message = state.messages.get(entry.id)
      if (message !== undefined && isQueuedEntry(message, entry) && message.to === agentId) return message
      cursor[lane]++
    }
    return undefined
  }

  let tokens = refilledTokens(mailbox, config, now)
  let sinceBulk = mailbox.sinceBulk
  let seq = mailbox.nextSeq
  const deliveries: Array<MessageDelivered> = []
  while (deliveries.length < credit) {
    const privileged = head("PRIVILEGED")
    const standard = head("STANDARD")
    const bulk = head("BULK")
    let lane: CommunicationClass
    let message: MessageEntry
    if (bulk !== undefined && sinceBulk >= config.bulkEvery - 1) {
      ;[lane, message] = ["BULK", bulk]
    } else if (privileged !== undefined && tokens >= 1) {
      ;[lane, message] = ["PRIVILEGED", privileged]
    } else if (bulk !== undefined && privileged === undefined && standard === undefined) {
      ;[lane, message] = ["BULK", bulk]
    } else if (privileged !== undefined && (standard === undefined || privileged.order < standard.order)) {
      ;[lane, message] = ["STANDARD", privileged]
    } else if (standard !== undefined) {
      ;[lane, message] = ["STANDARD", standard]
    } else {
      break
    }
    cursor[message.lane]++
    if (lane === "PRIVILEGED") tokens -= 1
    sinceBulk = lane === "BULK" ? 0 : sinceBulk + 1
    if (message.expiresAt !== undefined && message.expiresAt <= now) continue
    deliveries.push({
      _tag: "MessageDelivered",
      message_id: message.id,
      to: agentId,
      attempt: message.attempts + 1,
      delivery_seq: seq++,
      lane,
      ack_deadline: now + config.ackWaitMs,
      at: now
    } satisfies MessageDelivered)
  }
  return deliveries
}

// ---------------------------------------------------------------------------
// Evolve

/**
 * Where a message joins its lane: at the back when it is new, at the front
 * when it was delivered before (a redelivery), by acceptance order when it
 * was never delivered and moves from another mailbox.
 */
type Place = "back" | "front" | "by_order"

const enqueue = (state: RouterState, message: MessageEntry, place: Place) => {
  const mailbox = mailboxOf(state, message.to)
  message.location = "queued"
  message.enqueued++
  const entry = { id: message.id, enqueued: message.enqueued }
  const queue = mailbox.lanes[message.lane]
  if (place === "front") queue.pushFront(entry)
  else if (place === "back") queue.pushBack(entry)
  else queue.insert(positionByOrder(state, queue, message), entry)
  mailbox.queued++
}

/**
 * Behind the redeliveries and every message accepted before it, ahead of
 * those accepted after it: the lane stays FIFO per (producer, recipient) for
 * first deliveries. Walked from the back, where a moved message mostly goes.
 */
const positionByOrder = (state: RouterState, queue: Deque<QueueEntry>, message: MessageEntry) => {
  let index = queue.length
  for (; index > 0; index--) {
    const entry = queue.at(index - 1)
    const other = state.messages.get(entry.id)
    if (other !== undefined && isQueuedEntry(other, entry) && (other.order < message.order || other.attempts > 0)) break
  }
  return index
}

/** Takes the message out of its mailbox's counts; its queue entry goes stale. */
const leaveMailbox = (state: RouterState, message: MessageEntry) => {
  const mailbox = mailboxOf(state, message.to)
  if (message.location === "queued") mailbox.queued--
  else if (message.location === "in_flight") mailbox.inFlight--
  dropStaleHeads(state, mailbox)
}

const dropStaleHeads = (state: RouterState, mailbox: Mailbox) => {
  for (const lane of lanes) {
    const queue = mailbox.lanes[lane]
    while (queue.length > 0) {
      const entry = queue.at(0)
      const message = state.messages.get(entry.id)
      if (message !== undefined && isQueuedEntry(message, entry)) break
      queue.popFront()
    }
  }
}

const finish = (state: RouterState, message: MessageEntry, stage: EnvelopeState, at: number) => {
  leaveMailbox(state, message)
  message.location = "done"
  message.stage = stage
  message.ackDeadline = undefined
  message.finishedAt = at
  if (!message.deadLetter) message.envelope = undefined
  state.finished.pushBack({ id: message.id, at })
}

/** Forgets what has aged out: dedup keys past their window, finished messages past retention. */
const housekeep = (state: RouterState, config: RouterConfig, at: number) => {
  const dedupHorizon = at - config.dedupWindowMs
  while (state.dedupOrder.length > 0 && state.dedupOrder.at(0).at <= dedupHorizon) {
    const { key } = state.dedupOrder.popFront()!
    const seen = state.dedup.get(key)
    if (seen !== undefined && seen.at <= dedupHorizon) state.dedup.delete(key)
  }
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

const dropSpentDeadlines = (state: RouterState) => {
  for (let top = state.deadlines.peek(); top !== undefined && !isPending(state, top); top = state.deadlines.peek()) {
    state.deadlines.pop()
  }
}

/** When an event happened: an audit record keeps its time inside. */
const timeOf = (event: Event) => event._tag === "AuditRecorded" ? event.record.at : event.at

export const evolve = (config: RouterConfig) => (state: RouterState, event: Event): RouterState => {
  switch (event._tag) {
    case "AgentRegistered": {
      const existing = state.agents.get(event.agent.agent_id)
      state.agents.set(event.agent.agent_id, {
        descriptor: event.agent,
        state: "RUNNABLE",
        health: existing?.health ?? {},
        registered: true,
        live: true,
        livenessDeadline: event.liveness_deadline,
        registeredAt: existing?.registered ? existing.registeredAt : event.at
      })
      if (event.liveness_deadline !== undefined) {
        state.deadlines.push({ at: event.liveness_deadline, kind: "liveness", id: event.agent.agent_id })
      }
      break
    }
    case "AgentHeartbeat": {
      const agent = state.agents.get(event.agent_id)
      if (agent === undefined) break
      agent.state = event.state
      agent.health = event.health
      agent.live = true
      agent.livenessDeadline = event.liveness_deadline
      if (event.liveness_deadline !== undefined) {
        state.deadlines.push({ at: event.liveness_deadline, kind: "liveness", id: event.agent_id })
      }
      break
    }
    case "AgentDeregistered": {
      const agent = state.agents.get(event.agent_id)
      if (agent !== undefined) {
        agent.registered = false
        agent.state = "COMPLETED"
      }
      break
    }
    case "AgentLivenessLost": {
      const agent = state.agents.get(event.agent_id)
      if (agent !== undefined) agent.live = false
      break
    }
    case "TopologyEdgeAdded": {
      const { at, edge_type, from, to } = event
      state.edges.set(edgeKey(from, to, edge_type), { from, to, edge_type, at })
      break
    }
    case "MessageAccepted": {
      const envelope = event.envelope
      const message: MessageEntry = {
        id: envelope.message_id,
        producerId: envelope.producer_id,
        correlationId: envelope.correlation_id,
        envelope,
        route: event.route,
        lane: event.lane,
        acceptedAt: event.at,
        order: state.accepted++,
        to: event.to,
        stage: "RECEIVED",
        location: "queued",
        attempts: 0,
        enqueued: 0,
        ackDeadline: undefined,
        expiresAt: event.expires_at,
        deliverySeq: undefined,
        errorCode: undefined,
        deadLetter: false,
        recipients: [],
        lateAcks: 0,
        finishedAt: undefined
      }
      state.messages.set(envelope.message_id, message)
      enqueue(state, message, "back")
      const key = dedupKey(envelope)
      if (key !== undefined) {
        state.dedup.set(key, { message_id: envelope.message_id, at: event.at })
        state.dedupOrder.pushBack({ key, at: event.at })
      }
      if (event.expires_at !== undefined) {
        state.deadlines.push({ at: event.expires_at, kind: "ttl", id: envelope.message_id })
      }
      break
    }
    case "MessageRefused": {
      const envelope = event.envelope
      const message: MessageEntry = {
        id: envelope.message_id,
        producerId: envelope.producer_id,
        correlationId: envelope.correlation_id,
        // Refused: never to be delivered.
        envelope: undefined,
        route: { _tag: "Agent", agent_id: event.to },
        lane: "STANDARD",
        acceptedAt: event.at,
        order: state.accepted++,
        to: event.to,
        stage: "REJECTED",
        location: "done",
        attempts: 0,
        enqueued: 0,
        ackDeadline: undefined,
        expiresAt: undefined,
        deliverySeq: undefined,
        errorCode: event.error_code,
        deadLetter: false,
        recipients: [],
        lateAcks: 0,
        finishedAt: event.at
      }
      state.messages.set(envelope.message_id, message)
      state.finished.pushBack({ id: envelope.message_id, at: event.at })
      const key = dedupKey(envelope)
      if (key !== undefined) {
        state.dedup.set(key, { message_id: envelope.message_id, at: event.at })
        state.dedupOrder.pushBack({ key, at: event.at })
      }
      break
    }
    case "AgentKilled": {
      const agent = state.agents.get(event.agent_id)
      if (agent !== undefined) {
        agent.registered = false
        agent.state = "COMPLETED"
      }
      evolveGateway(state.gateway, event)
      break
    }
    case "AuditRecorded":
    case "PolicyLoaded":
    case "PolicyRemoved":
    case "ApprovalOpened":
    case "ApprovalResolved":
    case "ApprovalUsed":
    case "AgentSuspended":
    case "AgentResumed":
    case "GatewayHalted":
    case "GatewayUnhalted":
    case "BudgetCharged":
    case "BudgetExhaustedRecorded":
    case "LeaseGranted":
      evolveGateway(state.gateway, event)
      break
    case "MessageDelivered": {
      const message = state.messages.get(event.message_id)
      if (message === undefined) break
      const mailbox = mailboxOf(state, event.to)
      mailbox.queued--
      mailbox.inFlight++
      mailbox.nextSeq = event.delivery_seq + 1
      if (event.lane === "PRIVILEGED") {
        mailbox.privilegedTokens = refilledTokens(mailbox, config, event.at) - 1
        mailbox.privilegedRefilledAt = event.at
      }
      mailbox.sinceBulk = event.lane === "BULK" ? 0 : mailbox.sinceBulk + 1
      message.location = "in_flight"
      message.stage = "RECEIVED"
      message.attempts = event.attempt
      message.deliverySeq = event.delivery_seq
      message.ackDeadline = event.ack_deadline
      if (!message.recipients.includes(event.to)) message.recipients.push(event.to)
      state.deadlines.push({ at: event.ack_deadline, kind: "ack_wait", id: event.message_id })
      dropStaleHeads(state, mailbox)
      break
    }
    case "MessageAcked": {
      const message = state.messages.get(event.message_id)
      if (message === undefined) break
      if (isTerminal(message.stage)) {
        message.lateAcks++
        break
      }
      if (event.stage === "READ") {
        message.stage = "READ"
        if (event.ack_deadline !== undefined) {
          message.ackDeadline = event.ack_deadline
          state.deadlines.push({ at: event.ack_deadline, kind: "ack_wait", id: event.message_id })
        }
        break
      }
      message.errorCode = event.error_code
      finish(state, message, event.stage, event.at)
      break
    }
    case "MessageRequeued": {
      const message = state.messages.get(event.message_id)
      if (message === undefined || message.location === "done") break
      leaveMailbox(state, message)
      message.to = event.to
      message.stage = "RECEIVED"
      message.ackDeadline = undefined
      if (event.reason === "subscriber_left") message.attempts--
      enqueue(state, message, message.attempts > 0 ? "front" : "by_order")
      break
    }
    case "MessageTimedOut": {
      const message = state.messages.get(event.message_id)
      if (message === undefined || message.location === "done") break
      message.errorCode = event.error_code
      message.deadLetter = true
      mailboxOf(state, message.to).deadLetters.add(event.message_id)
      finish(state, message, "TIMED_OUT", event.at)
      break
    }
    case "MessageRedriven": {
      const message = state.messages.get(event.message_id)
      if (message === undefined || !message.deadLetter) break
      mailboxOf(state, message.to).deadLetters.delete(event.message_id)
      message.deadLetter = false
      // Accepted again: it joins the back of its lane, where the order of acceptance must hold.
      message.order = state.accepted++
      message.to = event.to
      message.stage = "RECEIVED"
      message.attempts = 0
      message.errorCode = undefined
      message.finishedAt = undefined
      message.expiresAt = event.expires_at
      enqueue(state, message, "back")
      if (event.expires_at !== undefined) {
        state.deadlines.push({ at: event.expires_at, kind: "ttl", id: event.message_id })
      }
      break
    }
  }
  housekeep(state, config, timeOf(event))
  dropSpentDeadlines(state)
  return state
}

// ---------------------------------------------------------------------------
// Snapshots: the state as plain, comparable data

export interface RouterSnapshot {
  readonly agents: Readonly<Record<string, {
    readonly registered: boolean
    readonly live: boolean
    readonly state: AgentState
    readonly capabilities: ReadonlyArray<string>
    readonly liveness_deadline: number | undefined
  }>>
  readonly messages: Readonly<Record<string, {
    readonly to: string
    readonly producer_id: string
    readonly stage: EnvelopeState
    readonly location: Location
    readonly lane: CommunicationClass
    readonly attempts: number
    readonly delivery_seq: number | undefined
    readonly ack_deadline: number | undefined
    readonly expires_at: number | undefined
    readonly error_code: ErrorCode | undefined
    readonly dead_letter: boolean
    readonly recipients: ReadonlyArray<string>
    readonly late_acks: number
  }>>
  readonly mailboxes: Readonly<Record<string, {
    /** Queued message ids per lane, in delivery order. */
    readonly queued: Readonly<Record<CommunicationClass, ReadonlyArray<string>>>
    readonly in_flight: number
    readonly next_delivery_seq: number
    readonly dead_letters: ReadonlyArray<string>
  }>>
  readonly dedup: Readonly<Record<string, string>>
  readonly edges: ReadonlyArray<Edge>
  readonly gateway: ReturnType<typeof gatewaySnapshot>
}

const sortedRecord = <A, B>(entries: Iterable<readonly [string, A]>, f: (a: A) => B): Record<string, B> =>
  Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, f(v)]))

export const snapshot = (state: RouterState): RouterSnapshot => ({
  agents: sortedRecord(state.agents, (agent) => ({
    registered: agent.registered,
    live: agent.live,
    state: agent.state,
    capabilities: agent.descriptor.capabilities,
    liveness_deadline: agent.livenessDeadline
  })),
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
    recipients: [...message.recipients],
    late_acks: message.lateAcks
  })),
  mailboxes: sortedRecord(state.mailboxes, (mailbox) => ({
    queued: {
      PRIVILEGED: queuedIds(state, mailbox, "PRIVILEGED"),
      STANDARD: queuedIds(state, mailbox, "STANDARD"),
      BULK: queuedIds(state, mailbox, "BULK")
    },
    in_flight: mailbox.inFlight,
    next_delivery_seq: mailbox.nextSeq,
    dead_letters: [...mailbox.deadLetters]
  })),
  dedup: sortedRecord(state.dedup, (seen) => seen.message_id),
  edges: [...state.edges.values()],
  gateway: gatewaySnapshot(state.gateway)
})

const queuedIds = (state: RouterState, mailbox: Mailbox, lane: CommunicationClass) => {
  const ids: Array<string> = []
  for (const entry of mailbox.lanes[lane]) {
    const message = state.messages.get(entry.id)
    if (message !== undefined && isQueuedEntry(message, entry)) ids.push(entry.id)
  }
  return ids
}
