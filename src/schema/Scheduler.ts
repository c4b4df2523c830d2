/**
 * The scheduler's wire (PROTOCOLS.md §1 "Coordination", SW4RM's
 * `SchedulerService`): what a caller sends to submit a task, ask for a
 * preemption, declare a non-preemptible section, shut an agent down, read
 * and purge an agent's activity, and the views it gets back. Plain request
 * and answer Schemas: the Effect service, the HTTP routes and a gRPC handler
 * all take the same ones.
 */
import { Schema } from "effect"
import { ErrorCode, Header, Id } from "./Envelope.js"
import { maxDurationMs } from "./Config.js"
import { Json } from "./Json.js"

const Millis = Schema.Number.annotations({ description: "epoch milliseconds" })

/** −19 (most urgent) to 20, as SW4RM numbers them (a Unix nice value). */
export const Priority = Schema.Int.pipe(
  Schema.between(-19, 20, { message: () => "must be an integer from -19 (most urgent) to 20" })
)

/**
 * A task id: at most 128 characters, so that the ids of the messages that
 * carry it (`<task_id>/<n>`) stay ids.
 */
export const TaskId = Id.pipe(Schema.maxLength(128, { message: () => "must be at most 128 characters" }))

/** A duration in milliseconds, bounded as the runtime's options are. */
export const DurationMs = Schema.Int.pipe(
  Schema.between(0, maxDurationMs, { message: () => `must be an integer from 0 to ${maxDurationMs}` })
)
const PositiveMs = Schema.Int.pipe(
  Schema.between(1, maxDurationMs, { message: () => `must be an integer from 1 to ${maxDurationMs}` })
)

export const SubmitTaskRequest = Schema.Struct({
  /** Given, it must be new (ALREADY_EXISTS otherwise); left out, the runtime names it `task-N`. */
  task_id: Schema.optional(TaskId),
  /** The agent to run it, or (`capability`) any agent advertising a capability: exactly one of them. */
  agent_id: Schema.optional(Id),
  capability: Schema.optional(Id),
  priority: Schema.optional(Priority),
  /**
   * The resource the task claims (a path, a repository, `repo:main`): two
   * tasks whose scopes are equal, or one of which lies under the other at a
   * `/` or `:`, never run at once. Empty or absent: it claims nothing.
   */
  scope: Schema.optional(Header),
  /** Its kind, for `max_parallel_instances`; the target (agent or `capability:NAME`) when absent. */
  kind: Schema.optional(Id),
  /** At most this many tasks of its kind run at once. */
  max_parallel_instances: Schema.optional(Schema.Int.pipe(Schema.between(1, 1_000_000))),
  /** What the agent is given, in the task's message. */
  input: Schema.optional(Json),
  /**
   * How long it may wait in the queue before a human decides (a HITL
   * invocation: CONFLICT when tasks with conflicting scopes hold it,
   * TASK_ESCALATION when no agent is free); 0: it cannot wait. Absent: it waits.
   */
  max_wait_ms: Schema.optional(DurationMs),
  /** Who submits it: an agent (its messages are then governed as that agent's), or the runtime when absent. */
  submitted_by: Schema.optional(Id)
})
export type SubmitTaskRequest = typeof SubmitTaskRequest.Type

export const TaskStatus = Schema.Literal("QUEUED", "DISPATCHED", "COMPLETED", "FAILED", "CANCELLED")
export type TaskStatus = typeof TaskStatus.Type

export const TaskView = Schema.Struct({
  task_id: Schema.String,
  status: TaskStatus,
  priority: Schema.Number,
  agent_id: Schema.optional(Schema.String),
  capability: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  kind: Schema.String,
  max_parallel_instances: Schema.optional(Schema.Number),
  max_wait_ms: Schema.optional(Schema.Number),
  submitted_by: Schema.optional(Schema.String),
  submitted_at: Millis,
  /** Deliveries that failed retryably so far (preemptions aside). */
  attempts: Schema.Number,
  preemptions: Schema.Number,
  /** While dispatched: the agent running it and the message that carries it. */
  assigned_to: Schema.optional(Schema.String),
  message_id: Schema.optional(Schema.String),
  /** The agent has read its message. */
  started: Schema.Boolean,
  preemption: Schema.optional(Schema.Struct({
    for_task_id: Schema.optional(Schema.String),
    reason: Schema.String,
    asks: Schema.Number,
    requested_at: Millis,
    /** When it is taken back unless it yields; absent while a non-preemptible section runs. */
    grace_deadline: Schema.optional(Millis)
  })),
  /** A non-preemptible section, until its declared end. */
  section_until: Schema.optional(Millis),
  /** An open human-in-the-loop invocation about it (a scope conflict). */
  hitl_id: Schema.optional(Schema.String),
  error_code: Schema.optional(ErrorCode),
  reason: Schema.optional(Schema.String),
  finished_at: Schema.optional(Millis)
}).annotations({ identifier: "Task" })
export type TaskView = typeof TaskView.Type

export const TasksFilter = Schema.Struct({
  status: Schema.optional(TaskStatus),
  agent_id: Schema.optional(Id)
})
export type TasksFilter = typeof TasksFilter.Type

/**
 * SW4RM's `RequestPreemption`: preempt `agent_id` so that `task_id` (queued)
 * can run on it. Only a task strictly more urgent than the one the agent runs
 * preempts it; otherwise the answer is `enqueued: false` with the reason.
 */
export const PreemptRequest = Schema.Struct({
  agent_id: Id,
  task_id: TaskId,
  reason: Schema.optional(Schema.String.pipe(Schema.maxLength(1024)))
})
export type PreemptRequest = typeof PreemptRequest.Type

export const PreemptAnswer = Schema.Struct({
  enqueued: Schema.Boolean,
  reason: Schema.String,
  /** The task asked to yield, when one was. */
  preempted_task_id: Schema.optional(Schema.String)
}).annotations({ identifier: "PreemptAnswer" })
export type PreemptAnswer = typeof PreemptAnswer.Type

/** The agent running `task_id` yields it (cooperative preemption), or enters or leaves a non-preemptible section. */
export const TaskOfAgent = Schema.Struct({ agent_id: Id, task_id: TaskId })
export type TaskOfAgent = typeof TaskOfAgent.Type

export const EnterSection = Schema.Struct({
  agent_id: Id,
  task_id: TaskId,
  /** Its declared maximum; past it the section ends, and a pending preemption is asked again. */
  max_ms: PositiveMs
})
export type EnterSection = typeof EnterSection.Type

export const ShutdownAgentRequest = Schema.Struct({
  agent_id: Id,
  /** How long its in-flight work may run on; then it is requeued. Default 30 s. */
  grace_ms: Schema.optional(DurationMs)
})
export type ShutdownAgentRequest = typeof ShutdownAgentRequest.Type

export const ShutdownAnswer = Schema.Struct({
  ok: Schema.Boolean,
  /** When the agent is deregistered at the latest. */
  deadline: Millis,
  /** Already deregistered: nothing was in flight. */
  deregistered: Schema.Boolean
}).annotations({ identifier: "ShutdownAnswer" })
export type ShutdownAnswer = typeof ShutdownAnswer.Type

/** One line of an agent's activity buffer, as SW4RM's `ActivityEntry` has it. */
export const ActivityEntry = Schema.Struct({
  task_id: Schema.String,
  repo_id: Schema.String,
  worktree_id: Schema.String,
  branch: Schema.String,
  description: Schema.String,
  /** RFC 3339. */
  timestamp: Schema.String
}).annotations({ identifier: "ActivityEntry" })
export type ActivityEntry = typeof ActivityEntry.Type

export const ActivityAnswer = Schema.Struct({ entries: Schema.Array(ActivityEntry) }).annotations({ identifier: "Activity" })

export const PurgeActivityRequest = Schema.Struct({
  agent_id: Id,
  task_ids: Schema.Array(TaskId).pipe(Schema.maxItems(1024))
})
export type PurgeActivityRequest = typeof PurgeActivityRequest.Type

export const PurgeAnswer = Schema.Struct({ purged: Schema.Number }).annotations({ identifier: "PurgeAnswer" })
