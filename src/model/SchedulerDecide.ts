/**
 * The scheduler's decisions (PROTOCOLS.md §1 "Coordination"): submitting a
 * task; each turn's pass that dispatches queued tasks through the router in
 * priority order, FIFO within a priority, one task per agent, scopes that
 * conflict never at once, `max_parallel_instances` per kind; preemption for
 * a strictly more urgent task, cooperative (a CONTROL envelope asks the
 * agent to yield; a non-preemptible section is asked again when it ends)
 * then forced after a grace; yields and sections reported by agents; agent
 * state timeouts; ShutdownAgent; the activity buffer.
 */
import { AlreadyExists, FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import type { ErrorCode } from "../schema/Envelope.js"
import { NoRoute, PermissionDenied, ValidationError } from "../schema/Errors.js"
import type { Event } from "../schema/Event.js"
import type { Json } from "../schema/Json.js"
import type { MessageAcked } from "../schema/RouterEvents.js"
import type {
  EnterSection,
  PreemptAnswer,
  PreemptRequest,
  PurgeActivityRequest,
  ShutdownAgentRequest,
  ShutdownAnswer,
  SubmitTaskRequest,
  TaskOfAgent,
  TaskView
} from "../schema/Scheduler.js"
import {
  ActivityPurged,
  AgentShutdownRequested,
  AgentStateTimedOut,
  TaskDispatched,
  TaskFinished,
  TaskPreemptionRequested,
  type TaskRequeued,
  TaskSectionEntered,
  TaskSectionExited,
  TaskSubmitted
} from "../schema/SchedulerEvents.js"
import { decideDeregister } from "./Agents.js"
import { later } from "./Deadlines.js"
import { buildEnvelope } from "./Envelopes.js"
import { auditor, blockedReason } from "./Governance.js"
import { type Deciding, openInvocation, withdrawInvocation, isOpen } from "./Hitl.js"
import { load } from "./Mailboxes.js"
import { decideSend, isTerminal } from "./Messages.js"
import { sendNotice } from "./Notices.js"
import { moveQueuedCapabilityMessages, placement, requeueAll, reroute } from "./Placement.js"
import { newTask, refusesWork, scopesConflict, type Task, targetName, taskView } from "./Scheduler.js"
import { accept, type Decision, refuse, type RuntimeState } from "./State.js"

/** The default grace of ShutdownAgent: the SHUTTING_DOWN timeout's default. */
export const defaultShutdownGraceMs = 30_000

/** `prefix-N` for the first N from `from` that names nothing yet. */
const freshName = (taken: ReadonlyMap<string, unknown>, prefix: string, from: number) => {
  let n = from
  while (taken.has(`${prefix}-${n}`)) n++
  return `${prefix}-${n}`
}

// ---------------------------------------------------------------------------
// Submitting

export const decideSubmit = (d: Deciding, request: SubmitTaskRequest): Decision<TaskView, AlreadyExists | NoRoute | ValidationError> => {
  if ((request.agent_id === undefined) === (request.capability === undefined)) {
    return refuse(ValidationError.single("task", "agent_id", "name exactly one of agent_id and capability"))
  }
  if (request.task_id !== undefined && d.state.tasks.has(request.task_id)) {
    return refuse(new AlreadyExists({ what: "task", id: request.task_id }))
  }
  if (request.agent_id !== undefined && d.state.agents.get(request.agent_id)?.registered !== true) {
    return refuse(new NoRoute({ to: request.agent_id }))
  }
  const target = request.agent_id !== undefined
    ? { _tag: "Agent" as const, agent_id: request.agent_id }
    : { _tag: "Capability" as const, capability: request.capability! }
  const submitted = TaskSubmitted.make({
    task_id: request.task_id ?? freshName(d.state.tasks, "task", d.state.tasksSubmitted + 1),
    submitted_by: request.submitted_by,
    target,
    priority: request.priority ?? 0,
    scope: request.scope === "" ? undefined : request.scope,
    kind: request.kind ?? targetName(target),
    max_parallel_instances: request.max_parallel_instances,
    input: request.input ?? null,
    max_attempts: d.config.maxTaskAttempts,
    max_wait_ms: request.max_wait_ms,
    at: d.now
  }, true)
  return accept([submitted], taskView(d.state, newTask(submitted, d.state.tasksSubmitted)))
}

// ---------------------------------------------------------------------------
// Taking a task back

/**
 * The runtime's record that the task's message failed with `code` (the
 * task was taken back): its delivery ends, so it is not delivered again,
 * and its producer hears of it. The agent's own late ACK changes nothing.
 */
const settleMessage = (state: RuntimeState, task: Task, code: ErrorCode, note: string, now: number): ReadonlyArray<MessageAcked> => {
  const message = task.message === undefined ? undefined : state.messages.get(task.message)
  if (message === undefined || isTerminal(message.stage)) return []
  return [{
    _tag: "MessageAcked",
    message_id: message.id,
    agent_id: message.to,
    stage: "FAILED",
    error_code: code,
    note,
    delivery_seq: undefined,
    ack_deadline: undefined,
    at: now
  }]
}

const takeBack = (d: Deciding, task: Task, reason: TaskRequeued["reason"], code: ErrorCode, note: string): ReadonlyArray<Event> => [
  { _tag: "TaskRequeued", task_id: task.task_id, reason, at: d.now } satisfies TaskRequeued,
  ...settleMessage(d.state, task, code, note, d.now)
]

/**
 * Asks the agent running `victim` to yield it (a CONTROL envelope on the
 * urgent lane): within the grace, or once its non-preemptible section ends.
 * A task whose message was not delivered yet is simply taken back.
 */
export const preempt = (d: Deciding, victim: Task, forTask: string | undefined, reason: string): ReadonlyArray<Event> => {
  const message = victim.message === undefined ? undefined : d.state.messages.get(victim.message)
  if (message === undefined || message.location === "queued") {
    return takeBack(d, victim, "preempted", "FORCED_PREEMPTION", "taken back before it was delivered")
  }
  const ask = (victim.preemption?.asks ?? 0) + 1
  const inSection = victim.sectionUntil !== undefined && victim.sectionUntil > d.now
  const control = sendNotice(d.state, d.config, {
    to: victim.agent!,
    message_id: `${victim.message}/preempt/${ask}`,
    message_type: "CONTROL",
    correlation_id: victim.task_id,
    lane: "PRIVILEGED",
    payload: {
      type: "preempt",
      task_id: victim.task_id,
      ...(forTask === undefined ? {} : { for_task_id: forTask }),
      reason,
      ask,
      grace_ms: d.config.preemptionGraceMs,
      in_section: inSection
    }
  }, d.now)
  // A request that cannot reach the agent (its mailbox full) is still a request: the grace takes the task back.
  const sent = control._tag === "MessageAccepted" && !d.state.messages.has(control.envelope.message_id) ? control : undefined
  return [
    TaskPreemptionRequested.make({
      task_id: victim.task_id,
      agent_id: victim.agent!,
      for_task_id: forTask,
      reason,
      ask,
      grace_deadline: inSection ? undefined : later(d.now, d.config.preemptionGraceMs),
      message_id: sent?.envelope.message_id,
      at: d.now
    }, true),
    ...(sent === undefined ? [] : [sent])
  ]
}

// ---------------------------------------------------------------------------
// Who may run what

/** Whether the agent may take a new task now: registered, heartbeating, in a working state, not stopped, not shutting down. */
export const mayRun = (state: RuntimeState, agentId: string) => {
  const agent = state.agents.get(agentId)
  return agent !== undefined && agent.registered && agent.live && !refusesWork(agent.state) &&
    blockedReason(state, agentId) === undefined && !state.shutdowns.has(agentId)
}

/** The agents the task may run on, whether or not they are busy. */
const candidates = (state: RuntimeState, task: Task): ReadonlyArray<string> => {
  if (task.target._tag === "Agent") return mayRun(state, task.target.agent_id) ? [task.target.agent_id] : []
  const found: Array<string> = []
  for (const [id, agent] of state.agents) {
    if (agent.descriptor.capabilities.includes(task.target.capability) && mayRun(state, id)) found.push(id)
  }
  return found
}

/** The active task of each agent. */
const runningOn = (state: RuntimeState) => {
  const running = new Map<string, Task>()
  for (const id of state.activeTasks) {
    const task = state.tasks.get(id)
    if (task?.agent !== undefined) running.set(task.agent, task)
  }
  return running
}

/** The task's message, sent as its submitter (governed as that agent's) or as the runtime. */
const dispatch = (d: Deciding, task: Task, agentId: string): { readonly events: ReadonlyArray<Event>; readonly sent: boolean } => {
  const message_id = `${task.task_id}/${task.messages.length + 1}`
  const payload: Json = {
    type: "task",
    task_id: task.task_id,
    priority: task.priority,
    ...(task.scope === undefined ? {} : { scope: task.scope }),
    kind: task.kind,
    input: task.input,
    attempt: task.attempts + 1
  }
  const dispatched = TaskDispatched.make({ task_id: task.task_id, agent_id: agentId, message_id, at: d.now }, true)
  if (task.submitted_by !== undefined) {
    const envelope = buildEnvelope({ producer_id: task.submitted_by, correlation_id: task.task_id, payload }, message_id, d.now)
    const decided = decideSend(d.state, d.config, { route: { _tag: "Agent", agent_id: agentId }, envelope }, d.now)
    if (decided._tag === "Accepted") return { events: [...decided.events, dispatched], sent: true }
    // A refusal that waiting can mend (a full mailbox) leaves it queued; any other ends it.
    if (decided.error.retryable) return { events: [], sent: false }
    return { events: [...decided.events, failed(d, task, decided.error.code, decided.error.message)], sent: false }
  }
  const notice = sendNotice(d.state, d.config, { to: agentId, message_id, message_type: "DATA", correlation_id: task.task_id, payload }, d.now)
  if (notice._tag === "MessageAccepted" && !d.state.messages.has(message_id)) return { events: [notice, dispatched], sent: true }
  if (notice._tag === "MessageAccepted") return { events: [failed(d, task, "DUPLICATE_DETECTED", `message id ${message_id} is taken`)], sent: false }
  if (notice.retryable) return { events: [], sent: false }
  return { events: [failed(d, task, notice.code, notice.message)], sent: false }
}

const failed = (d: Deciding, task: Task, code: ErrorCode, reason: string) =>
  TaskFinished.make({ task_id: task.task_id, status: "FAILED", error_code: code, reason: `its dispatch was refused: ${reason}`, at: d.now }, true)

/**
 * A task that cannot wait any longer: a human decides. For the tasks whose
 * scopes conflict with its own (CONFLICT), or, with nothing in its way but
 * no agent free to take it, for the task itself (TASK_ESCALATION).
 */
const escalateConflict = (d: Deciding, task: Task, conflicting: ReadonlyArray<Task>) =>
  openInvocation(d, {
    reason: conflicting.length > 0 ? "CONFLICT" : "TASK_ESCALATION",
    subject: { _tag: "Task", task_id: task.task_id },
    context: {
      task_id: task.task_id,
      priority: task.priority,
      scope: task.scope ?? "",
      conflicts_with: conflicting.map((other) => ({
        task_id: other.task_id,
        priority: other.priority,
        scope: other.scope ?? "",
        agent_id: other.agent ?? ""
      }))
    },
    proposed_actions: [
      "approve: preempt the conflicting tasks",
      "deny: cancel this task",
      "modify: { priority, scope }",
      "defer: keep waiting"
    ],
    invoked_by: task.submitted_by
  }).events

/** Queued tasks: those a human put first, then most urgent first, then by submission. */
const queueOrder = (state: RuntimeState) =>
  [...state.queuedTasks].map((id) => state.tasks.get(id)!).sort((a, b) =>
    Number(b.favoured) - Number(a.favoured) || a.priority - b.priority || a.order - b.order
  )

/**
 * One pass of the scheduler, run each turn when anything it depends on
 * changed: shut-down agents whose work is done are deregistered; tasks
 * whose agent is gone are requeued; then each queued task, most urgent
 * first, is dispatched to a free agent that may run it, or preempts a
 * strictly less urgent one (or waits).
 */
export const decideSchedule = (pass: Deciding): ReadonlyArray<Event> => {
  const { state } = pass
  const events: Array<Event> = []
  // Several decisions in one pass may each seal audit records (a dispatch a
  // message policy checks, a question withdrawn): each must chain to the one
  // before it, so each decides against the state with the chain's head so far.
  let head = state.auditHead
  const chained = (): Deciding => {
    const view: RuntimeState = head === state.auditHead ? state : Object.assign(Object.create(state), { auditHead: head })
    return { ...pass, state: view, audit: auditor(view, pass.now) }
  }
  const record = (decided: ReadonlyArray<Event>) => {
    for (const event of decided) {
      if (event._tag === "AuditRecorded") head = event.record.hash
      events.push(event)
    }
  }
  const running = runningOn(state)

  for (const [agentId] of state.shutdowns) {
    if (!running.has(agentId) && (state.mailboxes.get(agentId)?.inFlight ?? 0) === 0) {
      const deregistered = decideDeregister(state, { agent_id: agentId, reason: "shut down: its work is done" }, pass.now)
      if (deregistered._tag === "Accepted") events.push(...deregistered.events)
    }
  }
  for (const [agentId, task] of running) {
    const agent = state.agents.get(agentId)
    if (agent === undefined || !agent.registered || !agent.live) {
      events.push(...takeBack(pass, task, "agent_lost", "AGENT_UNAVAILABLE", `its agent ${agentId} is gone`))
      running.delete(agentId)
    }
  }
  if (state.queuedTasks.size === 0) return events

  const claimed: Array<Task> = [...running.values()]
  const kinds = new Map<string, number>()
  for (const task of claimed) kinds.set(task.kind, (kinds.get(task.kind) ?? 0) + 1)
  const asked = new Set<string>()
  for (const task of claimed) {
    if (task.preemption !== undefined) asked.add(task.task_id)
  }
  const forWhom = new Set([...claimed].flatMap((task) => task.preemption?.for_task === undefined ? [] : [task.preemption.for_task]))

  for (const task of queueOrder(state)) {
    if (task.max_parallel !== undefined && (kinds.get(task.kind) ?? 0) >= task.max_parallel) continue
    const conflicting = claimed.filter((other) => scopesConflict(task.scope, other.scope))
    if (conflicting.length > 0) {
      // Strictly more urgent than every task in its way: those yield to it.
      if (conflicting.every((other) => other.priority > task.priority && other.agent !== undefined && !other.favoured)) {
        for (const other of conflicting) {
          if (asked.has(other.task_id)) continue
          asked.add(other.task_id)
          events.push(...preempt(pass, other, task.task_id, `scope ${other.scope} is wanted by ${task.task_id} (priority ${task.priority})`))
        }
      }
      continue
    }
    const able = candidates(state, task)
    const free = able.filter((id) => !running.has(id))
    if (free.length > 0) {
      let pick = free[0]
      for (const id of free) if (load(state, id) < load(state, pick)) pick = id
      const sent = dispatch(chained(), task, pick)
      record(sent.events)
      if (!sent.sent) continue
      // In this pass the task is running: it holds its agent, its scope, a place of its kind.
      const placed = { ...task, agent: pick, preemption: undefined }
      running.set(pick, placed)
      claimed.push(placed)
      kinds.set(task.kind, (kinds.get(task.kind) ?? 0) + 1)
      if (isOpen(state, task.hitl)) record(withdrawInvocation(chained(), task.hitl, "the conflict cleared: the task runs"))
      continue
    }
    if (forWhom.has(task.task_id)) continue
    // No free agent: the least urgent running task it outranks, the latest submitted of those, yields.
    let victim: Task | undefined
    for (const id of able) {
      const other = running.get(id)
      if (other === undefined || asked.has(other.task_id) || other.priority <= task.priority || other.favoured) continue
      if (victim === undefined || other.priority > victim.priority || (other.priority === victim.priority && other.order > victim.order)) {
        victim = other
      }
    }
    if (victim !== undefined) {
      asked.add(victim.task_id)
      forWhom.add(task.task_id)
      events.push(...preempt(pass, victim, task.task_id, `${task.task_id} (priority ${task.priority}) outranks it (priority ${victim.priority})`))
    }
  }
  return events
}

// ---------------------------------------------------------------------------
// Requests of agents and operators

const taskOf = (d: Deciding, id: string) => d.state.tasks.get(id)

export const decideRequestPreemption = (d: Deciding, request: PreemptRequest): Decision<PreemptAnswer, NotFound | NoRoute> => {
  const task = taskOf(d, request.task_id)
  if (task === undefined) return refuse(new NotFound({ what: "task", id: request.task_id }))
  if (d.state.agents.get(request.agent_id)?.registered !== true) return refuse(new NoRoute({ to: request.agent_id }))
  const no = (reason: string) => accept([], { enqueued: false, reason })
  if (task.status !== "QUEUED") return no(`task ${task.task_id} is ${task.status}, not waiting`)
  if (!candidates(d.state, task).includes(request.agent_id)) return no(`${request.agent_id} may not run task ${task.task_id} now`)
  const victim = runningOn(d.state).get(request.agent_id)
  if (victim === undefined) return no(`${request.agent_id} runs no task: ${task.task_id} is dispatched as it frees`)
  if (victim.priority <= task.priority) {
    return no(`only a strictly more urgent task preempts: ${victim.task_id} has priority ${victim.priority}, ${task.task_id} ${task.priority}`)
  }
  if (victim.preemption !== undefined) {
    return accept([], { enqueued: true, reason: `${victim.task_id} was asked to yield already`, preempted_task_id: victim.task_id })
  }
  return accept(preempt(d, victim, task.task_id, request.reason ?? `requested for ${task.task_id}`), {
    enqueued: true,
    reason: `${victim.task_id} is asked to yield`,
    preempted_task_id: victim.task_id
  })
}

/** The agent's own task, dispatched to it. */
const ownTask = (d: Deciding, request: TaskOfAgent): Task | NotFound | PermissionDenied | FailedPrecondition => {
  const task = taskOf(d, request.task_id)
  if (task === undefined) return new NotFound({ what: "task", id: request.task_id })
  if (task.status !== "DISPATCHED") return new FailedPrecondition({ reason: `task ${task.task_id} is ${task.status}` })
  if (task.agent !== request.agent_id) return new PermissionDenied({ reason: `task ${task.task_id} runs on another agent` })
  return task
}

/** Cooperative preemption: the agent gives its task back at a safe point (and may without being asked). */
export const decideYield = (d: Deciding, request: TaskOfAgent): Decision<TaskView, NotFound | PermissionDenied | FailedPrecondition> => {
  const task = ownTask(d, request)
  if (!("task_id" in task)) return refuse(task)
  const events = takeBack(d, task, "preempted", "FORCED_PREEMPTION", "yielded")
  return accept(events, { ...taskView(d.state, task), status: "QUEUED", assigned_to: undefined, message_id: undefined, preemption: undefined })
}

export const decideEnterSection = (d: Deciding, request: EnterSection): Decision<TaskView, NotFound | PermissionDenied | FailedPrecondition> => {
  const task = ownTask(d, request)
  if (!("task_id" in task)) return refuse(task)
  if (task.preemption !== undefined) {
    return refuse(new FailedPrecondition({ reason: `task ${task.task_id} is asked to yield: yield it, or end the section it is in` }))
  }
  const until = later(d.now, Math.min(request.max_ms, d.config.maxSectionMs))
  return accept(
    [TaskSectionEntered.make({ task_id: task.task_id, agent_id: request.agent_id, until, at: d.now }, true)],
    { ...taskView(d.state, task), section_until: until }
  )
}

/** The section ends (left, or past its maximum): a pending preemption is asked again, its grace from now. */
const sectionEnds = (d: Deciding, task: Task, expired: boolean): ReadonlyArray<Event> => [
  TaskSectionExited.make({ task_id: task.task_id, agent_id: task.agent!, expired, at: d.now }, true),
  ...(task.preemption === undefined ? [] : preempt(d, { ...task, sectionUntil: undefined }, task.preemption.for_task, task.preemption.reason))
]

export const decideExitSection = (d: Deciding, request: TaskOfAgent): Decision<TaskView, NotFound | PermissionDenied | FailedPrecondition> => {
  const task = ownTask(d, request)
  if (!("task_id" in task)) return refuse(task)
  if (task.sectionUntil === undefined) return accept([], taskView(d.state, task))
  return accept(sectionEnds(d, task, false), { ...taskView(d.state, task), section_until: undefined })
}

export const decideShutdown = (d: Deciding, request: ShutdownAgentRequest): Decision<ShutdownAnswer, NoRoute> => {
  const agent = d.state.agents.get(request.agent_id)
  if (agent === undefined || !agent.registered) return refuse(new NoRoute({ to: request.agent_id }))
  const already = d.state.shutdowns.get(request.agent_id)
  if (already !== undefined) return accept([], { ok: true, deadline: already, deregistered: false })
  const deadline = later(d.now, request.grace_ms ?? defaultShutdownGraceMs)
  const requested = AgentShutdownRequested.make({ agent_id: request.agent_id, grace_deadline: deadline, at: d.now }, true)
  const busy = runningOn(d.state).has(request.agent_id) || (d.state.mailboxes.get(request.agent_id)?.inFlight ?? 0) > 0
  if (busy) return accept([requested], { ok: true, deadline, deregistered: false })
  const deregistered = decideDeregister(d.state, { agent_id: request.agent_id, reason: "shut down: nothing in flight" }, d.now)
  return accept([requested, ...(deregistered._tag === "Accepted" ? deregistered.events : [])], { ok: true, deadline, deregistered: true })
}

export const decidePurgeActivity = (d: Deciding, request: PurgeActivityRequest): Decision<{ readonly purged: number }> => {
  const lines = d.state.activity.get(request.agent_id)
  if (lines === undefined || request.task_ids.length === 0) return accept([], { purged: 0 })
  const ids = new Set(request.task_ids)
  let purged = 0
  for (const line of lines) if (ids.has(line.task_id)) purged++
  return accept(
    purged === 0 ? [] : [ActivityPurged.make({ agent_id: request.agent_id, task_ids: [...ids], at: d.now }, true)],
    { purged }
  )
}

// ---------------------------------------------------------------------------
// Deadlines

/** A task's deadline: a wait that escalates, a section that ends, a grace that forces the preemption. */
export const decideTaskDeadline = (d: Deciding, taskId: string): ReadonlyArray<Event> => {
  const task = d.state.tasks.get(taskId)!
  if (task.status === "QUEUED") {
    // Its wait is over: a human decides, whatever holds it (its deadline is cleared by the invocation).
    const conflicting = [...runningOn(d.state).values()].filter((other) => scopesConflict(task.scope, other.scope))
    return escalateConflict(d, task, conflicting)
  }
  if (task.sectionUntil !== undefined && task.sectionUntil <= d.now) return sectionEnds(d, task, true)
  if (task.preemption?.grace_deadline !== undefined && task.preemption.grace_deadline <= d.now) {
    return takeBack(d, task, "forced_preemption", "FORCED_PREEMPTION", "forced preemption: the grace ran out")
  }
  return []
}

/**
 * An agent past its state's timeout (PROTOCOLS.md §1): FAILED, its tasks
 * requeued, its queued work by capability moved to another agent.
 */
export const decideAgentStateDeadline = (d: Deciding, agentId: string): ReadonlyArray<Event> => {
  const entry = d.state.agentStates.get(agentId)!
  const tasks = [...d.state.activeTasks].map((id) => d.state.tasks.get(id)!).filter((task) => task.agent === agentId)
  return [
    AgentStateTimedOut.make({ agent_id: agentId, state: entry.state, since: entry.since, at: d.now }, true),
    ...tasks.flatMap((task) => takeBack(d, task, "agent_failed", "AGENT_UNAVAILABLE", `its agent ${agentId} was ${entry.state} too long`)),
    ...requeueAll(moveQueuedCapabilityMessages(d.state, agentId, placement([agentId])), "recipient_lost", d.now)
  ]
}

/** A shut-down agent's grace ran out: its tasks and in-flight messages are requeued, and it is deregistered. */
export const decideShutdownDeadline = (d: Deciding, agentId: string): ReadonlyArray<Event> => {
  const tasks = [...d.state.activeTasks].map((id) => d.state.tasks.get(id)!).filter((task) => task.agent === agentId)
  const taken = new Set(tasks.flatMap((task) => task.message === undefined ? [] : [task.message]))
  const moving = placement([agentId])
  const inFlight = [...d.state.messages.values()]
    .filter((message) => message.to === agentId && message.location === "in_flight" && !taken.has(message.id))
    .map((message) => ({ message, to: reroute(d.state, message, moving) }))
  const deregistered = decideDeregister(d.state, { agent_id: agentId, reason: "shut down: the grace ran out" }, d.now)
  return [
    ...tasks.flatMap((task) => takeBack(d, task, "agent_shutdown", "AGENT_SHUTDOWN", `its agent ${agentId} was shut down`)),
    ...requeueAll(inFlight, "recipient_lost", d.now),
    ...(deregistered._tag === "Accepted" ? deregistered.events : [])
  ]
}
