/**
 * The registry of agents (PROTOCOLS.md §1, "Registry"): who exists, what they
 * can do, and whether they are alive.
 */
import { Context, type Effect, type Option } from "effect"
import type { AgentInfo, Edge } from "../model/Agents.js"
import type { AgentDescriptorJson, EdgeRequest } from "../schema/Agent.js"
import type { DeregisterRequest, HeartbeatRequest } from "../schema/Requests.js"
import type {
  AgentKilled,
  InternalError,
  NoRoute,
  PermissionDenied,
  PersistenceError,
  ValidationError
} from "../schema/Errors.js"

export type { AgentInfo, Edge } from "../model/Agents.js"

/** What every command of the registry may fail with besides its own errors. */
type Failure = ValidationError | PersistenceError | InternalError

export class Registry extends Context.Tag("switchboard/Registry")<Registry, {
  /**
   * Registers an agent, or updates its descriptor; it counts as alive from
   * now on. Refused (PermissionDenied) when its depth would reach the limit or
   * its parent descends from it, and (AgentKilled) when it was killed.
   */
  readonly register: (descriptor: AgentDescriptorJson) => Effect.Effect<AgentInfo, AgentKilled | PermissionDenied | Failure>
  /**
   * Reports the agent alive, with its state (default RUNNING) and health
   * (default none); makes an unavailable agent available again.
   */
  readonly heartbeat: (request: HeartbeatRequest) => Effect.Effect<AgentInfo, NoRoute | Failure>
  /**
   * Reports the agent alive and nothing else: it keeps the state and health it
   * reported last, read when the heartbeat is decided (so a report of its own
   * that lands just before is never overwritten).
   */
  readonly keepAlive: (agent_id: string) => Effect.Effect<AgentInfo, NoRoute | Failure>
  readonly deregister: (request: DeregisterRequest) => Effect.Effect<void, NoRoute | Failure>
  readonly get: (agent_id: string) => Effect.Effect<Option.Option<AgentInfo>, ValidationError | InternalError>
  /** Every registered agent. */
  readonly list: Effect.Effect<ReadonlyArray<AgentInfo>, InternalError>
  /** Registered agents advertising the capability, available or not. */
  readonly byCapability: (capability: string) => Effect.Effect<ReadonlyArray<AgentInfo>, ValidationError | InternalError>
  /** The agent and its ancestors: self first, root last. Empty for an unknown agent. */
  readonly lineage: (agent_id: string) => Effect.Effect<ReadonlyArray<AgentInfo>, ValidationError | InternalError>
  /** The agent and all it spawned, directly or not, breadth first. */
  readonly subtree: (agent_id: string) => Effect.Effect<ReadonlyArray<AgentInfo>, ValidationError | InternalError>
  readonly team: (team_id: string) => Effect.Effect<ReadonlyArray<AgentInfo>, ValidationError | InternalError>
  /** The topology edges from or to the agent. */
  readonly edges: (agent_id: string) => Effect.Effect<ReadonlyArray<Edge>, ValidationError | InternalError>
  /** Records an edge (calls, reads, writes, approves, ...) the first time it is seen. */
  readonly addEdge: (edge: typeof EdgeRequest.Type) => Effect.Effect<void, Failure>
}>() {}
