/**
 * Approvals (PROTOCOLS.md §2): a pending decision waits for a human, who
 * approves or rejects it before its deadline, else it times out into a deny.
 * An approval is good for one call, the very one it was opened for, within
 * the same window again once approved; nothing that denies the call since
 * (the kill switch, a policy, a full hourly limit) is lifted by it.
 */
import type { AuditContext } from "../schema/Audit.js"
import { PermissionDenied, ValidationError } from "../schema/Errors.js"
import { ApprovalLapsed, ApprovalResolved, ApprovalUsed, type GatewayEvent } from "../schema/GatewayEvents.js"
import { canonicalJson } from "./Audit.js"
import { later } from "./Deadlines.js"
import { actionLabel, evaluateAction, type GatewayDecision, modeOf } from "./Checks.js"
import { type Approval, auditor, blockedReason } from "./Governance.js"
import type { Action } from "./Policy.js"
import { accept, type Decision, refuse, type RuntimeState } from "./State.js"

export type { Approval, ApprovalStatus } from "./Governance.js"

export const decideResolveApproval = (
  state: RuntimeState,
  request: {
    readonly approval_id: string
    readonly outcome: "approved" | "rejected"
    readonly by: string
    readonly note?: string | undefined
  },
  now: number
): Decision<Approval, ValidationError | PermissionDenied> => {
  const approval = state.approvals.get(request.approval_id)
  if (approval === undefined) {
    return refuse(ValidationError.single("approval", "approval_id", `no approval ${request.approval_id}`))
  }
  if (approval.status !== "open") {
    return refuse(ValidationError.single("approval", "approval_id", `approval ${request.approval_id} is ${approval.status}`))
  }
  // At its deadline it has timed out, even if the tick that records so has not run yet.
  if (now >= approval.expires_at) {
    return refuse(ValidationError.single("approval", "approval_id", `approval ${request.approval_id} timed out`))
  }
  // Approving counts the call against its hourly limit: one that filled up
  // meanwhile (or a policy that now denies it) is not lifted by a human.
  if (request.outcome === "approved" && modeOf(state, approval.action.agent_id) === "enforce") {
    const evaluated = evaluateAction(state, approval.action, now)
    if (evaluated.decision === "deny") {
      return refuse(new PermissionDenied({ reason: `cannot approve ${request.approval_id}: ${evaluated.reason}` }))
    }
  }
  const audit = auditor(state, now)
  const window = approval.expires_at - approval.opened_at
  return accept([
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
  ], {
    ...approval,
    status: request.outcome,
    expires_at: request.outcome === "approved" ? later(now, window) : approval.expires_at,
    resolved_at: now,
    by: request.by,
    note: request.note
  })
}

/** Whether an approval still waits for its deadline: a human's answer, or once approved, its use. */
export const isWaiting = (approval: Approval | undefined, at: number): approval is Approval =>
  approval !== undefined && (approval.status === "open" || approval.status === "approved") &&
  approval.expires_at === at

/**
 * An approval whose time ran out: unanswered, it becomes a deny; approved and
 * unused, it lapses. `audit` seals into the chain of the decision it is part of.
 */
export const decideApprovalDeadline = (
  approval: Approval,
  audit: ReturnType<typeof auditor>,
  now: number
): ReadonlyArray<GatewayEvent> => {
  const recorded = { agent_id: approval.action.agent_id, action: actionLabel(approval.action), rule: approval.rule }
  return approval.status === "open"
    ? [
      ApprovalResolved.make({ approval_id: approval.approval_id, outcome: "timed_out", at: now }, true),
      audit({ ...recorded, decision: "timed_out", reason: "no human answered in time: denied" })
    ]
    : [
      ApprovalLapsed.make({ approval_id: approval.approval_id, at: now }, true),
      audit({ ...recorded, decision: "lapsed", reason: "approved, but not used in time" })
    ]
}

/**
 * An approved approval, once, for the very action it was opened for (same
 * agent, same tool, same args, compared in canonical JSON), before it lapses:
 * the caller may now carry it out.
 */
const decideUseApproval = (
  state: RuntimeState,
  approvalId: string,
  action: Action,
  now: number
): Decision<void, PermissionDenied> => {
  const approval = state.approvals.get(approvalId)
  if (approval === undefined || approval.status !== "approved") {
    return refuse(new PermissionDenied({
      reason: approval === undefined ? `no approval ${approvalId}` : `approval ${approvalId} is ${approval.status}`
    }))
  }
  if (now >= approval.expires_at) return refuse(new PermissionDenied({ reason: `approval ${approvalId} lapsed` }))
  if (canonicalJson(approval.action) !== canonicalJson(action)) {
    return refuse(new PermissionDenied({ reason: `approval ${approvalId} is for another action` }))
  }
  return accept([ApprovalUsed.make({ approval_id: approvalId, at: now }, true)])
}

/**
 * What stops a call even with an approval: the kill switch, an agent the
 * registry no longer knows, or policies that now deny it outright (loaded
 * since the approval). An approval lifts a "pending", never a "deny".
 */
const approvalOverruled = (
  state: RuntimeState,
  action: Action,
  now: number
): { readonly reason: string; readonly rule: string } | undefined => {
  const blocked = blockedReason(state, action.agent_id)
  if (blocked !== undefined) return { reason: blocked, rule: "kill switch" }
  const mode = modeOf(state, action.agent_id)
  if (mode === undefined) return { reason: `unknown agent ${action.agent_id}: fails closed`, rule: "registry" }
  if (mode !== "enforce") return undefined
  const evaluated = evaluateAction(state, action, now, true)
  return evaluated.decision === "deny" ? { reason: evaluated.reason, rule: evaluated.rule } : undefined
}

/**
 * What an approved call has redacted: what its rule asked when it was
 * approved, and what the policies in force ask now (one loaded since may
 * redact more; an approval never lifts a redaction).
 */
const approvedRedactions = (state: RuntimeState, approvalId: string, action: Action, now: number) => {
  const paths = new Set(state.approvals.get(approvalId)?.redact ?? [])
  if (modeOf(state, action.agent_id) === "enforce") {
    for (const path of evaluateAction(state, action, now, true).redact ?? []) paths.add(path)
  }
  return [...paths]
}

/**
 * A tool call a human approved: the approval must be for this very call and
 * not used yet, and nothing may overrule it since (`approvalOverruled`).
 * Refusals are audited. Its value is the decision the call goes ahead with.
 */
export const decideApprovedCall = (
  state: RuntimeState,
  approvalId: string,
  action: Action,
  now: number,
  context?: AuditContext
): Decision<GatewayDecision, PermissionDenied> => {
  const overruled = approvalOverruled(state, action, now)
  const used = overruled === undefined
    ? decideUseApproval(state, approvalId, action, now)
    : refuse(new PermissionDenied({ reason: overruled.reason }))
  if (used._tag === "Refused") {
    return refuse(used.error, [
      auditor(state, now)({
        agent_id: action.agent_id,
        action: actionLabel(action),
        decision: "deny",
        reason: used.error.reason,
        rule: overruled?.rule ?? `approval ${approvalId}`,
        context
      })
    ])
  }
  const redact = approvedRedactions(state, approvalId, action, now)
  return accept(used.events, {
    decision: redact.length > 0 ? "redact" : "allow",
    reason: `approved (${approvalId})`,
    rule: `approval ${approvalId}`,
    dry_run: false,
    redact: redact.length > 0 ? redact : undefined
  })
}
