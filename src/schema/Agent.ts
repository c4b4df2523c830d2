/**
 * Agents as the registry knows them (PROTOCOLS.md §1, "Registry").
 */
import { Schema } from "effect"
import { CommunicationClass, Id } from "./Envelope.js"

export const AgentDescriptor = Schema.Struct({
  agent_id: Id,
  name: Schema.String,
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  capabilities: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  communication_class: Schema.optionalWith(CommunicationClass, { default: () => "STANDARD" as const }),
  modalities_supported: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
})
export type AgentDescriptor = typeof AgentDescriptor.Type
export type AgentDescriptorJson = typeof AgentDescriptor.Encoded
