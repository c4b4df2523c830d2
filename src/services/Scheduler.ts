/**
 * The scheduler (PROTOCOLS.md §1 "Coordination", SW4RM's `SchedulerService`
 * and more): tasks by priority, dispatched through the router, preempted
 * for strictly more urgent ones, agents shut down gracefully. Every method
 * takes a plain request Schema (`schema/Scheduler.ts`), decoded here: a
 * gRPC or HTTP edge calls it as it is.
 */
import { Context, type Effect } from "effect"
import type { AlreadyExists, FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import type { InternalError, NoRoute, PermissionDenied, PersistenceError, ValidationError } from "../schema/Errors.js"
import type {
  ActivityEntry,
  EnterSection,
  PreemptAnswer,
  PreemptRequest,
  PurgeActivityRequest,
  ShutdownAgentRequest,
  ShutdownAnswer,
  SubmitTaskRequest,
  TaskOfAgent,
  TasksFilter,
  TaskView
} from "../schema/Scheduler.js"

export type {
  ActivityEntry,
  EnterSection,
  PreemptAnswer,
  PreemptRequest,
  PurgeActivityRequest,
  ShutdownAgentRequest,
  ShutdownAnswer,
  SubmitTaskRequest,
  TaskOfAgent,
  TasksFilter,
  TaskView
} from "../schema/Scheduler.js"

/** What every command may fail with besides its own errors. */
type Failure = ValidationError | PersistenceError | InternalError

export class Scheduler extends Context.Tag("switchboard/Scheduler")<Scheduler, {
  /**
   * Queues a task (QUEUED). It is dispatched, most urgent first and FIFO
   * within a priority, as a message to a free agent that may run it
   * (`agent_id`, or any with `capability`), and completes or fails as that
   * message does (a retryable failure requeues it while attempts are left).
   */
  readonly submit: (request: SubmitTaskRequest) => Effect.Effect<TaskView, AlreadyExists | NoRoute | Failure>
  readonly task: (task_id: string) => Effect.Effect<TaskView, NotFound | ValidationError | InternalError>
  /** Tasks, in submission order, optionally by status or by the agent running them. */
  readonly tasks: (filter?: TasksFilter) => Effect.Effect<ReadonlyArray<TaskView>, ValidationError | InternalError>
  /**
   * SW4RM's RequestPreemption: asks `agent_id` to yield its task so that
   * the queued `task_id` runs there. Only a strictly more urgent task
   * preempts: otherwise `enqueued` is false, with the reason.
   */
  readonly requestPreemption: (request: PreemptRequest) => Effect.Effect<PreemptAnswer, NotFound | NoRoute | Failure>
  /** The agent gives its task back (cooperative preemption, at a safe point): requeued. */
  readonly yieldTask: (request: TaskOfAgent) => Effect.Effect<TaskView, NotFound | PermissionDenied | FailedPrecondition | Failure>
  /** The agent enters a non-preemptible section of at most `max_ms` (cut to the runtime's `maxSectionMs`). */
  readonly enterSection: (request: EnterSection) => Effect.Effect<TaskView, NotFound | PermissionDenied | FailedPrecondition | Failure>
  /** The section ends: a preemption asked meanwhile is asked again, its grace from now. */
  readonly exitSection: (request: TaskOfAgent) => Effect.Effect<TaskView, NotFound | PermissionDenied | FailedPrecondition | Failure>
  /**
   * ShutdownAgent: no new work from now on; in-flight work finishes, or is
   * requeued when `grace_ms` (default 30 s) runs out; then the agent is
   * deregistered.
   */
  readonly shutdownAgent: (request: ShutdownAgentRequest) => Effect.Effect<ShutdownAnswer, NoRoute | Failure>
  /** The agent's activity buffer (PollActivityBuffer): what its tasks did, oldest first, the last 1,000. */
  readonly pollActivity: (agent_id: string) => Effect.Effect<{ readonly entries: ReadonlyArray<ActivityEntry> }, ValidationError | InternalError>
  /** PurgeActivity: forgets the lines of these tasks. */
  readonly purgeActivity: (request: PurgeActivityRequest) => Effect.Effect<{ readonly purged: number }, Failure>
}>() {}
