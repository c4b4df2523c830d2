/**
 * Coordination over a real server on 127.0.0.1 (each route's statuses are
 * in Routes.test.ts): an agent sees its task and the request to yield on
 * its WebSocket and yields over HTTP; a human answers from the queue over
 * HTTP; concurrent callers race for one task id and one vote; an agent's
 * key acting for another is refused and audited; junk, huge and overflowing
 * input is a typed 4xx.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { request, start } from "./harness.js"
import { expectProblem, keys, keysFile, openStream } from "./wire.js"

const call = (url: string, key: string | undefined) => ({
  get: (path: string) => request(`${url}${path}`, { key }),
  post: (path: string, body: unknown = {}) => request(`${url}${path}`, { method: "POST", body, key })
})

const payloadOf = (frame: any) => JSON.parse(Buffer.from(frame.envelope.payload, "base64").toString("utf8"))

describe("coordination over the network", () => {
  it.scoped("an agent gets its task, then a CONTROL asking it to yield, on its WebSocket; it yields over HTTP and gets the urgent task", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined } })
      const op = call(url, keys.operator)
      const a = call(url, keys.a)
      yield* a.post("/agents", { agent_id: "a", name: "A", capabilities: ["work"] })
      const stream = yield* openStream(url, "a", keys.a)
      yield* op.post("/tasks", { task_id: "low", capability: "work", priority: 5 })
      const [task] = yield* stream.next(1)
      expect(task).toMatchObject({ type: "delivery", envelope: { message_type: "DATA", correlation_id: "low" } })
      stream.socket.send(JSON.stringify({ type: "ack", ref: "r", message_id: task.envelope.message_id, stage: "READ" }))
      yield* stream.next(2)
      yield* op.post("/tasks", { task_id: "urgent", capability: "work", priority: -5 })
      const control = (yield* stream.next(3))[2]
      expect(control).toMatchObject({ type: "delivery", lane: "PRIVILEGED", envelope: { message_type: "CONTROL", correlation_id: "low" } })
      expect(payloadOf(control)).toMatchObject({ type: "preempt", task_id: "low", for_task_id: "urgent", ask: 1 })
      expect((yield* a.post("/tasks/low/yield", { agent_id: "a" })).body).toMatchObject({ status: "QUEUED" })
      const [urgent] = yield* stream.next(4).pipe(Effect.map((frames) => frames.slice(3)))
      expect(urgent).toMatchObject({ type: "delivery", envelope: { correlation_id: "urgent" } })
      // Queued again, it no longer concerns a: the operator reads it.
      expect((yield* op.get("/tasks/low")).body).toMatchObject({ status: "QUEUED", preemptions: 1 })
    }))

  it.scoped("a room that escalates is answered from the one queue over HTTP; the producer's waiting request returns the decision", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const op = call(url, keys.operator)
      const a = call(url, keys.a)
      const b = call(url, keys.b)
      yield* a.post("/agents", { agent_id: "a", name: "A" })
      yield* b.post("/agents", { agent_id: "b", name: "B" })
      yield* a.post("/rooms", { negotiation_room_id: "r", artifact_type: "CODE", producer_id: "a", requested_critics: ["b"] })
      const waiting = yield* Effect.fork(a.get("/rooms/r/decision/wait?timeout_ms=60000"))
      yield* b.post("/rooms/r/votes", { critic_id: "b", score: 9, confidence: 0.1, passed: true })
      expect((yield* Fiber.join(waiting)).body).toMatchObject({ outcome: "ESCALATED_TO_HITL", hitl_id: expect.any(String) })
      const queue = (yield* op.get("/hitl")).body
      expect(queue).toMatchObject([{ source: "hitl", reason: "DEBATE_DEADLOCK", agent_id: "a" }])
      const answered = yield* op.post(`/hitl/${queue[0].id}/decide`, { action: "deny", rationale: "the critic is unsure", by: "alice" })
      expect(answered.body).toMatchObject({ status: "decided", decision: { action: "deny" } })
      expect((yield* a.get("/rooms/r")).body.decision).toMatchObject({
        outcome: "ESCALATED_TO_HITL",
        resolution: { outcome: "REVISION_REQUESTED", by: "alice" }
      })
    }))

  it.scoped("concurrent callers: one task id, one vote per critic, whatever the race", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const op = call(url, keys.operator)
      const b = call(url, keys.b)
      yield* op.post("/agents", { agent_id: "w", name: "W" })
      yield* b.post("/agents", { agent_id: "b", name: "B" })
      const submits = yield* Effect.all(Array.from({ length: 20 }, () => op.post("/tasks", { task_id: "same", agent_id: "w" })), { concurrency: "unbounded" })
      expect(submits.map((answer) => answer.status).sort()).toEqual([200, ...Array(19).fill(409)])
      yield* op.post("/rooms", { negotiation_room_id: "r", artifact_type: "PLAN", producer_id: "w", requested_critics: ["b", "w"] })
      const votes = yield* Effect.all(Array.from({ length: 10 }, (_, i) => b.post("/rooms/r/votes", { critic_id: "b", score: i, confidence: 1, passed: true })), { concurrency: "unbounded" })
      expect(votes.map((answer) => answer.status).sort()).toEqual([200, ...Array(9).fill(409)])
      expect((yield* op.get("/rooms/r/votes")).body.vote_count).toBe(1)
    }))

  it.scoped("an agent's key acting for another agent is refused, and the refusal is in the audit under the refused key's agent", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const op = call(url, keys.operator)
      const a = call(url, keys.a)
      yield* a.post("/agents", { agent_id: "a", name: "A" })
      yield* op.post("/agents", { agent_id: "b", name: "B" })
      yield* op.post("/tasks", { task_id: "t", agent_id: "b" })
      const refusals = [
        yield* a.post("/tasks/t/yield", { agent_id: "b" }),
        yield* a.post("/agents/b/worktree/bind", { repo_id: "r", worktree_id: "w" }),
        yield* a.post("/hitl/hitl-1/decide", { action: "approve", rationale: "x" }),
        yield* a.post("/tasks/t/yield", { agent_id: "a" })
      ]
      for (const answer of refusals) expectProblem(answer, 403, "PERMISSION_DENIED")
      const audit = (yield* op.get("/audit?agent_id=a&decision=deny")).body.entries.map((entry: any) => entry.record.action)
      expect(audit).toEqual(expect.arrayContaining(["tasks.yield", "worktree.bind", "hitl.decide"]))
      // The runtime's own refusal of the key's agent (not its task) is audited too.
      expect(audit.filter((action: string) => action === "tasks.yield").length).toBe(2)
    }))

  it.scoped("junk, huge and overflowing input is a typed 4xx, and the server goes on", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ server: { maxBodyBytes: 64 * 1024 } })
      const op = call(url, undefined)
      yield* op.post("/agents", { agent_id: "w", name: "W" })
      const deep = JSON.parse("[".repeat(100) + "]".repeat(100))
      for (
        const [path, body, status] of [
          ["/tasks", { agent_id: "w", priority: 1e309 }, 400],
          ["/tasks", { agent_id: "w", priority: Number.MAX_SAFE_INTEGER }, 400],
          ["/tasks", { agent_id: "w", max_wait_ms: 2 ** 60 }, 400],
          ["/tasks", { agent_id: "w", input: deep }, 400],
          ["/tasks", { agent_id: "w", input: "x".repeat(100_000) }, 413],
          ["/tasks", [], 400],
          ["/rooms", { artifact_type: "CODE", producer_id: "w", requested_critics: Array(65).fill("w") }, 400],
          ["/rooms", { artifact_type: "CODE", producer_id: "w", requested_critics: ["w"], thresholds: { approve_std_dev_max: -1 } }, 400],
          ["/rooms", { artifact_type: "CODE", producer_id: "w", requested_critics: ["w"], deadline_ms: 0 }, 400],
          ["/hitl", { reason: "CONFLICT", timeout_ms: 1e20 }, 400],
          ["/hitl", { reason: "CONFLICT", priority: 0.5 }, 400],
          ["/agents/w/shutdown", { grace_ms: "soon" }, 400],
          ["/agents/w/worktree/approve", { ttl_ms: 1e16 }, 400]
        ] as const
      ) {
        const answer = yield* op.post(path, body)
        expectProblem(answer, status)
      }
      expect((yield* op.post("/tasks", { agent_id: "w", priority: -19 })).status).toBe(200)
    }))
})
