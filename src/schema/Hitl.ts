/**
 * Human in the loop on the wire (PROTOCOLS.md §1 "Coordination", SW4RM's
 * `HitlService`): an invocation asks a human, with a reason, a deadline and
 * a fallback for when nobody answers; the human approves, denies, modifies
 * (with changed arguments) or defers, with a rationale. The queue a human
 * works through holds these and the gateway's approvals alike.
 */
import { Schema } from "effect"
import { Id } from "./Envelope.js"
import { maxDurationMs } from "./Config.js"
import { Json } from "./Json.js"

const At = Schema.Int
const Millis = Schema.Number.annotations({ description: "epoch milliseconds" })
const Text = Schema.String.pipe(Schema.maxLength(4096))

export const HitlReason = Schema.Literal(
  "CONFLICT",
  "SECURITY_APPROVAL",
  "TASK_ESCALATION",
  "MANUAL_OVERRIDE",
  "WORKTREE_OVERRIDE",
  "DEBATE_DEADLOCK",
  "TOOL_PRIVILEGE_ESCALATION",
  "CONNECTOR_APPROVAL"
)
export type HitlReason = typeof HitlReason.Type
export const HitlReasonNumber = {
  CONFLICT: 1,
  SECURITY_APPROVAL: 2,
  TASK_ESCALATION: 3,
  MANUAL_OVERRIDE: 4,
  WORKTREE_OVERRIDE: 5,
  DEBATE_DEADLOCK: 6,
  TOOL_PRIVILEGE_ESCALATION: 7,
  CONNECTOR_APPROVAL: 8
} as const

/** With no answer by the deadline: deny (the default), decide by the subject's own rule, or wait longer (at most 3 times). */
export const HitlFallback = Schema.Literal("DENY_BY_DEFAULT", "AUTO_DECIDE_THRESHOLD", "EXTEND_TIMEOUT")
export type HitlFallback = typeof HitlFallback.Type

export const HitlAction = Schema.Literal("approve", "deny", "modify", "defer")
export type HitlAction = typeof HitlAction.Type

/** At most this many times is an invocation extended (deferred, or EXTEND_TIMEOUT): nothing waits forever. */
export const maxExtensions = 3

/** What an invocation is about: what its decision acts on. */
export const HitlSubject = Schema.Union(
  /** Asked by an agent or an operator: the decision is for whoever waits on it. */
  Schema.TaggedStruct("Manual", {}),
  /** A task that cannot wait for a conflicting scope. Approve: preempt the tasks in its way; deny: cancel it. */
  Schema.TaggedStruct("Task", { task_id: Id }),
  /** A room whose votes escalated. Approve: APPROVED; deny: REVISION_REQUESTED. */
  Schema.TaggedStruct("Room", { room_id: Id }),
  /** A bind the policy sends to a human. Approve: bound; modify: bound to the worktree in the args. */
  Schema.TaggedStruct("WorktreeBind", { agent_id: Id, repo_id: Id, worktree_id: Id }),
  /** A switch away from home that needs a human. Approve: switched (args may give `ttl_ms`); deny: stays home. */
  Schema.TaggedStruct("WorktreeSwitch", { agent_id: Id }),
  /** A home binding that failed past its retries. Approve: retry; deny: unbind; modify: bind elsewhere. */
  Schema.TaggedStruct("WorktreeBindFailed", { agent_id: Id })
)
export type HitlSubject = typeof HitlSubject.Type

// ---------------------------------------------------------------------------
// Requests

export const InvokeRequest = Schema.Struct({
  reason: HitlReason,
  /** What the human needs to know (SW4RM's `context`). */
  context: Schema.optional(Json),
  proposed_actions: Schema.optional(Schema.Array(Text).pipe(Schema.maxItems(64))),
  priority: Schema.optional(Schema.Int.pipe(Schema.between(-1_000_000, 1_000_000))),
  /** How long a human has; the runtime's default when absent. */
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(1, maxDurationMs))),
  fallback: Schema.optional(HitlFallback),
  /** Who asks: an agent, or the operator when absent. */
  invoked_by: Schema.optional(Id)
})
export type InvokeRequest = typeof InvokeRequest.Type

export const DecideRequest = Schema.Struct({
  /** An invocation's id, or a gateway approval's: one queue. */
  id: Id,
  action: HitlAction,
  rationale: Text,
  /** For `modify`: the changed arguments. */
  args: Schema.optional(Json),
  by: Schema.optional(Id)
})
export type DecideRequest = typeof DecideRequest.Type

export const QueueFilter = Schema.Struct({
  /** `open` (the default): what waits for a human; `closed`: what was answered; `all`. */
  status: Schema.optional(Schema.Literal("open", "closed", "all"))
})
export type QueueFilter = typeof QueueFilter.Type

export const AwaitHitl = Schema.Struct({
  id: Id,
  /** At most this long (default 30 s, at most 10 minutes); then DEADLINE_EXCEEDED. */
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(0, 600_000)))
})
export type AwaitHitl = typeof AwaitHitl.Type

// ---------------------------------------------------------------------------
// Views

export const HitlStatus = Schema.Literal("open", "decided", "withdrawn")
export type HitlStatus = typeof HitlStatus.Type

export const HitlDecisionView = Schema.Struct({
  action: HitlAction,
  rationale: Schema.String,
  args: Schema.optional(Json),
  by: Schema.String,
  /** Taken by the fallback, not a human. */
  automatic: Schema.Boolean,
  at: Millis
}).annotations({ identifier: "HitlDecision" })

export const InvocationView = Schema.Struct({
  hitl_id: Schema.String,
  reason: HitlReason,
  subject: HitlSubject,
  context: Json,
  proposed_actions: Schema.Array(Schema.String),
  priority: Schema.Number,
  invoked_by: Schema.optional(Schema.String),
  opened_at: Millis,
  deadline: Millis,
  fallback: HitlFallback,
  extensions: Schema.Number,
  status: HitlStatus,
  decision: Schema.optional(HitlDecisionView),
  withdrawn_reason: Schema.optional(Schema.String)
}).annotations({ identifier: "HitlInvocation" })
export type InvocationView = typeof InvocationView.Type

/**
 * One item of the human's queue: a HITL invocation, or a gateway approval
 * (`source: gateway`, its reason TOOL_PRIVILEGE_ESCALATION for a tool call,
 * SECURITY_APPROVAL otherwise). Both are answered through `Decide`.
 */
export const QueueItem = Schema.Struct({
  id: Schema.String,
  source: Schema.Literal("hitl", "gateway"),
  reason: HitlReason,
  /** One line for the human. */
  summary: Schema.String,
  /** What the agent or the subject concerns, when one does. */
  agent_id: Schema.optional(Schema.String),
  priority: Schema.Number,
  opened_at: Millis,
  deadline: Millis,
  /** `open`, or what became of it (`decided`, `withdrawn`; for an approval its own status). */
  status: Schema.String,
  context: Json
}).annotations({ identifier: "HitlQueueItem" })
export type QueueItem = typeof QueueItem.Type

// ---------------------------------------------------------------------------
// Events

export const HitlInvoked = Schema.TaggedStruct("HitlInvoked", {
  hitl_id: Id,
  reason: HitlReason,
  subject: HitlSubject,
  context: Json,
  proposed_actions: Schema.Array(Schema.String),
  priority: Schema.Int,
  invoked_by: Schema.optional(Id),
  deadline: At,
  fallback: HitlFallback,
  at: At
})
export type HitlInvoked = typeof HitlInvoked.Type

export const HitlDecided = Schema.TaggedStruct("HitlDecided", {
  hitl_id: Id,
  action: Schema.Literal("approve", "deny", "modify"),
  rationale: Schema.String,
  args: Schema.optional(Json),
  by: Schema.String,
  automatic: Schema.Boolean,
  at: At
})
export type HitlDecided = typeof HitlDecided.Type

/** More time: a human deferred, or the fallback EXTEND_TIMEOUT. */
export const HitlExtended = Schema.TaggedStruct("HitlExtended", {
  hitl_id: Id,
  deadline: At,
  cause: Schema.Literal("deferred", "extend_timeout"),
  by: Schema.String,
  rationale: Schema.String,
  at: At
})
export type HitlExtended = typeof HitlExtended.Type

/** No longer a question: its subject was settled another way (the conflict cleared, the switch was answered). */
export const HitlWithdrawn = Schema.TaggedStruct("HitlWithdrawn", {
  hitl_id: Id,
  reason: Schema.String,
  at: At
})
export type HitlWithdrawn = typeof HitlWithdrawn.Type

export const HitlEvent = Schema.Union(HitlInvoked, HitlDecided, HitlExtended, HitlWithdrawn)
export type HitlEvent = typeof HitlEvent.Type
