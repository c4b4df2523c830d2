/**
 * The facts of the scheduler (PROTOCOLS.md §1 "Coordination"): tasks
 * submitted, dispatched through the router, asked to yield, taken back,
 * requeued and ended, agents that stayed too long in a state, agents shut
 * down, and activity purged. A task's own outcome (completed, failed) is
 * the outcome of the message that carries it, already an event of the
 * router: it is folded from that, not recorded twice.
 */
import { Schema } from "effect"
import { AgentState, ErrorCode, Header, Id } from "./Envelope.js"
import { Json } from "./Json.js"
import { Route } from "./RouterEvents.js"

const At = Schema.Int
const Count = Schema.Int.pipe(Schema.positive())

export const TaskSubmitted = Schema.TaggedStruct("TaskSubmitted", {
  task_id: Id,
  submitted_by: Schema.optional(Id),
  target: Route,
  priority: Schema.Int,
  scope: Schema.optional(Header),
  kind: Id,
  max_parallel_instances: Schema.optional(Count),
  input: Json,
  /** Retryable failures of its deliveries before it fails, as configured when it was submitted. */
  max_attempts: Count,
  max_wait_ms: Schema.optional(Schema.NonNegativeInt),
  at: At
})
export type TaskSubmitted = typeof TaskSubmitted.Type

/** Its message was accepted for `agent_id` (the MessageAccepted of the same decision). */
export const TaskDispatched = Schema.TaggedStruct("TaskDispatched", {
  task_id: Id,
  agent_id: Id,
  message_id: Id,
  at: At
})
export type TaskDispatched = typeof TaskDispatched.Type

/**
 * The agent running the task was asked to yield it (a CONTROL envelope,
 * `message_id`): for a strictly more urgent task, or because a human said
 * so. Without `grace_deadline` the agent is in a non-preemptible section: it
 * is asked again when the section ends.
 */
export const TaskPreemptionRequested = Schema.TaggedStruct("TaskPreemptionRequested", {
  task_id: Id,
  agent_id: Id,
  for_task_id: Schema.optional(Id),
  reason: Schema.String,
  ask: Count,
  grace_deadline: Schema.optional(At),
  message_id: Schema.optional(Id),
  at: At
})
export type TaskPreemptionRequested = typeof TaskPreemptionRequested.Type

export const TaskSectionEntered = Schema.TaggedStruct("TaskSectionEntered", {
  task_id: Id,
  agent_id: Id,
  until: At,
  at: At
})
export type TaskSectionEntered = typeof TaskSectionEntered.Type

/** The section ended: left by the agent, or (`expired`) past its declared maximum. */
export const TaskSectionExited = Schema.TaggedStruct("TaskSectionExited", {
  task_id: Id,
  agent_id: Id,
  expired: Schema.Boolean,
  at: At
})
export type TaskSectionExited = typeof TaskSectionExited.Type

export const RequeueReason = Schema.Literal(
  /** The agent yielded it (cooperative preemption), or it was taken back before its message was delivered. */
  "preempted",
  /** The grace ran out: taken back, its message FAILED with FORCED_PREEMPTION. */
  "forced_preemption",
  /** Its agent stayed past a state timeout and was marked FAILED. */
  "agent_failed",
  /** Its agent was shut down and the grace ran out. */
  "agent_shutdown",
  /** Its agent is gone: deregistered, killed, or its heartbeats stopped. */
  "agent_lost"
)
export type RequeueReason = typeof RequeueReason.Type

/** Back in the queue, its place by priority and submission kept. */
export const TaskRequeued = Schema.TaggedStruct("TaskRequeued", {
  task_id: Id,
  reason: RequeueReason,
  at: At
})
export type TaskRequeued = typeof TaskRequeued.Type

/** Ended by the scheduler rather than by its message: a dispatch the router refused for good, a human's no. */
export const TaskFinished = Schema.TaggedStruct("TaskFinished", {
  task_id: Id,
  status: Schema.Literal("FAILED", "CANCELLED"),
  error_code: Schema.optional(ErrorCode),
  reason: Schema.String,
  at: At
})
export type TaskFinished = typeof TaskFinished.Type

/** A human changed a waiting task (a HITL decision `modify`): its priority, its scope. */
export const TaskModified = Schema.TaggedStruct("TaskModified", {
  task_id: Id,
  priority: Schema.optional(Schema.Int),
  /** An empty scope claims nothing. */
  scope: Schema.optional(Header),
  at: At
})
export type TaskModified = typeof TaskModified.Type

/** The agent stayed in `state` since `since` past its timeout: it is FAILED from now on. */
export const AgentStateTimedOut = Schema.TaggedStruct("AgentStateTimedOut", {
  agent_id: Id,
  state: AgentState,
  since: At,
  at: At
})
export type AgentStateTimedOut = typeof AgentStateTimedOut.Type

/** `ShutdownAgent`: SHUTTING_DOWN, no new work; deregistered once its work is done, or at `grace_deadline`. */
export const AgentShutdownRequested = Schema.TaggedStruct("AgentShutdownRequested", {
  agent_id: Id,
  grace_deadline: At,
  at: At
})
export type AgentShutdownRequested = typeof AgentShutdownRequested.Type

export const ActivityPurged = Schema.TaggedStruct("ActivityPurged", {
  agent_id: Id,
  task_ids: Schema.Array(Id),
  at: At
})
export type ActivityPurged = typeof ActivityPurged.Type

export const SchedulerEvent = Schema.Union(
  TaskSubmitted,
  TaskDispatched,
  TaskPreemptionRequested,
  TaskSectionEntered,
  TaskSectionExited,
  TaskRequeued,
  TaskFinished,
  TaskModified,
  AgentStateTimedOut,
  AgentShutdownRequested,
  ActivityPurged
)
export type SchedulerEvent = typeof SchedulerEvent.Type
