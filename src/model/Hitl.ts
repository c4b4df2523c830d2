/**
 * Human in the loop (PROTOCOLS.md §1 "Coordination"): the invocations that
 * wait for a human, and the one queue a human works through, which holds
 * them and the gateway's approvals (PROTOCOLS.md §2) side by side. Every
 * invocation has a deadline and a fallback, so nothing waits forever; every
 * step is audited. What a decision does to its subject (a task, a room, a
 * binding) is `HitlDecide.ts`.
 */
import type { AuditRecorded } from "../schema/GatewayEvents.js"
import type { RuntimeConfig } from "../schema/Config.js"
import type { Json } from "../schema/Json.js"
import {
  type HitlAction,
  type HitlFallback,
  HitlInvoked,
  type HitlReason,
  type HitlStatus,
  type HitlSubject,
  HitlWithdrawn,
  type InvocationView,
  type QueueFilter,
  type QueueItem
} from "../schema/Hitl.js"
import { later } from "./Deadlines.js"
import type { Approval } from "./Governance.js"
import { type AuditFields, auditor } from "./Governance.js"
import { type RuntimeState, type Slice, sortedRecord } from "./State.js"

export interface Invocation {
  readonly hitl_id: string
  readonly reason: HitlReason
  readonly subject: HitlSubject
  readonly context: Json
  readonly proposed_actions: ReadonlyArray<string>
  readonly priority: number
  readonly invoked_by: string | undefined
  readonly opened_at: number
  /** How long a human had at first: what a deferral or an extension adds. */
  readonly window: number
  deadline: number
  readonly fallback: HitlFallback
  extensions: number
  status: HitlStatus
  decision:
    | {
      readonly action: HitlAction
      readonly rationale: string
      readonly args: Json | undefined
      readonly by: string
      readonly automatic: boolean
      readonly at: number
    }
    | undefined
  withdrawnReason: string | undefined
}

export interface HitlState {
  readonly hitl: Map<string, Invocation>
}

/** Seals audit records in the order of one decision (`Governance.auditor`). */
export type Audit = (fields: AuditFields) => AuditRecorded

/**
 * What one decision shares while it makes several events: the audit chain
 * (each record must chain to the one before it in the same decision), and
 * the next invocation number (ids are `hitl-N`, from the state, so that a
 * decision stays pure and a replay names them the same).
 */
export interface Deciding {
  readonly state: RuntimeState
  readonly config: RuntimeConfig
  readonly now: number
  readonly audit: Audit
  opened: number
}

export const deciding = (state: RuntimeState, config: RuntimeConfig, now: number, audit?: Audit): Deciding => ({
  state,
  config,
  now,
  audit: audit ?? auditor(state, now),
  opened: 0
})

/** The agent an invocation's audit records are filed under. */
export const hitlAgent = (subject: HitlSubject, invokedBy: string | undefined): string =>
  subject._tag === "WorktreeBind" || subject._tag === "WorktreeSwitch" || subject._tag === "WorktreeBindFailed"
    ? subject.agent_id
    : invokedBy ?? "operator"

/** Opens an invocation: its event and its audit record. Its id is `hitl-N`. */
export const openInvocation = (
  d: Deciding,
  fields: {
    readonly reason: HitlReason
    readonly subject: HitlSubject
    readonly context: Json
    readonly proposed_actions?: ReadonlyArray<string> | undefined
    readonly priority?: number | undefined
    readonly invoked_by?: string | undefined
    readonly timeout_ms?: number | undefined
    readonly fallback?: HitlFallback | undefined
  }
): { readonly hitl_id: string; readonly events: ReadonlyArray<HitlInvoked | AuditRecorded> } => {
  const hitl_id = `hitl-${d.state.hitl.size + ++d.opened}`
  const invoked = HitlInvoked.make({
    hitl_id,
    reason: fields.reason,
    subject: fields.subject,
    context: fields.context,
    proposed_actions: fields.proposed_actions ?? [],
    priority: fields.priority ?? 0,
    invoked_by: fields.invoked_by,
    deadline: later(d.now, fields.timeout_ms ?? d.config.hitlTimeoutMs),
    fallback: fields.fallback ?? "DENY_BY_DEFAULT",
    at: d.now
  }, true)
  return {
    hitl_id,
    events: [
      invoked,
      d.audit({
        agent_id: hitlAgent(fields.subject, fields.invoked_by),
        action: `hitl:${fields.reason}`,
        decision: "pending",
        reason: `${hitl_id} asks a human (${fields.subject._tag})`,
        rule: "human in the loop"
      })
    ]
  }
}

/** Withdraws an open invocation whose question its subject settled otherwise; nothing for one already closed. */
export const withdrawInvocation = (d: Deciding, hitlId: string | undefined, reason: string) => {
  const invocation = hitlId === undefined ? undefined : d.state.hitl.get(hitlId)
  if (invocation === undefined || invocation.status !== "open") return []
  return [
    HitlWithdrawn.make({ hitl_id: invocation.hitl_id, reason, at: d.now }, true),
    d.audit({
      agent_id: hitlAgent(invocation.subject, invocation.invoked_by),
      action: `hitl:${invocation.reason}`,
      decision: "withdrawn",
      reason: `${invocation.hitl_id} withdrawn: ${reason}`,
      rule: "human in the loop"
    })
  ]
}

export const isOpen = (state: RuntimeState, hitlId: string | undefined) =>
  hitlId !== undefined && state.hitl.get(hitlId)?.status === "open"

export const invocationView = (invocation: Invocation): InvocationView => ({
  hitl_id: invocation.hitl_id,
  reason: invocation.reason,
  subject: invocation.subject,
  context: invocation.context,
  proposed_actions: invocation.proposed_actions,
  priority: invocation.priority,
  invoked_by: invocation.invoked_by,
  opened_at: invocation.opened_at,
  deadline: invocation.deadline,
  fallback: invocation.fallback,
  extensions: invocation.extensions,
  status: invocation.status,
  decision: invocation.decision === undefined ? undefined : { ...invocation.decision },
  withdrawn_reason: invocation.withdrawnReason
})

// ---------------------------------------------------------------------------
// The one queue

const subjectLine = (subject: HitlSubject): string => {
  switch (subject._tag) {
    case "Manual":
      return "asked directly"
    case "Task":
      return `task ${subject.task_id} cannot wait for a conflicting scope`
    case "Room":
      return `negotiation room ${subject.room_id} escalated`
    case "WorktreeBind":
      return `bind ${subject.agent_id} to ${subject.repo_id}/${subject.worktree_id}`
    case "WorktreeSwitch":
      return `switch ${subject.agent_id} away from its home worktree`
    case "WorktreeBindFailed":
      return `${subject.agent_id}'s home worktree failed to bind, retries spent`
  }
}

const invocationItem = (invocation: Invocation): QueueItem => ({
  id: invocation.hitl_id,
  source: "hitl",
  reason: invocation.reason,
  summary: `${invocation.reason}: ${subjectLine(invocation.subject)}`,
  agent_id: invocation.subject._tag === "Manual" || invocation.subject._tag === "Task" || invocation.subject._tag === "Room"
    ? invocation.invoked_by
    : invocation.subject.agent_id,
  priority: invocation.priority,
  opened_at: invocation.opened_at,
  deadline: invocation.deadline,
  status: invocation.status,
  context: invocation.context
})

/** A gateway approval as an item of the queue: a tool call raises privileges; anything else is a security approval. */
export const approvalItem = (approval: Approval): QueueItem => {
  const action = approval.action
  const what = action.kind === "tool_call"
    ? `tool ${action.tool}`
    : action.kind === "message"
    ? `message to ${action.to}`
    : action.kind === "network"
    ? `network ${action.host}`
    : `model ${action.model}`
  return {
    id: approval.approval_id,
    source: "gateway",
    reason: action.kind === "tool_call" ? "TOOL_PRIVILEGE_ESCALATION" : "SECURITY_APPROVAL",
    summary: `${action.agent_id} asks for ${what}: ${approval.reason}`,
    agent_id: action.agent_id,
    priority: 0,
    opened_at: approval.opened_at,
    deadline: approval.expires_at,
    status: approval.status,
    context: action as unknown as Json
  }
}

/**
 * The queue a human works through: every invocation and every gateway
 * approval, open ones by default, oldest first (ties by id).
 */
export const hitlQueue = (state: RuntimeState, filter: QueueFilter = {}): ReadonlyArray<QueueItem> => {
  const wanted = filter.status ?? "open"
  const keep = (open: boolean) => wanted === "all" || (wanted === "open") === open
  const items: Array<QueueItem> = []
  for (const invocation of state.hitl.values()) if (keep(invocation.status === "open")) items.push(invocationItem(invocation))
  for (const approval of state.approvals.values()) if (keep(approval.status === "open")) items.push(approvalItem(approval))
  return items.sort((a, b) => a.opened_at - b.opened_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

// ---------------------------------------------------------------------------
// Evolve

export const hitlSlice: Slice<HitlState> = {
  initial: () => ({ hitl: new Map() }),
  evolve: {
    HitlInvoked: (state, event) => {
      state.hitl.set(event.hitl_id, {
        hitl_id: event.hitl_id,
        reason: event.reason,
        subject: event.subject,
        context: event.context,
        proposed_actions: event.proposed_actions,
        priority: event.priority,
        invoked_by: event.invoked_by,
        opened_at: event.at,
        window: Math.max(0, event.deadline - event.at),
        deadline: event.deadline,
        fallback: event.fallback,
        extensions: 0,
        status: "open",
        decision: undefined,
        withdrawnReason: undefined
      })
    },
    HitlDecided: (state, event) => {
      const invocation = state.hitl.get(event.hitl_id)
      if (invocation === undefined) return
      invocation.status = "decided"
      invocation.decision = {
        action: event.action,
        rationale: event.rationale,
        args: event.args,
        by: event.by,
        automatic: event.automatic,
        at: event.at
      }
    },
    HitlExtended: (state, event) => {
      const invocation = state.hitl.get(event.hitl_id)
      if (invocation === undefined) return
      invocation.deadline = event.deadline
      invocation.extensions++
    },
    HitlWithdrawn: (state, event) => {
      const invocation = state.hitl.get(event.hitl_id)
      if (invocation === undefined) return
      invocation.status = "withdrawn"
      invocation.withdrawnReason = event.reason
    }
  },
  // Not in the runtime's snapshot, whose shape the HTTP API serves: `coordinationSnapshot` has it.
  snapshot: () => ({})
}

export const hitlSnapshot = (state: RuntimeState) => ({
  hitl: sortedRecord(state.hitl, (invocation) => invocationView(invocation))
})
