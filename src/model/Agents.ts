/**
 * Agents and their lineage (PROTOCOLS.md §1 "Registry", §2 "Agents and
 * lineage"): who is registered, alive and able to take messages, who spawned
 * whom, and the typed edges of the topology.
 */
import type { AgentDescriptor, EdgeType } from "../schema/Agent.js"
import type { RuntimeConfig } from "../schema/Config.js"
import type { AgentState } from "../schema/Envelope.js"
import { AgentKilled, NoRoute, PermissionDenied, ValidationError } from "../schema/Errors.js"
import { AgentDeregistered, AgentHeartbeat, AgentRegistered, TopologyEdgeAdded } from "../schema/RouterEvents.js"
import { later } from "./Deadlines.js"
import { adoptStranded, moveQueuedCapabilityMessages, placement, requeueAll } from "./Placement.js"
import { accept, type Decision, refuse, type RuntimeState, type Slice, sortedRecord } from "./State.js"

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

export interface Edge {
  readonly from: string
  readonly to: string
  readonly edge_type: EdgeType
  readonly at: number
}

export interface AgentsState {
  readonly agents: Map<string, AgentEntry>
  /** Topology edges by `from, to, type`. */
  readonly edges: Map<string, Edge>
}

/** What the registry answers about an agent. */
export interface AgentInfo {
  readonly descriptor: AgentDescriptor
  readonly state: AgentState
  readonly health: Readonly<Record<string, string>>
  /** Registered, heartbeating in time, and not shutting down: messages can be routed to it. */
  readonly available: boolean
  readonly registered_at: number
}

export const agentInfo = (agent: AgentEntry): AgentInfo => ({
  descriptor: agent.descriptor,
  state: agent.state,
  health: agent.health,
  available: isAvailable(agent),
  registered_at: agent.registeredAt
})

const edgeKey = (from: string, to: string, type: EdgeType) => `${from}\u0000${to}\u0000${type}`

/** An agent marked FAILED (a state timeout) takes no messages until it reports another state. */
export const isAvailable = (agent: AgentEntry | undefined): agent is AgentEntry =>
  agent !== undefined && agent.registered && agent.live && agent.state !== "SHUTTING_DOWN" && agent.state !== "FAILED"

/** An edge to record, unless it is already known. */
export const newEdge = (state: RuntimeState, from: string, to: string, edge_type: EdgeType, now: number) =>
  state.edges.has(edgeKey(from, to, edge_type)) ? [] : [TopologyEdgeAdded.make({ from, to, edge_type, at: now }, true)]

/** The agent and its ancestors, self first, root last. */
export const lineageOf = (state: RuntimeState, agentId: string): ReadonlyArray<string> => {
  const lineage: Array<string> = []
  for (let id: string | undefined = agentId; id !== undefined && !lineage.includes(id);) {
    lineage.push(id)
    id = state.agents.get(id)?.descriptor.parent_agent_id
  }
  return lineage
}

/** Below `agentId`, breadth first: registered children only, or (`throughAll`) through deregistered ones too. */
const below = (state: RuntimeState, agentId: string, throughAll: boolean) => {
  const found = [agentId]
  for (let i = 0; i < found.length; i++) {
    for (const [id, agent] of state.agents) {
      if ((throughAll || agent.registered) && agent.descriptor.parent_agent_id === found[i] && !found.includes(id)) {
        found.push(id)
      }
    }
  }
  return found
}

/** The agent and every agent it spawned, directly or not, breadth first. */
export const subtreeOf = (state: RuntimeState, agentId: string): ReadonlyArray<string> => below(state, agentId, false)

/**
 * How many registered agents are below this one, through deregistered ones
 * too: their lineages still pass through it.
 */
const registeredDescendants = (state: RuntimeState, agentId: string) =>
  below(state, agentId, true).filter((id) => id !== agentId && state.agents.get(id)!.registered).length

const livenessDeadline = (config: RuntimeConfig, now: number) =>
  config.livenessTimeoutMs === undefined ? undefined : later(now, config.livenessTimeoutMs)

const knownAgent = (state: RuntimeState, agentId: string) => {
  const agent = state.agents.get(agentId)
  return agent !== undefined && agent.registered ? agent : undefined
}

/**
 * Registers (or re-registers) an agent. Its depth comes from its lineage: a
 * registration that would reach `maxDelegationDepth`, or whose parent
 * descends from the agent itself (a cycle), is refused.
 */
/** The id under which the ARCP endpoint sends remote agents their jobs (`ArcpRemote.ts`): no agent may take it. */
export const arcpEndpointId = "arcp"

export const decideRegister = (
  state: RuntimeState,
  config: RuntimeConfig,
  agent: AgentDescriptor,
  now: number
): Decision<AgentInfo, AgentKilled | PermissionDenied | ValidationError> => {
  if (state.killed.has(agent.agent_id)) return refuse(new AgentKilled({ agent_id: agent.agent_id }))
  if (agent.agent_id === arcpEndpointId) {
    return refuse(new PermissionDenied({ reason: `agent id ${arcpEndpointId} is the ARCP endpoint's: no agent may register as it` }))
  }
  const parentId = agent.parent_agent_id
  let depth = 0
  if (parentId !== undefined) {
    const parent = state.agents.get(parentId)
    if (parent === undefined || !parent.registered) {
      return refuse(ValidationError.single("agent", "parent_agent_id", `unknown agent ${parentId}`))
    }
    const parentLineage = lineageOf(state, parentId)
    if (parentLineage.includes(agent.agent_id)) {
      return refuse(
        new PermissionDenied({
          reason: `registering ${agent.agent_id} under ${parentId} would close a cycle: ${
            [agent.agent_id, ...parentLineage.slice(0, parentLineage.indexOf(agent.agent_id) + 1)].join(" → ")
          }`
        })
      )
    }
    // The parent and its ancestors, as they are now: its own recorded depth could be stale.
    depth = parentLineage.length
    if (depth >= config.maxDelegationDepth) {
      return refuse(
        new PermissionDenied({
          reason: `delegation depth ${depth} of ${agent.agent_id} reaches the limit ${config.maxDelegationDepth}`
        })
      )
    }
  }
  // Moving an agent to another depth would move its descendants too, past what
  // was checked when they registered, and make their recorded depths untrue.
  // Deregistered or not: its registered descendants are still below it.
  const existing = state.agents.get(agent.agent_id)
  if (existing !== undefined && (existing.descriptor.depth ?? 0) !== depth) {
    const descendants = registeredDescendants(state, agent.agent_id)
    if (descendants > 0) {
      return refuse(
        new PermissionDenied({
          reason: `re-registering ${agent.agent_id} at depth ${depth} (it is at ${
            existing.descriptor.depth ?? 0
          }) would move its ${descendants} descendant${descendants === 1 ? "" : "s"}`
        })
      )
    }
  }
  if (agent.depth !== undefined && agent.depth !== depth) {
    return refuse(ValidationError.single("agent", "depth", `is ${depth} by its lineage, not ${agent.depth}`))
  }
  const registered = AgentRegistered.make(
    { agent: { ...agent, depth }, liveness_deadline: livenessDeadline(config, now), at: now },
    true
  )
  return accept(
    [
      registered,
      ...(parentId === undefined ? [] : newEdge(state, parentId, agent.agent_id, "delegates_to", now)),
      ...adoptStranded(state, agent.agent_id, agent.capabilities, now)
    ],
    agentInfo(registeredEntry(existing, registered))
  )
}

/** Records an edge of the topology (calls, reads, writes, approves, ...) if it is new. */
export const decideEdge = (
  state: RuntimeState,
  edge: { readonly from: string; readonly to: string; readonly edge_type: EdgeType },
  now: number
): Decision<void> => accept(newEdge(state, edge.from, edge.to, edge.edge_type, now))

export const decideHeartbeat = (
  state: RuntimeState,
  config: RuntimeConfig,
  /** Without `state` and `health`, the agent keeps those it reported last: a heartbeat of liveness alone. */
  command: {
    readonly agent_id: string
    readonly state?: AgentState | undefined
    readonly health?: Readonly<Record<string, string>> | undefined
  },
  now: number
): Decision<AgentInfo, NoRoute> => {
  const agent = knownAgent(state, command.agent_id)
  if (agent === undefined) return refuse(new NoRoute({ to: command.agent_id }))
  // Shut down by ShutdownAgent, it stays SHUTTING_DOWN whatever it reports: no new work reaches it.
  const reported = state.shutdowns.has(command.agent_id) ? "SHUTTING_DOWN" : command.state ?? agent.state
  const capabilities = agent.descriptor.capabilities
  const heartbeat = AgentHeartbeat.make({
    agent_id: command.agent_id,
    state: reported,
    health: command.health ?? agent.health,
    liveness_deadline: livenessDeadline(config, now),
    at: now
  }, true)
  return accept(
    [
      heartbeat,
      // Back from unavailable: it may take the work that waits for its capabilities.
      ...(isAvailable(agent) || reported === "SHUTTING_DOWN" || reported === "FAILED"
        ? []
        : adoptStranded(state, command.agent_id, capabilities, now))
    ],
    agentInfo({ ...agent, state: heartbeat.state, health: heartbeat.health, live: true })
  )
}

export const decideDeregister = (
  state: RuntimeState,
  command: { readonly agent_id: string; readonly reason: string },
  now: number
): Decision<void, NoRoute> =>
  knownAgent(state, command.agent_id) === undefined
    ? refuse(new NoRoute({ to: command.agent_id }))
    : accept<void>([
      AgentDeregistered.make({ agent_id: command.agent_id, reason: command.reason, at: now }, true),
      ...requeueAll(
        moveQueuedCapabilityMessages(state, command.agent_id, placement([command.agent_id])),
        "recipient_lost",
        now
      )
    ])

/** The entry an AgentRegistered event makes of the agent. */
const registeredEntry = (existing: AgentEntry | undefined, event: AgentRegistered): AgentEntry => ({
  descriptor: event.agent,
  state: "RUNNABLE",
  health: existing?.health ?? {},
  registered: true,
  live: true,
  livenessDeadline: event.liveness_deadline,
  registeredAt: existing?.registered ? existing.registeredAt : event.at
})

const unregister = (state: RuntimeState, event: { readonly agent_id: string }) => {
  const agent = state.agents.get(event.agent_id)
  if (agent !== undefined) {
    agent.registered = false
    agent.state = "COMPLETED"
  }
}

export const agentsSlice: Slice<AgentsState> = {
  initial: () => ({ agents: new Map(), edges: new Map() }),
  evolve: {
    AgentRegistered: (state, event) => {
      state.agents.set(event.agent.agent_id, registeredEntry(state.agents.get(event.agent.agent_id), event))
    },
    AgentHeartbeat: (state, event) => {
      const agent = state.agents.get(event.agent_id)
      if (agent === undefined) return
      agent.state = event.state
      agent.health = event.health
      agent.live = true
      agent.livenessDeadline = event.liveness_deadline
    },
    AgentDeregistered: unregister,
    AgentKilled: unregister,
    // Coordination's word on an agent's state: shut down (ShutdownAgent), or FAILED past a state timeout.
    AgentShutdownRequested: (state, event) => {
      const agent = state.agents.get(event.agent_id)
      if (agent !== undefined) agent.state = "SHUTTING_DOWN"
    },
    AgentStateTimedOut: (state, event) => {
      const agent = state.agents.get(event.agent_id)
      if (agent !== undefined) agent.state = "FAILED"
    },
    AgentLivenessLost: (state, event) => {
      const agent = state.agents.get(event.agent_id)
      if (agent !== undefined) agent.live = false
    },
    TopologyEdgeAdded: (state, { at, edge_type, from, to }) => {
      state.edges.set(edgeKey(from, to, edge_type), { from, to, edge_type, at })
    }
  },
  snapshot: (state) => ({
    agents: sortedRecord(state.agents, (agent) => ({
      registered: agent.registered,
      live: agent.live,
      state: agent.state,
      capabilities: agent.descriptor.capabilities,
      liveness_deadline: agent.livenessDeadline
    })),
    edges: [...state.edges.values()]
  })
}
