/**
 * A human's answer, and what it does (PROTOCOLS.md §1 "Human in the loop"):
 * approve, deny, modify (with changed arguments) or defer, with a rationale,
 * on an invocation or on a gateway approval (one queue). With no answer by
 * the deadline, the fallback answers: DENY_BY_DEFAULT, AUTO_DECIDE_THRESHOLD
 * (the subject's own rule: a room's thresholds; anything else is denied) or
 * EXTEND_TIMEOUT (at most 3 times, then deny). A decision acts on its
 * subject here: a task's conflict, a room's escalation, a binding.
 */
import { Either, Schema } from "effect"
import { FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import { PermissionDenied, ValidationError } from "../schema/Errors.js"
import type { Event } from "../schema/Event.js"
import {
  type DecideRequest,
  HitlDecided,
  HitlExtended,
  type InvocationView,
  type InvokeRequest,
  maxExtensions,
  type QueueItem
} from "../schema/Hitl.js"
import type { Json } from "../schema/Json.js"
import { Priority } from "../schema/Scheduler.js"
import { TaskFinished, TaskModified } from "../schema/SchedulerEvents.js"
import { Header, Id } from "../schema/Envelope.js"
import { WorktreeBindRetried, WorktreeBound, WorktreeUnbound } from "../schema/Worktree.js"
import { decideResolveApproval } from "./Approvals.js"
import { later } from "./Deadlines.js"
import { approvalItem, type Deciding, hitlAgent, type Invocation, invocationView, openInvocation } from "./Hitl.js"
import { resolveRoom, roomByThreshold } from "./Negotiation.js"
import { preempt } from "./SchedulerDecide.js"
import { scopesConflict } from "./Scheduler.js"
import { accept, type Decision, refuse } from "./State.js"
import { approveSwitch, returnHome } from "./Worktrees.js"

export const decideInvoke = (d: Deciding, request: InvokeRequest): Decision<InvocationView> => {
  const opened = openInvocation(d, { ...request, subject: { _tag: "Manual" }, context: request.context ?? null })
  const invoked = opened.events[0] as Extract<Event, { readonly _tag: "HitlInvoked" }>
  return accept(opened.events, {
    hitl_id: opened.hitl_id,
    reason: invoked.reason,
    subject: invoked.subject,
    context: invoked.context,
    proposed_actions: invoked.proposed_actions,
    priority: invoked.priority,
    invoked_by: invoked.invoked_by,
    opened_at: d.now,
    deadline: invoked.deadline,
    fallback: invoked.fallback,
    extensions: 0,
    status: "open",
    decision: undefined,
    withdrawn_reason: undefined
  })
}

// ---------------------------------------------------------------------------
// What a decision does to its subject

const TaskChange = Schema.Struct({ priority: Schema.optional(Priority), scope: Schema.optional(Header) })
const Place = Schema.Struct({ repo_id: Id, worktree_id: Id })
const SwitchTerms = Schema.Struct({ ttl_ms: Schema.optional(Schema.Int.pipe(Schema.between(0, 10 * 365 * 24 * 3_600_000))) })
const RoomAnswer = Schema.Struct({ outcome: Schema.Literal("APPROVED", "REVISION_REQUESTED") })

const argsOf = <A, I>(schema: Schema.Schema<A, I>, args: Json | undefined): Either.Either<A, ValidationError> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })(args ?? {}),
    (error) => ValidationError.fromParseError("args", error)
  )

type Final = "approve" | "deny" | "modify"

/**
 * The events an answer makes of its subject, or why the arguments of a
 * `modify` do not fit it. Subjects that moved on since (a task dispatched,
 * an agent unbound) take an answer that changes nothing.
 */
const consequences = (
  d: Deciding,
  invocation: Invocation,
  action: Final,
  args: Json | undefined,
  by: string,
  rationale: string
): Either.Either<ReadonlyArray<Event>, ValidationError> => {
  const subject = invocation.subject
  const none = Either.right<ReadonlyArray<Event>>([])
  switch (subject._tag) {
    case "Manual":
      return none
    case "Task": {
      const task = d.state.tasks.get(subject.task_id)
      if (task === undefined || task.status !== "QUEUED") return action === "modify" ? Either.map(argsOf(TaskChange, args), () => []) : none
      if (action === "deny") {
        return Either.right([TaskFinished.make({ task_id: task.task_id, status: "CANCELLED", reason: `a human said no (${invocation.hitl_id}): ${rationale}`, at: d.now }, true)])
      }
      if (action === "modify") {
        return Either.map(argsOf(TaskChange, args), (change) => [TaskModified.make({ task_id: task.task_id, ...change, at: d.now }, true)])
      }
      // Approved: the tasks in its way are asked to yield to it, whatever their priority.
      const inTheWay = [...d.state.activeTasks]
        .map((id) => d.state.tasks.get(id)!)
        .filter((other) => scopesConflict(task.scope, other.scope) && other.preemption === undefined && other.agent !== undefined)
      return Either.right(inTheWay.flatMap((other) => preempt(d, other, task.task_id, `a human approved ${invocation.hitl_id}: ${rationale}`)))
    }
    case "Room": {
      if (action === "modify") {
        return Either.map(argsOf(RoomAnswer, args), ({ outcome }) => resolveRoom(d, subject.room_id, { outcome, action, by, rationale }))
      }
      return Either.right(resolveRoom(d, subject.room_id, { outcome: action === "approve" ? "APPROVED" : "REVISION_REQUESTED", action, by, rationale }))
    }
    case "WorktreeBind": {
      const binding = d.state.worktrees.get(subject.agent_id)
      const free = binding === undefined || binding.state === "UNBOUND" || binding.state === "BIND_FAILED"
      if (action === "deny") return none
      const place = action === "modify" ? argsOf(Place, args) : Either.right({ repo_id: subject.repo_id, worktree_id: subject.worktree_id })
      return Either.map(place, (where) => free && d.state.agents.get(subject.agent_id)?.registered === true
        ? [WorktreeBound.make({ agent_id: subject.agent_id, ...where, at: d.now }, true)]
        : [])
    }
    case "WorktreeSwitch": {
      const binding = d.state.worktrees.get(subject.agent_id)
      const pending = binding?.state === "SWITCH_PENDING" && binding.pending?.hitl_id === invocation.hitl_id
      if (action === "deny") {
        return Either.right(pending ? returnHome(d, subject.agent_id, "rejected", by, rationale, "answered") : [])
      }
      return Either.map(
        action === "modify" ? argsOf(SwitchTerms, args) : Either.right({ ttl_ms: undefined }),
        (terms) => pending ? approveSwitch(d, subject.agent_id, terms.ttl_ms, by, "answered") : []
      )
    }
    case "WorktreeBindFailed": {
      const binding = d.state.worktrees.get(subject.agent_id)
      const failed = binding?.state === "BIND_FAILED"
      if (action === "deny") {
        return Either.right(failed ? [WorktreeUnbound.make({ agent_id: subject.agent_id, reason: `a human said no (${invocation.hitl_id}): ${rationale}`, at: d.now }, true)] : [])
      }
      if (action === "modify") {
        return Either.map(argsOf(Place, args), (where) => failed ? [WorktreeBound.make({ agent_id: subject.agent_id, ...where, at: d.now }, true)] : [])
      }
      return Either.right(failed ? [WorktreeBindRetried.make({ agent_id: subject.agent_id, reset: true, at: d.now }, true)] : [])
    }
  }
}

const auditDecision = (d: Deciding, invocation: Invocation, decision: string, reason: string) =>
  d.audit({
    agent_id: hitlAgent(invocation.subject, invocation.invoked_by),
    action: `hitl:${invocation.reason}`,
    decision,
    reason: `${invocation.hitl_id}: ${reason}`,
    rule: "human in the loop"
  })

const finalWord = { approve: "approved", deny: "rejected", modify: "modified" } as const

/** An invocation answered: the decision, its audit record, then what it does. */
const answer = (
  d: Deciding,
  invocation: Invocation,
  action: Final,
  fields: { readonly rationale: string; readonly args?: Json | undefined; readonly by: string; readonly automatic: boolean }
): Either.Either<ReadonlyArray<Event>, ValidationError> =>
  Either.map(consequences(d, invocation, action, fields.args, fields.by, fields.rationale), (events) => [
    HitlDecided.make({ hitl_id: invocation.hitl_id, action, rationale: fields.rationale, args: fields.args, by: fields.by, automatic: fields.automatic, at: d.now }, true),
    auditDecision(d, invocation, fields.automatic ? "timed_out" : finalWord[action], `${action} by ${fields.by}: ${fields.rationale}`),
    ...events
  ])

export type DecideError = NotFound | FailedPrecondition | ValidationError | PermissionDenied

/** A human's decision on an item of the queue: an invocation, or a gateway approval (approve or deny only). */
export const decideHitl = (d: Deciding, request: DecideRequest): Decision<QueueItem | InvocationView, DecideError> => {
  const by = request.by ?? "operator"
  const invocation = d.state.hitl.get(request.id)
  if (invocation === undefined) {
    if (!d.state.approvals.has(request.id)) return refuse(new NotFound({ what: "hitl invocation or approval", id: request.id }))
    if (request.action === "modify" || request.action === "defer") {
      return refuse(new FailedPrecondition({ reason: `${request.id} is a gateway approval: approve or deny it` }))
    }
    const resolved = decideResolveApproval(d.state, {
      approval_id: request.id,
      outcome: request.action === "approve" ? "approved" : "rejected",
      by,
      note: request.rationale
    }, d.now)
    if (resolved._tag === "Refused") {
      const error = resolved.error
      return refuse(error._tag === "ValidationError" ? new FailedPrecondition({ reason: error.message }) : error, resolved.events)
    }
    return accept(resolved.events, approvalItem(resolved.value))
  }
  if (invocation.status !== "open") {
    return refuse(new FailedPrecondition({ reason: `${invocation.hitl_id} is ${invocation.status}` }))
  }
  // At its deadline the fallback answers, even if the tick that records it has not run yet.
  if (d.now >= invocation.deadline) return refuse(new FailedPrecondition({ reason: `${invocation.hitl_id} timed out` }))
  const view = invocationView(invocation)
  if (request.action === "defer") {
    if (invocation.extensions >= maxExtensions) {
      return refuse(new FailedPrecondition({ reason: `${invocation.hitl_id} was extended ${maxExtensions} times: it must be decided` }))
    }
    const deadline = later(invocation.deadline, invocation.window)
    return accept([
      HitlExtended.make({ hitl_id: invocation.hitl_id, deadline, cause: "deferred", by, rationale: request.rationale, at: d.now }, true),
      auditDecision(d, invocation, "deferred", `deferred by ${by}: ${request.rationale}`)
    ], { ...view, deadline, extensions: view.extensions + 1 })
  }
  if (request.action === "modify" && request.args === undefined) {
    return refuse(ValidationError.single("decision", "args", "a modify must carry the changed arguments"))
  }
  const decided = answer(d, invocation, request.action, { rationale: request.rationale, args: request.args, by, automatic: false })
  if (Either.isLeft(decided)) return refuse(decided.left)
  return accept(decided.right, {
    ...view,
    status: "decided",
    decision: { action: request.action, rationale: request.rationale, args: request.args, by, automatic: false, at: d.now }
  })
}

/** Nobody answered by the deadline: the invocation's fallback does. */
export const decideHitlDeadline = (d: Deciding, hitlId: string): ReadonlyArray<Event> => {
  const invocation = d.state.hitl.get(hitlId)!
  const auto = (action: "approve" | "deny", rationale: string) => {
    const decided = answer(d, invocation, action, { rationale, by: "fallback", automatic: true })
    return Either.isRight(decided) ? decided.right : []
  }
  switch (invocation.fallback) {
    case "DENY_BY_DEFAULT":
      return auto("deny", "no human answered in time: denied by default")
    case "AUTO_DECIDE_THRESHOLD": {
      if (invocation.subject._tag !== "Room") return auto("deny", "no human answered in time, and no rule decides this subject: denied")
      return roomByThreshold(d.state, invocation.subject.room_id) === "APPROVED"
        ? auto("approve", "no human answered in time: the room's approval thresholds are met")
        : auto("deny", "no human answered in time: the room's approval thresholds are not met")
    }
    case "EXTEND_TIMEOUT": {
      if (invocation.extensions >= maxExtensions) return auto("deny", `no human answered in ${maxExtensions + 1} windows: denied`)
      return [
        HitlExtended.make({
          hitl_id: hitlId,
          deadline: later(d.now, invocation.window),
          cause: "extend_timeout",
          by: "fallback",
          rationale: "no human answered in time: extended",
          at: d.now
        }, true),
        auditDecision(d, invocation, "extended", "no human answered in time: extended")
      ]
    }
  }
}
