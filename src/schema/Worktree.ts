/**
 * Worktree bindings on the wire (PROTOCOLS.md §1 "Coordination", SW4RM's
 * `WorktreeService`, plus Revoke and a bind failure report): the requests,
 * the status answered, and the facts of the log.
 */
import { Schema } from "effect"
import { Id } from "./Envelope.js"
import { maxDurationMs } from "./Config.js"

const At = Schema.Int
const Millis = Schema.Number.annotations({ description: "epoch milliseconds" })
const Text = Schema.String.pipe(Schema.maxLength(1024))

export const WorktreeState = Schema.Literal("UNBOUND", "BOUND_HOME", "SWITCH_PENDING", "BOUND_NON_HOME", "BIND_FAILED")
export type WorktreeState = typeof WorktreeState.Type

// ---------------------------------------------------------------------------
// Requests

export const BindRequest = Schema.Struct({
  agent_id: Id,
  repo_id: Id,
  worktree_id: Id
})
export type BindRequest = typeof BindRequest.Type

export const SwitchRequest = Schema.Struct({
  agent_id: Id,
  /** The repository of the target; the current one when absent. */
  repo_id: Schema.optional(Id),
  target_worktree_id: Id,
  /** A human must approve it (a HITL invocation, reason WORKTREE_OVERRIDE). */
  requires_hitl: Schema.optional(Schema.Boolean)
})
export type SwitchRequest = typeof SwitchRequest.Type

export const SwitchApprove = Schema.Struct({
  agent_id: Id,
  /** Must name the pending target, when given. */
  target_worktree_id: Schema.optional(Id),
  /** How long the agent stays away from home; the runtime's default when absent or 0. */
  ttl_ms: Schema.optional(Schema.Int.pipe(Schema.between(0, maxDurationMs))),
  by: Schema.optional(Id)
})
export type SwitchApprove = typeof SwitchApprove.Type

/** A reject, a revoke, an unbind: the agent, and why. */
export const SwitchReject = Schema.Struct({
  agent_id: Id,
  reason: Schema.optional(Text),
  by: Schema.optional(Id)
})
export type SwitchReject = typeof SwitchReject.Type

/** The agent could not set up the worktree it was bound to. */
export const BindFailure = Schema.Struct({ agent_id: Id, reason: Text })
export type BindFailure = typeof BindFailure.Type

// ---------------------------------------------------------------------------
// Views

const Worktree = Schema.Struct({ repo_id: Schema.String, worktree_id: Schema.String })

export const WorktreeStatus = Schema.Struct({
  agent_id: Schema.String,
  state: WorktreeState,
  /** The current binding ("" when none), as SW4RM's StatusResponse has it. */
  repo_id: Schema.String,
  worktree_id: Schema.String,
  home: Schema.optional(Worktree),
  pending: Schema.optional(Schema.Struct({
    repo_id: Schema.String,
    worktree_id: Schema.String,
    requested_at: Millis,
    /** Rejected (back home) unless approved by then. */
    deadline: Millis,
    hitl_id: Schema.optional(Schema.String)
  })),
  /** While BOUND_NON_HOME: when the agent goes home. */
  ttl_deadline: Schema.optional(Millis),
  failures: Schema.Number,
  last_error: Schema.optional(Schema.String),
  /** While BIND_FAILED: the next retry, or when a human is asked. */
  retry_at: Schema.optional(Millis),
  escalate_at: Schema.optional(Millis),
  /** A human's pending answer about this binding (a bind the policy gates, a failed bind). */
  hitl_id: Schema.optional(Schema.String)
}).annotations({ identifier: "WorktreeStatus" })
export type WorktreeStatus = typeof WorktreeStatus.Type

/** Which bindings `Worktrees.bindings` lists: a page of them, agents in the order they were first bound. */
export const BindingsFilter = Schema.Struct({
  state: Schema.optional(WorktreeState),
  /** This agent's binding only. */
  agent_id: Schema.optional(Id),
  /** The page starts after this agent's binding (a page's `next`). */
  after: Schema.optional(Id),
  /** At most this many bindings (default 100, at most 1,000). */
  limit: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000)))
})
export type BindingsFilter = typeof BindingsFilter.Type

export const BindingPage = Schema.Struct({
  bindings: Schema.Array(WorktreeStatus),
  /** Pass as `after` for the next page; absent on the last one. */
  next: Schema.optional(Schema.String)
}).annotations({ identifier: "WorktreeBindingPage" })
export type BindingPage = typeof BindingPage.Type

// ---------------------------------------------------------------------------
// Events

export const WorktreeBound = Schema.TaggedStruct("WorktreeBound", {
  agent_id: Id,
  repo_id: Id,
  worktree_id: Id,
  at: At
})
export type WorktreeBound = typeof WorktreeBound.Type

export const WorktreeUnbound = Schema.TaggedStruct("WorktreeUnbound", {
  agent_id: Id,
  reason: Schema.String,
  at: At
})
export type WorktreeUnbound = typeof WorktreeUnbound.Type

export const WorktreeSwitchRequested = Schema.TaggedStruct("WorktreeSwitchRequested", {
  agent_id: Id,
  repo_id: Id,
  worktree_id: Id,
  deadline: At,
  hitl_id: Schema.optional(Id),
  at: At
})
export type WorktreeSwitchRequested = typeof WorktreeSwitchRequested.Type

export const WorktreeSwitchApproved = Schema.TaggedStruct("WorktreeSwitchApproved", {
  agent_id: Id,
  ttl_deadline: At,
  by: Schema.String,
  at: At
})
export type WorktreeSwitchApproved = typeof WorktreeSwitchApproved.Type

export const HomeReason = Schema.Literal("rejected", "revoked", "ttl_expired", "switch_timed_out", "bind_failed")
export type HomeReason = typeof HomeReason.Type

/** Back to the home binding: the switch was rejected or timed out, the TTL ran out, it was revoked, or it failed. */
export const WorktreeReturnedHome = Schema.TaggedStruct("WorktreeReturnedHome", {
  agent_id: Id,
  reason: HomeReason,
  by: Schema.optional(Schema.String),
  note: Schema.optional(Schema.String),
  at: At
})
export type WorktreeReturnedHome = typeof WorktreeReturnedHome.Type

/** The home binding could not be set up: retried at `retry_at`, or (retries spent) escalated at `escalate_at`. */
export const WorktreeBindFailed = Schema.TaggedStruct("WorktreeBindFailed", {
  agent_id: Id,
  reason: Schema.String,
  failures: Schema.Int.pipe(Schema.positive()),
  retry_at: Schema.optional(At),
  escalate_at: Schema.optional(At),
  at: At
})
export type WorktreeBindFailed = typeof WorktreeBindFailed.Type

/** The home binding tried again (the agent is told by a WORKTREE_CONTROL envelope); `reset` after a human's yes. */
export const WorktreeBindRetried = Schema.TaggedStruct("WorktreeBindRetried", {
  agent_id: Id,
  reset: Schema.Boolean,
  at: At
})
export type WorktreeBindRetried = typeof WorktreeBindRetried.Type

export const WorktreeEvent = Schema.Union(
  WorktreeBound,
  WorktreeUnbound,
  WorktreeSwitchRequested,
  WorktreeSwitchApproved,
  WorktreeReturnedHome,
  WorktreeBindFailed,
  WorktreeBindRetried
)
export type WorktreeEvent = typeof WorktreeEvent.Type

/** A header as an envelope carries it: protobuf's empty string is no value. */
export const headerValue = (value: string | undefined) => (value === undefined || value === "" ? undefined : value)
