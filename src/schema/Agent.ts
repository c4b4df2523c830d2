/**
 * Agents as the registry knows them (PROTOCOLS.md §1, "Registry"), with the
 * lineage and enforcement mode of Agent Assembly (§2).
 */
import { Schema } from "effect"
import { atMostItems, CommunicationClass, Header, Id, maxListLength, Note } from "./Envelope.js"

/**
 * How the gateway treats an agent: `enforce` applies decisions and fails
 * closed on anything unclear; `observe` allows everything and audits what it
 * would have decided; `disabled` evaluates nothing and audits that.
 */
export const EnforcementMode = Schema.Literal("enforce", "observe", "disabled")
export type EnforcementMode = typeof EnforcementMode.Type

export const EdgeType = Schema.Literal("delegates_to", "calls", "reads", "writes", "approves", "messages")
export type EdgeType = typeof EdgeType.Type

/** Names an agent advertises (capabilities, modalities): each as long as an id at most, and at most 256 of them. */
const Names = Schema.Array(Header).pipe(atMostItems(maxListLength))

/**
 * Every field is bounded (ids and names as ids, free text as an ACK's note,
 * lists to `maxListLength`): the descriptor is kept in the log and in memory
 * for as long as the agent is known.
 */
export const AgentDescriptor = Schema.Struct({
  agent_id: Id,
  name: Header,
  description: Schema.optionalWith(Note, { default: () => "" }),
  capabilities: Schema.optionalWith(Names, { default: () => [] }),
  communication_class: Schema.optionalWith(CommunicationClass, { default: () => "STANDARD" as const }),
  modalities_supported: Schema.optionalWith(Names, { default: () => [] }),
  /** The agent that spawned this one; absent for a root. */
  parent_agent_id: Schema.optional(Id),
  team_id: Schema.optional(Id),
  delegation_reason: Schema.optional(Note),
  spawned_by_tool: Schema.optional(Header),
  /** Distance from the root (0 for a root). Given by the registry from the lineage; a caller's value is checked against it. */
  depth: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  enforcement_mode: Schema.optionalWith(EnforcementMode, { default: () => "enforce" as const })
})
export type AgentDescriptor = typeof AgentDescriptor.Type
export type AgentDescriptorJson = typeof AgentDescriptor.Encoded

/** What an agent reports of its health: names to values, all text. */
export const AgentHealth = Schema.Record({ key: Schema.String, value: Schema.String })

/** An edge of the topology, as `Registry.addEdge` takes it. */
export const EdgeRequest = Schema.Struct({ from: Id, to: Id, edge_type: EdgeType })
