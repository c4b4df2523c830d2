/**
 * §3 leases, budgets and delegation, as far as a client can provoke them
 * through a job's agent (the script agent, script.ts): tool calls checked
 * against the lease (PERMISSION_DENIED), expiry (LEASE_EXPIRED), `cost.*`
 * metrics charging the budget with `cost.budget.remaining` reported and
 * exhaustion (BUDGET_EXHAUSTED, never retryable), delegation answered with a
 * `job.accepted` carrying `parent_job_id` and `delegate_id`, and a child
 * lease that is not a subset (LEASE_SUBSET_VIOLATION).
 */
import { describe, expect } from "vitest"
import { type Conn, type Frame, isTerminal, openSession, submit, useServer } from "./harness.js"
import { script, scriptTests, type Step } from "./script.js"

const server = useServer({ fixture: true })
const itScript = scriptTests(server)

const run = async (conn: Conn, steps: ReadonlyArray<Step>, extra: Record<string, unknown> = {}) => {
  const submitted = await submit(conn, script(steps, extra))
  expect(submitted.answer.type, JSON.stringify(submitted.answer.payload)).toBe("job.accepted")
  const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the job's end", 40_000)
  const events = conn.frames.filter((f) => f.type === "job.event" && f.job_id === submitted.jobId)
  return { submitted, end, events }
}

/** Every error object the session received: session/job errors and tool_result errors. */
const errorObjects = (frames: ReadonlyArray<Frame>) => [
  ...frames.filter((f) => f.type === "session.error" || f.type === "job.error").map((f) => f.payload),
  ...frames.filter((f) => f.type === "job.event" && f.payload.kind === "tool_result" && f.payload.body.error).map((f) => f.payload.body.error)
]

describe("tool calls against the lease", () => {
  itScript("a tool call the lease covers is emitted as a tool_call event", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { end, events } = await run(conn, [{ tool_call: { tool: "search.web", args: { q: "x" } } }, { return: "ok" }], {
      lease_request: { "tool.call": ["search.*"] }
    })
    expect(events.some((e) => e.payload.kind === "tool_call" && e.payload.body.tool === "search.web")).toBe(true)
    expect(end.type).toBe("job.result")
  })

  itScript("a tool call the lease does not cover is refused with PERMISSION_DENIED and never emitted as allowed", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { end, events } = await run(conn, [{ tool_call: { tool: "shell.exec", args: {} } }, { return: "went on" }], {
      lease_request: { "tool.call": ["search.*"] }
    })
    const results = events.filter((e) => e.payload.kind === "tool_result")
    const emittedCall = events.some((e) => e.payload.kind === "tool_call" && e.payload.body.tool === "shell.exec")
    // Either the call is not emitted at all, or its result is the refusal.
    if (emittedCall) expect(results.some((r) => r.payload.body.error?.code === "PERMISSION_DENIED")).toBe(true)
    if (end.type === "job.error") expect(end.payload.code).toBe("PERMISSION_DENIED")
    else expect(end.payload.result).toBe("went on")
  })

  itScript("without any tool.call in the lease, every tool call is refused", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { events } = await run(conn, [{ tool_call: { tool: "search.web" } }, { return: null }])
    const allowed = events.some((e) => e.payload.kind === "tool_call") &&
      !events.some((e) => e.payload.kind === "tool_result" && e.payload.body.error?.code === "PERMISSION_DENIED")
    expect(allowed).toBe(false)
  })
})

describe("lease expiry", () => {
  itScript("a tool call after the lease's expires_at ends the job with LEASE_EXPIRED, final_status error, not retryable", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const expires_at = new Date(Date.now() + 2_000).toISOString()
    const { end } = await run(conn, [{ sleep_ms: 3_500 }, { tool_call: { tool: "search.web" } }, { return: "too late" }], {
      lease_request: { "tool.call": ["search.*"] },
      lease_constraints: { expires_at }
    })
    expect(end.type).toBe("job.error")
    expect(end.payload.code).toBe("LEASE_EXPIRED")
    expect(end.payload.final_status).toBe("error")
    expect(end.payload.retryable).toBe(false)
  })
})

describe("budgets", () => {
  itScript("a cost.* metric in a budgeted currency charges the budget; the runtime reports cost.budget.remaining", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { submitted, end, events } = await run(conn, [{ cost: { name: "cost.search", value: 0.42, unit: "USD" } }, { return: "ok" }], {
      lease_request: { "cost.budget": ["USD:1.00"] }
    })
    expect(submitted.answer.payload.budget).toEqual({ USD: 1 })
    const remaining = events.find((e) => e.payload.kind === "metric" && e.payload.body.name === "cost.budget.remaining")
    expect(remaining?.payload.body.unit).toBe("USD")
    expect(remaining?.payload.body.value).toBeCloseTo(0.58, 6)
    expect(end.type).toBe("job.result")
  })

  itScript("spending past the budget ends the job with BUDGET_EXHAUSTED, never retryable", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { end } = await run(
      conn,
      [
        { cost: { name: "cost.search", value: 0.42, unit: "USD" } },
        { cost: { name: "cost.fetch", value: 0.7, unit: "USD" } },
        { tool_call: { tool: "search.web" } },
        { return: "should not get here" }
      ],
      { lease_request: { "cost.budget": ["USD:1.00"], "tool.call": ["search.*"] } }
    )
    expect(end.type).toBe("job.error")
    expect(end.payload.code).toBe("BUDGET_EXHAUSTED")
    expect(end.payload.final_status).toBe("error")
    expect(end.payload.retryable).toBe(false)
  })

  itScript("a cost in another currency than the budget's charges nothing", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { end } = await run(conn, [{ cost: { name: "cost.x", value: 50, unit: "EUR" } }, { return: "fine" }], {
      lease_request: { "cost.budget": ["USD:1.00"] }
    })
    expect(end.type).toBe("job.result")
  })

  itScript("a negative cost is refused and decrements nothing", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { events } = await run(
      conn,
      [{ cost: { name: "cost.refund", value: -5, unit: "USD" } }, { cost: { name: "cost.search", value: 0.25, unit: "USD" } }, { return: "ok" }],
      { lease_request: { "cost.budget": ["USD:1.00"] } }
    )
    const remaining = events.filter((e) => e.payload.kind === "metric" && e.payload.body.name === "cost.budget.remaining")
    expect(remaining[remaining.length - 1]?.payload.body.value).toBeCloseTo(0.75, 6)
  })
})

describe("delegation", () => {
  itScript("a delegate event within the lease starts a child: job.accepted with parent_job_id and delegate_id", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { submitted } = await run(
      conn,
      [{ delegate: { delegate_id: "d1", agent: "echo", input: { child: true }, lease_request: { "fs.read": ["/data/a/**"] } } }, { sleep_ms: 500 }, {
        return: "parent done"
      }],
      { lease_request: { "agent.delegate": ["echo"], "fs.read": ["/data/**"] } }
    )
    const child = await conn.find((f) => f.type === "job.accepted" && f.payload.parent_job_id === submitted.jobId, "the child's job.accepted")
    expect(child.payload.delegate_id).toBe("d1")
    expect(child.payload.agent).toBe("echo@1.0.0")
    const childEnd = await conn.find((f) => f.job_id === child.payload.job_id && isTerminal(f), "the child's end")
    expect(childEnd.payload.result).toEqual({ child: true })
  })

  itScript("a child lease that is not a subset of the parent's is LEASE_SUBSET_VIOLATION, and no child is accepted", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { submitted } = await run(
      conn,
      [{ delegate: { delegate_id: "d2", agent: "echo", input: 1, lease_request: { "fs.write": ["/**"] } } }, { return: "parent done" }],
      { lease_request: { "agent.delegate": ["echo"], "fs.read": ["/data/**"] } }
    )
    await conn.barrier()
    expect(conn.frames.some((f) => f.type === "job.accepted" && f.payload.parent_job_id === submitted.jobId)).toBe(false)
    const codes = errorObjects(conn.frames).map((e) => e.code)
    const events = conn.frames.filter((f) => f.job_id === submitted.jobId && f.type === "job.event")
    const inBodies = events.map((e) => JSON.stringify(e.payload.body)).join(" ")
    expect(codes.includes("LEASE_SUBSET_VIOLATION") || inBodies.includes("LEASE_SUBSET_VIOLATION")).toBe(true)
  })

  itScript("a child budget above the parent's remaining budget is LEASE_SUBSET_VIOLATION", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { submitted } = await run(
      conn,
      [
        { cost: { name: "cost.x", value: 3, unit: "USD" } },
        { delegate: { delegate_id: "d3", agent: "echo", input: 1, lease_request: { "cost.budget": ["USD:2.50"] } } },
        { return: "parent done" }
      ],
      { lease_request: { "agent.delegate": ["echo"], "cost.budget": ["USD:5.00"] } }
    )
    await conn.barrier()
    expect(conn.frames.some((f) => f.type === "job.accepted" && f.payload.parent_job_id === submitted.jobId)).toBe(false)
    expect(JSON.stringify(conn.frames)).toContain("LEASE_SUBSET_VIOLATION")
  })

  itScript("delegating to an agent outside agent.delegate is refused", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const { submitted } = await run(
      conn,
      [{ delegate: { delegate_id: "d4", agent: "echo", input: 1 } }, { return: "parent done" }],
      { lease_request: { "agent.delegate": ["other-*"] } }
    )
    await conn.barrier()
    expect(conn.frames.some((f) => f.type === "job.accepted" && f.payload.parent_job_id === submitted.jobId)).toBe(false)
  })
})

// A lease the policy refuses or narrows: policy.test.ts (serve --policy).
