/**
 * The registry of agents (PROTOCOLS.md §1, "Registry"): who exists, what they
 * can do, and whether they are alive.
 */
import { Context, type Effect, type Option } from "effect"
import type { AgentDescriptor, AgentDescriptorJson } from "../schema/Agent.js"
import type { AgentState } from "../schema/Envelope.js"
import type { NoRoute, PersistenceError, ValidationError } from "../schema/Errors.js"

export interface AgentInfo {
  readonly descriptor: AgentDescriptor
  readonly state: AgentState
  readonly health: Readonly<Record<string, string>>
  /** Registered, heartbeating in time, and not shutting down: messages can be routed to it. */
  readonly available: boolean
  readonly registered_at: number
}

export class Registry extends Context.Tag("switchboard/Registry")<Registry, {
  /** Registers an agent, or updates its descriptor; it counts as alive from now on. */
  readonly register: (
    descriptor: AgentDescriptorJson
  ) => Effect.Effect<AgentInfo, ValidationError | PersistenceError>
  /** Reports the agent alive, with its state and health; makes an unavailable agent available again. */
  readonly heartbeat: (
    agent_id: string,
    state?: AgentState,
    health?: Readonly<Record<string, string>>
  ) => Effect.Effect<AgentInfo, NoRoute | ValidationError | PersistenceError>
  readonly deregister: (agent_id: string, reason: string) => Effect.Effect<void, NoRoute | PersistenceError>
  readonly get: (agent_id: string) => Effect.Effect<Option.Option<AgentInfo>>
  /** Every registered agent. */
  readonly list: Effect.Effect<ReadonlyArray<AgentInfo>>
  /** Registered agents advertising the capability, available or not. */
  readonly byCapability: (capability: string) => Effect.Effect<ReadonlyArray<AgentInfo>>
}>() {}
