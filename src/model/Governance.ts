/**
 * Governance's part of the state (PROTOCOLS.md §2, and the leases and
 * budgets of §3): the policies in force, approvals, the kill switch, budget
 * counters, leases and the head of the audit chain, with the events that
 * change them. The decisions live beside it, one module per concern:
 * `Checks.ts`, `Approvals.ts`, `KillSwitch.ts`, `Budgets.ts`, `Leases.ts`.
 */
import type { AuditContext, AuditRecord } from "../schema/Audit.js"
import { ValidationError } from "../schema/Errors.js"
import { type AuditRecorded, type GatedAction, PolicyLoaded, PolicyRemoved } from "../schema/GatewayEvents.js"
import type { Lease } from "../schema/Lease.js"
import type { PolicyDocument } from "../schema/Policy.js"
import type { ApprovalStatus } from "../schema/Requests.js"
import { lineageOf } from "./Agents.js"
import { chainHash, GENESIS_HASH } from "./Audit.js"
import { budgetKey } from "./Budgets.js"
import { later } from "./Deadlines.js"
import { Deque } from "./Deque.js"
import { type CompiledPolicy, compilePolicy } from "./Policy.js"
import { accept, type Decision, refuse, type RuntimeState, type Slice } from "./State.js"

export type { ApprovalStatus } from "../schema/Requests.js"

export interface PolicyEntry {
  readonly document: PolicyDocument
  readonly version: number
  readonly compiled: CompiledPolicy
}

export interface Approval {
  readonly approval_id: string
  readonly action: GatedAction
  readonly reason: string
  readonly rule: string
  readonly opened_at: number
  /** Until when a human may answer; once approved, until when the call may be made. */
  expires_at: number
  /** Paths of the args to redact once approved, as the policy asked. */
  readonly redact: ReadonlyArray<string> | undefined
  status: ApprovalStatus
  resolved_at: number | undefined
  by: string | undefined
  note: string | undefined
}

export interface GovernanceState {
  readonly policies: Map<string, PolicyEntry>
  /** The policies in load order, each compiled once, when it was loaded. */
  policyList: ReadonlyArray<CompiledPolicy>
  readonly approvals: Map<string, Approval>
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

export const hour = 3_600_000

export const toolCallKey = (agentId: string, tool: string) => `${agentId}\u0000${tool}`

/** Why the kill switch stops an agent, if it does. */
export const blockedReason = (state: RuntimeState, agentId: string): string | undefined =>
  state.halted !== undefined
    ? `all agents are halted: ${state.halted}`
    : state.killed.has(agentId)
    ? `agent ${agentId} was killed`
    : state.suspended.has(agentId)
    ? `agent ${agentId} is suspended: ${state.suspended.get(agentId)}`
    : undefined

// ---------------------------------------------------------------------------
// The audit chain

/** What a decision says of itself in an audit record; the chain fills in the rest. */
export type AuditFields = Omit<AuditRecord, "hash" | "prev_hash" | "at" | "lineage" | "dry_run"> & {
  readonly dry_run?: boolean
  readonly context?: AuditContext | undefined
}

/**
 * Seals audit records in order during one decision: each chains to the one
 * before it, the first to the state's head.
 */
export const auditor = (state: RuntimeState, now: number) => {
  let head = state.auditHead
  return (fields: AuditFields): AuditRecorded => {
    // Field by field rather than by spreads: this runs for every decision.
    const context = fields.context
    const record: { -readonly [K in keyof AuditRecord]: AuditRecord[K] } = {
      agent_id: fields.agent_id,
      action: fields.action,
      decision: fields.decision,
      reason: fields.reason,
      lineage: [...lineageOf(state, fields.agent_id)],
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

// ---------------------------------------------------------------------------
// Policies

export interface PolicyInfo {
  readonly policy_id: string
  readonly version: number
  readonly scope: PolicyDocument["scope"]
}

export const policyInfo = (
  policyId: string,
  entry: { readonly document: PolicyDocument; readonly version: number }
): PolicyInfo => ({
  policy_id: policyId,
  version: entry.version,
  scope: entry.document.scope
})

export const decideLoadPolicy = (
  state: RuntimeState,
  document: PolicyDocument,
  source: string,
  now: number
): Decision<PolicyInfo> => {
  const version = (state.policies.get(document.id)?.version ?? 0) + 1
  return accept(
    [PolicyLoaded.make({ document, version, source, at: now }, true)],
    policyInfo(document.id, { document, version })
  )
}

export const decideRemovePolicy = (
  state: RuntimeState,
  policyId: string,
  now: number
): Decision<void, ValidationError> =>
  state.policies.has(policyId)
    ? accept([PolicyRemoved.make({ policy_id: policyId, at: now }, true)])
    : refuse(ValidationError.single("policy", "id", `no policy ${policyId}`))

/** The list evaluation walks: only a policy loaded now is compiled, never the others again. */
const relist = (state: RuntimeState) => {
  state.policyList = [...state.policies.values()].map((entry) => entry.compiled)
}

// ---------------------------------------------------------------------------
// Evolve and snapshot

export const governanceSlice: Slice<GovernanceState> = {
  initial: () => ({
    policies: new Map(),
    policyList: [],
    approvals: new Map(),
    suspended: new Map(),
    killed: new Set(),
    halted: undefined,
    spent: new Map(),
    leases: new Map(),
    auditHead: GENESIS_HASH,
    audits: 0,
    toolCalls: new Map()
  }),
  evolve: {
    AuditRecorded: (state, { record }) => {
      state.auditHead = record.hash
      state.audits++
      // A call counts once it may go ahead: allowed (or redacted) at once, or approved by a human.
      if (
        record.action.startsWith("tool_call:") &&
        (record.decision === "allow" || record.decision === "redact" || record.decision === "approved")
      ) {
        const key = toolCallKey(record.agent_id, record.action.slice("tool_call:".length))
        let calls = state.toolCalls.get(key)
        if (calls === undefined) state.toolCalls.set(key, calls = new Deque())
        calls.pushBack(record.at)
        while (calls.length > 0 && calls.at(0) <= record.at - hour) calls.popFront()
      }
    },
    PolicyLoaded: (state, event) => {
      state.policies.set(event.document.id, {
        document: event.document,
        version: event.version,
        compiled: compilePolicy(event.document)
      })
      relist(state)
    },
    PolicyRemoved: (state, event) => {
      state.policies.delete(event.policy_id)
      relist(state)
    },
    ApprovalOpened: (state, event) => {
      state.approvals.set(event.approval_id, {
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
    },
    ApprovalResolved: (state, event) => {
      const approval = state.approvals.get(event.approval_id)
      if (approval === undefined) return
      // Approved, it may be used for as long as a human had to answer, from now.
      if (event.outcome === "approved") approval.expires_at = later(event.at, approval.expires_at - approval.opened_at)
      approval.status = event.outcome
      approval.resolved_at = event.at
      approval.by = event.by
      approval.note = event.note
    },
    ApprovalUsed: (state, event) => {
      const approval = state.approvals.get(event.approval_id)
      if (approval !== undefined) approval.status = "used"
    },
    ApprovalLapsed: (state, event) => {
      const approval = state.approvals.get(event.approval_id)
      if (approval !== undefined) approval.status = "lapsed"
    },
    AgentSuspended: (state, event) => {
      state.suspended.set(event.agent_id, event.reason)
    },
    AgentResumed: (state, event) => {
      state.suspended.delete(event.agent_id)
    },
    AgentKilled: (state, event) => {
      state.killed.add(event.agent_id)
      state.suspended.delete(event.agent_id)
    },
    GatewayHalted: (state, event) => {
      state.halted = event.reason
    },
    GatewayUnhalted: (state) => {
      state.halted = undefined
    },
    BudgetCharged: (state, event) => {
      state.spent.set(budgetKey(event.scope, event.scope_id, event.currency), event.spent)
    },
    LeaseGranted: (state, event) => {
      state.leases.set(event.lease.lease_id, event.lease)
    }
  },
  snapshot: (state) => ({
    gateway: {
      policies: Object.fromEntries([...state.policies].map(([id, entry]) => [id, entry.version])),
      approvals: Object.fromEntries([...state.approvals].map(([id, approval]) => [id, { ...approval }])),
      suspended: Object.fromEntries(state.suspended),
      killed: [...state.killed].sort(),
      halted: state.halted,
      spent: Object.fromEntries([...state.spent].sort(([a], [b]) => (a < b ? -1 : 1))),
      leases: [...state.leases.keys()].sort(),
      audit_head: state.auditHead,
      audits: state.audits
    }
  })
}
