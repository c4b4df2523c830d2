/**
 * The gateway's decision on one action (PROTOCOLS.md §2): the kill switch
 * first, then the agent's enforcement mode, then the policies in force; each
 * decision sealed into the audit chain, a pending one opening an approval.
 */
import type { AuditContext } from "../schema/Audit.js"
import { ApprovalOpened, type GatedAction, type GatewayEvent } from "../schema/GatewayEvents.js"
import type { MessageType } from "../schema/Envelope.js"
import { later } from "./Deadlines.js"
import { auditor, blockedReason, hour, toolCallKey } from "./Governance.js"
import { type Action, evaluate, type Verdict } from "./Policy.js"
import type { RuntimeState } from "./State.js"

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

/** A decision with the events that record it. */
export interface Checked {
  readonly decision: GatewayDecision
  readonly events: ReadonlyArray<GatewayEvent>
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

export const teamOf = (state: RuntimeState, agentId: string) => state.agents.get(agentId)?.descriptor.team_id

/** The agent's enforcement mode; undefined for an agent the registry does not know (or no longer). */
export const modeOf = (state: RuntimeState, agentId: string) => {
  const agent = state.agents.get(agentId)
  return agent === undefined || !agent.registered ? undefined : agent.descriptor.enforcement_mode
}

/** The agent's calls of the tool that count against `limit_per_hour` at `now`. */
export const callsInLastHour = (state: RuntimeState, agentId: string, now: number) => (tool: string) => {
  const calls = state.toolCalls.get(toolCallKey(agentId, tool))
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
export const evaluateAction = (state: RuntimeState, action: Action, now: number, counted = false) =>
  evaluate(state.policyList, action, {
    agent: { agent_id: action.agent_id, team_id: teamOf(state, action.agent_id) },
    // A recipient the registry does not know is left out: its team is then unknown, and rules needing it fail closed.
    ...(action.kind === "message" && modeOf(state, action.to) !== undefined
      ? { recipient: { agent_id: action.to, team_id: teamOf(state, action.to) } }
      : {}),
    callsInLastHour: counted ? () => 0 : callsInLastHour(state, action.agent_id, now),
    // Binding is how an agent gets a worktree: it never needs one already.
    worktreeBound: action.kind === "tool_call" && (action.tool === bindTool || worksInWorktree(state, action.agent_id))
  })

/** The tool the gateway decides worktree bindings by (`Worktrees.checkBind`). */
export const bindTool = "worktree.bind"

/** Whether the agent has a worktree to work in: bound at home or away, or at home while a switch waits. */
const worksInWorktree = (state: RuntimeState, agentId: string): boolean => {
  const binding = state.worktrees.get(agentId)?.state
  return binding === "BOUND_HOME" || binding === "BOUND_NON_HOME" || binding === "SWITCH_PENDING"
}

/**
 * The gateway's decision on an action, and the events recording it. The kill
 * switch comes first, in every mode. Then by the agent's enforcement mode:
 * `disabled` evaluates nothing (audited as such); `observe` applies allow and
 * audits the shadow decision; `enforce` applies the decision, failing closed
 * for an agent the registry does not know, and opens an approval when it is
 * pending.
 */
export const decideCheck = (state: RuntimeState, action: Action, now: number, context?: AuditContext): Checked => {
  const audit = auditor(state, now)
  // Field by field rather than spread from a common base: this runs for every check.
  const agent_id = action.agent_id
  const label = actionLabel(action)
  const settled = (decision: Verdict, reason: string, rule: string): Checked => ({
    decision: { decision, reason, rule, dry_run: false },
    events: [audit({ agent_id, action: label, context, decision, reason, rule })]
  })
  const blocked = blockedReason(state, action.agent_id)
  if (blocked !== undefined) return settled("deny", blocked, "kill switch")
  const mode = modeOf(state, action.agent_id)
  if (mode === "disabled") return settled("allow", "enforcement disabled: not evaluated", "enforcement mode")
  if (mode === undefined) return settled("deny", `unknown agent ${action.agent_id}: fails closed`, "registry")
  const evaluated = evaluateAction(state, action, now)
  if (mode === "observe") {
    const { reason, rule } = evaluated
    return {
      decision: { decision: "allow", reason, rule, shadow_decision: evaluated.decision, dry_run: true },
      events: [
        audit({ agent_id, action: label, context, decision: "allow", reason, rule, dry_run: true, shadow_decision: evaluated.decision })
      ]
    }
  }
  const events: Array<GatewayEvent> = [
    audit({ agent_id, action: label, context, decision: evaluated.decision, reason: evaluated.reason, rule: evaluated.rule })
  ]
  let approval_id: string | undefined
  if (evaluated.decision === "pending") {
    approval_id = `approval-${state.approvals.size + 1}`
    events.push(
      ApprovalOpened.make({
        approval_id,
        action: action as GatedAction,
        reason: evaluated.reason,
        rule: evaluated.rule,
        redact: evaluated.redact,
        expires_at: later(now, (evaluated.approval_timeout_s ?? 300) * 1000),
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
export const governsMessages = (state: RuntimeState) =>
  state.policyList.some((policy) => policy.document.messages !== undefined)

/** A message nothing governs: the common case, answered without building anything. */
const unchecked = { events: [], denial: undefined } as const

/**
 * The gateway's word on a message: the kill switch always, the policies when
 * one governs messages. A message cannot wait for a human, so pending is a
 * denial too.
 */
export const checkMessage = (
  state: RuntimeState,
  message: { readonly agent_id: string; readonly to: string; readonly message_type: MessageType },
  now: number
): { readonly events: ReadonlyArray<GatewayEvent>; readonly denial: { readonly reason: string; readonly rule: string } | undefined } => {
  if (blockedReason(state, message.agent_id) === undefined && !governsMessages(state)) return unchecked
  const { decision, events } = decideCheck(state, { kind: "message", ...message }, now)
  if (decision.decision === "deny") return { events, denial: { reason: decision.reason, rule: decision.rule } }
  if (decision.decision === "pending") {
    return { events, denial: { reason: `a message cannot wait for approval: ${decision.reason}`, rule: decision.rule } }
  }
  return { events, denial: undefined }
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
  state: RuntimeState,
  request: { readonly agent_id: string; readonly tool: string; readonly substituted: ReadonlyArray<string> },
  now: number,
  context?: AuditContext
): ReadonlyArray<GatewayEvent> => [
  auditor(state, now)({
    agent_id: request.agent_id,
    action: `tool_call:${request.tool}`,
    decision: "dispatched",
    reason: request.substituted.length === 0
      ? "dispatched"
      : `dispatched with ${request.substituted.map((name) => `\${${name}}`).join(", ")} injected`,
    context
  })
]
