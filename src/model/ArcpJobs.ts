/**
 * ARCP jobs (PROTOCOLS.md §3): each job's agent, lease, budget, status and
 * history, its audience (the session that submitted it and those that
 * subscribed), and the idempotency keys of the submits, each kept for its
 * window. Evolving a job's event stamps it into the buffer of every session
 * of its audience (`ArcpSessions.ts`), in log order: that is the
 * session-scoped, gap-free `event_seq`.
 *
 * The decisions of a job's life are here; what an agent emits while it runs
 * is decided in `ArcpEmit.ts`.
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex } from "@noble/hashes/utils.js"
import { isTerminal, type JobOutcome, type JobStatus, type LeaseRequest, type Submit } from "../schema/Arcp.js"
import type {
  ArcpJobAccepted,
  ArcpJobCancelRequested,
  ArcpJobEvent,
  ArcpJobFinished,
  ArcpJobRejected,
  ArcpJobSubscribed,
  ArcpJobUnsubscribed
} from "../schema/ArcpEvents.js"
import type { Event } from "../schema/Event.js"
import type { Json } from "../schema/Json.js"
import { type LeaseGrants, leaseNamespaces } from "../schema/Lease.js"
import { type ArcpRefusal, arcpRefusal, type ArcpSession, sessionsSnapshot, stamp, type Stamped } from "./ArcpSessions.js"
import { evaluateAction } from "./Checks.js"
import { auditor } from "./Governance.js"
import { accept, type Decision, refuse, type RuntimeState, type Slice, sortedRecord } from "./State.js"

export interface ArcpJob {
  readonly accepted: ArcpJobAccepted
  readonly ordinal: number
  status: JobStatus
  outcome: JobOutcome | undefined
  cancel_requested: boolean
  /** Budget left per currency. */
  readonly remaining: Map<string, number>
  /** Every message of the job, with the seq its submitting session gave it. */
  readonly history: Array<{ readonly ownerSeq: number; readonly entry: Stamped }>
  /** The newest seq the submitting session gave one of its messages. */
  lastOwnerSeq: number
  /** Sessions other than the submitting one that receive its messages. */
  readonly audience: Set<string>
}

export interface ArcpJobsState {
  /** Every job, in the order accepted. */
  readonly arcpJobs: Map<string, ArcpJob>
  /** Finished jobs whose history is kept, oldest first: past `maxKeptHistories`, the oldest history goes. */
  readonly arcpFinished: Array<string>
  /** `key_id\0idempotency_key` → the job, in the order they were made (the oldest first, for expiry). */
  readonly arcpKeys: Map<string, { readonly job_id: string; readonly params_hash: string; readonly at: number }>
  arcpOrdinal: number
}

/** How long an idempotency key answers with its first job; a finished job is forgotten after as long. */
export const idempotencyWindowMs = 24 * 3_600_000

/**
 * How many finished jobs keep their history for `job.subscribe` with history
 * (a session's own buffer keeps what it has not acknowledged, whatever this
 * says): memory is bounded by this, not by the runtime's life.
 */
export const maxKeptHistories = 1_000

export const agentLabel = (job: ArcpJob) => `${job.accepted.agent}@${job.accepted.version}`

/** The lease as the wire shows it: capability → globs. */
export const leaseOf = (job: ArcpJob): Record<string, ReadonlyArray<string>> => ({ ...job.accepted.grants })

export const isoOf = (ms: number) => new Date(ms).toISOString()

/** `job.accepted`'s payload: the same for every answer about the job (an idempotent submit answers with it again). */
export const acceptedPayload = (job: ArcpJob) => {
  const a = job.accepted
  return {
    job_id: a.job_id,
    agent: agentLabel(job),
    lease: leaseOf(job),
    ...(a.expires_at === undefined ? {} : { lease_constraints: { expires_at: isoOf(a.expires_at) } }),
    ...(a.budget === undefined ? {} : { budget: a.budget }),
    accepted_at: isoOf(a.at),
    ...(a.parent_job_id === undefined ? {} : { parent_job_id: a.parent_job_id }),
    ...(a.delegate_id === undefined ? {} : { delegate_id: a.delegate_id }),
    ...(a.trace_id === undefined ? {} : { trace_id: a.trace_id })
  }
}

/** May this session see the job? Its own principal's jobs; an operator's sessions see every job. */
export const visibleTo = (session: ArcpSession, job: ArcpJob) => session.role === "operator" || session.key_id === job.accepted.key_id

// ---------------------------------------------------------------------------
// Leases and budgets from a request

const knownNamespaces: ReadonlySet<string> = new Set(leaseNamespaces)
const amount = /^([A-Za-z][A-Za-z0-9_.-]*):(\d+(?:\.\d+)?)$/

/** The lease grants and budget a request asks for, or why it cannot be granted. */
export const parseLeaseRequest = (
  request: LeaseRequest | undefined
): { readonly grants: LeaseGrants; readonly budget: Record<string, number> | undefined } | ArcpRefusal => {
  const grants: Record<string, ReadonlyArray<string>> = {}
  let budget: Record<string, number> | undefined
  for (const [namespace, patterns] of Object.entries(request ?? {})) {
    if (!knownNamespaces.has(namespace)) return arcpRefusal("INVALID_REQUEST", `unknown lease capability ${namespace}`)
    grants[namespace] = [...patterns]
    if (namespace === "cost.budget") {
      budget = {}
      for (const pattern of patterns) {
        const match = amount.exec(pattern)
        if (match === null) return arcpRefusal("INVALID_REQUEST", `cost.budget ${pattern} is not CURRENCY:AMOUNT`)
        budget[match[1]] = (budget[match[1]] ?? 0) + Number(match[2])
      }
    }
  }
  return { grants: grants as LeaseGrants, budget }
}

/** A stable digest of a submit's parameters, whatever the order of keys. */
export const paramsHash = (submit: Submit): string => {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === "object"
      ? Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]))
      : value
  const { idempotency_key: _key, ...params } = submit
  return bytesToHex(sha256(new TextEncoder().encode(JSON.stringify(canonical(params)))))
}

// ---------------------------------------------------------------------------
// Submit

/** What the runtime knows of an agent, from its catalogue (code, not the log). */
export interface AgentVersions {
  readonly versions: ReadonlyArray<string>
  readonly default: string
  /** The versions only remote agents serve (`model/ArcpRemote.ts`): their jobs go through the router. */
  readonly remote?: ReadonlySet<string> | undefined
}

export type SubmitAnswer =
  | { readonly _tag: "Accepted"; readonly job_id: string }
  | { readonly _tag: "Existing"; readonly job_id: string }
  | { readonly _tag: "Rejected"; readonly job_id: string }

export interface SubmitRequest {
  readonly session_id: string
  readonly job_id: string
  readonly lease_id: string
  readonly submit: Submit
  readonly trace_id: string | undefined
  readonly parent?: { readonly job_id: string; readonly delegate_id: string } | undefined
  /** The most jobs a session may have running; a submit past it is a session error (a delegation is never refused for it). */
  readonly maxRunning?: number | undefined
}

/**
 * A submit: answered with its job, an existing one (the same idempotency key
 * and parameters), or a rejection recorded as the session's `job.error`
 * under the fresh job id (an unknown agent, a lease the policies refuse, a
 * key reused with other parameters). An unknown version is a session error,
 * recorded nowhere. Submits of one session are decided in arrival order.
 */
export const decideSubmit = (
  state: RuntimeState,
  request: SubmitRequest,
  catalog: (name: string) => AgentVersions | undefined,
  now: number
): Decision<SubmitAnswer, ArcpRefusal> => {
  const session = state.arcpSessions.get(request.session_id)
  if (session === undefined) return refuse(arcpRefusal("INVALID_REQUEST", `no session ${request.session_id}`))
  const { submit } = request
  const reject = (code: ArcpRejectionCode, message: string, extra: ReadonlyArray<Event> = []) =>
    accept<SubmitAnswer>([
      ...extra,
      {
        _tag: "ArcpJobRejected",
        job_id: request.job_id,
        session_id: session.session_id,
        agent: submit.agent,
        code,
        message,
        ...(request.trace_id === undefined ? {} : { trace_id: request.trace_id }),
        at: now
      }
    ], { _tag: "Rejected", job_id: request.job_id })
  const hash = submit.idempotency_key === undefined ? undefined : paramsHash(submit)
  if (submit.idempotency_key !== undefined) {
    const known = state.arcpKeys.get(`${session.key_id}\u0000${submit.idempotency_key}`)
    if (known !== undefined && now < known.at + idempotencyWindowMs && state.arcpJobs.has(known.job_id)) {
      return known.params_hash === hash
        ? accept([], { _tag: "Existing", job_id: known.job_id })
        : reject("DUPLICATE_KEY", `idempotency key ${submit.idempotency_key} was used for job ${known.job_id} with other parameters`)
    }
  }
  if (request.parent === undefined && request.maxRunning !== undefined && session.running >= request.maxRunning) {
    return refuse(arcpRefusal("INVALID_REQUEST", `this session has ${session.running} jobs running, the most it may: submit again when one ends`))
  }
  const [name, version] = submit.agent.split("@") as [string, string | undefined]
  const agent = catalog(name)
  if (agent === undefined) return reject("AGENT_NOT_AVAILABLE", `no agent ${name}`)
  if (version !== undefined && !agent.versions.includes(version)) {
    return refuse(arcpRefusal("AGENT_VERSION_NOT_AVAILABLE", `agent ${name} has no version ${version} (has ${agent.versions.join(", ")})`))
  }
  const lease = parseLeaseRequest(submit.lease_request)
  if ("code" in lease) return reject("INVALID_REQUEST", lease.message)
  let expires_at: number | undefined
  if (submit.lease_constraints?.expires_at !== undefined) {
    expires_at = Date.parse(submit.lease_constraints.expires_at)
    if (!(expires_at > now)) return reject("INVALID_REQUEST", "lease_constraints.expires_at must be in the future")
  }
  // The policies narrow the lease: a tool they deny is not granted; a lease whose every tool is denied is refused.
  const audit = auditor(state, now)
  const tools = lease.grants["tool.call"]
  let grants = lease.grants
  const audits: Array<Event> = []
  if (tools !== undefined && tools.length > 0 && state.policyList.length > 0) {
    const allowed = tools.filter((tool) => {
      if (tool.includes("*")) return true
      const verdict = evaluateAction(state, { kind: "tool_call", agent_id: name, tool, args: {} }, now)
      if (verdict.decision !== "deny") return true
      audits.push(audit({
        agent_id: name,
        action: `arcp.lease:tool.call:${tool}`,
        decision: "deny",
        reason: verdict.reason,
        rule: verdict.rule
      }))
      return false
    })
    if (allowed.length === 0) return reject("PERMISSION_DENIED", "the policies grant none of the tools the lease asks for", audits)
    grants = { ...grants, "tool.call": allowed }
  }
  const parent = request.parent === undefined ? undefined : state.arcpJobs.get(request.parent.job_id)
  const accepted: ArcpJobAccepted = {
    _tag: "ArcpJobAccepted",
    job_id: request.job_id,
    session_id: session.session_id,
    key_id: session.key_id,
    agent: name,
    version: version ?? agent.default,
    input: submit.input as Json,
    lease_id: request.lease_id,
    grants,
    ...(expires_at === undefined ? {} : { expires_at }),
    ...(lease.budget === undefined ? {} : { budget: lease.budget }),
    ...(submit.idempotency_key === undefined ? {} : { idempotency_key: submit.idempotency_key, params_hash: hash }),
    ...(submit.max_runtime_sec === undefined ? {} : { max_runtime_sec: submit.max_runtime_sec }),
    ...(request.trace_id === undefined ? {} : { trace_id: request.trace_id }),
    ...(request.parent === undefined ? {} : { parent_job_id: request.parent.job_id, delegate_id: request.parent.delegate_id }),
    ...(agent.remote?.has(version ?? agent.default) === true ? { remote: true as const } : {}),
    at: now
  }
  return accept([
    ...audits,
    {
      _tag: "LeaseGranted",
      lease: {
        lease_id: request.lease_id,
        agent_id: name,
        grants,
        ...(expires_at === undefined ? {} : { expires_at }),
        ...(parent === undefined ? {} : { parent_lease_id: parent.accepted.lease_id })
      },
      at: now
    },
    audit({
      agent_id: name,
      action: `arcp.job.submit:${request.job_id}`,
      decision: "allow",
      reason: `job ${request.job_id} accepted for ${name}@${accepted.version}`,
      rule: "lease granted",
      ...(request.trace_id === undefined ? {} : { trace_id: request.trace_id })
    }),
    accepted
  ], { _tag: "Accepted", job_id: request.job_id })
}

export type ArcpRejectionCode = ArcpJobRejected["code"]

// ---------------------------------------------------------------------------
// Cancel, subscribe, finish

/** Only the session that submitted a job may cancel it, while it runs. */
export const decideCancel = (
  state: RuntimeState,
  request: { readonly session_id: string; readonly job_id: string; readonly reason: string | undefined },
  now: number
): Decision<void, ArcpRefusal> => {
  const session = state.arcpSessions.get(request.session_id)
  const job = state.arcpJobs.get(request.job_id)
  if (session === undefined || job === undefined || !visibleTo(session, job)) {
    return refuse(arcpRefusal("JOB_NOT_FOUND", `no job ${request.job_id}`))
  }
  if (job.accepted.session_id !== session.session_id) {
    return refuse(arcpRefusal("PERMISSION_DENIED", "only the session that submitted a job may cancel it"))
  }
  if (isTerminal(job.status)) return refuse(arcpRefusal("INVALID_REQUEST", `job ${request.job_id} has finished (${job.status})`))
  if (job.cancel_requested) return accept([])
  return accept([{
    _tag: "ArcpJobCancelRequested",
    job_id: request.job_id,
    session_id: request.session_id,
    ...(request.reason === undefined ? {} : { reason: request.reason }),
    at: now
  }])
}

export const decideSubscribe = (
  state: RuntimeState,
  request: { readonly session_id: string; readonly job_id: string; readonly from_event_seq: number | undefined },
  now: number
): Decision<ArcpJob, ArcpRefusal> => {
  const session = state.arcpSessions.get(request.session_id)
  const job = state.arcpJobs.get(request.job_id)
  if (session === undefined || job === undefined) return refuse(arcpRefusal("JOB_NOT_FOUND", `no job ${request.job_id}`))
  if (!visibleTo(session, job)) return refuse(arcpRefusal("PERMISSION_DENIED", `this principal may not observe job ${request.job_id}`))
  return accept([{
    _tag: "ArcpJobSubscribed",
    session_id: request.session_id,
    job_id: request.job_id,
    ...(request.from_event_seq === undefined ? {} : { from_event_seq: request.from_event_seq }),
    at: now
  }], job)
}

export const decideUnsubscribe = (state: RuntimeState, session_id: string, job_id: string, now: number): Decision<void> =>
  state.arcpSessions.get(session_id)?.subscriptions.has(job_id) === true
    ? accept([{ _tag: "ArcpJobUnsubscribed", session_id, job_id, at: now }])
    : accept([])

/** A job's end; nothing once it has ended (the first end wins). */
export const decideFinish = (state: RuntimeState, job_id: string, outcome: JobOutcome, now: number): Decision<boolean> => {
  const job = state.arcpJobs.get(job_id)
  return job === undefined || isTerminal(job.status) ? accept([], false) : accept([{ _tag: "ArcpJobFinished", job_id, outcome, at: now }], true)
}

/** After a restart, the in-process jobs that were running have lost their handler's fiber: they fail, retryably. */
export const decideFailRunning = (state: RuntimeState, now: number): ReadonlyArray<Event> => {
  const events: Array<Event> = []
  for (const job of state.arcpJobs.values()) {
    // A remote agent's job lives on in the router: its delivery outlasts the restart.
    if (!isTerminal(job.status) && job.accepted.remote !== true) {
      events.push({
        _tag: "ArcpJobFinished",
        job_id: job.accepted.job_id,
        outcome: {
          final_status: "error",
          code: "INTERNAL_ERROR",
          message: "the runtime restarted while the job ran",
          retryable: true
        },
        at: now
      })
    }
  }
  return events
}

// ---------------------------------------------------------------------------
// Evolve

/** Stamps a job's message into its submitting session and every subscriber. */
const deliver = (state: RuntimeState, job: ArcpJob, entry: Stamped, at: number) => {
  const owner = state.arcpSessions.get(job.accepted.session_id)
  if (owner !== undefined) {
    stamp(owner, entry, at)
    job.lastOwnerSeq = owner.seq
  }
  job.history.push({ ownerSeq: job.lastOwnerSeq, entry })
  for (const session_id of job.audience) {
    const session = state.arcpSessions.get(session_id)
    if (session !== undefined) stamp(session, entry, at)
  }
}

const jobAccepted = (state: RuntimeState, event: ArcpJobAccepted) => {
  const owner = state.arcpSessions.get(event.session_id)
  if (owner !== undefined) owner.running++
  state.arcpJobs.set(event.job_id, {
    accepted: event,
    ordinal: ++state.arcpOrdinal,
    status: "running",
    outcome: undefined,
    cancel_requested: false,
    remaining: new Map(Object.entries(event.budget ?? {})),
    history: [],
    lastOwnerSeq: 0,
    audience: new Set()
  })
  // The oldest jobs first: those finished more than the window ago go.
  for (const [job_id, job] of state.arcpJobs) {
    if (job.accepted.at + idempotencyWindowMs > event.at || !isTerminal(job.status)) break
    state.arcpJobs.delete(job_id)
  }
  if (event.idempotency_key !== undefined) {
    // The oldest keys first: those past their window go as new ones come.
    for (const [key, entry] of state.arcpKeys) {
      if (entry.at + idempotencyWindowMs > event.at) break
      state.arcpKeys.delete(key)
    }
    const key = `${event.key_id}\u0000${event.idempotency_key}`
    state.arcpKeys.delete(key)
    state.arcpKeys.set(key, { job_id: event.job_id, params_hash: event.params_hash ?? "", at: event.at })
  }
}

const jobRejected = (state: RuntimeState, event: ArcpJobRejected) => {
  const session = state.arcpSessions.get(event.session_id)
  if (session === undefined) return
  stamp(session, {
    type: "job.error",
    job_id: event.job_id,
    trace_id: event.trace_id,
    payload: { final_status: "error", code: event.code, message: event.message, retryable: false }
  }, event.at)
}

const jobEvent = (state: RuntimeState, event: ArcpJobEvent) => {
  const job = state.arcpJobs.get(event.job_id)
  if (job === undefined) return
  if (event.kind === "metric") {
    const body = event.body as { readonly name?: unknown; readonly value?: unknown; readonly unit?: unknown }
    if (
      typeof body.name === "string" && body.name.startsWith("cost.") && body.name !== "cost.budget.remaining" &&
      typeof body.unit === "string" && typeof body.value === "number" && body.value >= 0 && job.remaining.has(body.unit)
    ) {
      job.remaining.set(body.unit, job.remaining.get(body.unit)! - body.value)
    }
  }
  deliver(state, job, {
    type: "job.event",
    job_id: event.job_id,
    trace_id: job.accepted.trace_id,
    payload: { kind: event.kind, ts: event.ts, body: event.body }
  }, event.at)
}

const jobFinished = (state: RuntimeState, event: ArcpJobFinished) => {
  const job = state.arcpJobs.get(event.job_id)
  if (job === undefined) return
  if (!isTerminal(job.status)) {
    const owner = state.arcpSessions.get(job.accepted.session_id)
    if (owner !== undefined) owner.running--
  }
  job.status = event.outcome.final_status
  job.outcome = event.outcome
  deliver(state, job, {
    type: event.outcome.final_status === "success" ? "job.result" : "job.error",
    job_id: event.job_id,
    trace_id: job.accepted.trace_id,
    payload: event.outcome
  }, event.at)
  state.arcpFinished.push(event.job_id)
  if (state.arcpFinished.length > maxKeptHistories) {
    const oldest = state.arcpJobs.get(state.arcpFinished.shift()!)
    if (oldest !== undefined) oldest.history.length = 0
  }
}

const cancelRequested = (state: RuntimeState, event: ArcpJobCancelRequested) => {
  const job = state.arcpJobs.get(event.job_id)
  if (job !== undefined) job.cancel_requested = true
}

const subscribed = (state: RuntimeState, event: ArcpJobSubscribed) => {
  const session = state.arcpSessions.get(event.session_id)
  const job = state.arcpJobs.get(event.job_id)
  if (session === undefined || job === undefined) return
  if (event.from_event_seq !== undefined) {
    for (const { entry, ownerSeq } of job.history) if (ownerSeq > event.from_event_seq) stamp(session, entry, event.at)
  }
  // The submitting session gets the job's messages already.
  if (job.accepted.session_id !== session.session_id) {
    session.subscriptions.add(event.job_id)
    job.audience.add(event.session_id)
  }
}

const unsubscribed = (state: RuntimeState, event: ArcpJobUnsubscribed) => {
  state.arcpSessions.get(event.session_id)?.subscriptions.delete(event.job_id)
  state.arcpJobs.get(event.job_id)?.audience.delete(event.session_id)
}

export const arcpJobsSlice: Slice<ArcpJobsState> = {
  initial: () => ({ arcpJobs: new Map(), arcpFinished: [], arcpKeys: new Map(), arcpOrdinal: 0 }),
  evolve: {
    ArcpJobAccepted: jobAccepted,
    ArcpJobRejected: jobRejected,
    ArcpJobEvent: jobEvent,
    ArcpJobFinished: jobFinished,
    ArcpJobCancelRequested: cancelRequested,
    ArcpJobSubscribed: subscribed,
    ArcpJobUnsubscribed: unsubscribed
  },
  // Not in the runtime's snapshot, whose shape the HTTP API serves: `arcpSnapshot` has it.
  snapshot: () => ({})
}

/** ARCP's part of the state as plain, comparable data: what a replay must reproduce. */
export const arcpSnapshot = (state: RuntimeState) => ({
  arcp_sessions: sessionsSnapshot(state),
  arcp_jobs: sortedRecord(state.arcpJobs, (job) => ({
    session_id: job.accepted.session_id,
    agent: agentLabel(job),
    status: job.status,
    remaining: Object.fromEntries(job.remaining),
    events: job.history.length,
    last_owner_seq: job.lastOwnerSeq,
    audience: [...job.audience].sort()
  })),
  arcp_keys: sortedRecord(state.arcpKeys, (entry) => entry.job_id),
  arcp_finished: [...state.arcpFinished]
})
