/**
 * The registry of agents (PROTOCOLS.md §1, "Registry"): who exists, what they
 * can do, and whether they are alive.
 */
import { Context, type Effect, type Option } from "effect"
import type { Edge } from "../model/Router.js"
import type { AgentDescriptor, AgentDescriptorJson, EdgeType } from "../schema/Agent.js"
import type { AgentState } from "../schema/Envelope.js"
import type { NoRoute, PermissionDenied, PersistenceError, ValidationError } from "../schema/Errors.js"

export interface AgentInfo {
  readonly descriptor: AgentDescriptor
  readonly state: AgentState
  readonly health: Readonly<Record<string, string>>
  /** Registered, heartbeating in time, and not shutting down: messages can be routed to it. */
  readonly available: boolean
  readonly registered_at: number
}

export class Registry extends Context.Tag("switchboard/Registry")<Registry, {
  /**
   * Registers an agent, or updates its descriptor; it counts as alive from
   * now on. Refused (PermissionDenied) when its depth would reach the limit or
   * its parent descends from it.
   */
  readonly register: (
    descriptor: AgentDescriptorJson
  ) => Effect.Effect<AgentInfo, ValidationError | PermissionDenied | PersistenceError>
  /** Reports the agent alive, with its state and health; makes an unavailable agent available again. */
  readonly heartbeat: (
    agent_id: string,
    state?: AgentState,
    health?: Readonly<Record<string, string>>
  ) => Effect.Effect<AgentInfo, NoRoute | ValidationError | PersistenceError>
  /**
   * Reports the agent alive and nothing else: it keeps the state and health it
   * reported last, read when the heartbeat is decided (so a report of its own
   * that lands just before is never overwritten).
   */
  readonly keepAlive: (agent_id: string) => Effect.Effect<AgentInfo, NoRoute | PersistenceError>
  readonly deregister: (agent_id: string, reason: string) => Effect.Effect<void, NoRoute | ValidationError | PersistenceError>
  readonly get: (agent_id: string) => Effect.Effect<Option.Option<AgentInfo>>
  /** Every registered agent. */
  readonly list: Effect.Effect<ReadonlyArray<AgentInfo>>
  /** Registered agents advertising the capability, available or not. */
  readonly byCapability: (capability: string) => Effect.Effect<ReadonlyArray<AgentInfo>>
  /** The agent and its ancestors: self first, root last. Empty for an unknown agent. */
  readonly lineage: (agent_id: string) => Effect.Effect<ReadonlyArray<AgentInfo>>
  /** The agent and all it spawned, directly or not, breadth first. */
  readonly subtree: (agent_id: string) => Effect.Effect<ReadonlyArray<AgentInfo>>
  readonly team: (team_id: string) => Effect.Effect<ReadonlyArray<AgentInfo>>
  /** The topology edges from or to the agent. */
  readonly edges: (agent_id: string) => Effect.Effect<ReadonlyArray<Edge>>
  /** Records an edge (calls, reads, writes, approves, ...) the first time it is seen. */
  readonly addEdge: (
    edge: { readonly from: string; readonly to: string; readonly edge_type: EdgeType }
  ) => Effect.Effect<void, ValidationError | PersistenceError>
}>() {}
