/**
 * The gateway as pure rules (PROTOCOLS.md §2, and the leases and budgets of
 * §3): what an agent may do, decided from the policies, the kill switch,
 * approvals, budgets and leases, with every decision sealed into the audit
 * chain. Like the router, `decide*` only reads, `evolve` updates in place.
 *
 * What the gateway needs to know of agents (team, lineage, enforcement mode)
 * comes through a `GatewayView`, so this module does not depend on the
 * registry's state.
 */
import { Either } from "effect"
import type { EnforcementMode } from "../schema/Agent.js"
import type { AuditContext, AuditRecord } from "../schema/Audit.js"
import type { Event } from "../schema/Event.js"
import {
  BudgetExhausted,
  LeaseExpired,
  LeaseSubsetViolation,
  PermissionDenied,
  ValidationError
} from "../schema/Errors.js"
import {
  AgentKilled,
  AgentResumed,
  AgentSuspended,
  ApprovalOpened,
  ApprovalResolved,
  ApprovalUsed,
  AuditRecorded,
  BudgetCharged,
  BudgetExhaustedRecorded,
  type GatedAction,
  type GatewayEvent,
  GatewayHalted,
  GatewayUnhalted,
  LeaseGranted,
  PolicyLoaded,
  PolicyRemoved
} from "../schema/GatewayEvents.js"
import type { Lease, LeaseNamespace } from "../schema/Lease.js"
import type { PolicyDocument } from "../schema/Policy.js"
import { canonicalJson, chainHash, GENESIS_HASH } from "./Audit.js"
import { Deadlines } from "./Deadlines.js"
import { Deque } from "./Deque.js"
import { budgetKey, chargeAll, isExhaustion } from "./Budgets.js"
import { checkDelegation, checkLease } from "./Leases.js"
import { type Action, type CompiledPolicy, compilePolicy, coversAgent, evaluate, type Verdict } from "./Policy.js"

// ---------------------------------------------------------------------------
// State

export type ApprovalStatus = "open" | "approved" | "rejected" | "timed_out" | "used"

export interface Approval {
  readonly approval_id: string
  readonly action: GatedAction
  readonly reason: string
  readonly rule: string
  readonly opened_at: number
  readonly expires_at: number
  /** Paths of the args to redact once approved, as the policy asked. */
  readonly redact: ReadonlyArray<string> | undefined
  status: ApprovalStatus
  resolved_at: number | undefined
  by: string | undefined
  note: string | undefined
}

export interface GatewayState {
  readonly policies: Map<string, { readonly document: PolicyDocument; readonly version: number }>
  /** The policies in load order, compiled once for evaluation. */
  policyList: ReadonlyArray<CompiledPolicy>
  readonly approvals: Map<string, Approval>
  readonly approvalDeadlines: Deadlines<"approval">
  /** Agent id → why it is suspended. */
  readonly suspended: Map<string, string>
  readonly killed: Set<string>
  /** Why everything is halted; undefined when it is not. */
  halted: string | undefined
  /** Budget counters by `budgetKey(scope, id, currency)`. */
  readonly spent: Map<string, number>
  readonly leases: Map<string, Lease>
  /** The hash of the last audit record: the next one chains to it. */
  auditHead: string
  audits: number
  /** Allowed calls per `agent, tool` within the last hour, oldest first, for `limit_per_hour`. */
  readonly toolCalls: Map<string, Deque<number>>
}

export const initialGatewayState = (): GatewayState => ({
  policies: new Map(),
  policyList: [],
  approvals: new Map(),
  approvalDeadlines: new Deadlines(),
  suspended: new Map(),
  killed: new Set(),
  halted: undefined,
  spent: new Map(),
  leases: new Map(),
  auditHead: GENESIS_HASH,
  audits: 0,
  toolCalls: new Map()
})

/** What the gateway reads of the registry. */
export interface GatewayView {
  readonly teamOf: (agentId: string) => string | undefined
  /** Undefined for an agent the registry does not know. */
  readonly modeOf: (agentId: string) => EnforcementMode | undefined
  readonly lineageOf: (agentId: string) => ReadonlyArray<string>
}

const hour = 3_600_000

const toolCallKey = (agentId: string, tool: string) => `${agentId}\u0000${tool}`

// ---------------------------------------------------------------------------
// The audit chain

/** Optional context of a decision, carried into its audit record. */
export type { AuditContext }

/**
 * Seals audit records in order during one decision: each chains to the one
 * before it, the first to the state's head.
 */
const auditor = (gateway: GatewayState, view: GatewayView, now: number) => {
  let head = gateway.auditHead
  return (
    fields: Omit<AuditRecord, "hash" | "prev_hash" | "at" | "lineage" | "dry_run"> & {
      readonly dry_run?: boolean
      readonly context?: AuditContext | undefined
    }
  ): AuditRecorded => {
    // Field by field rather than by spreads: this runs for every decision.
    const context = fields.context
    const record: { -readonly [K in keyof AuditRecord]: AuditRecord[K] } = {
      agent_id: fields.agent_id,
      action: fields.action,
      decision: fields.decision,
      reason: fields.reason,
      lineage: [...view.lineageOf(fields.agent_id)],
      dry_run: fields.dry_run ?? false,
      at: now,
      prev_hash: head,
      hash: ""
    }
    if (fields.rule !== undefined) record.rule = fields.rule
    if (fields.shadow_decision !== undefined) record.shadow_decision = fields.shadow_decision
    const traceId = context?.trace_id ?? fields.trace_id
    if (traceId !== undefined) record.trace_id = traceId
    const spanId = context?.span_id ?? fields.span_id
    if (spanId !== undefined) record.span_id = spanId
    const callStack = context?.call_stack ?? fields.call_stack
    if (callStack !== undefined) record.call_stack = callStack
    // Sealed in place: `chainHash` leaves out both hash fields.
    record.hash = head = chainHash(head, record)
    return { _tag: "AuditRecorded", record }
  }
}

/** The failure of a decision that must still be recorded: the events go to the log, the error to the caller. */
export class Refusal<E> {
  constructor(readonly error: E, readonly events: ReadonlyArray<Event>) {}
}

// ---------------------------------------------------------------------------
// Policies

export const decideLoadPolicy = (
  gateway: GatewayState,
  document: PolicyDocument,
  source: string,
  now: number
): ReadonlyArray<GatewayEvent> => [
  PolicyLoaded.make({
    document,
    version: (gateway.policies.get(document.id)?.version ?? 0) + 1,
    source,
    at: now
  }, true)
]

export const decideRemovePolicy = (
  gateway: GatewayState,
  policyId: string,
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, ValidationError> =>
  gateway.policies.has(policyId)
    ? Either.right([PolicyRemoved.make({ policy_id: policyId, at: now }, true)])
    : Either.left(ValidationError.single("policy", "id", `no policy ${policyId}`))

// ---------------------------------------------------------------------------
// Checking an action

/** Why the kill switch stops an agent, if it does. */
export const blockedReason = (gateway: GatewayState, agentId: string): string | undefined =>
  gateway.halted !== undefined
    ? `all agents are halted: ${gateway.halted}`
    : gateway.killed.has(agentId)
    ? `agent ${agentId} was killed`
    : gateway.suspended.has(agentId)
    ? `agent ${agentId} is suspended: ${gateway.suspended.get(agentId)}`
    : undefined

export interface GatewayDecision {
  /** What is applied: in observe mode always allow. */
  readonly decision: Verdict
  readonly reason: string
  readonly rule: string
  /** In observe mode, what enforce would have decided. */
  readonly shadow_decision?: Verdict | undefined
  readonly dry_run: boolean
  /** Set when the decision is pending: a human must approve or reject it. */
  readonly approval_id?: string | undefined
  readonly redact?: ReadonlyArray<string> | undefined
}

export const actionLabel = (action: Action): string => {
  switch (action.kind) {
    case "tool_call":
      return `tool_call:${action.tool}`
    case "message":
      return `message:${action.to}:${action.message_type}`
    case "network":
      return `network:${action.host}`
    case "llm_call":
      return `llm_call:${action.model}`
  }
}

const callsInLastHour = (gateway: GatewayState, agentId: string, now: number) => (tool: string) => {
  const calls = gateway.toolCalls.get(toolCallKey(agentId, tool))
  if (calls === undefined) return 0
  let recent = calls.length
  for (let i = 0; i < calls.length && calls.at(i) <= now - hour; i++) recent--
  return recent
}

/**
 * Evaluates the policies alone, as enforce mode would (no kill switch, no
 * audit). `counted`: the call was counted against hourly limits already (an
 * approved one, counted when approved), so the limits do not count it again.
 */
export const evaluateAction = (gateway: GatewayState, view: GatewayView, action: Action, now: number, counted = false) =>
  evaluate(gateway.policyList, action, {
    agent: { agent_id: action.agent_id, team_id: view.teamOf(action.agent_id) },
    // A recipient the registry does not know is left out: its team is then unknown, and rules needing it fail closed.
    ...(action.kind === "message" && view.modeOf(action.to) !== undefined
      ? { recipient: { agent_id: action.to, team_id: view.teamOf(action.to) } }
      : {}),
    callsInLastHour: counted ? () => 0 : callsInLastHour(gateway, action.agent_id, now)
  })

/**
 * The gateway's decision on an action, and the events recording it. The kill
 * switch comes first, in every mode. Then by the agent's enforcement mode:
 * `disabled` evaluates nothing (audited as such); `observe` applies allow and
 * audits the shadow decision; `enforce` applies the decision, failing closed
 * for an agent the registry does not know, and opens an approval when it is
 * pending.
 */
export const decideCheck = (
  gateway: GatewayState,
  view: GatewayView,
  action: Action,
  now: number,
  context?: AuditContext
): { readonly decision: GatewayDecision; readonly events: ReadonlyArray<GatewayEvent> } => {
  const audit = auditor(gateway, view, now)
  // Field by field rather than spread from a common base: this runs for every check.
  const agent_id = action.agent_id
  const label = actionLabel(action)
  const blocked = blockedReason(gateway, action.agent_id)
  if (blocked !== undefined) {
    const decision: GatewayDecision = { decision: "deny", reason: blocked, rule: "kill switch", dry_run: false }
    return { decision, events: [audit({ agent_id, action: label, context, decision: "deny", reason: blocked, rule: "kill switch" })] }
  }
  const mode = view.modeOf(action.agent_id)
  if (mode === "disabled") {
    const reason = "enforcement disabled: not evaluated"
    const decision: GatewayDecision = { decision: "allow", reason, rule: "enforcement mode", dry_run: false }
    return { decision, events: [audit({ agent_id, action: label, context, decision: "allow", reason, rule: "enforcement mode" })] }
  }
  if (mode === undefined) {
    const reason = `unknown agent ${action.agent_id}: fails closed`
    const decision: GatewayDecision = { decision: "deny", reason, rule: "registry", dry_run: false }
    return { decision, events: [audit({ agent_id, action: label, context, decision: "deny", reason, rule: "registry" })] }
  }
  const evaluated = evaluateAction(gateway, view, action, now)
  if (mode === "observe") {
    const decision: GatewayDecision = {
      decision: "allow",
      reason: evaluated.reason,
      rule: evaluated.rule,
      shadow_decision: evaluated.decision,
      dry_run: true
    }
    return {
      decision,
      events: [audit({
        agent_id,
        action: label,
        context,
        decision: "allow",
        reason: evaluated.reason,
        rule: evaluated.rule,
        dry_run: true,
        shadow_decision: evaluated.decision
      })]
    }
  }
  const events: Array<GatewayEvent> = [
    audit({
      agent_id,
      action: label,
      context,
      decision: evaluated.decision,
      reason: evaluated.reason,
      rule: evaluated.rule
    })
  ]
  let approval_id: string | undefined
  if (evaluated.decision === "pending") {
    approval_id = `approval-${gateway.approvals.size + 1}`
    events.push(
      ApprovalOpened.make({
        approval_id,
        action: action as GatedAction,
        reason: evaluated.reason,
        rule: evaluated.rule,
        redact: evaluated.redact,
        expires_at: now + (evaluated.approval_timeout_s ?? 300) * 1000,
        at: now
      }, true)
    )
  }
  return {
    decision: {
      decision: evaluated.decision,
      reason: evaluated.reason,
      rule: evaluated.rule,
      dry_run: false,
      approval_id,
      redact: evaluated.redact
    },
    events
  }
}

/** Whether any loaded policy governs messages: without one, messages are not checked at all. */
export const governsMessages = (gateway: GatewayState) =>
  gateway.policyList.some((policy) => policy.document.messages !== undefined)

// ---------------------------------------------------------------------------
// Approvals

export const decideResolveApproval = (
  gateway: GatewayState,
  view: GatewayView,
  request: {
    readonly approval_id: string
    readonly outcome: "approved" | "rejected"
    readonly by: string
    readonly note?: string | undefined
  },
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, ValidationError> => {
  const approval = gateway.approvals.get(request.approval_id)
  if (approval === undefined) {
    return Either.left(ValidationError.single("approval", "approval_id", `no approval ${request.approval_id}`))
  }
  if (approval.status !== "open") {
    return Either.left(
      ValidationError.single("approval", "approval_id", `approval ${request.approval_id} is ${approval.status}`)
    )
  }
  // At its deadline it has timed out, even if the tick that records so has not run yet.
  if (now >= approval.expires_at) {
    return Either.left(ValidationError.single("approval", "approval_id", `approval ${request.approval_id} timed out`))
  }
  const audit = auditor(gateway, view, now)
  return Either.right([
    ApprovalResolved.make({
      approval_id: request.approval_id,
      outcome: request.outcome,
      by: request.by,
      note: request.note,
      at: now
    }, true),
    audit({
      agent_id: approval.action.agent_id,
      action: actionLabel(approval.action),
      decision: request.outcome,
      reason: `${request.outcome} by ${request.by}${request.note ? `: ${request.note}` : ""}`,
      rule: approval.rule
    })
  ])
}

/** Approvals whose time ran out become denies. */
export const decideApprovalTimeouts = (
  gateway: GatewayState,
  view: GatewayView,
  now: number
): ReadonlyArray<GatewayEvent> => {
  const audit = auditor(gateway, view, now)
  const events: Array<GatewayEvent> = []
  for (const deadline of gateway.approvalDeadlines.due(now)) {
    const approval = gateway.approvals.get(deadline.id)
    if (approval === undefined || approval.status !== "open" || approval.expires_at !== deadline.at) continue
    events.push(
      ApprovalResolved.make({ approval_id: approval.approval_id, outcome: "timed_out", at: now }, true),
      audit({
        agent_id: approval.action.agent_id,
        action: actionLabel(approval.action),
        decision: "timed_out",
        reason: "no human answered in time: denied",
        rule: approval.rule
      })
    )
  }
  return events
}

export const nextApprovalDeadline = (gateway: GatewayState): number | undefined => gateway.approvalDeadlines.peek()?.at

/**
 * An approved approval, once, for the very action it was opened for (same
 * agent, same tool, same args, compared in canonical JSON): the caller may
 * now carry it out.
 */
export const decideUseApproval = (
  gateway: GatewayState,
  approvalId: string,
  action: Action,
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, PermissionDenied> => {
  const approval = gateway.approvals.get(approvalId)
  if (approval === undefined || approval.status !== "approved") {
    return Either.left(new PermissionDenied({
      reason: approval === undefined ? `no approval ${approvalId}` : `approval ${approvalId} is ${approval.status}`
    }))
  }
  if (canonicalJson(approval.action) !== canonicalJson(action)) {
    return Either.left(new PermissionDenied({ reason: `approval ${approvalId} is for another action` }))
  }
  return Either.right([ApprovalUsed.make({ approval_id: approvalId, at: now }, true)])
}

// ---------------------------------------------------------------------------
// Kill switch

export type KillSwitchCommand =
  | { readonly _tag: "Suspend"; readonly agent_id: string; readonly reason: string }
  | { readonly _tag: "Resume"; readonly agent_id: string }
  | { readonly _tag: "Kill"; readonly agent_id: string; readonly reason: string }
  | { readonly _tag: "Halt"; readonly reason: string }
  | { readonly _tag: "Unhalt" }

export const decideKillSwitch = (
  gateway: GatewayState,
  view: GatewayView,
  command: KillSwitchCommand,
  by: string,
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, ValidationError> => {
  const audit = auditor(gateway, view, now)
  const refuse = (message: string) => Either.left(ValidationError.single("kill_switch", "", message))
  switch (command._tag) {
    case "Suspend":
      if (gateway.killed.has(command.agent_id)) return refuse(`agent ${command.agent_id} was killed`)
      return Either.right([
        AgentSuspended.make({ agent_id: command.agent_id, reason: command.reason, at: now }, true),
        audit({ agent_id: command.agent_id, action: "agent.suspend", decision: "suspended", reason: `${command.reason} (by ${by})` })
      ])
    case "Resume":
      if (!gateway.suspended.has(command.agent_id)) return refuse(`agent ${command.agent_id} is not suspended`)
      return Either.right([
        AgentResumed.make({ agent_id: command.agent_id, at: now }, true),
        audit({ agent_id: command.agent_id, action: "agent.resume", decision: "resumed", reason: `resumed by ${by}` })
      ])
    case "Kill":
      if (gateway.killed.has(command.agent_id)) return refuse(`agent ${command.agent_id} was killed already`)
      return Either.right([
        AgentKilled.make({ agent_id: command.agent_id, reason: command.reason, at: now }, true),
        audit({ agent_id: command.agent_id, action: "agent.kill", decision: "killed", reason: `${command.reason} (by ${by})` })
      ])
    case "Halt":
      if (gateway.halted !== undefined) return refuse("already halted")
      return Either.right([
        GatewayHalted.make({ reason: command.reason, at: now }, true),
        audit({ agent_id: "*", action: "gateway.halt", decision: "halted", reason: `${command.reason} (by ${by})` })
      ])
    case "Unhalt":
      if (gateway.halted === undefined) return refuse("not halted")
      return Either.right([
        GatewayUnhalted.make({ at: now }, true),
        audit({ agent_id: "*", action: "gateway.unhalt", decision: "resumed", reason: `halt lifted by ${by}` })
      ])
  }
}

// ---------------------------------------------------------------------------
// Budgets

/** The limits on an agent's spending in a currency: the smallest each applicable policy sets, per counter. */
const budgetLimits = (gateway: GatewayState, view: GatewayView, agentId: string, currency: string) => {
  const team = view.teamOf(agentId)
  let agentLimit: number | undefined
  let teamLimit: number | undefined
  for (const policy of gateway.policyList) {
    if (!coversAgent(policy, { agent_id: agentId, team_id: team })) continue
    for (const budget of policy.document.budgets ?? []) {
      if (budget.currency !== currency) continue
      if (budget.per === "agent") agentLimit = Math.min(agentLimit ?? Infinity, budget.limit)
      else if (team !== undefined) teamLimit = Math.min(teamLimit ?? Infinity, budget.limit)
    }
  }
  return { team, agentLimit, teamLimit }
}

/**
 * Charges the agent's counter, and its team's, in one go: a charge that would
 * take either past its limit is refused whole (nothing is charged), recorded,
 * and fails with BudgetExhausted. Landing exactly on a limit is allowed.
 */
export const decideCharge = (
  gateway: GatewayState,
  view: GatewayView,
  request: { readonly agent_id: string; readonly currency: string; readonly amount: number },
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, ValidationError | Refusal<BudgetExhausted>> => {
  const { agent_id, amount, currency } = request
  const { agentLimit, team, teamLimit } = budgetLimits(gateway, view, agent_id, currency)
  const counters = [
    { scope: "agent" as const, scope_id: agent_id, limit: agentLimit },
    ...(team === undefined ? [] : [{ scope: "team" as const, scope_id: team, limit: teamLimit }])
  ].map((counter) => ({ ...counter, key: budgetKey(counter.scope, counter.scope_id, currency) }))
  const charged = chargeAll(gateway.spent, counters.map(({ key, limit }) => ({ key, amount, limit: limit ?? Infinity })))
  const audit = auditor(gateway, view, now)
  if (Either.isLeft(charged)) {
    const refusal = charged.left
    if (!isExhaustion(refusal)) return Either.left(refusal)
    const crossing = counters.find((counter) => counter.key === refusal.key)!
    const limit = crossing.limit!
    const scope = `${crossing.scope} ${crossing.scope_id}`
    return Either.left(
      new Refusal(new BudgetExhausted({ scope, currency, limit, spent: refusal.spent }), [
        BudgetExhaustedRecorded.make({
          scope: crossing.scope,
          scope_id: crossing.scope_id,
          currency,
          amount,
          spent: refusal.spent,
          limit,
          at: now
        }, true),
        audit({
          agent_id,
          action: `budget.charge:${currency}`,
          decision: "budget_exhausted",
          reason: `charging ${amount} ${currency} would take ${scope} past its limit: ${refusal.spent} of ${limit} spent`
        })
      ])
    )
  }
  return Either.right([
    ...counters.map(({ key, scope, scope_id }) =>
      BudgetCharged.make({ scope, scope_id, currency, amount, spent: charged.right.get(key) ?? 0, at: now }, true)
    ),
    audit({ agent_id, action: `budget.charge:${currency}`, decision: "charged", reason: `charged ${amount} ${currency}` })
  ])
}

/** Each counter of the agent (its own, its team's) in a currency, with its limit. */
export const budgetStatus = (gateway: GatewayState, view: GatewayView, agentId: string, currency: string) => {
  const { agentLimit, team, teamLimit } = budgetLimits(gateway, view, agentId, currency)
  return [
    { scope: "agent" as const, scope_id: agentId, limit: agentLimit },
    ...(team === undefined ? [] : [{ scope: "team" as const, scope_id: team, limit: teamLimit }])
  ].map((counter) => ({
    ...counter,
    currency,
    spent: gateway.spent.get(budgetKey(counter.scope, counter.scope_id, currency)) ?? 0
  }))
}

// ---------------------------------------------------------------------------
// Leases

export const decideGrantLease = (
  gateway: GatewayState,
  lease: Lease,
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, ValidationError> =>
  gateway.leases.has(lease.lease_id)
    ? Either.left(ValidationError.single("lease", "lease_id", `lease ${lease.lease_id} exists already`))
    : Either.right([LeaseGranted.make({ lease, at: now }, true)])

export const decideCheckLease = (
  gateway: GatewayState,
  view: GatewayView,
  request: { readonly lease_id: string; readonly namespace: LeaseNamespace; readonly resource: string },
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, Refusal<PermissionDenied | LeaseExpired>> => {
  const lease = gateway.leases.get(request.lease_id)
  const audit = auditor(gateway, view, now)
  const action = `lease.${request.namespace}:${request.resource}`
  if (lease === undefined) {
    const error = new PermissionDenied({ reason: `no lease ${request.lease_id}` })
    return Either.left(new Refusal(error, [audit({ agent_id: "*", action, decision: "lease_denied", reason: error.reason })]))
  }
  return Either.match(checkLease(lease, request.namespace, request.resource, now), {
    onRight: () => Either.right([]),
    onLeft: (error) =>
      Either.left(
        new Refusal(error, [
          audit({
            agent_id: lease.agent_id,
            action,
            decision: error._tag === "LeaseExpired" ? "lease_expired" : "lease_denied",
            reason: error.message,
            rule: `lease ${lease.lease_id}`
          })
        ])
      )
  })
}

export const decideDelegateLease = (
  gateway: GatewayState,
  view: GatewayView,
  request: { readonly parent_lease_id: string; readonly lease: Lease },
  now: number
): Either.Either<ReadonlyArray<GatewayEvent>, ValidationError | Refusal<LeaseSubsetViolation | LeaseExpired>> => {
  const parent = gateway.leases.get(request.parent_lease_id)
  if (parent === undefined) {
    return Either.left(ValidationError.single("lease", "parent_lease_id", `no lease ${request.parent_lease_id}`))
  }
  if (gateway.leases.has(request.lease.lease_id)) {
    return Either.left(ValidationError.single("lease", "lease_id", `lease ${request.lease.lease_id} exists already`))
  }
  const child: Lease = { ...request.lease, parent_lease_id: parent.lease_id }
  return Either.match(checkDelegation(parent, child, now), {
    onRight: () => Either.right([LeaseGranted.make({ lease: child, at: now }, true)]),
    onLeft: (error) =>
      Either.left(
        new Refusal(error, [
          auditor(gateway, view, now)({
            agent_id: child.agent_id,
            action: `lease.delegate:${parent.lease_id}`,
            decision: error._tag === "LeaseExpired" ? "lease_expired" : "lease_denied",
            reason: error.message,
            rule: `lease ${parent.lease_id}`
          })
        ])
      )
  })
}

// ---------------------------------------------------------------------------
// Dispatch

/**
 * What stops a call even with an approval: the kill switch, an agent the
 * registry no longer knows, or policies that now deny it outright (loaded
 * since the approval). An approval lifts a "pending", never a "deny".
 */
const approvalOverruled = (
  gateway: GatewayState,
  view: GatewayView,
  action: Action,
  now: number
): { readonly reason: string; readonly rule: string } | undefined => {
  const blocked = blockedReason(gateway, action.agent_id)
  if (blocked !== undefined) return { reason: blocked, rule: "kill switch" }
  const mode = view.modeOf(action.agent_id)
  if (mode === undefined) return { reason: `unknown agent ${action.agent_id}: fails closed`, rule: "registry" }
  if (mode !== "enforce") return undefined
  const evaluated = evaluateAction(gateway, view, action, now, true)
  return evaluated.decision === "deny" ? { reason: evaluated.reason, rule: evaluated.rule } : undefined
}

/**
 * What an approved call has redacted: what its rule asked when it was
 * approved, and what the policies in force ask now (one loaded since may
 * redact more; an approval never lifts a redaction).
 */
export const approvedRedactions = (
  gateway: GatewayState,
  view: GatewayView,
  approvalId: string,
  action: Action,
  now: number
): ReadonlyArray<string> => {
  const paths = new Set(gateway.approvals.get(approvalId)?.redact ?? [])
  if (view.modeOf(action.agent_id) === "enforce") {
    for (const path of evaluateAction(gateway, view, action, now, true).redact ?? []) paths.add(path)
  }
  return [...paths]
}

/**
 * A tool call a human approved: the approval must be for this very call and
 * not used yet, and nothing may overrule it since (`approvalOverruled`).
 * Refusals are audited.
 */
export const decideApprovedCall = (
  gateway: GatewayState,
  view: GatewayView,
  approvalId: string,
  action: Action,
  now: number,
  context?: AuditContext
): Either.Either<ReadonlyArray<GatewayEvent>, Refusal<PermissionDenied>> => {
  const overruled = approvalOverruled(gateway, view, action, now)
  const used = overruled === undefined
    ? decideUseApproval(gateway, approvalId, action, now)
    : Either.left(new PermissionDenied({ reason: overruled.reason }))
  return Either.mapLeft(used, (error) =>
    new Refusal(error, [
      auditor(gateway, view, now)({
        agent_id: action.agent_id,
        action: actionLabel(action),
        decision: "deny",
        reason: error.reason,
        rule: overruled?.rule ?? `approval ${approvalId}`,
        context
      })
    ]))
}

/** Masks the listed paths (`args.a.b`) of a tool call's args. */
export const redactArgs = (args: unknown, paths: ReadonlyArray<string>): unknown => {
  const mask = (value: unknown, path: ReadonlyArray<string>): unknown => {
    if (path.length === 0) return "[REDACTED]"
    if (typeof value !== "object" || value === null || !(path[0] in value)) return value
    const copy: Record<string, unknown> | Array<unknown> = Array.isArray(value) ? [...value] : { ...value }
    ;(copy as Record<string, unknown>)[path[0]] = mask((value as Record<string, unknown>)[path[0]], path.slice(1))
    return copy
  }
  return paths.reduce(
    (masked, path) => path.startsWith("args.") ? mask(masked, path.slice("args.".length).split(".")) : masked,
    args
  )
}

/** The record that a tool call left the gateway, with the names of the secrets put in: never their values. */
export const decideDispatched = (
  gateway: GatewayState,
  view: GatewayView,
  request: { readonly agent_id: string; readonly tool: string; readonly substituted: ReadonlyArray<string> },
  now: number,
  context?: AuditContext
): ReadonlyArray<GatewayEvent> => [
  auditor(gateway, view, now)({
    agent_id: request.agent_id,
    action: `tool_call:${request.tool}`,
    decision: "dispatched",
    reason: request.substituted.length === 0
      ? "dispatched"
      : `dispatched with ${request.substituted.map((name) => `\${${name}}`).join(", ")} injected`,
    context
  })
]

// ---------------------------------------------------------------------------
// Evolve

export const evolveGateway = (gateway: GatewayState, event: GatewayEvent): GatewayState => {
  switch (event._tag) {
    case "AuditRecorded": {
      const record = event.record
      gateway.auditHead = record.hash
      gateway.audits++
      // A call counts once it may go ahead: allowed (or redacted) at once, or approved by a human.
      if (
        record.action.startsWith("tool_call:") &&
        (record.decision === "allow" || record.decision === "redact" || record.decision === "approved")
      ) {
        const key = toolCallKey(record.agent_id, record.action.slice("tool_call:".length))
        let calls = gateway.toolCalls.get(key)
        if (calls === undefined) gateway.toolCalls.set(key, calls = new Deque())
        calls.pushBack(record.at)
        while (calls.length > 0 && calls.at(0) <= record.at - hour) calls.popFront()
      }
      break
    }
    case "PolicyLoaded": {
      gateway.policies.set(event.document.id, { document: event.document, version: event.version })
      gateway.policyList = [...gateway.policies.values()].map((entry) => compilePolicy(entry.document))
      break
    }
    case "PolicyRemoved": {
      gateway.policies.delete(event.policy_id)
      gateway.policyList = [...gateway.policies.values()].map((entry) => compilePolicy(entry.document))
      break
    }
    case "ApprovalOpened": {
      gateway.approvals.set(event.approval_id, {
        approval_id: event.approval_id,
        action: event.action,
        reason: event.reason,
        rule: event.rule,
        opened_at: event.at,
        expires_at: event.expires_at,
        redact: event.redact,
        status: "open",
        resolved_at: undefined,
        by: undefined,
        note: undefined
      })
      gateway.approvalDeadlines.push({ at: event.expires_at, kind: "approval", id: event.approval_id })
      break
    }
    case "ApprovalResolved": {
      const approval = gateway.approvals.get(event.approval_id)
      if (approval === undefined) break
      approval.status = event.outcome
      approval.resolved_at = event.at
      approval.by = event.by
      approval.note = event.note
      break
    }
    case "ApprovalUsed": {
      const approval = gateway.approvals.get(event.approval_id)
      if (approval !== undefined) approval.status = "used"
      break
    }
    case "AgentSuspended":
      gateway.suspended.set(event.agent_id, event.reason)
      break
    case "AgentResumed":
      gateway.suspended.delete(event.agent_id)
      break
    case "AgentKilled":
      gateway.killed.add(event.agent_id)
      gateway.suspended.delete(event.agent_id)
      break
    case "GatewayHalted":
      gateway.halted = event.reason
      break
    case "GatewayUnhalted":
      gateway.halted = undefined
      break
    case "BudgetCharged":
      gateway.spent.set(budgetKey(event.scope, event.scope_id, event.currency), event.spent)
      break
    case "BudgetExhaustedRecorded":
      break
    case "LeaseGranted":
      gateway.leases.set(event.lease.lease_id, event.lease)
      break
  }
  for (let top = gateway.approvalDeadlines.peek(); top !== undefined; top = gateway.approvalDeadlines.peek()) {
    const approval = gateway.approvals.get(top.id)
    if (approval !== undefined && approval.status === "open" && approval.expires_at === top.at) break
    gateway.approvalDeadlines.pop()
  }
  return gateway
}

// ---------------------------------------------------------------------------
// Snapshot

export const gatewaySnapshot = (gateway: GatewayState) => ({
  policies: Object.fromEntries([...gateway.policies].map(([id, entry]) => [id, entry.version])),
  approvals: Object.fromEntries([...gateway.approvals].map(([id, approval]) => [id, { ...approval }])),
  suspended: Object.fromEntries(gateway.suspended),
  killed: [...gateway.killed].sort(),
  halted: gateway.halted,
  spent: Object.fromEntries([...gateway.spent].sort(([a], [b]) => (a < b ? -1 : 1))),
  leases: [...gateway.leases.keys()].sort(),
  audit_head: gateway.auditHead,
  audits: gateway.audits
})
export type GatewaySnapshot = ReturnType<typeof gatewaySnapshot>
