/**
 * ARCP jobs over a real WebSocket: the lifecycle, gap-free `event_seq` under
 * concurrent jobs, versions, idempotency, cancel, timeout, leases, budgets,
 * delegation, listing, subscription and back-pressure.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { testAgents } from "./agents.js"
import { allFeatures, connect, envelope, hello, start, type Wire } from "./harness.js"

const next = (wire: Wire) => Effect.promise(() => wire.next())
const nextOf = (wire: Wire, type: string) => Effect.promise(() => wire.nextOf(type))

const open = (features: ReadonlyArray<string> = allFeatures, arcp = {}) =>
  Effect.gen(function*() {
    const gate = yield* Deferred.make<void>()
    const server = yield* start({ agents: testAgents(gate), arcp })
    const wire = yield* connect(server.url)
    wire.send(hello("", features))
    const welcome = yield* next(wire)
    const session_id: string = welcome.session_id
    const submit = (payload: unknown, extra: Record<string, unknown> = {}) =>
      wire.send(envelope("job.submit", payload, { session_id, ...extra }))
    /** Frames until the job's terminal message. */
    const untilEnd = (job_id: string) =>
      Effect.promise(async () => {
        const frames: Array<any> = []
        while (true) {
          const frame = await wire.next()
          frames.push(frame)
          if (frame.job_id === job_id && (frame.type === "job.result" || frame.type === "job.error")) return frames
        }
      })
    return { server, wire, welcome, session_id, submit, untilEnd, gate }
  })

describe("ARCP jobs", () => {
  it.scopedLive("stamps a gap-free session event_seq across concurrent jobs, accepted in the order submitted", () =>
    Effect.gen(function*() {
      const { submit, wire } = yield* open()
      const traces = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(32, "0"))
      traces.forEach((trace_id, i) => submit({ agent: i % 2 === 0 ? "echo" : "chatty", input: i % 2 === 0 ? i : { n: 3 } }, { trace_id }))
      const accepted: Array<any> = []
      const stamped: Array<any> = []
      while (stamped.filter((frame) => frame.type === "job.result").length < 20) {
        const frame = yield* next(wire)
        if (frame.type === "job.accepted") accepted.push(frame)
        else stamped.push(frame)
      }
      expect(accepted.map((frame) => frame.payload.trace_id)).toEqual(traces)
      expect(stamped.map((frame) => frame.event_seq)).toEqual(stamped.map((_, i) => i + 1))
      const echoResult = stamped.find((frame) => frame.type === "job.result" && frame.job_id === accepted[4].payload.job_id)
      expect(echoResult.payload).toEqual({ final_status: "success", result: 4 })
    }))

  it.scopedLive("resolves versions: the default for a bare name, an exact one, and a session error for an unknown one", () =>
    Effect.gen(function*() {
      const { submit, untilEnd, wire } = yield* open()
      submit({ agent: "echo@2.0.0", input: "x" })
      const pinned = yield* nextOf(wire, "job.accepted")
      expect(pinned.payload.agent).toBe("echo@2.0.0")
      expect((yield* untilEnd(pinned.job_id)).at(-1).payload.result).toEqual({ v2: "x" })
      submit({ agent: "echo", input: "y" })
      expect((yield* nextOf(wire, "job.accepted")).payload.agent).toBe("echo@1.0.0")
      submit({ agent: "echo@9.9.9" })
      const unknownVersion = yield* nextOf(wire, "session.error")
      expect(unknownVersion.payload.code).toBe("AGENT_VERSION_NOT_AVAILABLE")
      submit({ agent: "nobody" })
      const unknownAgent = yield* nextOf(wire, "job.error")
      expect(unknownAgent.job_id).toMatch(/^job_/)
      expect(unknownAgent.payload).toMatchObject({ final_status: "error", code: "AGENT_NOT_AVAILABLE", retryable: false })
    }))

  it.scopedLive("answers a repeated idempotency key with the first job, and DUPLICATE_KEY when the parameters differ", () =>
    Effect.gen(function*() {
      const { submit, untilEnd, wire } = yield* open()
      submit({ agent: "echo", input: { a: 1 }, idempotency_key: "k1" })
      const first = yield* nextOf(wire, "job.accepted")
      yield* untilEnd(first.job_id)
      submit({ input: { a: 1 }, agent: "echo", idempotency_key: "k1" })
      const again = yield* nextOf(wire, "job.accepted")
      expect(again.payload).toEqual(first.payload)
      submit({ agent: "echo", input: { a: 2 }, idempotency_key: "k1" })
      const conflict = yield* nextOf(wire, "job.error")
      expect(conflict.payload.code).toBe("DUPLICATE_KEY")
      expect(conflict.job_id).not.toBe(first.job_id)
    }))

  it.scopedLive("cancels a running job: job.cancelled, then job.error CANCELLED; only its session may", () =>
    Effect.gen(function*() {
      const { server, submit, untilEnd, wire } = yield* open()
      submit({ agent: "forever" })
      const accepted = yield* nextOf(wire, "job.accepted")
      const other = yield* connect(server.url)
      other.send(hello())
      const otherWelcome = yield* next(other)
      other.send(envelope("job.cancel", {}, { session_id: otherWelcome.session_id, job_id: accepted.job_id }))
      expect((yield* next(other)).payload.code).toBe("PERMISSION_DENIED")
      wire.send(envelope("job.cancel", { reason: "enough" }, { session_id: accepted.session_id, job_id: accepted.job_id }))
      const frames = yield* untilEnd(accepted.job_id)
      expect(frames.map((frame) => frame.type)).toEqual(["job.cancelled", "job.error"])
      expect(frames[1].payload).toMatchObject({ final_status: "cancelled", code: "CANCELLED", retryable: false })
      wire.send(envelope("job.cancel", {}, { session_id: accepted.session_id, job_id: "job_nope" }))
      expect((yield* next(wire)).payload.code).toBe("JOB_NOT_FOUND")
    }))

  it.scopedLive("ends a job past its max_runtime_sec with TIMEOUT, retryable", () =>
    Effect.gen(function*() {
      const { submit, untilEnd, wire } = yield* open()
      submit({ agent: "forever", max_runtime_sec: 0.2 })
      const accepted = yield* nextOf(wire, "job.accepted")
      const end = (yield* untilEnd(accepted.job_id)).at(-1)
      expect(end.payload).toMatchObject({ final_status: "timed_out", code: "TIMEOUT", retryable: true })
    }))

  it.scopedLive("checks tool calls against the lease and refuses an expired or past lease constraint", () =>
    Effect.gen(function*() {
      const { submit, untilEnd, wire } = yield* open()
      submit({ agent: "tools", input: { tools: ["search", "rm"] }, lease_request: { "tool.call": ["search"] } })
      const accepted = yield* nextOf(wire, "job.accepted")
      expect(accepted.payload.lease).toEqual({ "tool.call": ["search"] })
      const frames = yield* untilEnd(accepted.job_id)
      expect(frames.filter((frame) => frame.type === "job.event").map((frame) => frame.payload.body.tool)).toEqual(["search"])
      expect(frames.at(-1).payload.result).toEqual(["ok", "PERMISSION_DENIED"])
      submit({ agent: "echo", lease_constraints: { expires_at: "2001-01-01T00:00:00Z" } })
      expect((yield* nextOf(wire, "job.error")).payload.code).toBe("INVALID_REQUEST")
      const soon = new Date(Date.now() + 300).toISOString()
      submit({ agent: "gated", lease_request: { "tool.call": ["*"] }, lease_constraints: { expires_at: soon } })
      expect((yield* nextOf(wire, "job.accepted")).payload.lease_constraints.expires_at).toBe(soon)
    }))

  it.scopedLive("charges cost metrics to the job's budget and ends it with BUDGET_EXHAUSTED, never retryable", () =>
    Effect.gen(function*() {
      const { submit, untilEnd, wire } = yield* open()
      submit({ agent: "tools", input: { tools: ["search"], costs: [2, 2, 2] }, lease_request: { "tool.call": ["*"], "cost.budget": ["USD:5.00"] } })
      const accepted = yield* nextOf(wire, "job.accepted")
      expect(accepted.payload.budget).toEqual({ USD: 5 })
      const frames = yield* untilEnd(accepted.job_id)
      const remaining = frames.filter((frame) => frame.payload.body?.name === "cost.budget.remaining").map((frame) => frame.payload.body.value)
      expect(remaining).toEqual([3, 1, -1])
      expect(frames.at(-1).payload).toMatchObject({ final_status: "error", code: "BUDGET_EXHAUSTED", retryable: false })
    }))

  it.scopedLive("delegates on a subset of the lease, and refuses a wider one with LEASE_SUBSET_VIOLATION", () =>
    Effect.gen(function*() {
      const { submit, untilEnd, wire } = yield* open()
      const lease = { "agent.delegate": ["echo"], "fs.read": ["/data/**"] }
      submit({ agent: "parent", input: { lease_request: { "fs.read": ["/data/a/**"] } }, lease_request: lease })
      const parent = yield* nextOf(wire, "job.accepted")
      const frames = yield* untilEnd(parent.job_id)
      const child = frames.find((frame) => frame.type === "job.accepted")
      expect(child.payload).toMatchObject({ parent_job_id: parent.job_id, delegate_id: "d1", agent: "echo@1.0.0" })
      expect(frames.at(-1).payload.result).toEqual({ child: child.job_id })
      submit({ agent: "parent", input: { lease_request: { "fs.read": ["/etc/**"] } }, lease_request: lease })
      const wider = yield* nextOf(wire, "job.accepted")
      expect((yield* untilEnd(wider.job_id)).at(-1).payload.result).toEqual({ error: "LEASE_SUBSET_VIOLATION" })
    }))

  it.scopedLive("lists jobs with filters and a keyset cursor, and lets another session subscribe with history", () =>
    Effect.gen(function*() {
      const { server, submit, untilEnd, wire, session_id } = yield* open()
      const ids: Array<string> = []
      for (let i = 0; i < 5; i++) {
        submit({ agent: "echo", input: i })
        const accepted = yield* nextOf(wire, "job.accepted")
        ids.push(accepted.job_id)
        yield* untilEnd(accepted.job_id)
      }
      const pages: Array<string> = []
      let cursor: string | null = null
      do {
        const request = envelope("session.list_jobs", { limit: 2, cursor, filter: { status: ["success"], agent: "echo" } }, { session_id })
        wire.send(request)
        const page = yield* nextOf(wire, "session.jobs")
        expect(page.payload.request_id).toBe(request.id)
        pages.push(...page.payload.jobs.map((job: any) => job.job_id))
        cursor = page.payload.next_cursor
      } while (cursor !== null)
      expect(pages).toEqual(ids)
      const watcher = yield* connect(server.url)
      watcher.send(hello())
      const watcherWelcome = yield* next(watcher)
      watcher.send(envelope("job.subscribe", { job_id: ids[2], history: true, from_event_seq: 0 }, { session_id: watcherWelcome.session_id }))
      const subscribed = yield* next(watcher)
      expect(subscribed.payload).toMatchObject({ job_id: ids[2], current_status: "success", agent: "echo@1.0.0", replayed: true })
      const replay = [yield* next(watcher), yield* next(watcher), yield* next(watcher)]
      expect(replay.map((frame) => [frame.type, frame.event_seq])).toEqual([["job.event", 1], ["job.event", 2], ["job.result", 3]])
    }))

  it.scopedLive("stops sending past the ACK window and goes on when acknowledged", () =>
    Effect.gen(function*() {
      const { session_id, submit, wire } = yield* open(allFeatures, { ackWindow: 3 })
      submit({ agent: "chatty", input: { n: 8 } })
      yield* nextOf(wire, "job.accepted")
      const first = [yield* next(wire), yield* next(wire), yield* next(wire)]
      expect(first.map((frame) => frame.event_seq)).toEqual([1, 2, 3])
      // A ping answered means nothing else was queued before it.
      wire.send(envelope("session.ping", { nonce: "x" }, { session_id }))
      expect((yield* next(wire)).type).toBe("session.pong")
      wire.send(envelope("session.ack", { last_processed_seq: 3 }, { session_id }))
      const more = [yield* next(wire), yield* next(wire), yield* next(wire)]
      expect(more.map((frame) => frame.event_seq)).toEqual([4, 5, 6])
    }))
})
