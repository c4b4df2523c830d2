/**
 * ARCP leases (PROTOCOLS.md §3): what an agent may touch, as glob patterns
 * per namespace, until when. The rules (matching, delegation) are in
 * `src/model/Leases.ts`.
 */
import { Schema } from "effect"

export const leaseNamespaces = [
  "fs.read",
  "fs.write",
  "net.fetch",
  "tool.call",
  "agent.delegate",
  "cost.budget",
  "model.use"
] as const
export const LeaseNamespace = Schema.Literal(...leaseNamespaces)
export type LeaseNamespace = typeof LeaseNamespace.Type

const Globs = Schema.Array(Schema.String)

/**
 * Namespace → glob patterns. A namespace that is absent (or has no patterns)
 * grants nothing. Unknown namespaces are dropped on decode, so they grant
 * nothing either.
 */
export const LeaseGrants = Schema.Struct({
  "fs.read": Schema.optional(Globs),
  "fs.write": Schema.optional(Globs),
  "net.fetch": Schema.optional(Globs),
  "tool.call": Schema.optional(Globs),
  "agent.delegate": Schema.optional(Globs),
  "cost.budget": Schema.optional(Globs),
  "model.use": Schema.optional(Globs)
})
export type LeaseGrants = typeof LeaseGrants.Type

export const Lease = Schema.Struct({
  lease_id: Schema.String,
  agent_id: Schema.String,
  grants: LeaseGrants,
  /** Epoch milliseconds; the lease is expired from this instant on. Absent: never expires. */
  expires_at: Schema.optional(Schema.Int),
  /** The lease this one was delegated from. */
  parent_lease_id: Schema.optional(Schema.String)
}).annotations({ identifier: "Lease" })
export type Lease = typeof Lease.Type
export type LeaseJson = typeof Lease.Encoded

/** An operation to check against a lease: `resource` in `namespace`. */
export const LeaseCheck = Schema.Struct({ lease_id: Schema.String, namespace: LeaseNamespace, resource: Schema.String })
