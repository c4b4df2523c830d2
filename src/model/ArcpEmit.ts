/**
 * What a running job's agent emits (PROTOCOLS.md §3, spec §§8–10), decided
 * against its lease and budget, in order, a batch at a time:
 *
 * - an authority-bearing operation (`tool_call`, `delegate`) at or after the
 *   lease's expiry ends the job with LEASE_EXPIRED; with a budget counter at
 *   or below zero, with BUDGET_EXHAUSTED (both final, never retryable);
 * - a `tool_call` the lease (`tool.call`) or the policies do not cover is
 *   refused to the agent (PERMISSION_DENIED) and not emitted: the agent may go
 *   on without it;
 * - a `metric` named `cost.*` in a budgeted currency charges the job's
 *   counter and the gateway's budgets (`decideCharge`); the runtime then
 *   reports `cost.budget.remaining`; a charge past either ends the job with
 *   BUDGET_EXHAUSTED; a negative cost is refused;
 * - a `delegate` starts a child job whose lease must be a subset of the
 *   parent's (and its budget within what the parent has left):
 *   LEASE_SUBSET_VIOLATION to the agent otherwise.
 *
 * Every decision on authority is in the audit. One decision audits through
 * one chain: `chained` continues the chain after the records already made.
 */
import { Either } from "effect"
import { type ErrorCode, errorObject, eventBodies, isTerminal, type JobOutcome, type Submit } from "../schema/Arcp.js"
import type { AuditRecorded } from "../schema/GatewayEvents.js"
import type { Event } from "../schema/Event.js"
import type { Json } from "../schema/Json.js"
import type { Lease } from "../schema/Lease.js"
import { type ArcpJob, decideSubmit, type AgentVersions, parseLeaseRequest } from "./ArcpJobs.js"
import { decideCharge } from "./Budgets.js"
import { evaluateAction } from "./Checks.js"
import { auditor } from "./Governance.js"
import { checkDelegation, checkLease } from "./Leases.js"
import { accept, type Decision, type RuntimeState } from "./State.js"

/** One thing an agent emits, with its time and, for a delegate, the ids its child will take. */
export interface EmitItem {
  readonly kind: string
  readonly body: Json
  readonly ts: string
  readonly child?: { readonly job_id: string; readonly lease_id: string } | undefined
}

/** Why an item was not emitted, as the agent learns it. */
export interface EmitRefusal {
  readonly code: ErrorCode
  readonly message: string
}

/** Each item's answer: emitted (a delegate with its child job's id), or refused. */
export type EmitAnswer = ReadonlyArray<Either.Either<{ readonly child_job_id?: string }, EmitRefusal>>

/** Whether an item must be decided alone: a cost charge reads the gateway's counters as the state has them. */
export const isCharge = (item: EmitItem) =>
  item.kind === "metric" && typeof (item.body as { name?: unknown }).name === "string" &&
  ((item.body as { name: string }).name).startsWith("cost.")

/** The auditor that continues the chain after the records in `events`. */
const chained = (state: RuntimeState, events: ReadonlyArray<Event>, now: number) => {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]
    if (event._tag === "AuditRecorded") return auditor({ ...state, auditHead: (event as AuditRecorded).record.hash }, now)
  }
  return auditor(state, now)
}

/** The state as the events so far leave the audit chain: for a decision made after them in the same batch. */
const afterAudits = (state: RuntimeState, events: ReadonlyArray<Event>): RuntimeState => {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]
    if (event._tag === "AuditRecorded") return { ...state, auditHead: (event as AuditRecorded).record.hash }
  }
  return state
}

const refusal = (code: ErrorCode, message: string) => Either.left<EmitRefusal>({ code, message })
const emitted = Either.right({})

export const decideEmit = (
  state: RuntimeState,
  request: { readonly job_id: string; readonly items: ReadonlyArray<EmitItem> },
  catalog: (name: string) => AgentVersions | undefined,
  now: number
): Decision<EmitAnswer> => {
  const job = state.arcpJobs.get(request.job_id)
  const events: Array<Event> = []
  const answers: Array<Either.Either<{ readonly child_job_id?: string }, EmitRefusal>> = []
  if (job === undefined || isTerminal(job.status)) {
    return accept([], request.items.map(() => ({ _tag: "Left", left: { code: "INVALID_REQUEST", message: "the job has ended" } }) as never))
  }
  const name = job.accepted.agent
  const remaining = new Map(job.remaining)
  let ended = false
  const end = (code: ErrorCode, message: string, decision: string) => {
    events.push(chained(state, events, now)({ agent_id: name, action: `arcp.job:${job.accepted.job_id}`, decision, reason: message }))
    const outcome: JobOutcome = { final_status: "error", ...errorObject(code, message) }
    events.push({ _tag: "ArcpJobFinished", job_id: job.accepted.job_id, outcome, at: now })
    ended = true
  }
  const event = (item: EmitItem) => events.push({ _tag: "ArcpJobEvent", job_id: job.accepted.job_id, kind: item.kind, ts: item.ts, body: item.body, at: now })
  /** The checks before any operation through the lease: the code that ended the job, if they fail. */
  const authorityFault = (): ErrorCode | undefined => {
    if (job.accepted.expires_at !== undefined && now >= job.accepted.expires_at) {
      end("LEASE_EXPIRED", `the job's lease ${job.accepted.lease_id} expired at ${new Date(job.accepted.expires_at).toISOString()}`, "lease_expired")
      return "LEASE_EXPIRED"
    }
    for (const [currency, left] of remaining) {
      if (left <= 0) {
        end("BUDGET_EXHAUSTED", `the job's ${currency} budget is spent`, "budget_exhausted")
        return "BUDGET_EXHAUSTED"
      }
    }
    return undefined
  }
  const lease: Lease = {
    lease_id: job.accepted.lease_id,
    agent_id: name,
    grants: job.accepted.grants,
    ...(job.accepted.expires_at === undefined ? {} : { expires_at: job.accepted.expires_at })
  }
  for (const item of request.items) {
    if (ended) {
      answers.push(refusal("INVALID_REQUEST", "the job has ended"))
      continue
    }
    if (item.kind === "tool_call") {
      const fault = authorityFault()
      if (fault !== undefined) {
        answers.push(refusal(fault, "the job has ended"))
        continue
      }
      const tool = (item.body as { tool: string }).tool
      const audit = chained(state, events, now)
      const checked = checkLease(lease, "tool.call", tool, now)
      if (Either.isLeft(checked)) {
        events.push(audit({ agent_id: name, action: `tool_call:${tool}`, decision: "lease_denied", reason: checked.left.message, rule: `lease ${lease.lease_id}` }))
        answers.push(refusal("PERMISSION_DENIED", checked.left.message))
        continue
      }
      const verdict = state.policyList.length === 0
        ? { decision: "allow" as const, reason: "within the job's lease", rule: `lease ${lease.lease_id}` }
        : evaluateAction(state, { kind: "tool_call", agent_id: name, tool, args: (item.body as { args?: unknown }).args ?? {} }, now)
      events.push(audit({ agent_id: name, action: `tool_call:${tool}`, decision: verdict.decision === "deny" ? "deny" : "allow", reason: verdict.reason, rule: verdict.rule }))
      if (verdict.decision === "deny") {
        answers.push(refusal("PERMISSION_DENIED", verdict.reason))
        continue
      }
      event(item)
      answers.push(emitted)
    } else if (item.kind === "metric" && isCharge(item)) {
      const body = item.body as { name: string; value: number; unit?: string }
      if (body.value < 0) {
        answers.push(refusal("INVALID_REQUEST", "a cost must not be negative"))
        continue
      }
      event(item)
      answers.push(emitted)
      if (body.unit === undefined || !remaining.has(body.unit) || body.name === "cost.budget.remaining") continue
      const charged = decideCharge(afterAudits(state, events), { agent_id: name, currency: body.unit, amount: body.value }, now)
      events.push(...charged.events)
      if (charged._tag === "Refused") {
        end("BUDGET_EXHAUSTED", charged.error.message, "budget_exhausted")
        continue
      }
      const left = remaining.get(body.unit)! - body.value
      remaining.set(body.unit, left)
      events.push({
        _tag: "ArcpJobEvent",
        job_id: job.accepted.job_id,
        kind: "metric",
        ts: item.ts,
        body: { name: "cost.budget.remaining", value: left, unit: body.unit },
        at: now
      })
      if (left < 0) end("BUDGET_EXHAUSTED", `the job's ${body.unit} budget is spent: ${-left} over`, "budget_exhausted")
    } else if (item.kind === "delegate") {
      const fault = authorityFault()
      if (fault !== undefined) {
        answers.push(refusal(fault, "the job has ended"))
        continue
      }
      const answer = delegate(afterAudits(state, events), job, lease, remaining, item, catalog, now)
      events.push(...answer.events)
      answers.push(answer.answer)
    } else {
      event(item)
      answers.push(emitted)
    }
  }
  return accept(events, answers)
}

const delegate = (
  state: RuntimeState,
  job: ArcpJob,
  parentLease: Lease,
  remaining: ReadonlyMap<string, number>,
  item: EmitItem,
  catalog: (name: string) => AgentVersions | undefined,
  now: number
): { readonly events: ReadonlyArray<Event>; readonly answer: Either.Either<{ readonly child_job_id?: string }, EmitRefusal> } => {
  const body = item.body as unknown as typeof eventBodies.delegate.Type
  const audit = auditor(state, now)
  const name = job.accepted.agent
  const child = item.child
  if (child === undefined) return { events: [], answer: refusal("INTERNAL_ERROR", "a delegate needs ids for its child") }
  const childName = body.agent.split("@")[0]
  const allowed = checkLease(parentLease, "agent.delegate", childName, now)
  if (Either.isLeft(allowed)) {
    return {
      events: [audit({ agent_id: name, action: `agent.delegate:${childName}`, decision: "lease_denied", reason: allowed.left.message, rule: `lease ${parentLease.lease_id}` })],
      answer: refusal("PERMISSION_DENIED", allowed.left.message)
    }
  }
  const parsed = parseLeaseRequest(body.lease_request)
  if ("code" in parsed) return { events: [], answer: refusal("INVALID_REQUEST", parsed.message) }
  const expiresText = body.lease_constraints?.expires_at
  // A child without an expiry inherits its parent's (spec §9.4).
  const expires_at = expiresText === undefined ? parentLease.expires_at : Date.parse(expiresText)
  const childLease: Lease = {
    lease_id: child.lease_id,
    agent_id: childName,
    grants: parsed.grants,
    ...(expires_at === undefined ? {} : { expires_at })
  }
  const violation = (reason: string) => ({
    events: [audit({ agent_id: name, action: `lease.delegate:${parentLease.lease_id}`, decision: "lease_denied", reason, rule: `lease ${parentLease.lease_id}` })],
    answer: refusal("LEASE_SUBSET_VIOLATION", reason)
  })
  const subset = checkDelegation(parentLease, childLease, now)
  if (Either.isLeft(subset)) return violation(subset.left.message)
  for (const [currency, amount] of Object.entries(parsed.budget ?? {})) {
    const left = remaining.get(currency)
    if (left === undefined || amount > left) {
      return violation(`the child's ${currency} budget ${amount} exceeds what the parent has left (${left ?? 0})`)
    }
  }
  const submit: Submit = {
    agent: body.agent,
    input: body.input,
    ...(body.lease_request === undefined ? {} : { lease_request: body.lease_request }),
    ...(expires_at === undefined ? {} : { lease_constraints: { expires_at: new Date(expires_at).toISOString() } })
  }
  const decided = decideSubmit(
    state,
    {
      session_id: job.accepted.session_id,
      job_id: child.job_id,
      lease_id: child.lease_id,
      submit,
      trace_id: job.accepted.trace_id,
      parent: { job_id: job.accepted.job_id, delegate_id: body.delegate_id }
    },
    catalog,
    now
  )
  if (decided._tag === "Refused") return { events: [], answer: refusal(decided.error.code, decided.error.message) }
  if (decided.value._tag === "Rejected") {
    const rejected = decided.events.find((event) => event._tag === "ArcpJobRejected")
    return { events: [], answer: refusal(rejected?._tag === "ArcpJobRejected" ? rejected.code : "INVALID_REQUEST", rejected?._tag === "ArcpJobRejected" ? rejected.message : "refused") }
  }
  const delegateEvent: Event = { _tag: "ArcpJobEvent", job_id: job.accepted.job_id, kind: "delegate", ts: item.ts, body: item.body, at: now }
  return { events: [delegateEvent, ...decided.events], answer: Either.right({ child_job_id: child.job_id }) }
}
