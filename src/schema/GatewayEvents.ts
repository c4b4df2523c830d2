/**
 * The facts of the gateway: policies, approvals, the kill switch, budgets,
 * leases and the audit trail. Like every event, each carries `at`.
 */
import { Schema } from "effect"
import { AuditRecord } from "./Audit.js"
import { Id } from "./Envelope.js"
import { Json } from "./Json.js"
import { Lease } from "./Lease.js"
import { PolicyDocument } from "./Policy.js"

const At = Schema.Int

/** One audit record of the hash-chained trail. */
export const AuditRecorded = Schema.TaggedStruct("AuditRecorded", {
  record: AuditRecord
})
export type AuditRecorded = typeof AuditRecorded.Type

/** A policy, new or replacing the one with its id (`version` counts from 1 per id). */
export const PolicyLoaded = Schema.TaggedStruct("PolicyLoaded", {
  document: PolicyDocument,
  version: Schema.Int.pipe(Schema.positive()),
  /** The YAML as loaded, kept for the record. */
  source: Schema.String,
  at: At
})
export type PolicyLoaded = typeof PolicyLoaded.Type

export const PolicyRemoved = Schema.TaggedStruct("PolicyRemoved", {
  policy_id: Id,
  at: At
})
export type PolicyRemoved = typeof PolicyRemoved.Type

/**
 * A host name (letters, digits and inner hyphens in dot-separated labels, a
 * final dot allowed), an IPv4 address, or an IPv6 one in brackets. Nothing
 * else: an allowlist pattern such as `*.example.com` must never match a
 * string that a URL would read as another host (`evil.net/.example.com`).
 */
export const Host = Schema.String.pipe(
  Schema.pattern(
    /^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])$/,
    { message: () => "must be a host name or an IP address" }
  )
)

/** What a pending decision waits on a human for: the action, as checked. */
export const GatedAction = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("tool_call"), agent_id: Id, tool: Schema.String, args: Json }),
  Schema.Struct({ kind: Schema.Literal("message"), agent_id: Id, to: Schema.String, message_type: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("network"), agent_id: Id, host: Host }),
  Schema.Struct({ kind: Schema.Literal("llm_call"), agent_id: Id, model: Schema.String })
)
export type GatedAction = typeof GatedAction.Type

export const ApprovalOpened = Schema.TaggedStruct("ApprovalOpened", {
  approval_id: Id,
  action: GatedAction,
  reason: Schema.String,
  rule: Schema.String,
  /** Paths of the args the policy redacts: they still apply once approved. */
  redact: Schema.optional(Schema.Array(Schema.String)),
  expires_at: At,
  at: At
})
export type ApprovalOpened = typeof ApprovalOpened.Type

export const ApprovalOutcome = Schema.Literal("approved", "rejected", "timed_out")
export type ApprovalOutcome = typeof ApprovalOutcome.Type

/** A human approved or rejected, or the approval timed out into a deny. */
export const ApprovalResolved = Schema.TaggedStruct("ApprovalResolved", {
  approval_id: Id,
  outcome: ApprovalOutcome,
  by: Schema.optional(Schema.String),
  note: Schema.optional(Schema.String),
  at: At
})
export type ApprovalResolved = typeof ApprovalResolved.Type

/** An approved action was carried out: an approval is good for one dispatch. */
export const ApprovalUsed = Schema.TaggedStruct("ApprovalUsed", {
  approval_id: Id,
  at: At
})
export type ApprovalUsed = typeof ApprovalUsed.Type

/** An approved action was not carried out within the approval's window: the approval is spent unused. */
export const ApprovalLapsed = Schema.TaggedStruct("ApprovalLapsed", {
  approval_id: Id,
  at: At
})
export type ApprovalLapsed = typeof ApprovalLapsed.Type

export const AgentSuspended = Schema.TaggedStruct("AgentSuspended", {
  agent_id: Id,
  reason: Schema.String,
  at: At
})
export type AgentSuspended = typeof AgentSuspended.Type

export const AgentResumed = Schema.TaggedStruct("AgentResumed", {
  agent_id: Id,
  at: At
})
export type AgentResumed = typeof AgentResumed.Type

/** For good: the agent is deregistered and may not register again. */
export const AgentKilled = Schema.TaggedStruct("AgentKilled", {
  agent_id: Id,
  reason: Schema.String,
  at: At
})
export type AgentKilled = typeof AgentKilled.Type

/** Every agent stops: no sends, no deliveries, no tool calls, until the halt is lifted. */
export const GatewayHalted = Schema.TaggedStruct("GatewayHalted", {
  reason: Schema.String,
  at: At
})
export type GatewayHalted = typeof GatewayHalted.Type

export const GatewayUnhalted = Schema.TaggedStruct("GatewayUnhalted", {
  at: At
})
export type GatewayUnhalted = typeof GatewayUnhalted.Type

export const BudgetScope = Schema.Literal("agent", "team")
export type BudgetScope = typeof BudgetScope.Type

/** A charge as `Gateway.charge` takes it (whether the amount is finite and not negative, the rules say). */
export const ChargeRequest = Schema.Struct({ agent_id: Id, currency: Id, amount: Schema.Number })

/** A charge against one counter: scope (agent or team) × id × currency. */
export const BudgetCharged = Schema.TaggedStruct("BudgetCharged", {
  scope: BudgetScope,
  scope_id: Id,
  currency: Id,
  amount: Schema.Finite,
  /** The counter after the charge. */
  spent: Schema.Finite,
  at: At
})
export type BudgetCharged = typeof BudgetCharged.Type

/** A charge refused because it would cross a limit: nothing was charged. */
export const BudgetExhaustedRecorded = Schema.TaggedStruct("BudgetExhaustedRecorded", {
  scope: BudgetScope,
  scope_id: Id,
  currency: Id,
  amount: Schema.Finite,
  spent: Schema.Finite,
  limit: Schema.Finite,
  at: At
})
export type BudgetExhaustedRecorded = typeof BudgetExhaustedRecorded.Type

export const LeaseGranted = Schema.TaggedStruct("LeaseGranted", {
  lease: Lease,
  at: At
})
export type LeaseGranted = typeof LeaseGranted.Type

export const GatewayEvent = Schema.Union(
  AuditRecorded,
  PolicyLoaded,
  PolicyRemoved,
  ApprovalOpened,
  ApprovalResolved,
  ApprovalUsed,
  ApprovalLapsed,
  AgentSuspended,
  AgentResumed,
  AgentKilled,
  GatewayHalted,
  GatewayUnhalted,
  BudgetCharged,
  BudgetExhaustedRecorded,
  LeaseGranted
)
export type GatewayEvent = typeof GatewayEvent.Type
