/**
 * The facts of the gateway: policies, approvals, the kill switch, budgets,
 * leases and the audit trail. Like every event, each carries `at`.
 */
import { Schema } from "effect"
import { AuditRecord } from "./Audit.js"
import { Id } from "./Envelope.js"
import { Lease } from "./Lease.js"
import { PolicyDocument } from "./Policy.js"

const At = Schema.Int

/** One audit record of the hash-chained trail. */
export class AuditRecorded extends Schema.TaggedClass<AuditRecorded>()("AuditRecorded", {
  record: AuditRecord
}) {}

/** A policy, new or replacing the one with its id (`version` counts from 1 per id). */
export class PolicyLoaded extends Schema.TaggedClass<PolicyLoaded>()("PolicyLoaded", {
  document: PolicyDocument,
  version: Schema.Int.pipe(Schema.positive()),
  /** The YAML as loaded, kept for the record. */
  source: Schema.String,
  at: At
}) {}

export class PolicyRemoved extends Schema.TaggedClass<PolicyRemoved>()("PolicyRemoved", {
  policy_id: Id,
  at: At
}) {}

/** What a pending decision waits on a human for: the action, as checked. */
export const GatedAction = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("tool_call"), agent_id: Id, tool: Schema.String, args: Schema.Unknown }),
  Schema.Struct({ kind: Schema.Literal("message"), agent_id: Id, to: Schema.String, message_type: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("network"), agent_id: Id, host: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("llm_call"), agent_id: Id, model: Schema.String })
)
export type GatedAction = typeof GatedAction.Type

export class ApprovalOpened extends Schema.TaggedClass<ApprovalOpened>()("ApprovalOpened", {
  approval_id: Id,
  action: GatedAction,
  reason: Schema.String,
  rule: Schema.String,
  expires_at: At,
  at: At
}) {}

export const ApprovalOutcome = Schema.Literal("approved", "rejected", "timed_out")
export type ApprovalOutcome = typeof ApprovalOutcome.Type

/** A human approved or rejected, or the approval timed out into a deny. */
export class ApprovalResolved extends Schema.TaggedClass<ApprovalResolved>()("ApprovalResolved", {
  approval_id: Id,
  outcome: ApprovalOutcome,
  by: Schema.optional(Schema.String),
  note: Schema.optional(Schema.String),
  at: At
}) {}

/** An approved action was carried out: an approval is good for one dispatch. */
export class ApprovalUsed extends Schema.TaggedClass<ApprovalUsed>()("ApprovalUsed", {
  approval_id: Id,
  at: At
}) {}

export class AgentSuspended extends Schema.TaggedClass<AgentSuspended>()("AgentSuspended", {
  agent_id: Id,
  reason: Schema.String,
  at: At
}) {}

export class AgentResumed extends Schema.TaggedClass<AgentResumed>()("AgentResumed", {
  agent_id: Id,
  at: At
}) {}

/** For good: the agent is deregistered and may not register again. */
export class AgentKilled extends Schema.TaggedClass<AgentKilled>()("AgentKilled", {
  agent_id: Id,
  reason: Schema.String,
  at: At
}) {}

/** Every agent stops: no sends, no deliveries, no tool calls, until the halt is lifted. */
export class GatewayHalted extends Schema.TaggedClass<GatewayHalted>()("GatewayHalted", {
  reason: Schema.String,
  at: At
}) {}

export class GatewayUnhalted extends Schema.TaggedClass<GatewayUnhalted>()("GatewayUnhalted", {
  at: At
}) {}

export const BudgetScope = Schema.Literal("agent", "team")
export type BudgetScope = typeof BudgetScope.Type

/** A charge against one counter: scope (agent or team) × id × currency. */
export class BudgetCharged extends Schema.TaggedClass<BudgetCharged>()("BudgetCharged", {
  scope: BudgetScope,
  scope_id: Id,
  currency: Id,
  amount: Schema.Finite,
  /** The counter after the charge. */
  spent: Schema.Finite,
  at: At
}) {}

/** A charge refused because it would cross a limit: nothing was charged. */
export class BudgetExhaustedRecorded extends Schema.TaggedClass<BudgetExhaustedRecorded>()("BudgetExhaustedRecorded", {
  scope: BudgetScope,
  scope_id: Id,
  currency: Id,
  amount: Schema.Finite,
  spent: Schema.Finite,
  limit: Schema.Finite,
  at: At
}) {}

export class LeaseGranted extends Schema.TaggedClass<LeaseGranted>()("LeaseGranted", {
  lease: Lease,
  at: At
}) {}

export const GatewayEvent = Schema.Union(
  AuditRecorded,
  PolicyLoaded,
  PolicyRemoved,
  ApprovalOpened,
  ApprovalResolved,
  ApprovalUsed,
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
