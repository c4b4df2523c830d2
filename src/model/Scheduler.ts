/**
 * The scheduler's part of the state (PROTOCOLS.md §1 "Coordination"):
 * tasks, queued by priority (−19 most urgent) then submission, each carried
 * to its agent by a message of the router, so it has the ACK lifecycle,
 * redelivery and dead letters; the states agents are in and since when
 * (for the state timeouts); agents shutting down; and each agent's activity
 * buffer. A task's outcome follows its message: FULFILLED completes it, a
 * FAILED with FORCED_PREEMPTION requeues it (it yielded), another retryable
 * failure requeues it while attempts are left, anything else fails it. The
 * decisions are `SchedulerDecide.ts`.
 */
import type { AgentState, ErrorCode } from "../schema/Envelope.js"
import type { Event } from "../schema/Event.js"
import type { Json } from "../schema/Json.js"
import type { Route } from "../schema/RouterEvents.js"
import type { ActivityEntry, TaskStatus, TaskView } from "../schema/Scheduler.js"
import type { RequeueReason, TaskSubmitted } from "../schema/SchedulerEvents.js"
import { Deque } from "./Deque.js"
import { isOpen } from "./Hitl.js"
import type { RuntimeConfig } from "../schema/Config.js"
import { type RuntimeState, type Slice, sortedRecord, timeOf } from "./State.js"

export interface Task {
  readonly task_id: string
  readonly submitted_by: string | undefined
  readonly target: Route
  readonly kind: string
  readonly max_parallel: number | undefined
  readonly input: Json
  readonly max_attempts: number
  readonly max_wait_ms: number | undefined
  readonly submitted_at: number
  /** Submission order: FIFO within a priority, kept when the task is requeued. */
  readonly order: number
  priority: number
  scope: string | undefined
  status: TaskStatus
  /** While dispatched: its agent and its message. */
  agent: string | undefined
  message: string | undefined
  /** Its messages so far, by id: the outcome of any still settles it only while it is the current one. */
  readonly messages: Array<string>
  started: boolean
  attempts: number
  preemptions: number
  preemption:
    | {
      readonly for_task: string | undefined
      readonly reason: string
      readonly asks: number
      readonly requested_at: number
      readonly grace_deadline: number | undefined
    }
    | undefined
  sectionUntil: number | undefined
  /** While queued with `max_wait_ms`: when a conflict that still blocks it goes to a human. */
  waitDeadline: number | undefined
  hitl: string | undefined
  /** A human approved it over the tasks in its way: it goes first, and no automatic preemption takes it back. */
  favoured: boolean
  errorCode: ErrorCode | undefined
  reason: string | undefined
  finishedAt: number | undefined
  /** Its next timed step (a grace, a section's end, a wait): the timer's key. */
  deadline: number | undefined
}

export interface ActivityLine {
  readonly task_id: string
  readonly description: string
  readonly repo_id: string
  readonly worktree_id: string
  readonly at: number
}

export interface SchedulerState {
  readonly tasks: Map<string, Task>
  /** Message id → task id, for the messages of tasks not finished. */
  readonly taskMessages: Map<string, string>
  readonly queuedTasks: Set<string>
  readonly activeTasks: Set<string>
  /** Each registered agent's state and since when; `deadline` when that state has a timeout. */
  readonly agentStates: Map<string, { readonly state: AgentState; readonly since: number; readonly deadline: number | undefined }>
  /** Agents shut down: the end of their grace. */
  readonly shutdowns: Map<string, number>
  readonly activity: Map<string, Deque<ActivityLine>>
  tasksSubmitted: number
  /** Finished tasks, oldest first: each is forgotten `retentionMs` after it finished, as a finished message is. */
  readonly finishedTasks: Deque<{ readonly id: string; readonly at: number }>
  /** Moves whenever something the dispatch depends on may have changed: lets the turn skip a pass that would find nothing new. */
  schedulerVersion: number
}

/** The most lines an agent's activity buffer keeps: the oldest go first. */
export const maxActivity = 1_000

/** The states in which an agent takes no new task. */
const idleStates: ReadonlySet<AgentState> = new Set([
  "INITIALIZING",
  "WAITING_RESOURCES",
  "SUSPENDED",
  "FAILED",
  "SHUTTING_DOWN",
  "RECOVERING",
  "COMPLETED"
])

export const refusesWork = (state: AgentState) => idleStates.has(state)

/** PROTOCOLS.md §1, "retry classes". */
const retryableCodes: ReadonlySet<ErrorCode> = new Set([
  "BUFFER_FULL",
  "AGENT_UNAVAILABLE",
  "AGENT_SHUTDOWN",
  "ACK_TIMEOUT",
  "TOOL_TIMEOUT",
  "FORCED_PREEMPTION",
  "INTERNAL_ERROR"
])
export const isRetryable = (code: ErrorCode | undefined) => code !== undefined && retryableCodes.has(code)

/** The timeout of a state, if it has one. */
export const stateTimeout = (config: RuntimeConfig, state: AgentState): number | undefined =>
  (config.agentStateTimeoutsMs as Partial<Record<AgentState, number>>)[state]

/**
 * Two scopes conflict when they are equal, or one lies under the other at a
 * `/` or `:` (`repo` and `repo/src`, `repo` and `repo:main`). An empty scope
 * claims nothing.
 */
export const scopesConflict = (a: string | undefined, b: string | undefined) => {
  if (a === undefined || b === undefined || a === "" || b === "") return false
  if (a === b) return true
  const [short, long] = a.length < b.length ? [a, b] : [b, a]
  return long.startsWith(short) && (long[short.length] === "/" || long[short.length] === ":")
}

export const targetName = (target: Route) => target._tag === "Agent" ? target.agent_id : `capability:${target.capability}`

export const taskView = (state: RuntimeState, task: Task): TaskView => ({
  task_id: task.task_id,
  status: task.status,
  priority: task.priority,
  agent_id: task.target._tag === "Agent" ? task.target.agent_id : undefined,
  capability: task.target._tag === "Capability" ? task.target.capability : undefined,
  scope: task.scope,
  kind: task.kind,
  max_parallel_instances: task.max_parallel,
  max_wait_ms: task.max_wait_ms,
  submitted_by: task.submitted_by,
  submitted_at: task.submitted_at,
  attempts: task.attempts,
  preemptions: task.preemptions,
  assigned_to: task.agent,
  message_id: task.message,
  started: task.started,
  preemption: task.preemption === undefined ? undefined : {
    for_task_id: task.preemption.for_task,
    reason: task.preemption.reason,
    asks: task.preemption.asks,
    requested_at: task.preemption.requested_at,
    grace_deadline: task.preemption.grace_deadline
  },
  section_until: task.sectionUntil,
  hitl_id: isOpen(state, task.hitl) ? task.hitl : undefined,
  error_code: task.errorCode,
  reason: task.reason,
  finished_at: task.finishedAt
})

/** RFC 3339 of an event's time; one past what a date can hold (never from a clock) as its number. */
const isoOf = (at: number) => {
  const date = new Date(at)
  return Number.isNaN(date.getTime()) ? String(at) : date.toISOString()
}

export const activityEntry = (line: ActivityLine): ActivityEntry => ({
  task_id: line.task_id,
  repo_id: line.repo_id,
  worktree_id: line.worktree_id,
  branch: "",
  description: line.description,
  timestamp: isoOf(line.at)
})

// ---------------------------------------------------------------------------
// Evolve

const timeNext = (task: Task) => {
  task.deadline = task.status === "QUEUED"
    ? task.waitDeadline
    : task.status === "DISPATCHED"
    ? task.sectionUntil ?? task.preemption?.grace_deadline
    : undefined
}

const note = (state: RuntimeState, agentId: string | undefined, task: Task, description: string, at: number) => {
  if (agentId === undefined) return
  let lines = state.activity.get(agentId)
  if (lines === undefined) state.activity.set(agentId, lines = new Deque())
  const place = state.worktrees.get(agentId)?.current
  lines.pushBack({ task_id: task.task_id, description, repo_id: place?.repo_id ?? "", worktree_id: place?.worktree_id ?? "", at })
  while (lines.length > maxActivity) lines.popFront()
}

const leaveAgent = (state: RuntimeState, task: Task) => {
  state.activeTasks.delete(task.task_id)
  task.agent = undefined
  task.message = undefined
  task.started = false
  task.preemption = undefined
  task.sectionUntil = undefined
}

const requeue = (state: RuntimeState, task: Task, reason: RequeueReason | "retry", at: number) => {
  note(state, task.agent, task, `requeued (${reason.replace("_", " ")})`, at)
  leaveAgent(state, task)
  if (reason === "preempted" || reason === "forced_preemption") task.preemptions++
  task.status = "QUEUED"
  state.queuedTasks.add(task.task_id)
  task.waitDeadline = task.max_wait_ms === undefined || isOpen(state, task.hitl) ? undefined : at + task.max_wait_ms
}

const finish = (state: RuntimeState, task: Task, status: TaskStatus, at: number, code?: ErrorCode, reason?: string) => {
  note(state, task.agent, task, status === "COMPLETED" ? "completed" : `${status.toLowerCase()}${code ? ` (${code})` : ""}`, at)
  leaveAgent(state, task)
  state.queuedTasks.delete(task.task_id)
  for (const id of task.messages) state.taskMessages.delete(id)
  task.status = status
  task.errorCode = code
  task.reason = reason
  task.finishedAt = at
  state.finishedTasks.pushBack({ id: task.task_id, at })
  task.waitDeadline = undefined
}

/** The task's current message reached a terminal stage: the task follows it. */
const settle = (state: RuntimeState, messageId: string, stage: string, code: ErrorCode | undefined, at: number) => {
  const task = state.tasks.get(state.taskMessages.get(messageId) ?? "")
  if (task === undefined || task.message !== messageId || task.status !== "DISPATCHED") return
  if (stage === "FULFILLED") finish(state, task, "COMPLETED", at)
  else if (code === "FORCED_PREEMPTION") requeue(state, task, "preempted", at)
  else if (isRetryable(code) && task.attempts + 1 < task.max_attempts) {
    task.attempts++
    requeue(state, task, "retry", at)
  } else {
    task.attempts++
    finish(state, task, "FAILED", at, code ?? "INTERNAL_ERROR", `its message ended ${stage}${code ? ` (${code})` : ""}`)
  }
  timeNext(task)
}

const agentState = (state: RuntimeState, config: RuntimeConfig, agentId: string, value: AgentState, at: number) => {
  const timeout = stateTimeout(config, value)
  state.agentStates.set(agentId, { state: value, since: at, deadline: timeout === undefined ? undefined : at + timeout })
}

/** The task an event names, through `step`, then its next timed step. */
const onTask = <E extends { readonly task_id: string }>(change: (state: RuntimeState, task: Task, event: E) => void) =>
(state: RuntimeState, event: E) => {
  const task = state.tasks.get(event.task_id)
  if (task === undefined) return
  change(state, task, event)
  timeNext(task)
}

const forgetAgent = (state: RuntimeState, event: { readonly agent_id: string }) => {
  state.agentStates.delete(event.agent_id)
  state.shutdowns.delete(event.agent_id)
}

/** The task a TaskSubmitted event makes, the `order`-th submitted. */
export const newTask = (event: TaskSubmitted, order: number): Task => {
  const task: Task = {
    task_id: event.task_id,
    submitted_by: event.submitted_by,
    target: event.target,
    kind: event.kind,
    max_parallel: event.max_parallel_instances,
    input: event.input,
    max_attempts: event.max_attempts,
    max_wait_ms: event.max_wait_ms,
    submitted_at: event.at,
    order,
    priority: event.priority,
    scope: event.scope === "" ? undefined : event.scope,
    status: "QUEUED",
    agent: undefined,
    message: undefined,
    messages: [],
    started: false,
    attempts: 0,
    preemptions: 0,
    preemption: undefined,
    sectionUntil: undefined,
    waitDeadline: event.max_wait_ms === undefined ? undefined : event.at + event.max_wait_ms,
    hitl: undefined,
    favoured: false,
    errorCode: undefined,
    reason: undefined,
    finishedAt: undefined,
    deadline: undefined
  }
  timeNext(task)
  return task
}

/** Events after which nothing a dispatch depends on can have changed. */
const quiet: ReadonlySet<Event["_tag"]> = new Set<Event["_tag"]>([
  "MessageAccepted",
  "MessageDelivered",
  "AuditRecorded",
  "TopologyEdgeAdded",
  "BudgetCharged",
  "BudgetExhaustedRecorded",
  "LeaseGranted",
  "VoteCast",
  "ArcpJobEvent",
  "ArcpSessionAcked"
])

export const schedulerSlice: Slice<SchedulerState> = {
  initial: () => ({
    tasks: new Map(),
    taskMessages: new Map(),
    queuedTasks: new Set(),
    activeTasks: new Set(),
    agentStates: new Map(),
    shutdowns: new Map(),
    activity: new Map(),
    tasksSubmitted: 0,
    finishedTasks: new Deque(),
    schedulerVersion: 0
  }),
  evolve: {
    TaskSubmitted: (state, event) => {
      const task = newTask(event, state.tasksSubmitted++)
      state.tasks.set(task.task_id, task)
      state.queuedTasks.add(task.task_id)
    },
    TaskDispatched: onTask((state, task, event) => {
      state.queuedTasks.delete(task.task_id)
      state.activeTasks.add(task.task_id)
      state.taskMessages.set(event.message_id, task.task_id)
      task.messages.push(event.message_id)
      task.status = "DISPATCHED"
      task.agent = event.agent_id
      task.message = event.message_id
      task.waitDeadline = undefined
      note(state, event.agent_id, task, `dispatched (message ${event.message_id})`, event.at)
    }),
    TaskPreemptionRequested: onTask((state, task, event) => {
      task.preemption = {
        for_task: event.for_task_id,
        reason: event.reason,
        asks: event.ask,
        requested_at: task.preemption?.requested_at ?? event.at,
        grace_deadline: event.grace_deadline
      }
      note(state, task.agent, task, `asked to yield (ask ${event.ask})`, event.at)
    }),
    TaskSectionEntered: onTask((_, task, event) => {
      task.sectionUntil = event.until
    }),
    TaskSectionExited: onTask((_, task) => {
      task.sectionUntil = undefined
    }),
    TaskRequeued: onTask((state, task, event) => requeue(state, task, event.reason, event.at)),
    TaskFinished: onTask((state, task, event) => finish(state, task, event.status, event.at, event.error_code, event.reason)),
    TaskModified: onTask((_, task, event) => {
      if (event.priority !== undefined) task.priority = event.priority
      if (event.scope !== undefined) task.scope = event.scope === "" ? undefined : event.scope
    }),
    MessageAcked: (state, event) => {
      if (!state.taskMessages.has(event.message_id)) return
      if (event.stage === "READ") {
        const task = state.tasks.get(state.taskMessages.get(event.message_id)!)
        if (task !== undefined && task.message === event.message_id) task.started = true
        return
      }
      // A late ACK changed nothing: the message's own stage says what counts.
      const stage = state.messages.get(event.message_id)?.stage
      if (stage === event.stage) settle(state, event.message_id, event.stage, event.error_code, event.at)
    },
    MessageTimedOut: (state, event) => {
      if (state.taskMessages.has(event.message_id)) settle(state, event.message_id, "TIMED_OUT", event.error_code, event.at)
    },
    HitlInvoked: (state, event) => {
      if (event.subject._tag !== "Task") return
      const task = state.tasks.get(event.subject.task_id)
      if (task === undefined) return
      task.hitl = event.hitl_id
      // A human decides from now on: the wait does not escalate again.
      task.waitDeadline = undefined
      timeNext(task)
    },
    HitlDecided: (state, event) => {
      const invocation = state.hitl.get(event.hitl_id)
      if (event.action !== "approve" || invocation?.subject._tag !== "Task") return
      const task = state.tasks.get(invocation.subject.task_id)
      if (task !== undefined && task.status === "QUEUED") task.favoured = true
    },
    AgentRegistered: (state, event, config) => {
      agentState(state, config, event.agent.agent_id, "RUNNABLE", event.at)
      state.shutdowns.delete(event.agent.agent_id)
    },
    AgentHeartbeat: (state, event, config) => {
      if (state.agentStates.get(event.agent_id)?.state !== event.state) agentState(state, config, event.agent_id, event.state, event.at)
    },
    AgentShutdownRequested: (state, event) => {
      // Its grace, not the SHUTTING_DOWN timeout, ends it.
      state.agentStates.set(event.agent_id, { state: "SHUTTING_DOWN", since: event.at, deadline: undefined })
      state.shutdowns.set(event.agent_id, event.grace_deadline)
    },
    AgentStateTimedOut: (state, event) => {
      state.agentStates.set(event.agent_id, { state: "FAILED", since: event.at, deadline: undefined })
    },
    AgentDeregistered: forgetAgent,
    AgentKilled: forgetAgent,
    ActivityPurged: (state, event) => {
      const lines = state.activity.get(event.agent_id)
      if (lines === undefined) return
      const purged = new Set(event.task_ids)
      const kept = [...lines].filter((line) => !purged.has(line.task_id))
      const fresh = new Deque<ActivityLine>()
      for (const line of kept) fresh.pushBack(line)
      if (kept.length === 0) state.activity.delete(event.agent_id)
      else state.activity.set(event.agent_id, fresh)
    }
  },
  after: (state, event, config) => {
    if (!quiet.has(event._tag)) state.schedulerVersion++
    const horizon = timeOf(event) - config.retentionMs
    while (state.finishedTasks.length > 0 && state.finishedTasks.at(0).at <= horizon) {
      const { id } = state.finishedTasks.popFront()!
      const task = state.tasks.get(id)
      if (task?.finishedAt !== undefined && task.finishedAt <= horizon) state.tasks.delete(id)
    }
  },
  // Not in the runtime's snapshot, whose shape the HTTP API serves: `coordinationSnapshot` has it.
  snapshot: () => ({})
}

export const schedulerSnapshot = (state: RuntimeState) => ({
  tasks: sortedRecord(state.tasks, (task) => taskView(state, task)),
  queued: [...state.queuedTasks].sort(),
  active: [...state.activeTasks].sort(),
  agent_states: sortedRecord(state.agentStates, (entry) => ({ ...entry })),
  shutdowns: sortedRecord(state.shutdowns, (deadline) => deadline),
  activity: sortedRecord(state.activity, (lines) => [...lines].map(activityEntry))
})
