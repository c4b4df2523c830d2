/**
 * §3 "Messages" (job.submit → job.accepted → job.event* → job.result |
 * job.error), agent versions, the refusals of a submit (AGENT_NOT_AVAILABLE
 * as job.error with a fresh job id, AGENT_VERSION_NOT_AVAILABLE as
 * session.error, INVALID_REQUEST), submits accepted in arrival order, and
 * the lease, constraints and budget echoed by job.accepted — all with the
 * `echo` agent of `serve --echo-agent`.
 */
import { describe, expect, it } from "vitest"
import { echo, errorsOf, ISO_UTC, JOB_ID, openSession, submit, traceId, useServer } from "./harness.js"

const server = useServer()

describe("the lifecycle of a job", () => {
  it("echo: job.accepted, then a log and a progress event, then job.result with the input", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const input = { hello: "world", n: [1, 2, 3] }
    const job = await echo(conn, input)
    expect(job.answer.type).toBe("job.accepted")
    expect(job.jobId).toMatch(JOB_ID)
    expect(job.answer.payload.agent).toBe("echo@1.0.0")
    expect(job.answer.payload.accepted_at).toMatch(ISO_UTC)
    const kinds = job.events.map((e) => e.payload.kind)
    expect(kinds).toContain("log")
    expect(kinds).toContain("progress")
    expect(job.terminal.type).toBe("job.result")
    expect(job.terminal.payload.final_status).toBe("success")
    expect(job.terminal.payload.result).toEqual(input)
    expect(job.terminal.payload.result_id).toBeUndefined()
    expect(conn.violations).toEqual([])
  })

  it("job.accepted comes before the job's first event, and the result is the job's last frame", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const job = await echo(conn, "order")
    const own = conn.frames.filter((f) => f.job_id === job.jobId || f.payload?.job_id === job.jobId)
    expect(own[0]!.type).toBe("job.accepted")
    expect(own[own.length - 1]!.type).toBe("job.result")
  })

  it("the job's events and result carry its job_id, the session's id and gap-free event_seq", async () => {
    const { conn, sessionId } = await openSession(server(), { token: server().keys.alice })
    const job = await echo(conn, 1)
    for (const frame of job.frames) {
      expect(frame.job_id).toBe(job.jobId)
      expect(frame.session_id).toBe(sessionId)
    }
    const seqs = job.frames.map((f) => f.event_seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1)
  })

  it("the event's ts is a timestamp and the log's level is one of §3's", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const job = await echo(conn, 1)
    for (const event of job.events) expect(Number.isNaN(Date.parse(event.payload.ts))).toBe(false)
    const log = job.events.find((e) => e.payload.kind === "log")!
    expect(["trace", "debug", "info", "warn", "error", "critical"]).toContain(log.payload.body.level)
    const progress = job.events.find((e) => e.payload.kind === "progress")!
    expect(progress.payload.body.current).toBeGreaterThanOrEqual(0)
  })

  it.each([
    ["null", null],
    ["a number", 3.25],
    ["an empty string", ""],
    ["unicode", "héllo ✓ 𝄞 \u0000 end"],
    ["an array", [1, "two", null, { three: 3 }]],
    ["an empty object", {}],
    ["a nested object", { a: { b: { c: [true, false] } } }]
  ])("echo returns %s unchanged", async (_name, input) => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const job = await echo(conn, input)
    expect(job.terminal.payload.result).toEqual(input)
  })

  it("each job gets its own job_<ULID>", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const a = await echo(conn, 1)
    const b = await echo(conn, 2)
    expect(a.jobId).not.toBe(b.jobId)
  })

  it("a job submitted with max_runtime_sec well above its run completes normally", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const job = await echo(conn, "bounded", { max_runtime_sec: 60 })
    expect(job.terminal.type).toBe("job.result")
  })
})

describe("agent versions", () => {
  it("a bare name resolves to the default version advertised in the welcome", async () => {
    const { conn, welcome } = await openSession(server(), { token: server().keys.alice })
    const entry = (welcome.payload.capabilities.agents as Array<any>).find((a) => a === "echo" || a?.name === "echo")
    const job = await echo(conn, 1)
    expect(job.answer.payload.agent).toBe(`echo@${entry.default ?? "1.0.0"}`)
  })

  it("name@version pins the version", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "echo@1.0.0", input: 1 })
    expect(submitted.answer.type).toBe("job.accepted")
    expect(submitted.answer.payload.agent).toBe("echo@1.0.0")
  })

  it("an unknown version of a known agent is session.error AGENT_VERSION_NOT_AVAILABLE, and no job is accepted", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "echo@9.9.9", input: 1 })
    expect(submitted.answer.type).toBe("session.error")
    expect(submitted.answer.payload.code).toBe("AGENT_VERSION_NOT_AVAILABLE")
    expect(submitted.answer.payload.retryable).toBe(false)
    await conn.barrier()
    expect(conn.frames.some((f) => f.type === "job.accepted")).toBe(false)
  })

  it("an unknown agent is job.error AGENT_NOT_AVAILABLE with a fresh job_id", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "nobody", input: 1 })
    expect(submitted.answer.type).toBe("job.error")
    expect(submitted.answer.payload.code).toBe("AGENT_NOT_AVAILABLE")
    expect(submitted.answer.payload.final_status).toBe("error")
    expect(submitted.answer.payload.retryable).toBe(false)
    expect(submitted.answer.job_id).toMatch(JOB_ID)
    const again = await submit(conn, { agent: "nobody", input: 1 })
    expect(again.answer.job_id).not.toBe(submitted.answer.job_id)
    expect(conn.violations).toEqual([])
  })

  it("an unknown agent with a version is AGENT_NOT_AVAILABLE", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "nobody@1.0.0", input: 1 })
    expect(submitted.answer.payload.code).toBe("AGENT_NOT_AVAILABLE")
  })

  it("a refused submit does not break the session's event_seq", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    await echo(conn, 1)
    await submit(conn, { agent: "nobody", input: 1 })
    await submit(conn, { agent: "echo@0.0.0", input: 1 })
    await echo(conn, 2)
    const seqs = conn.seqFrames().map((f) => f.event_seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1)
  })
})

describe("invalid submits", () => {
  const future = () => new Date(Date.now() + 3_600_000).toISOString()
  it.each([
    ["no agent", { input: 1 }],
    ["agent not a string", { agent: 42, input: 1 }],
    ["an empty agent", { agent: "", input: 1 }],
    ["max_runtime_sec 0", { agent: "echo", input: 1, max_runtime_sec: 0 }],
    ["max_runtime_sec negative", { agent: "echo", input: 1, max_runtime_sec: -5 }],
    ["max_runtime_sec a string", { agent: "echo", input: 1, max_runtime_sec: "10" }],
    ["expires_at in the past", { agent: "echo", input: 1, lease_constraints: { expires_at: "2001-01-01T00:00:00Z" } }],
    ["expires_at not in UTC", { agent: "echo", input: 1, lease_constraints: { expires_at: future().replace("Z", "+00:00") } }],
    ["expires_at not a date", { agent: "echo", input: 1, lease_constraints: { expires_at: "tomorrow" } }],
    ["lease_request not an object", { agent: "echo", input: 1, lease_request: ["fs.read"] }],
    ["lease_request globs not a list", { agent: "echo", input: 1, lease_request: { "fs.read": "/tmp/**" } }],
    ["idempotency_key not a string", { agent: "echo", input: 1, idempotency_key: 12 }]
  ])("%s is INVALID_REQUEST and no job is accepted", async (_name, payload) => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, payload)
    expect(["session.error", "job.error"]).toContain(submitted.answer.type)
    expect(submitted.answer.payload.code).toBe("INVALID_REQUEST")
    expect(submitted.answer.payload.retryable).toBe(false)
    await conn.barrier()
    expect(conn.frames.some((f) => f.type === "job.accepted")).toBe(false)
    expect(conn.violations).toEqual([])
  })
})

describe("ordering", () => {
  it("submits of one session are accepted in the order they arrived (clients match by order without trace_id)", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const count = 25
    for (let i = 0; i < count; i++) conn.send({ type: "job.submit", payload: { agent: "echo", input: i } })
    await conn.until(() => conn.frames.filter((f) => f.type === "job.result").length === count, `${count} results`, 30_000)
    const accepted = conn.frames.filter((f) => f.type === "job.accepted").map((f) => f.payload.job_id)
    expect(accepted).toHaveLength(count)
    const resultOf = new Map(conn.frames.filter((f) => f.type === "job.result").map((f) => [f.job_id, f.payload.result]))
    expect(accepted.map((id) => resultOf.get(id))).toEqual([...Array(count).keys()])
  })

  it("with trace ids, each job.accepted carries its submit's trace_id", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const traces = [traceId(), traceId(), traceId()]
    for (const [i, trace_id] of traces.entries()) conn.send({ type: "job.submit", trace_id, payload: { agent: "echo", input: i } })
    await conn.until(() => conn.frames.filter((f) => f.type === "job.result").length === 3, "3 results")
    const accepted = conn.frames.filter((f) => f.type === "job.accepted")
    expect(accepted.map((f) => f.trace_id ?? f.payload.trace_id)).toEqual(traces)
  })
})

describe("lease, constraints and budget in job.accepted", () => {
  it("the granted lease is a subset of the request (or the policy refuses it with PERMISSION_DENIED)", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const lease_request = { "fs.read": ["/workspace/**"], "tool.call": ["search.*"] }
    const submitted = await submit(conn, { agent: "echo", input: 1, lease_request })
    if (submitted.answer.type === "job.error") {
      expect(submitted.answer.payload.code).toBe("PERMISSION_DENIED")
      return
    }
    const lease = submitted.answer.payload.lease as Record<string, Array<string>>
    for (const [capability, globs] of Object.entries(lease)) {
      expect(Object.keys(lease_request), capability).toContain(capability)
      for (const glob of globs) expect((lease_request as Record<string, Array<string>>)[capability]).toContain(glob)
    }
  })

  it("with no policy loaded, the requested lease is granted as asked", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const lease_request = { "fs.read": ["/workspace/**"], "net.fetch": ["https://example.com/*"] }
    const submitted = await submit(conn, { agent: "echo", input: 1, lease_request })
    expect(submitted.answer.type).toBe("job.accepted")
    expect(submitted.answer.payload.lease).toEqual(lease_request)
  })

  it("a cost.budget lease opens the budget in job.accepted: USD:5.00 → { USD: 5 }", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "echo", input: 1, lease_request: { "cost.budget": ["USD:5.00", "credits:1000"] } })
    expect(submitted.answer.type).toBe("job.accepted")
    expect(submitted.answer.payload.budget).toEqual({ USD: 5, credits: 1000 })
  })

  it("without cost.budget there is no budget", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "echo", input: 1 })
    expect(submitted.answer.payload.budget ?? {}).toEqual({})
  })

  it("lease_constraints.expires_at in the future is echoed", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const expires_at = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, "Z")
    const submitted = await submit(conn, { agent: "echo", input: 1, lease_constraints: { expires_at } })
    expect(submitted.answer.type).toBe("job.accepted")
    expect(Date.parse(submitted.answer.payload.lease_constraints.expires_at)).toBe(Date.parse(expires_at))
  })

  it("a malformed cost.budget amount is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "echo", input: 1, lease_request: { "cost.budget": ["five dollars"] } })
    expect(errorsOf([submitted.answer])[0]?.payload.code).toBe("INVALID_REQUEST")
  })
})
