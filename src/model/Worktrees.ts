/**
 * Worktree bindings (PROTOCOLS.md §1 "Coordination"): which repository and
 * worktree each agent works in. Five states: UNBOUND, BOUND_HOME,
 * SWITCH_PENDING, BOUND_NON_HOME (for a TTL) and BIND_FAILED. A rejected or
 * timed-out switch, the TTL's end and a revoke return the agent home; a home
 * binding that fails is tried again at most 3 times, then a human is asked
 * after `bindEscalateAfterMs`. The gateway's policies decide which
 * repositories an agent may bind (the tool `worktree.bind`, with args
 * `repo_id` and `worktree_id`; with no rule for it, not even `*`, binding
 * is open): deny refuses, pending asks a human. An
 * envelope naming another worktree than its recipient's binding is refused
 * (`bindingMismatch`, checked by the router's send).
 */
import type { Envelope } from "../schema/Envelope.js"
import { FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import { NoRoute, PermissionDenied, ValidationError } from "../schema/Errors.js"
import type { Event } from "../schema/Event.js"
import {
  type BindFailure,
  type BindingPage,
  type BindingsFilter,
  type BindRequest,
  headerValue,
  type SwitchApprove,
  type SwitchReject,
  type SwitchRequest,
  WorktreeBindFailed,
  WorktreeBindRetried,
  WorktreeBound,
  WorktreeReturnedHome,
  type WorktreeState,
  type WorktreeStatus,
  WorktreeSwitchApproved,
  WorktreeSwitchRequested,
  WorktreeUnbound
} from "../schema/Worktree.js"
import { bindTool, evaluateAction, modeOf } from "./Checks.js"
import { later } from "./Deadlines.js"
import { blockedReason } from "./Governance.js"
import { type Deciding, isOpen, openInvocation, withdrawInvocation } from "./Hitl.js"
import { bestEffortNotice } from "./Notices.js"
import { accept, type Decision, pageOf, refuse, type RuntimeState, type Slice, sortedRecord } from "./State.js"

export interface Place {
  readonly repo_id: string
  readonly worktree_id: string
}

export interface Binding {
  state: WorktreeState
  home: Place | undefined
  /** Where the agent works now: its home, or the target of an approved switch. */
  current: Place | undefined
  pending:
    | { readonly repo_id: string; readonly worktree_id: string; readonly requested_at: number; readonly deadline: number | undefined; readonly hitl_id: string | undefined }
    | undefined
  ttlDeadline: number | undefined
  failures: number
  lastError: string | undefined
  retryAt: number | undefined
  escalateAt: number | undefined
  /** An open invocation about the home binding: a bind the policy sent to a human, a failed bind escalated. */
  hitl: string | undefined
  /** The next time something happens on its own (TTL, switch timeout, retry, escalation): the timer's key. */
  deadline: number | undefined
}

export interface WorktreesState {
  readonly worktrees: Map<string, Binding>
  /** Worktree events so far: numbers the runtime's WORKTREE_CONTROL notices. */
  worktreeEvents: number
}

/** The most times a failed home binding is tried again before a human is asked. */
export const maxBindRetries = 3

const unbound = (): Binding => ({
  state: "UNBOUND",
  home: undefined,
  current: undefined,
  pending: undefined,
  ttlDeadline: undefined,
  failures: 0,
  lastError: undefined,
  retryAt: undefined,
  escalateAt: undefined,
  hitl: undefined,
  deadline: undefined
})

export const worktreeStatus = (state: RuntimeState, agentId: string): WorktreeStatus => {
  const binding = state.worktrees.get(agentId) ?? unbound()
  const pending = binding.pending
  return {
    agent_id: agentId,
    state: binding.state,
    repo_id: binding.current?.repo_id ?? "",
    worktree_id: binding.current?.worktree_id ?? "",
    home: binding.home === undefined ? undefined : { ...binding.home },
    pending: pending === undefined ? undefined : {
      repo_id: pending.repo_id,
      worktree_id: pending.worktree_id,
      requested_at: pending.requested_at,
      // A switch a human is asked about waits as long as the human may take.
      deadline: pending.deadline ?? state.hitl.get(pending.hitl_id ?? "")?.deadline ?? pending.requested_at,
      hitl_id: pending.hitl_id
    },
    ttl_deadline: binding.ttlDeadline,
    failures: binding.failures,
    last_error: binding.lastError,
    retry_at: binding.retryAt,
    escalate_at: binding.escalateAt,
    hitl_id: isOpen(state, binding.hitl) ? binding.hitl : undefined
  }
}

/** A page of the bindings, agents in the order first bound, by state or of one agent. */
export const selectBindings = (state: RuntimeState, filter: BindingsFilter): BindingPage => {
  const { entries, next } = pageOf(state.worktrees, filter, (binding, agentId) =>
    (filter.state === undefined || binding.state === filter.state) && (filter.agent_id === undefined || agentId === filter.agent_id))
  return { bindings: entries.map(([agentId]) => worktreeStatus(state, agentId)), next }
}

const where = (place: Place | undefined) => place === undefined ? "no worktree" : `${place.repo_id}/${place.worktree_id}`

// ---------------------------------------------------------------------------
// The policy hook

/**
 * The gateway's word on binding a worktree: the kill switch, then the
 * agent's enforcement mode and the policies (tool `worktree.bind`), audited
 * in the decision's chain. Unlike a tool call, a pending verdict opens no
 * gateway approval: the caller asks a human through the HITL queue instead.
 */
export const checkBind = (d: Deciding, agentId: string, place: Place, what: string) => {
  const action = { kind: "tool_call" as const, agent_id: agentId, tool: bindTool, args: { ...place } }
  const record = (decision: "allow" | "deny" | "pending", reason: string, rule: string, dry_run = false) => ({
    verdict: decision,
    reason,
    events: [d.audit({ agent_id: agentId, action: `worktree.${what}:${place.repo_id}/${place.worktree_id}`, decision, reason, rule, dry_run })]
  })
  const blocked = blockedReason(d.state, agentId)
  if (blocked !== undefined) return record("deny", blocked, "kill switch")
  const mode = modeOf(d.state, agentId)
  if (mode === undefined) return record("deny", `unknown agent ${agentId}: fails closed`, "registry")
  if (mode === "disabled") return record("allow", "enforcement disabled: not evaluated", "enforcement mode")
  const evaluated = evaluateAction(d.state, action, d.now)
  // Unlike a tool, a worktree is open when no policy speaks of it (a `*` rule does).
  if (evaluated.rule === "default: no rule covers this tool") {
    return record("allow", "no applicable policy restricts worktrees", "default: no policy governs worktrees")
  }
  if (mode === "observe") return record("allow", evaluated.reason, evaluated.rule, true)
  return record(evaluated.decision === "redact" ? "allow" : evaluated.decision, evaluated.reason, evaluated.rule)
}

/** A WORKTREE_CONTROL envelope telling the agent where it works now. */
const notify = (d: Deciding, agentId: string, payload: Record<string, string | number | undefined>): ReadonlyArray<Event> =>
  bestEffortNotice(d.state, d.config, {
    to: agentId,
    message_id: `worktree-${d.state.worktreeEvents + 1}`,
    message_type: "WORKTREE_CONTROL",
    correlation_id: agentId,
    payload: Object.fromEntries(Object.entries(payload).filter(([, value]) => value !== undefined)) as Record<string, string | number>
  }, d.now)

// ---------------------------------------------------------------------------
// Decisions

/**
 * A command's own answer: the invocation it opened, if a human is asked.
 * The agent's status after it is read once its events are applied.
 */
type Answer = { readonly hitl_id?: string | undefined }

export const decideBind = (
  d: Deciding,
  request: BindRequest
): Decision<Answer, NoRoute | PermissionDenied | FailedPrecondition> => {
  const agent = d.state.agents.get(request.agent_id)
  if (agent === undefined || !agent.registered) return refuse(new NoRoute({ to: request.agent_id }))
  const binding = d.state.worktrees.get(request.agent_id)
  const place = { repo_id: request.repo_id, worktree_id: request.worktree_id }
  const status = (hitl_id?: string) => ({ hitl_id })
  if (binding !== undefined && binding.state === "BOUND_HOME" && where(binding.home) === where(place)) {
    // Binding again where it is: a confirmation, which clears the failures of a retried bind.
    return binding.failures === 0 ? accept([], status()) : accept([WorktreeBound.make({ agent_id: request.agent_id, ...place, at: d.now }, true)], status())
  }
  if (binding !== undefined && binding.state !== "UNBOUND" && binding.state !== "BIND_FAILED") {
    return refuse(new FailedPrecondition({ reason: `${request.agent_id} is ${binding.state} at ${where(binding.current)}: unbind it first` }))
  }
  if (binding !== undefined && isOpen(d.state, binding.hitl)) {
    return refuse(new FailedPrecondition({ reason: `a human is asked about ${request.agent_id}'s binding already (${binding.hitl})` }))
  }
  const checked = checkBind(d, request.agent_id, place, "bind")
  if (checked.verdict === "deny") return refuse(new PermissionDenied({ reason: checked.reason }), checked.events)
  if (checked.verdict === "pending") {
    const opened = openInvocation(d, {
      reason: "WORKTREE_OVERRIDE",
      subject: { _tag: "WorktreeBind", agent_id: request.agent_id, ...place },
      context: { agent_id: request.agent_id, ...place, policy: checked.reason },
      proposed_actions: ["approve: bind", "modify: bind to { repo_id, worktree_id }", "deny: stay unbound"],
      invoked_by: request.agent_id
    })
    return accept([...checked.events, ...opened.events], status(opened.hitl_id))
  }
  return accept([...checked.events, WorktreeBound.make({ agent_id: request.agent_id, ...place, at: d.now }, true)], status())
}

export const decideUnbind = (d: Deciding, request: SwitchReject): Decision<Answer> => {
  const binding = d.state.worktrees.get(request.agent_id)
  if (binding === undefined || binding.state === "UNBOUND") return accept([], {})
  return accept([
    ...withdrawInvocation(d, binding.hitl, "the agent was unbound"),
    ...withdrawInvocation(d, binding.pending?.hitl_id, "the agent was unbound"),
    WorktreeUnbound.make({ agent_id: request.agent_id, reason: request.reason ?? `unbound by ${request.by ?? "the agent"}`, at: d.now }, true)
  ], {})
}

export const decideRequestSwitch = (
  d: Deciding,
  request: SwitchRequest
): Decision<Answer, PermissionDenied | FailedPrecondition> => {
  const binding = d.state.worktrees.get(request.agent_id)
  if (binding === undefined || (binding.state !== "BOUND_HOME" && binding.state !== "BOUND_NON_HOME")) {
    return refuse(new FailedPrecondition({
      reason: `${request.agent_id} is ${binding?.state ?? "UNBOUND"}: only a bound agent may switch`
    }))
  }
  const place = { repo_id: request.repo_id ?? binding.current!.repo_id, worktree_id: request.target_worktree_id }
  if (where(place) === where(binding.current)) {
    return refuse(new FailedPrecondition({ reason: `${request.agent_id} works in ${where(place)} already` }))
  }
  const checked = checkBind(d, request.agent_id, place, "switch")
  if (checked.verdict === "deny") return refuse(new PermissionDenied({ reason: checked.reason }), checked.events)
  const human = checked.verdict === "pending" || request.requires_hitl === true
  const opened = human
    ? openInvocation(d, {
      reason: "WORKTREE_OVERRIDE",
      subject: { _tag: "WorktreeSwitch", agent_id: request.agent_id },
      context: { agent_id: request.agent_id, from: { ...binding.current! }, to: place, policy: checked.reason },
      proposed_actions: ["approve: switch (args may give ttl_ms)", "deny: stay"],
      invoked_by: request.agent_id
    })
    : undefined
  const requested = WorktreeSwitchRequested.make({
    agent_id: request.agent_id,
    ...place,
    deadline: opened === undefined ? later(d.now, d.config.hitlTimeoutMs) : d.state.hitl.get(opened.hitl_id)?.deadline ?? later(d.now, d.config.hitlTimeoutMs),
    hitl_id: opened?.hitl_id,
    at: d.now
  }, true)
  return accept([...checked.events, ...(opened?.events ?? []), requested], { hitl_id: opened?.hitl_id })
}

const pendingSwitch = (d: Deciding, agentId: string) => {
  const binding = d.state.worktrees.get(agentId)
  return binding !== undefined && binding.state === "SWITCH_PENDING" && binding.pending !== undefined ? binding : undefined
}

export const decideApproveSwitch = (d: Deciding, request: SwitchApprove): Decision<Answer, FailedPrecondition> => {
  const binding = pendingSwitch(d, request.agent_id)
  if (binding === undefined) return refuse(new FailedPrecondition({ reason: `${request.agent_id} has no switch pending` }))
  const pending = binding.pending!
  if (request.target_worktree_id !== undefined && request.target_worktree_id !== pending.worktree_id) {
    return refuse(new FailedPrecondition({ reason: `${request.agent_id}'s pending switch is to ${pending.worktree_id}, not ${request.target_worktree_id}` }))
  }
  return accept(approveSwitch(d, request.agent_id, request.ttl_ms, request.by ?? "operator", "answered through the worktree service"), {})
}

/** A pending switch approved: away from home until the TTL's end. */
export const approveSwitch = (d: Deciding, agentId: string, ttlMs: number | undefined, by: string, withdrawal: string): ReadonlyArray<Event> => {
  const pending = d.state.worktrees.get(agentId)!.pending!
  const ttl_deadline = later(d.now, ttlMs === undefined || ttlMs === 0 ? d.config.worktreeTtlMs : ttlMs)
  return [
    ...withdrawInvocation(d, pending.hitl_id, withdrawal),
    WorktreeSwitchApproved.make({ agent_id: agentId, ttl_deadline, by, at: d.now }, true),
    ...notify(d, agentId, { type: "switched", repo_id: pending.repo_id, worktree_id: pending.worktree_id, ttl_deadline })
  ]
}

/** Back home, for `reason`. */
export const returnHome = (
  d: Deciding,
  agentId: string,
  reason: WorktreeReturnedHome["reason"],
  by: string | undefined,
  note: string | undefined,
  withdrawal = "the switch was answered through the worktree service"
): ReadonlyArray<Event> => {
  const binding = d.state.worktrees.get(agentId)!
  return [
    ...withdrawInvocation(d, binding.pending?.hitl_id, withdrawal),
    WorktreeReturnedHome.make({ agent_id: agentId, reason, by, note, at: d.now }, true),
    ...notify(d, agentId, { type: "home", reason, repo_id: binding.home?.repo_id, worktree_id: binding.home?.worktree_id })
  ]
}

export const decideRejectSwitch = (d: Deciding, request: SwitchReject): Decision<Answer, FailedPrecondition> => {
  if (pendingSwitch(d, request.agent_id) === undefined) {
    return refuse(new FailedPrecondition({ reason: `${request.agent_id} has no switch pending` }))
  }
  return accept(returnHome(d, request.agent_id, "rejected", request.by ?? "operator", request.reason), {})
}

export const decideRevoke = (d: Deciding, request: SwitchReject): Decision<Answer, FailedPrecondition> => {
  const binding = d.state.worktrees.get(request.agent_id)
  if (binding === undefined || (binding.state !== "BOUND_NON_HOME" && binding.state !== "SWITCH_PENDING")) {
    return refuse(new FailedPrecondition({ reason: `${request.agent_id} is ${binding?.state ?? "UNBOUND"}: nothing to revoke` }))
  }
  return accept(returnHome(d, request.agent_id, "revoked", request.by ?? "operator", request.reason), {})
}

export const decideBindFailure = (d: Deciding, request: BindFailure): Decision<Answer, FailedPrecondition | NotFound> => {
  const binding = d.state.worktrees.get(request.agent_id)
  const status = () => ({})
  if (binding === undefined || binding.state === "UNBOUND") return refuse(new NotFound({ what: "binding of", id: request.agent_id }))
  switch (binding.state) {
    case "BIND_FAILED":
      // Failed already: it is being retried or escalated; the report changes nothing.
      return accept([], status())
    case "BOUND_NON_HOME":
      return accept(returnHome(d, request.agent_id, "bind_failed", undefined, request.reason), status())
    case "SWITCH_PENDING":
      return refuse(new FailedPrecondition({ reason: `${request.agent_id} waits for a switch: it works at home until then` }))
    case "BOUND_HOME": {
      const failures = binding.failures + 1
      return accept([
        WorktreeBindFailed.make({
          agent_id: request.agent_id,
          reason: request.reason,
          failures,
          retry_at: failures <= maxBindRetries ? later(d.now, d.config.bindRetryDelayMs) : undefined,
          escalate_at: failures > maxBindRetries ? later(d.now, d.config.bindEscalateAfterMs) : undefined,
          at: d.now
        }, true)
      ], status())
    }
  }
}

/** What the binding's deadline calls for: the TTL's end, a switch nobody answered, a retry, an escalation. */
export const decideWorktreeDeadline = (d: Deciding, agentId: string): ReadonlyArray<Event> => {
  const binding = d.state.worktrees.get(agentId)!
  switch (binding.state) {
    case "BOUND_NON_HOME":
      return returnHome(d, agentId, "ttl_expired", undefined, undefined)
    case "SWITCH_PENDING":
      return returnHome(d, agentId, "switch_timed_out", undefined, undefined)
    case "BIND_FAILED": {
      if (binding.retryAt !== undefined) {
        return [
          WorktreeBindRetried.make({ agent_id: agentId, reset: false, at: d.now }, true),
          ...notify(d, agentId, { type: "bind", repo_id: binding.home?.repo_id, worktree_id: binding.home?.worktree_id, attempt: binding.failures + 1 })
        ]
      }
      return openInvocation(d, {
        reason: "WORKTREE_OVERRIDE",
        subject: { _tag: "WorktreeBindFailed", agent_id: agentId },
        context: { agent_id: agentId, home: binding.home === undefined ? null : { ...binding.home }, failures: binding.failures, last_error: binding.lastError ?? "" },
        proposed_actions: ["approve: try again", "modify: bind to { repo_id, worktree_id }", "deny: unbind"],
        invoked_by: agentId
      }).events
    }
    default:
      return []
  }
}

/**
 * An envelope carrying `repo_id`/`worktree_id` that names another worktree
 * than its recipient works in is refused (PROTOCOLS.md §1): the note says
 * which. A recipient never bound takes any; one whose binding failed takes
 * none that names a worktree. An empty header is no header (protobuf's default).
 */
export const bindingMismatch = (state: RuntimeState, to: string, envelope: Envelope): ValidationError | undefined => {
  const repo = headerValue(envelope.repo_id)
  const worktree = headerValue(envelope.worktree_id)
  if (repo === undefined && worktree === undefined) return undefined
  const binding = state.worktrees.get(to)
  if (binding === undefined || binding.state === "UNBOUND") return undefined
  const current = binding.state === "BIND_FAILED" ? undefined : binding.current
  const path = repo !== undefined && repo !== current?.repo_id ? "repo_id" : "worktree_id"
  if (current !== undefined && (repo === undefined || repo === current.repo_id) && (worktree === undefined || worktree === current.worktree_id)) {
    return undefined
  }
  return ValidationError.single(
    "envelope",
    path,
    `names ${repo ?? "?"}/${worktree ?? "?"}, but ${to} is ${binding.state} at ${where(current)}`
  )
}

// ---------------------------------------------------------------------------
// Evolve

const of = (state: RuntimeState, agentId: string) => {
  let binding = state.worktrees.get(agentId)
  if (binding === undefined) state.worktrees.set(agentId, binding = unbound())
  return binding
}

/** The binding's next timed step, from its state. */
const timeNext = (binding: Binding) => {
  binding.deadline = binding.state === "BOUND_NON_HOME"
    ? binding.ttlDeadline
    : binding.state === "SWITCH_PENDING"
    ? binding.pending?.deadline
    : binding.state === "BIND_FAILED"
    ? binding.retryAt ?? binding.escalateAt
    : undefined
}

const goHome = (binding: Binding) => {
  binding.state = "BOUND_HOME"
  binding.current = binding.home
  binding.pending = undefined
  binding.ttlDeadline = undefined
}

/** A worktree event's change to one binding, then its next timed step; every such event numbers the next notice. */
const step = <E extends { readonly agent_id: string }>(change: (binding: Binding, event: E) => void) =>
(state: RuntimeState, event: E) => {
  const binding = of(state, event.agent_id)
  change(binding, event)
  timeNext(binding)
  state.worktreeEvents++
}

export const worktreesSlice: Slice<WorktreesState> = {
  initial: () => ({ worktrees: new Map(), worktreeEvents: 0 }),
  evolve: {
    WorktreeBound: step((binding, event) => {
      Object.assign(binding, unbound(), { state: "BOUND_HOME", home: { repo_id: event.repo_id, worktree_id: event.worktree_id } })
      binding.current = binding.home
    }),
    WorktreeUnbound: step((binding) => {
      Object.assign(binding, unbound())
    }),
    WorktreeSwitchRequested: step((binding, event) => {
      binding.state = "SWITCH_PENDING"
      // Asked from away, it waits at home: the old switch's TTL is over.
      binding.current = binding.home
      binding.ttlDeadline = undefined
      binding.pending = {
        repo_id: event.repo_id,
        worktree_id: event.worktree_id,
        requested_at: event.at,
        // A human's question keeps its own deadline and fallback.
        deadline: event.hitl_id === undefined ? event.deadline : undefined,
        hitl_id: event.hitl_id
      }
    }),
    WorktreeSwitchApproved: step((binding, event) => {
      const pending = binding.pending
      if (pending === undefined) return
      binding.state = "BOUND_NON_HOME"
      binding.current = { repo_id: pending.repo_id, worktree_id: pending.worktree_id }
      binding.pending = undefined
      binding.ttlDeadline = event.ttl_deadline
    }),
    WorktreeReturnedHome: step((binding) => goHome(binding)),
    WorktreeBindFailed: step((binding, event) => {
      binding.state = "BIND_FAILED"
      binding.current = undefined
      binding.failures = event.failures
      binding.lastError = event.reason
      binding.retryAt = event.retry_at
      binding.escalateAt = event.escalate_at
    }),
    WorktreeBindRetried: step((binding, event) => {
      goHome(binding)
      binding.retryAt = undefined
      binding.escalateAt = undefined
      if (event.reset) binding.failures = 0
    }),
    HitlInvoked: (state, event) => {
      const subject = event.subject
      if (subject._tag !== "WorktreeBind" && subject._tag !== "WorktreeBindFailed") return
      const binding = of(state, subject.agent_id)
      binding.hitl = event.hitl_id
      // Escalated: the human's deadline and fallback govern from now on.
      if (subject._tag === "WorktreeBindFailed") binding.escalateAt = undefined
      timeNext(binding)
    }
  },
  // Not in the runtime's snapshot, whose shape the HTTP API serves: `coordinationSnapshot` has it.
  snapshot: () => ({})
}

export const worktreesSnapshot = (state: RuntimeState) => ({
  worktrees: sortedRecord([...state.worktrees.keys()].map((id) => [id, id] as const), (id) => worktreeStatus(state, id))
})
