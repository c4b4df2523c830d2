/**
 * The ARCP model, pure: sessions (stamping, ACKs, resume rules, windows),
 * jobs (submit, idempotency and its window, cancel, subscribe) and what a
 * running job emits (lease, budget, delegation, one audit chain), decided
 * and folded by hand with the times given.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { type EmitItem, decideEmit } from "../src/model/ArcpEmit.js"
import { decideCancel, decideFinish, decideSubmit, decideSubscribe, idempotencyWindowMs, type SubmitRequest } from "../src/model/ArcpJobs.js"
import { decideAck, decideDetach, decideExpireSessions, decideOpenSession, decideResume, entryAt } from "../src/model/ArcpSessions.js"
import { decideRegister } from "../src/model/Agents.js"
import { verifyChain } from "../src/model/Audit.js"
import { evolve, initialState, type RuntimeState } from "../src/model/Runtime.js"
import type { Decision } from "../src/model/State.js"
import { defaultRuntimeConfig } from "../src/schema/Config.js"
import type { Event } from "../src/schema/Event.js"

const apply = evolve(defaultRuntimeConfig)
const log: Array<Event> = []
const step = <A, E>(state: RuntimeState, decided: Decision<A, E>): A => {
  if (decided._tag === "Refused") throw new Error(`refused: ${JSON.stringify(decided.error)}`)
  for (const event of decided.events) {
    apply(state, event)
    log.push(event)
  }
  return decided.value
}
const catalog = (name: string) =>
  name === "echo" ? { versions: ["1.0.0", "2.0.0"], default: "1.0.0" } : name === "child" ? { versions: ["1.0.0"], default: "1.0.0" } : undefined

const open = (state: RuntimeState, session_id: string, key_id = "k1", now = 0) =>
  step(state, decideOpenSession(state, {
    session_id,
    key_id,
    role: "agent",
    client: { name: "t", version: "1" },
    features: ["ack"],
    token_hash: `hash-${session_id}`,
    resume_window_sec: 60,
    heartbeat_interval_sec: undefined
  }, now))

let jobs = 0
const submitted = (session_id: string, submit: SubmitRequest["submit"], extra: Partial<SubmitRequest> = {}): SubmitRequest => {
  const n = ++jobs
  return { session_id, job_id: `job_${n}`, lease_id: `lease_${n}`, submit, trace_id: undefined, ...extra }
}
const item = (kind: string, body: any, child?: EmitItem["child"]): EmitItem => ({ kind, body, ts: "2026-01-01T00:00:00.000Z", child })

describe("ARCP sessions", () => {
  it("stamps each job message once per session that gets it, gap-free, and frees what is acknowledged", () => {
    const state = initialState()
    open(state, "s1")
    open(state, "s2")
    const job = step(state, decideSubmit(state, submitted("s1", { agent: "echo", input: 1 }), catalog, 1))
    step(state, decideEmit(state, { job_id: job.job_id, items: [item("log", { level: "info", message: "a" })] }, catalog, 2))
    step(state, decideSubscribe(state, { session_id: "s2", job_id: job.job_id, from_event_seq: 0 }, 3))
    step(state, decideEmit(state, { job_id: job.job_id, items: [item("progress", { current: 1 })] }, catalog, 4))
    step(state, decideFinish(state, job.job_id, { final_status: "success", result: 1 }, 5))
    const s1 = state.arcpSessions.get("s1")!
    const s2 = state.arcpSessions.get("s2")!
    expect([s1.seq, s2.seq]).toEqual([3, 3])
    expect([1, 2, 3].map((seq) => entryAt(s2, seq)?.type)).toEqual(["job.event", "job.event", "job.result"])
    step(state, decideAck(state, "s1", 2, 6))
    expect([s1.floor, s1.buffer.length, entryAt(s1, 2), entryAt(s1, 3)?.type]).toEqual([2, 1, undefined, "job.result"])
    // An ACK past what was stamped counts up to it; one already covered records nothing.
    step(state, decideAck(state, "s1", 99, 7))
    expect(s1.floor).toBe(3)
    expect(decideAck(state, "s1", 1, 8).events).toEqual([])
  })

  it("resumes only with the current token, the same principal, within the window and the buffer", () => {
    const state = initialState()
    open(state, "s1", "k1", 0)
    const resume = (over: Partial<Parameters<typeof decideResume>[1]>, now: number) =>
      decideResume(state, { session_id: "s1", key_id: "k1", presented_hash: "hash-s1", new_hash: "next", last_event_seq: 0, ...over }, now)
    const code = (decided: ReturnType<typeof resume>) => decided._tag === "Refused" ? decided.error.code : "ok"
    step(state, decideDetach(state, "s1", "closed", 1_000))
    expect(code(resume({ presented_hash: "wrong" }, 2_000))).toBe("UNAUTHENTICATED")
    expect(code(resume({ key_id: "k2" }, 2_000))).toBe("UNAUTHENTICATED")
    expect(code(resume({ last_event_seq: 1 }, 2_000))).toBe("INVALID_REQUEST")
    // The window runs from the detach: 60 s.
    expect(code(resume({}, 60_999))).toBe("ok")
    expect(code(resume({}, 61_000))).toBe("RESUME_WINDOW_EXPIRED")
    expect(decideExpireSessions(state, 60_999).events).toEqual([])
    step(state, decideExpireSessions(state, 61_000))
    expect(state.arcpSessions.has("s1")).toBe(false)
  })

  it("rotates the token on a resume: the old one no longer opens the session", () => {
    const state = initialState()
    open(state, "s1")
    step(state, decideResume(state, { session_id: "s1", key_id: "k1", presented_hash: "hash-s1", new_hash: "second", last_event_seq: 0 }, 1))
    const again = decideResume(state, { session_id: "s1", key_id: "k1", presented_hash: "hash-s1", new_hash: "third", last_event_seq: 0 }, 2)
    expect(again._tag === "Refused" && again.error.code).toBe("UNAUTHENTICATED")
  })
})

describe("ARCP jobs", () => {
  it("answers a repeated key with its job within the window, and takes it as new after", () => {
    const state = initialState()
    open(state, "s1")
    const first = step(state, decideSubmit(state, submitted("s1", { agent: "echo", input: 1, idempotency_key: "k" }), catalog, 10))
    const repeat = step(state, decideSubmit(state, submitted("s1", { input: 1, agent: "echo", idempotency_key: "k" }), catalog, 20))
    expect(repeat).toEqual({ _tag: "Existing", job_id: first.job_id })
    const conflict = decideSubmit(state, submitted("s1", { agent: "echo", input: 2, idempotency_key: "k" }), catalog, 30)
    expect(conflict.events.find((event) => event._tag === "ArcpJobRejected")).toMatchObject({ code: "DUPLICATE_KEY" })
    step(state, decideFinish(state, first.job_id, { final_status: "success" }, 40))
    const later = step(state, decideSubmit(state, submitted("s1", { agent: "echo", input: 2, idempotency_key: "k" }), catalog, 10 + idempotencyWindowMs))
    expect(later._tag).toBe("Accepted")
    // The first job, finished more than a window ago, is forgotten.
    expect(state.arcpJobs.has(first.job_id)).toBe(false)
  })

  it("rejects into the session's stream: unknown agent, bad lease; an unknown version is a session error", () => {
    const state = initialState()
    open(state, "s1")
    step(state, decideSubmit(state, submitted("s1", { agent: "ghost", input: null }), catalog, 1))
    step(state, decideSubmit(state, submitted("s1", { agent: "echo", input: null, lease_request: { "fs.erase": ["/"] } }), catalog, 2))
    step(state, decideSubmit(state, submitted("s1", { agent: "echo", input: null, lease_constraints: { expires_at: "1970-01-01T00:00:00Z" } }), catalog, 3))
    const s1 = state.arcpSessions.get("s1")!
    expect([1, 2, 3].map((seq) => (entryAt(s1, seq)?.payload as { code: string }).code)).toEqual([
      "AGENT_NOT_AVAILABLE",
      "INVALID_REQUEST",
      "INVALID_REQUEST"
    ])
    const version = decideSubmit(state, submitted("s1", { agent: "echo@3.0.0", input: null }), catalog, 4)
    expect(version._tag === "Refused" && version.error.code).toBe("AGENT_VERSION_NOT_AVAILABLE")
  })

  it("lets only the submitting session cancel, once, a job that runs; others see JOB_NOT_FOUND or PERMISSION_DENIED", () => {
    const state = initialState()
    open(state, "s1", "k1")
    open(state, "s2", "k1")
    open(state, "s3", "k2")
    const job = step(state, decideSubmit(state, submitted("s1", { agent: "echo", input: null }), catalog, 1))
    const code = (decided: Decision<unknown, { code: string }>) => decided._tag === "Refused" ? decided.error.code : "ok"
    expect(code(decideCancel(state, { session_id: "s3", job_id: job.job_id, reason: undefined }, 2))).toBe("JOB_NOT_FOUND")
    expect(code(decideCancel(state, { session_id: "s2", job_id: job.job_id, reason: undefined }, 2))).toBe("PERMISSION_DENIED")
    expect(code(decideSubscribe(state, { session_id: "s3", job_id: job.job_id, from_event_seq: undefined }, 2))).toBe("PERMISSION_DENIED")
    step(state, decideCancel(state, { session_id: "s1", job_id: job.job_id, reason: "stop" }, 3))
    expect(decideCancel(state, { session_id: "s1", job_id: job.job_id, reason: undefined }, 4).events).toEqual([])
    step(state, decideFinish(state, job.job_id, { final_status: "cancelled", code: "CANCELLED", message: "stop", retryable: false }, 5))
    expect(code(decideCancel(state, { session_id: "s1", job_id: job.job_id, reason: undefined }, 6))).toBe("INVALID_REQUEST")
    expect(decideFinish(state, job.job_id, { final_status: "success" }, 7).events).toEqual([])
  })
})

describe("ARCP emits", () => {
  const running = (lease_request: Record<string, ReadonlyArray<string>>, expires_at?: string) => {
    const state = initialState()
    open(state, "s1")
    const job = step(state, decideSubmit(state, submitted("s1", {
      agent: "echo",
      input: null,
      lease_request,
      ...(expires_at === undefined ? {} : { lease_constraints: { expires_at } })
    }), catalog, 1))
    return { state, job_id: job.job_id }
  }

  it("refuses a tool call the lease does not cover, and ends the job with LEASE_EXPIRED at its expiry", () => {
    const { job_id, state } = running({ "tool.call": ["search.*"] }, "1970-01-01T00:00:10Z")
    const answers = step(state, decideEmit(state, { job_id, items: [item("tool_call", { tool: "search.web", call_id: "1" }), item("tool_call", { tool: "rm", call_id: "2" })] }, catalog, 5_000))
    expect(answers.map((answer) => Either.isRight(answer) ? "ok" : answer.left.code)).toEqual(["ok", "PERMISSION_DENIED"])
    const late = step(state, decideEmit(state, { job_id, items: [item("tool_call", { tool: "search.web", call_id: "3" })] }, catalog, 10_000))
    expect(Either.isLeft(late[0]) && late[0].left.code).toBe("LEASE_EXPIRED")
    expect(state.arcpJobs.get(job_id)!.outcome).toMatchObject({ final_status: "error", code: "LEASE_EXPIRED", retryable: false })
  })

  it("charges costs to the budget, reports what is left, and ends the job when it is spent", () => {
    const { job_id, state } = running({ "cost.budget": ["USD:1.5"], "tool.call": ["*"] })
    step(state, decideEmit(state, { job_id, items: [item("metric", { name: "cost.llm", value: 1, unit: "USD" })] }, catalog, 2))
    const negative = step(state, decideEmit(state, { job_id, items: [item("metric", { name: "cost.llm", value: -1, unit: "USD" })] }, catalog, 3))
    expect(Either.isLeft(negative[0]) && negative[0].left.code).toBe("INVALID_REQUEST")
    step(state, decideEmit(state, { job_id, items: [item("metric", { name: "cost.llm", value: 0.5, unit: "USD" })] }, catalog, 4))
    expect(state.arcpJobs.get(job_id)!.remaining.get("USD")).toBe(0)
    const call = step(state, decideEmit(state, { job_id, items: [item("tool_call", { tool: "x", call_id: "1" })] }, catalog, 5))
    expect(Either.isLeft(call[0]) && call[0].left.code).toBe("BUDGET_EXHAUSTED")
    expect(state.arcpJobs.get(job_id)!.outcome).toMatchObject({ code: "BUDGET_EXHAUSTED", retryable: false })
  })

  it("delegates only a subset of the lease and of the budget left; every decision is in one intact audit chain", () => {
    log.length = 0
    const { job_id, state } = running({ "agent.delegate": ["child"], "fs.read": ["/data/**"], "cost.budget": ["USD:2"] })
    const ids = (n: number) => ({ job_id: `child_${n}`, lease_id: `child_lease_${n}` })
    const answers = step(state, decideEmit(state, {
      job_id,
      items: [
        item("delegate", { delegate_id: "d1", agent: "child", input: null, lease_request: { "fs.read": ["/data/a/*"] } }, ids(1)),
        item("delegate", { delegate_id: "d2", agent: "child", input: null, lease_request: { "fs.read": ["/etc/*"] } }, ids(2)),
        item("delegate", { delegate_id: "d3", agent: "child", input: null, lease_request: { "cost.budget": ["USD:3"] } }, ids(3)),
        item("delegate", { delegate_id: "d4", agent: "echo", input: null }, ids(4)),
        item("tool_call", { tool: "anything", call_id: "c" })
      ]
    }, catalog, 2))
    expect(answers.map((answer) => Either.isRight(answer) ? answer.right.child_job_id : answer.left.code)).toEqual([
      "child_1",
      "LEASE_SUBSET_VIOLATION",
      "LEASE_SUBSET_VIOLATION",
      "PERMISSION_DENIED",
      "PERMISSION_DENIED"
    ])
    expect(state.arcpJobs.get("child_1")!.accepted).toMatchObject({ parent_job_id: job_id, delegate_id: "d1" })
    const audits = log.flatMap((event, offset) => event._tag === "AuditRecorded" ? [{ offset: offset + 1, record: event.record }] : [])
    expect(audits.length).toBeGreaterThanOrEqual(6)
    expect(verifyChain(audits)).toEqual({ ok: true, count: audits.length })
  })
})

describe("remote ARCP agents' reserved id", () => {
  it("refuses to register an agent as the ARCP endpoint, which sends remote agents their jobs", () => {
    const state = initialState()
    const decision = decideRegister(state, defaultRuntimeConfig, { agent_id: "arcp", name: "impostor", capabilities: [] } as never, 0)
    expect(decision._tag).toBe("Refused")
  })
})
