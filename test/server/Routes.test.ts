/**
 * Every route of `SwitchboardApi`, over a real socket: its success, and each
 * failure it documents that a healthy server can be brought to answer (400
 * naming the field, 401, 403, 404, 409, 410, 413, 422, 429 with
 * `Retry-After`, 503), each a problem+json with its wire `code` and
 * `retryable`. The routes come from the API's definition (`HttpApi.reflect`),
 * so a route added without a case here fails the coverage test. The OpenAPI
 * document lists the same routes and statuses; `/docs` is a page.
 *
 * The servers run on the test's clock (TestClock): TTLs, liveness and the
 * rate limiter's refill move only when the test moves the clock.
 */
import { describe, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import * as Http from "node:http"
import { expect } from "vitest"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { type Answer, request, start } from "./harness.js"
import { envelope, expectProblem, fillPath, keys, keysFile, rawRequest, routes, strangerKey } from "./wire.js"

const SECRET = "sk-routes-secret"

const policy = `
id: routes
scope: { kind: global }
tools:
  "*": { allow: false }
  http.get: { allow: true }
  deploy: { allow: true, requires_approval_if: "tool == 'deploy'" }
budgets:
  - { currency: USD, limit: 10, per: agent }
`

// ---------------------------------------------------------------------------
// What each route answered, for the coverage test at the end

const seen = new Map<string, Set<number>>(routes.map((route) => [route.id, new Set<number>()]))

/**
 * `answer` (to a request of `route`) has `status`; a failure is a problem
 * with `code` (when given) whose issues name `field` (when given).
 */
const check = (route: string, status: number, answer: Answer, options: { readonly code?: string; readonly field?: string } = {}) => {
  const statuses = seen.get(route)
  if (statuses === undefined) throw new Error(`no route ${route} in SwitchboardApi`)
  expect({ route, status: answer.status }, JSON.stringify(answer.body)?.slice(0, 500)).toEqual({ route, status })
  if (status >= 400) {
    expectProblem(answer, status, options.code)
    if (options.field !== undefined) {
      const paths = (answer.body.issues ?? answer.body.problems ?? []).map((issue: { path: string }) => issue.path)
      expect({ route, paths }).toEqual({ route, paths: expect.arrayContaining([options.field]) })
    }
    const retryAfter = answer.headers.get("retry-after")
    if ((status === 429 || status === 503) && answer.body.retryable === true) {
      expect({ route, retryAfter: Number(retryAfter) >= 1 }).toEqual({ route, retryAfter: true })
    } else {
      expect({ route, retryAfter }).toEqual({ route, retryAfter: null })
    }
  }
  statuses.add(status)
  return answer
}

/** `request`, whose answer `check` expects. */
const hit = (
  route: string,
  status: number,
  request: Effect.Effect<Answer>,
  options: { readonly code?: string; readonly field?: string } = {}
) => Effect.map(request, (answer) => check(route, status, answer, options))

const client = (url: string, key: string | undefined) => ({
  get: (path: string) => request(`${url}${path}`, { key }),
  post: (path: string, body: unknown = {}) => request(`${url}${path}`, { method: "POST", body, key }),
  raw: (path: string, raw: string) => request(`${url}${path}`, { method: "POST", raw, key }),
  del: (path: string) => request(`${url}${path}`, { method: "DELETE", key })
})

const long = "x".repeat(300)

// ---------------------------------------------------------------------------

describe("coordination routes: each one's success and the failures it documents", () => {
  it.scoped("the scheduler, worktree bindings, negotiation rooms and the HITL queue, in one server's life", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined } })
      const op = client(url, keys.operator)
      const a = client(url, keys.a)
      const b = client(url, keys.b)
      yield* a.post("/agents", { agent_id: "a", name: "A", capabilities: ["work"] })
      yield* b.post("/agents", { agent_id: "b", name: "B" })
      yield* op.post("/agents", { agent_id: "s", name: "S" })

      // --- The scheduler (its rules: test/coordination/Scheduler.test.ts)
      const t1 = yield* hit("scheduler.submit", 200, a.post("/tasks", { task_id: "t1", agent_id: "a", priority: 5, input: { n: 1 } }))
      expect(t1.body).toMatchObject({ task_id: "t1", status: "QUEUED", submitted_by: "a" })
      yield* hit("scheduler.submit", 400, a.post("/tasks", { agent_id: "a", priority: 99 }), { field: "priority" })
      yield* hit("scheduler.submit", 403, a.post("/tasks", { agent_id: "a", submitted_by: "b" }), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.submit", 404, a.post("/tasks", { agent_id: "nobody" }), { code: "NO_ROUTE" })
      yield* hit("scheduler.submit", 409, a.post("/tasks", { task_id: "t1", agent_id: "a" }), { code: "ALREADY_EXISTS" })
      yield* hit("scheduler.submit", 200, a.post("/tasks", { task_id: "t2", agent_id: "a", priority: 5 }))
      yield* hit("scheduler.tasks", 200, a.get("/tasks")).pipe(Effect.tap((answer) => expect(answer.body.map((t: any) => [t.task_id, t.status])).toEqual([["t1", "DISPATCHED"], ["t2", "QUEUED"]])))
      yield* hit("scheduler.tasks", 200, b.get("/tasks")).pipe(Effect.tap((answer) => expect(answer.body).toEqual([])))
      yield* hit("scheduler.tasks", 200, op.get("/tasks?status=QUEUED&agent_id=a"))
      yield* hit("scheduler.tasks", 400, op.get("/tasks?status=NOPE"), { field: "status" })
      yield* hit("scheduler.tasks", 403, a.get("/tasks?agent_id=b"), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.task", 200, a.get("/tasks/t1")).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ status: "DISPATCHED", assigned_to: "a", message_id: "t1/1" })))
      yield* hit("scheduler.task", 400, a.get(`/tasks/${"x".repeat(129)}`), { field: "task_id" })
      yield* hit("scheduler.task", 403, b.get("/tasks/t1"), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.task", 404, op.get("/tasks/nope"), { code: "NOT_FOUND" })
      yield* hit("scheduler.enterSection", 200, a.post("/tasks/t1/section", { agent_id: "a", max_ms: 60_000 }))
      yield* hit("scheduler.enterSection", 400, a.post("/tasks/t1/section", { agent_id: "a", max_ms: 0 }), { field: "max_ms" })
      yield* hit("scheduler.enterSection", 403, b.post("/tasks/t1/section", { agent_id: "a", max_ms: 10 }), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.enterSection", 404, a.post("/tasks/nope/section", { agent_id: "a", max_ms: 10 }), { code: "NOT_FOUND" })
      yield* hit("scheduler.enterSection", 409, a.post("/tasks/t2/section", { agent_id: "a", max_ms: 10 }), { code: "FAILED_PRECONDITION" })
      yield* hit("scheduler.exitSection", 200, a.post("/tasks/t1/section/exit", { agent_id: "a" }))
      yield* hit("scheduler.exitSection", 400, a.post("/tasks/t1/section/exit", {}), { field: "agent_id" })
      yield* hit("scheduler.exitSection", 403, b.post("/tasks/t1/section/exit", { agent_id: "a" }), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.exitSection", 404, a.post("/tasks/nope/section/exit", { agent_id: "a" }), { code: "NOT_FOUND" })
      yield* hit("scheduler.exitSection", 409, a.post("/tasks/t2/section/exit", { agent_id: "a" }), { code: "FAILED_PRECONDITION" })
      yield* hit("scheduler.preempt", 200, op.post("/tasks/t2/preempt", { agent_id: "a" })).pipe(Effect.tap((answer) => expect(answer.body.enqueued).toBe(false)))
      yield* hit("scheduler.preempt", 400, op.post("/tasks/t2/preempt", {}), { field: "agent_id" })
      yield* hit("scheduler.preempt", 403, a.post("/tasks/t2/preempt", { agent_id: "a" }), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.preempt", 404, op.post("/tasks/nope/preempt", { agent_id: "a" }), { code: "NOT_FOUND" })
      yield* hit("scheduler.preempt", 404, op.post("/tasks/t2/preempt", { agent_id: "nobody" }), { code: "NO_ROUTE" })
      yield* hit("scheduler.yield", 403, b.post("/tasks/t1/yield", { agent_id: "a" }), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.yield", 200, a.post("/tasks/t1/yield", { agent_id: "a" })).pipe(Effect.tap((answer) => expect(answer.body.status).toBe("QUEUED")))
      yield* hit("scheduler.yield", 400, a.post("/tasks/t1/yield", { agent_id: 5 }), { field: "agent_id" })
      yield* hit("scheduler.yield", 404, a.post("/tasks/nope/yield", { agent_id: "a" }), { code: "NOT_FOUND" })
      yield* hit("scheduler.yield", 409, a.post("/tasks/t2/yield", { agent_id: "a" }), { code: "FAILED_PRECONDITION" })
      yield* hit("scheduler.shutdown", 200, op.post("/agents/s/shutdown", { grace_ms: 1_000 })).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ ok: true, deregistered: true })))
      yield* hit("scheduler.shutdown", 400, op.post("/agents/s/shutdown", { grace_ms: -1 }), { field: "grace_ms" })
      yield* hit("scheduler.shutdown", 403, a.post("/agents/b/shutdown", {}), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.shutdown", 404, op.post("/agents/nobody/shutdown", {}), { code: "NO_ROUTE" })
      yield* hit("scheduler.activity", 200, a.get("/agents/a/activity")).pipe(Effect.tap((answer) => expect(answer.body.entries[0]).toMatchObject({ task_id: "t1", branch: "" })))
      yield* hit("scheduler.activity", 400, a.get(`/agents/${long}/activity`), { field: "agent_id" })
      yield* hit("scheduler.activity", 403, a.get("/agents/b/activity"), { code: "PERMISSION_DENIED" })
      yield* hit("scheduler.purgeActivity", 200, a.post("/agents/a/activity/purge", { task_ids: ["t1"] }))
      yield* hit("scheduler.purgeActivity", 400, a.post("/agents/a/activity/purge", {}), { field: "task_ids" })
      yield* hit("scheduler.purgeActivity", 403, b.post("/agents/a/activity/purge", { task_ids: [] }), { code: "PERMISSION_DENIED" })

      // --- Worktree bindings (their rules: test/coordination/Worktrees.test.ts)
      yield* hit("worktrees.status", 200, a.get("/agents/a/worktree")).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ state: "UNBOUND", repo_id: "" })))
      yield* hit("worktrees.status", 400, a.get(`/agents/${long}/worktree`), { field: "agent_id" })
      yield* hit("worktrees.status", 403, b.get("/agents/a/worktree"), { code: "PERMISSION_DENIED" })
      yield* hit("worktrees.bind", 200, a.post("/agents/a/worktree/bind", { repo_id: "r", worktree_id: "main" })).pipe(Effect.tap((answer) => expect(answer.body.state).toBe("BOUND_HOME")))
      yield* hit("worktrees.bind", 400, a.post("/agents/a/worktree/bind", { repo_id: "r" }), { field: "worktree_id" })
      yield* hit("worktrees.bind", 403, b.post("/agents/a/worktree/bind", { repo_id: "r", worktree_id: "main" }), { code: "PERMISSION_DENIED" })
      yield* hit("worktrees.bind", 404, op.post("/agents/nobody/worktree/bind", { repo_id: "r", worktree_id: "main" }), { code: "NO_ROUTE" })
      yield* hit("worktrees.bind", 409, a.post("/agents/a/worktree/bind", { repo_id: "r", worktree_id: "other" }), { code: "FAILED_PRECONDITION" })
      // An envelope naming another worktree than a's is refused (VALIDATION_ERROR, 400).
      yield* hit("messages.send", 400, b.post("/messages", { to: "a", envelope: envelope("b", { repo_id: "r", worktree_id: "other" }) }), { field: "worktree_id" })
      yield* hit("worktrees.requestSwitch", 200, a.post("/agents/a/worktree/switch", { target_worktree_id: "feature" })).pipe(Effect.tap((answer) => expect(answer.body.state).toBe("SWITCH_PENDING")))
      yield* hit("worktrees.requestSwitch", 400, a.post("/agents/a/worktree/switch", {}), { field: "target_worktree_id" })
      yield* hit("worktrees.requestSwitch", 403, b.post("/agents/a/worktree/switch", { target_worktree_id: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("worktrees.requestSwitch", 409, b.post("/agents/b/worktree/switch", { target_worktree_id: "x" }), { code: "FAILED_PRECONDITION" })
      yield* hit("worktrees.bindFailed", 409, a.post("/agents/a/worktree/failed", { reason: "disk" }), { code: "FAILED_PRECONDITION" })
      yield* hit("worktrees.approveSwitch", 200, op.post("/agents/a/worktree/approve", { ttl_ms: 60_000 })).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ state: "BOUND_NON_HOME", worktree_id: "feature" })))
      yield* hit("worktrees.approveSwitch", 400, op.post("/agents/a/worktree/approve", { ttl_ms: -1 }), { field: "ttl_ms" })
      yield* hit("worktrees.approveSwitch", 403, a.post("/agents/a/worktree/approve", {}), { code: "PERMISSION_DENIED" })
      yield* hit("worktrees.approveSwitch", 409, op.post("/agents/b/worktree/approve", {}), { code: "FAILED_PRECONDITION" })
      yield* hit("worktrees.revoke", 200, op.post("/agents/a/worktree/revoke", { reason: "done" })).pipe(Effect.tap((answer) => expect(answer.body.state).toBe("BOUND_HOME")))
      yield* hit("worktrees.revoke", 400, op.post("/agents/a/worktree/revoke", { reason: 5 }), { field: "reason" })
      yield* hit("worktrees.revoke", 403, a.post("/agents/a/worktree/revoke", {}), { code: "PERMISSION_DENIED" })
      yield* hit("worktrees.revoke", 409, op.post("/agents/a/worktree/revoke", {}), { code: "FAILED_PRECONDITION" })
      yield* a.post("/agents/a/worktree/switch", { target_worktree_id: "feature" })
      yield* hit("worktrees.rejectSwitch", 200, op.post("/agents/a/worktree/reject", { reason: "not now" }))
      yield* hit("worktrees.rejectSwitch", 400, op.post("/agents/a/worktree/reject", { reason: 5 }), { field: "reason" })
      yield* hit("worktrees.rejectSwitch", 403, a.post("/agents/a/worktree/reject", {}), { code: "PERMISSION_DENIED" })
      yield* hit("worktrees.rejectSwitch", 409, op.post("/agents/a/worktree/reject", {}), { code: "FAILED_PRECONDITION" })
      yield* hit("worktrees.bindFailed", 200, a.post("/agents/a/worktree/failed", { reason: "disk" })).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ state: "BIND_FAILED", failures: 1 })))
      yield* hit("worktrees.bindFailed", 400, a.post("/agents/a/worktree/failed", {}), { field: "reason" })
      yield* hit("worktrees.bindFailed", 403, b.post("/agents/a/worktree/failed", { reason: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("worktrees.bindFailed", 404, b.post("/agents/b/worktree/failed", { reason: "x" }), { code: "NOT_FOUND" })
      yield* hit("worktrees.unbind", 200, a.post("/agents/a/worktree/unbind", {})).pipe(Effect.tap((answer) => expect(answer.body.state).toBe("UNBOUND")))
      yield* hit("worktrees.unbind", 400, a.post("/agents/a/worktree/unbind", { reason: 5 }), { field: "reason" })
      yield* hit("worktrees.unbind", 403, b.post("/agents/a/worktree/unbind", {}), { code: "PERMISSION_DENIED" })
      // The list: a's binding (left UNBOUND); b, never bound, has none.
      const agents = (answer: Answer) => answer.body.bindings.map((binding: { agent_id: string; state: string }) => `${binding.agent_id} ${binding.state}`)
      yield* hit("worktrees.bindings", 200, op.get("/worktrees")).pipe(Effect.tap((answer) => expect(agents(answer)).toEqual(["a UNBOUND"])))
      yield* hit("worktrees.bindings", 200, op.get("/worktrees?state=BOUND_HOME&limit=5")).pipe(Effect.tap((answer) => expect(answer.body).toEqual({ bindings: [] })))
      yield* hit("worktrees.bindings", 200, a.get("/worktrees")).pipe(Effect.tap((answer) => expect(agents(answer)).toEqual(["a UNBOUND"])))
      yield* hit("worktrees.bindings", 200, b.get("/worktrees")).pipe(Effect.tap((answer) => expect(answer.body).toEqual({ bindings: [] })))
      yield* hit("worktrees.bindings", 400, op.get("/worktrees?state=LOST"), { field: "state" })
      yield* hit("worktrees.bindings", 400, op.get("/worktrees?limit=0"), { field: "limit" })
      yield* hit("worktrees.bindings", 403, b.get("/worktrees?agent_id=a"), { code: "PERMISSION_DENIED" })

      // --- Negotiation rooms (their rules: test/coordination/Negotiation.test.ts)
      const proposal = { negotiation_room_id: "r1", artifact_type: "CODE", artifact: { diff: "+1" }, producer_id: "a", requested_critics: ["b"] }
      yield* hit("negotiation.propose", 200, a.post("/rooms", proposal)).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ negotiation_room_id: "r1", votes: [] })))
      yield* hit("negotiation.propose", 400, a.post("/rooms", { ...proposal, artifact_type: "NOVEL" }), { field: "artifact_type" })
      yield* hit("negotiation.propose", 403, a.post("/rooms", { ...proposal, producer_id: "b" }), { code: "PERMISSION_DENIED" })
      yield* hit("negotiation.propose", 404, a.post("/rooms", { ...proposal, negotiation_room_id: "r0", requested_critics: ["ghost"] }), { code: "NO_ROUTE" })
      yield* hit("negotiation.propose", 409, a.post("/rooms", proposal), { code: "ALREADY_EXISTS" })
      yield* hit("negotiation.propose", 409, a.post("/rooms", { ...proposal, negotiation_room_id: "r0", requested_critics: ["b", "b"] }), { code: "FAILED_PRECONDITION" })
      yield* b.post("/rooms", { ...proposal, negotiation_room_id: "r2", producer_id: "b" })
      yield* hit("negotiation.room", 200, b.get("/rooms/r1"))
      yield* hit("negotiation.room", 400, b.get(`/rooms/${"x".repeat(129)}`), { field: "room_id" })
      yield* hit("negotiation.room", 403, a.get("/rooms/r2"), { code: "PERMISSION_DENIED" })
      yield* hit("negotiation.room", 404, op.get("/rooms/nope"), { code: "NOT_FOUND" })
      yield* hit("negotiation.decision", 409, a.get("/rooms/r1/decision"), { code: "FAILED_PRECONDITION" })
      yield* hit("negotiation.waitForDecision", 504, a.get("/rooms/r1/decision/wait?timeout_ms=0"), { code: "DEADLINE_EXCEEDED" })
      const ballot = { critic_id: "b", score: 9, confidence: 0.9, passed: true, strengths: ["small"] }
      yield* hit("negotiation.vote", 400, b.post("/rooms/r1/votes", { ...ballot, score: 11 }), { field: "score" })
      yield* hit("negotiation.vote", 403, a.post("/rooms/r1/votes", ballot), { code: "PERMISSION_DENIED" })
      yield* hit("negotiation.vote", 404, b.post("/rooms/nope/votes", ballot), { code: "NOT_FOUND" })
      yield* hit("negotiation.vote", 200, b.post("/rooms/r1/votes", ballot)).pipe(Effect.tap((answer) => expect(answer.body.decision).toMatchObject({ outcome: "APPROVED" })))
      yield* hit("negotiation.vote", 409, b.post("/rooms/r1/votes", ballot), { code: "ALREADY_EXISTS" })
      yield* hit("negotiation.votes", 200, a.get("/rooms/r1/votes")).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ vote_count: 1, votes: [{ critic_id: "b", strengths: ["small"] }] })))
      yield* hit("negotiation.votes", 400, a.get(`/rooms/${"x".repeat(129)}/votes`), { field: "room_id" })
      yield* hit("negotiation.votes", 403, a.get("/rooms/r2/votes"), { code: "PERMISSION_DENIED" })
      yield* hit("negotiation.votes", 404, op.get("/rooms/nope/votes"), { code: "NOT_FOUND" })
      yield* hit("negotiation.decision", 200, a.get("/rooms/r1/decision")).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ outcome: "APPROVED", aggregated_score: { vote_count: 1 } })))
      yield* hit("negotiation.decision", 400, a.get(`/rooms/${"x".repeat(129)}/decision`), { field: "room_id" })
      yield* hit("negotiation.decision", 403, a.get("/rooms/r2/decision"), { code: "PERMISSION_DENIED" })
      yield* hit("negotiation.decision", 404, op.get("/rooms/nope/decision"), { code: "NOT_FOUND" })
      yield* hit("negotiation.waitForDecision", 200, a.get("/rooms/r1/decision/wait")).pipe(Effect.tap((answer) => expect(answer.body.outcome).toBe("APPROVED")))
      yield* hit("negotiation.waitForDecision", 400, a.get("/rooms/r1/decision/wait?timeout_ms=99999999"), { field: "timeout_ms" })
      yield* hit("negotiation.waitForDecision", 403, a.get("/rooms/r2/decision/wait"), { code: "PERMISSION_DENIED" })
      yield* hit("negotiation.waitForDecision", 404, op.get("/rooms/nope/decision/wait"), { code: "NOT_FOUND" })
      // The list, in the order opened: r1 (decided; a produces it, b is its critic), r2 (open; b's).
      const ids = (answer: Answer) => [answer.body.rooms.map((room: { negotiation_room_id: string }) => room.negotiation_room_id), answer.body.next]
      yield* hit("negotiation.rooms", 200, op.get("/rooms")).pipe(Effect.tap((answer) => expect(ids(answer)).toEqual([["r1", "r2"], undefined])))
      yield* hit("negotiation.rooms", 200, op.get("/rooms?limit=1")).pipe(Effect.tap((answer) => expect(ids(answer)).toEqual([["r1"], "r1"])))
      yield* hit("negotiation.rooms", 200, op.get("/rooms?limit=1&after=r1")).pipe(Effect.tap((answer) => expect(ids(answer)).toEqual([["r2"], undefined])))
      yield* hit("negotiation.rooms", 200, op.get("/rooms?status=open")).pipe(Effect.tap((answer) => expect(ids(answer)).toEqual([["r2"], undefined])))
      yield* hit("negotiation.rooms", 200, op.get("/rooms?status=decided&agent_id=b")).pipe(Effect.tap((answer) => expect(ids(answer)).toEqual([["r1"], undefined])))
      yield* hit("negotiation.rooms", 200, a.get("/rooms")).pipe(Effect.tap((answer) => expect(ids(answer)).toEqual([["r1"], undefined])))
      yield* hit("negotiation.rooms", 200, b.get("/rooms")).pipe(Effect.tap((answer) => expect(ids(answer)).toEqual([["r1", "r2"], undefined])))
      yield* hit("negotiation.rooms", 400, op.get("/rooms?status=maybe"), { field: "status" })
      yield* hit("negotiation.rooms", 400, op.get("/rooms?limit=1001"), { field: "limit" })
      yield* hit("negotiation.rooms", 403, a.get("/rooms?agent_id=b"), { code: "PERMISSION_DENIED" })

      // --- Human in the loop (its rules: test/coordination/Hitl.test.ts)
      const asked = yield* hit("hitl.invoke", 200, a.post("/hitl", { reason: "MANUAL_OVERRIDE", context: { deploy: "prod" } }))
      const id = asked.body.hitl_id as string
      expect(asked.body).toMatchObject({ invoked_by: "a", status: "open", fallback: "DENY_BY_DEFAULT" })
      yield* hit("hitl.invoke", 400, a.post("/hitl", { reason: "BORED" }), { field: "reason" })
      yield* hit("hitl.invoke", 403, a.post("/hitl", { reason: "CONFLICT", invoked_by: "b" }), { code: "PERMISSION_DENIED" })
      yield* hit("hitl.queue", 200, op.get("/hitl")).pipe(Effect.tap((answer) => expect(answer.body.map((item: any) => item.id)).toEqual([id])))
      yield* hit("hitl.queue", 400, op.get("/hitl?status=maybe"), { field: "status" })
      yield* hit("hitl.queue", 403, a.get("/hitl"), { code: "PERMISSION_DENIED" })
      yield* hit("hitl.invocation", 200, a.get(`/hitl/${id}`))
      yield* hit("hitl.invocation", 400, a.get(`/hitl/${long}`), { field: "id" })
      yield* hit("hitl.invocation", 403, b.get(`/hitl/${id}`), { code: "PERMISSION_DENIED" })
      yield* hit("hitl.invocation", 404, op.get("/hitl/nope"), { code: "NOT_FOUND" })
      yield* hit("hitl.wait", 504, a.get(`/hitl/${id}/wait?timeout_ms=0`), { code: "DEADLINE_EXCEEDED" })
      yield* hit("hitl.decide", 400, op.post(`/hitl/${id}/decide`, { action: "maybe", rationale: "x" }), { field: "action" })
      yield* hit("hitl.decide", 403, a.post(`/hitl/${id}/decide`, { action: "approve", rationale: "mine" }), { code: "PERMISSION_DENIED" })
      yield* hit("hitl.decide", 404, op.post("/hitl/nope/decide", { action: "approve", rationale: "x" }), { code: "NOT_FOUND" })
      yield* hit("hitl.decide", 200, op.post(`/hitl/${id}/decide`, { action: "approve", rationale: "ship it", by: "alice" })).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ status: "decided", decision: { action: "approve", by: "alice" } })))
      yield* hit("hitl.decide", 409, op.post(`/hitl/${id}/decide`, { action: "deny", rationale: "late" }), { code: "FAILED_PRECONDITION" })
      yield* hit("hitl.wait", 200, a.get(`/hitl/${id}/wait`)).pipe(Effect.tap((answer) => expect(answer.body.decision.rationale).toBe("ship it")))
      yield* hit("hitl.wait", 400, a.get(`/hitl/${id}/wait?timeout_ms=-1`), { field: "timeout_ms" })
      yield* hit("hitl.wait", 403, b.get(`/hitl/${id}/wait`), { code: "PERMISSION_DENIED" })
      yield* hit("hitl.wait", 404, op.get("/hitl/nope/wait"), { code: "NOT_FOUND" })
    }))
})

describe("each route: its success and the failures it documents", () => {
  it.scoped("agents, messages, governance, audit, Agent Assembly and health, in one server's life", () =>
    Effect.gen(function*() {
      const runtime: RuntimeOptions = {
        mailboxCapacity: 2,
        payloadLimit: 1024,
        supportedMessageTypes: [
          "CONTROL", "DATA", "NOTIFICATION", "ACKNOWLEDGEMENT", "HITL_INVOCATION", "WORKTREE_CONTROL",
          "NEGOTIATION", "TOOL_CALL", "TOOL_RESULT", "TOOL_ERROR"
        ],
        livenessTimeoutMs: 60_000
      }
      const { arcp, url } = yield* start({ keys: keysFile, runtime, secrets: { API_KEY: SECRET } })
      const op = client(url, keys.operator)
      const a = client(url, keys.a)
      const b = client(url, keys.b)
      const none = client(url, undefined)

      // Health, without a key.
      yield* hit("health.health", 200, none.get("/health"))
      yield* hit("health.ready", 200, none.get("/ready"))

      // --- Agents
      yield* hit("agents.register", 200, a.post("/agents", { agent_id: "a", name: "A", capabilities: ["search"], team_id: "t1" }))
      yield* hit("agents.register", 200, b.post("/agents", { agent_id: "b", name: "B" }))
      for (const id of ["c", "d", "k", "s", "u"]) yield* hit("agents.register", 200, op.post("/agents", { agent_id: id, name: id }))
      yield* hit("agents.register", 400, op.post("/agents", { name: "no id" }), { field: "agent_id" })
      yield* hit("agents.register", 403, a.post("/agents", { agent_id: "b", name: "B" }), { code: "PERMISSION_DENIED" })

      yield* hit("agents.list", 200, a.get("/agents?capability=search&team_id=t1")).pipe(
        Effect.tap((answer) => expect(answer.body.map((agent: any) => agent.descriptor.agent_id)).toEqual(["a"]))
      )
      yield* hit("agents.list", 400, a.get(`/agents?capability=${long}`), { field: "capability" })
      yield* hit("agents.get", 200, a.get("/agents/b"))
      yield* hit("agents.get", 404, a.get("/agents/nobody"), { code: "NO_ROUTE" })
      yield* hit("agents.get", 400, a.get(`/agents/${long}`), { field: "agent_id" })
      // An id of 101 to 256 characters is an id like any other, in a path too.
      const longId = "l".repeat(256)
      yield* hit("agents.register", 200, op.post("/agents", { agent_id: longId, name: "long" }))
      yield* hit("agents.get", 200, a.get(`/agents/${longId}`))
      yield* hit("agents.lineage", 200, a.get(`/agents/${longId}/lineage`)).pipe(Effect.tap((answer) => expect(answer.body).toHaveLength(1)))
      yield* hit("agents.heartbeat", 200, a.post("/agents/a/heartbeat", { state: "RUNNING", health: { cpu: "ok" } }))
      yield* hit("agents.heartbeat", 400, a.post("/agents/a/heartbeat", { state: "bogus" }), { field: "state" })
      yield* hit("agents.heartbeat", 403, a.post("/agents/b/heartbeat", {}), { code: "PERMISSION_DENIED" })
      yield* hit("agents.heartbeat", 404, op.post("/agents/nobody/heartbeat", {}), { code: "NO_ROUTE" })
      yield* hit("agents.keepAlive", 200, a.post("/agents/a/keepalive"))
      yield* hit("agents.keepAlive", 400, op.post(`/agents/${long}/keepalive`), { field: "agent_id" })
      yield* hit("agents.keepAlive", 403, a.post("/agents/b/keepalive"), { code: "PERMISSION_DENIED" })
      yield* hit("agents.keepAlive", 404, op.post("/agents/nobody/keepalive"), { code: "NO_ROUTE" })
      for (const route of ["lineage", "subtree", "edges"] as const) {
        yield* hit(`agents.${route}`, 200, a.get(`/agents/a/${route}`))
        yield* hit(`agents.${route}`, 400, a.get(`/agents/${long}/${route}`), { field: "agent_id" })
      }
      yield* hit("agents.team", 200, a.get("/teams/t1/agents"))
      yield* hit("agents.team", 400, a.get(`/teams/${long}/agents`), { field: "team_id" })

      // --- Policies (loaded before anything is checked)
      yield* hit("gateway.loadPolicy", 200, op.post("/policies", { yaml: policy }))
      yield* hit("gateway.loadPolicy", 200, op.post("/policies", { yaml: "id: extra\nscope: { kind: agent, id: d }\ntools: { x.y: { allow: true } }\n" }))
      yield* hit("gateway.loadPolicy", 400, op.post("/policies", { yaml: "id: broken\nscope: { kind: team }\n" }), { field: "scope.id" })
      yield* hit("gateway.loadPolicy", 400, op.post("/policies", {}), { field: "yaml" })
      yield* hit("gateway.loadPolicy", 403, a.post("/policies", { yaml: policy }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.policies", 200, op.get("/policies"))
      yield* hit("gateway.policies", 403, a.get("/policies"), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.removePolicy", 204, op.del("/policies/extra"))
      yield* hit("gateway.removePolicy", 400, op.del("/policies/nope"), { field: "id" })
      yield* hit("gateway.removePolicy", 403, a.del("/policies/routes"), { code: "PERMISSION_DENIED" })

      // --- Messages
      const first = yield* hit("messages.send", 200, a.post("/messages", { to: "b", envelope: envelope("a", { idempotency_token: "tok-1" }) }))
      const m1 = first.body.message_id as string
      const duplicate = yield* hit("messages.send", 409, a.post("/messages", { to: "b", envelope: envelope("a", { idempotency_token: "tok-1" }) }), {
        code: "DUPLICATE_DETECTED"
      })
      expect(duplicate.body).toMatchObject({ original_message_id: m1, retryable: false })
      yield* hit("messages.send", 400, a.post("/messages", { to: "b", envelope: { ...envelope("a"), content_length: 3 } }), {
        field: "envelope.content_length"
      })
      yield* hit("messages.send", 400, a.post("/messages", { to: "b" }), { field: "envelope" })
      yield* hit("messages.send", 400, a.post("/messages", { to: "b", envelope: envelope("a", { message_type: "HEARTBEAT" }) }), {
        code: "UNSUPPORTED_MESSAGE_TYPE"
      })
      yield* hit("messages.send", 403, a.post("/messages", { to: "c", envelope: envelope("b") }), { code: "PERMISSION_DENIED" })
      yield* hit("messages.send", 404, a.post("/messages", { to: "nobody", envelope: envelope("a") }), { code: "NO_ROUTE" })
      yield* hit("messages.send", 404, a.post("/messages", { to: { capability: "nothing-has-it" }, envelope: envelope("a") }), { code: "NO_ROUTE" })
      // An ACK envelope of a message nobody sent.
      const ackOfNothing = envelope("a", { message_type: "ACKNOWLEDGEMENT", payload: { ack_for_message_id: "nope", ack_stage: "FULFILLED" } })
      yield* hit("messages.send", 404, a.post("/messages", { to: "b", envelope: ackOfNothing }), { code: "VALIDATION_ERROR" })
      yield* hit("messages.send", 410, a.post("/messages", { to: "b", envelope: envelope("a", { timestamp: -10_000, ttl_ms: 1_000 }) }), {
        code: "TTL_EXPIRED"
      })
      yield* hit("messages.send", 413, a.post("/messages", { to: "b", envelope: envelope("a", { payload: "x".repeat(2_000) }) }), {
        code: "OVERSIZE_PAYLOAD"
      })
      const m2 = (yield* hit("messages.send", 200, a.post("/messages", { to: "b", envelope: envelope("a") }))).body.message_id as string
      // b's mailbox holds 2: full.
      const full = yield* hit("messages.send", 503, a.post("/messages", { to: "b", envelope: envelope("a") }), { code: "BUFFER_FULL" })
      expect(full.body.retryable).toBe(true)
      yield* hit("agents.heartbeat", 200, op.post("/agents/s/heartbeat", { state: "SHUTTING_DOWN" }))
      yield* hit("messages.send", 503, a.post("/messages", { to: "s", envelope: envelope("a") }), { code: "AGENT_SHUTDOWN" })
      const m3 = (yield* hit("messages.send", 200, b.post("/messages", { to: "c", envelope: envelope("b") }))).body.message_id as string
      // A batch: each send decided alone, in order.
      yield* hit("messages.sendMany", 200, b.post("/messages/batch", {
        sends: [
          { to: "u", envelope: envelope("b") },
          { to: "nobody", envelope: envelope("b") },
          { to: "s", envelope: envelope("b") }
        ]
      })).pipe(Effect.tap((answer) =>
        expect(answer.body).toEqual([
          { ok: true, receipt: expect.objectContaining({ to: "u", stage: "RECEIVED" }) },
          { ok: false, error: expect.objectContaining({ status: 404, code: "NO_ROUTE" }) },
          { ok: false, error: expect.objectContaining({ status: 503, code: "AGENT_SHUTDOWN", retryable: true }) }
        ])
      ))
      // One send as another producer refuses the batch: none of it is sent.
      yield* hit("messages.sendMany", 403, b.post("/messages/batch", {
        sends: [{ to: "u", envelope: envelope("b", { idempotency_token: "refused-with-its-batch" }) }, { to: "u", envelope: envelope("a") }]
      }), { code: "PERMISSION_DENIED" })
      yield* hit("messages.sendMany", 200, b.post("/messages/batch", {
        sends: [{ to: "u", envelope: envelope("b", { idempotency_token: "refused-with-its-batch" }) }]
      })).pipe(Effect.tap((answer) => expect(answer.body).toEqual([{ ok: true, receipt: expect.objectContaining({ to: "u" }) }])))
      yield* hit("messages.sendMany", 400, b.post("/messages/batch", { sends: [{ to: "u", envelope: envelope("b") }, { to: "u" }] }), {
        field: "sends.1.envelope"
      })
      yield* hit("messages.sendMany", 400, b.post("/messages/batch", { sends: Array.from({ length: 1025 }, () => ({ to: "u", envelope: envelope("b") })) }), {
        field: "sends"
      })

      yield* hit("messages.status", 200, a.get(`/messages/${m1}`))
      yield* hit("messages.status", 404, a.get("/messages/nope"), { code: "VALIDATION_ERROR" })
      yield* hit("messages.status", 403, a.get(`/messages/${m3}`), { code: "PERMISSION_DENIED" })
      yield* hit("messages.status", 400, a.get(`/messages/${long}`), { field: "message_id" })
      yield* hit("messages.awaitStage", 200, a.get(`/messages/${m1}/await?stage=RECEIVED`))
      yield* hit("messages.awaitStage", 400, a.get(`/messages/${m1}/await?stage=bogus`), { field: "stage" })
      yield* hit("messages.awaitStage", 400, a.get(`/messages/${m1}/await?stage=READ&wait_ms=70000`), { field: "wait_ms" })
      yield* hit("messages.awaitStage", 404, a.get("/messages/nope/await?stage=READ"), { code: "VALIDATION_ERROR" })
      yield* hit("messages.awaitStage", 403, a.get(`/messages/${m3}/await?stage=READ`), { code: "PERMISSION_DENIED" })

      yield* hit("messages.ack", 200, b.post("/acks", { agent_id: "b", message_id: m1, stage: "FULFILLED" }))
      yield* hit("messages.ack", 404, b.post("/acks", { agent_id: "b", message_id: "nope", stage: "READ" }), { code: "VALIDATION_ERROR" })
      yield* hit("messages.ack", 400, b.post("/acks", { agent_id: "b", message_id: m2, stage: "DONE" }), { field: "stage" })
      yield* hit("messages.ack", 403, a.post("/acks", { agent_id: "b", message_id: m2, stage: "READ" }), { code: "PERMISSION_DENIED" })
      yield* hit("messages.ackMany", 200, b.post("/acks/batch", { acks: [{ agent_id: "b", message_id: m2, stage: "READ" }] })).pipe(
        Effect.tap((answer) => expect(answer.body).toEqual([{ ok: true, receipt: expect.objectContaining({ stage: "READ" }) }]))
      )
      yield* hit("messages.ackMany", 400, b.post("/acks/batch", {}), { field: "acks" })
      yield* hit("messages.ackMany", 403, a.post("/acks/batch", { acks: [{ agent_id: "b", message_id: m2, stage: "READ" }] }), { code: "PERMISSION_DENIED" })

      // A message to d that expires unread: d's dead letter.
      const m4 = (yield* hit("messages.send", 200, op.post("/messages", { to: "d", envelope: envelope("c", { timestamp: 0, ttl_ms: 1_000 }) }))).body.message_id
      yield* TestClock.adjust("2 seconds")
      expect((yield* op.get(`/messages/${m4}/await?stage=TIMED_OUT`)).body).toMatchObject({ stage: "TIMED_OUT", dead_letter: true })
      yield* hit("messages.deadLetters", 200, op.get("/agents/d/dead-letters")).pipe(
        Effect.tap((answer) => expect(answer.body.map((message: any) => message.message_id)).toEqual([m4]))
      )
      yield* hit("messages.deadLetters", 403, a.get("/agents/d/dead-letters"), { code: "PERMISSION_DENIED" })
      yield* hit("messages.deadLetters", 400, op.get(`/agents/${long}/dead-letters`), { field: "agent_id" })
      yield* hit("messages.redrive", 403, a.post(`/messages/${m4}/redrive`), { code: "PERMISSION_DENIED" })
      yield* hit("messages.redrive", 200, op.post(`/messages/${m4}/redrive`))
      yield* hit("messages.redrive", 400, op.post(`/messages/${m1}/redrive`), { field: "message_id" })
      yield* hit("messages.redrive", 404, op.post("/messages/nope/redrive"), { code: "VALIDATION_ERROR" })

      // --- Checks, dispatch, approvals
      yield* hit("gateway.check", 200, a.post("/check", { kind: "tool_call", agent_id: "a", tool: "http.get", args: {} })).pipe(
        Effect.tap((answer) => expect(answer.body.decision).toBe("allow"))
      )
      yield* hit("gateway.check", 400, a.post("/check", { agent_id: "a", tool: "http.get", args: {} }), { field: "kind" })
      yield* hit("gateway.check", 403, a.post("/check", { kind: "tool_call", agent_id: "b", tool: "http.get", args: {} }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.dispatchTool", 200, a.post("/tools/dispatch", { agent_id: "a", tool: "http.get", args: { k: "${API_KEY}" } })).pipe(
        Effect.tap((answer) => expect(answer.body).toMatchObject({ _tag: "Dispatched", args: { k: SECRET }, substituted: ["API_KEY"] }))
      )
      yield* hit("gateway.dispatchTool", 422, a.post("/tools/dispatch", { agent_id: "a", tool: "http.get", args: { k: "${NOPE}" } }), { code: "VALIDATION_ERROR" })
      yield* hit("gateway.dispatchTool", 403, a.post("/tools/dispatch", { agent_id: "a", tool: "shell.exec", args: {} }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.dispatchTool", 400, a.post("/tools/dispatch", { agent_id: "a", args: {} }), { field: "tool" })
      const approval1 = (yield* a.post("/check", { kind: "tool_call", agent_id: "a", tool: "deploy", args: { n: 1 } })).body.approval_id
      const approval2 = (yield* a.post("/check", { kind: "tool_call", agent_id: "a", tool: "deploy", args: { n: 2 } })).body.approval_id
      yield* hit("gateway.approvals", 200, op.get("/approvals?status=open")).pipe(
        Effect.tap((answer) => expect(answer.body.map((approval: any) => approval.approval_id)).toEqual([approval1, approval2]))
      )
      yield* hit("gateway.approvals", 400, op.get("/approvals?status=bogus"), { field: "status" })
      yield* hit("gateway.approvals", 403, a.get("/approvals"), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.approve", 403, a.post(`/approvals/${approval1}/approve`, {}), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.approve", 200, op.post(`/approvals/${approval1}/approve`, { by: "alice", note: "ok" }))
      yield* hit("gateway.approve", 400, op.post("/approvals/nope/approve", {}), { field: "approval_id" })
      yield* hit("gateway.reject", 403, a.post(`/approvals/${approval2}/reject`, {}), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.reject", 200, op.post(`/approvals/${approval2}/reject`, {}))
      yield* hit("gateway.reject", 400, op.post("/approvals/nope/reject", { note: 5 }), { field: "note" })

      // --- Kill switch
      yield* hit("gateway.suspend", 204, op.post("/agents/d/suspend", { reason: "looking" }))
      yield* hit("gateway.suspend", 400, op.post("/agents/d/suspend", {}), { field: "reason" })
      yield* hit("gateway.suspend", 403, a.post("/agents/a/suspend", { reason: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.resume", 204, op.post("/agents/d/resume", { by: "alice" }))
      yield* hit("gateway.resume", 400, op.post(`/agents/${long}/resume`, {}), { field: "agent_id" })
      yield* hit("gateway.resume", 403, a.post("/agents/a/resume", {}), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.kill", 204, op.post("/agents/k/kill", { reason: "compromised" }))
      yield* hit("gateway.kill", 400, op.post("/agents/k/kill", { reason: 7 }), { field: "reason" })
      yield* hit("gateway.kill", 403, a.post("/agents/b/kill", { reason: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("agents.register", 409, op.post("/agents", { agent_id: "k", name: "again" }), { code: "PERMISSION_DENIED" })
      yield* hit("assembly.register", 409, op.post("/agents/k/register", {}), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.halt", 403, a.post("/halt", { reason: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.halt", 400, op.post("/halt", {}), { field: "reason" })
      yield* hit("gateway.halt", 204, op.post("/halt", { reason: "incident" }))
      yield* hit("messages.send", 403, a.post("/messages", { to: "c", envelope: envelope("a") }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.unhalt", 403, a.post("/unhalt", {}), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.unhalt", 204, op.post("/unhalt", { by: "alice" }))
      yield* hit("gateway.unhalt", 400, op.post("/unhalt", {}), { code: "VALIDATION_ERROR" })

      // --- Budgets and leases
      yield* hit("gateway.charge", 200, a.post("/agents/a/charge", { currency: "USD", amount: 1 }))
      const spent = yield* hit("gateway.charge", 429, a.post("/agents/a/charge", { currency: "USD", amount: 100 }), { code: "BUDGET_EXHAUSTED" })
      expect(spent.body.retryable).toBe(false)
      yield* hit("gateway.charge", 400, a.post("/agents/a/charge", { currency: "USD", amount: "1" }), { field: "amount" })
      yield* hit("gateway.charge", 403, a.post("/agents/b/charge", { currency: "USD", amount: 1 }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.budgets", 200, a.get("/agents/a/budgets")).pipe(
        Effect.tap((answer) => expect(answer.body).toContainEqual(expect.objectContaining({ scope: "agent", scope_id: "a", currency: "USD", spent: 1 })))
      )
      yield* hit("gateway.budgets", 403, a.get("/agents/b/budgets"), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.budgets", 400, a.get(`/agents/${long}/budgets`), { field: "agent_id" })
      yield* hit("gateway.grantLease", 200, op.post("/leases", { lease_id: "l1", agent_id: "a", grants: { "fs.read": ["/data/**"] } }))
      // Expired from the start: the clock is past 1 ms.
      yield* hit("gateway.grantLease", 200, op.post("/leases", { lease_id: "l0", agent_id: "a", grants: { "fs.read": ["/data/**"] }, expires_at: 1 }))
      yield* hit("gateway.grantLease", 400, op.post("/leases", { agent_id: "a", grants: {} }), { field: "lease_id" })
      yield* hit("gateway.grantLease", 403, a.post("/leases", { lease_id: "l9", agent_id: "a", grants: {} }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.checkLease", 204, a.post("/leases/check", { lease_id: "l1", namespace: "fs.read", resource: "/data/x" }))
      yield* hit("gateway.checkLease", 403, a.post("/leases/check", { lease_id: "l1", namespace: "fs.read", resource: "/etc/passwd" }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.checkLease", 403, a.post("/leases/check", { lease_id: "l0", namespace: "fs.read", resource: "/data/x" }), { code: "LEASE_EXPIRED" })
      yield* hit("gateway.checkLease", 400, a.post("/leases/check", { lease_id: "l1", namespace: "fs.delete", resource: "/data/x" }), { field: "namespace" })
      // Another agent's lease: b learns nothing of it.
      yield* hit("gateway.checkLease", 403, b.post("/leases/check", { lease_id: "l1", namespace: "fs.read", resource: "/data/x" }), { code: "PERMISSION_DENIED" }).pipe(
        Effect.tap((answer) => expect(answer.body.detail).toBe("permission denied: no lease l1"))
      )
      yield* hit("gateway.checkLease", 204, op.post("/leases/check", { lease_id: "l1", namespace: "fs.read", resource: "/data/x" }))
      yield* hit("gateway.delegateLease", 200, a.post("/leases/l1/delegate", { lease_id: "l2", agent_id: "a", grants: { "fs.read": ["/data/sub/**"] } }))
      yield* hit("gateway.delegateLease", 403, a.post("/leases/l1/delegate", { lease_id: "l3", agent_id: "a", grants: { "fs.read": ["/etc/**"] } }), {
        code: "LEASE_SUBSET_VIOLATION"
      })
      yield* hit("gateway.delegateLease", 403, a.post("/leases/l0/delegate", { lease_id: "l4", agent_id: "a", grants: { "fs.read": ["/data/x"] } }), {
        code: "LEASE_EXPIRED"
      })
      yield* hit("gateway.delegateLease", 403, a.post("/leases/l1/delegate", { lease_id: "l5", agent_id: "b", grants: {} }), { code: "PERMISSION_DENIED" })
      yield* hit("gateway.delegateLease", 400, a.post("/leases/l1/delegate", { agent_id: "a", grants: {} }), { field: "lease_id" })

      // --- Audit, state, log
      yield* hit("audit.entries", 200, op.get("/audit?limit=1&from=1")).pipe(
        Effect.tap((answer) => expect(answer.body).toMatchObject({ entries: [expect.anything()], next: expect.any(Number) }))
      )
      yield* hit("audit.entries", 400, op.get("/audit?limit=0"), { field: "limit" })
      yield* hit("audit.entries", 403, a.get("/audit"), { code: "PERMISSION_DENIED" })
      yield* hit("audit.verify", 200, op.get("/audit/verify")).pipe(Effect.tap((answer) => expect(answer.body.ok).toBe(true)))
      yield* hit("audit.verify", 403, a.get("/audit/verify"), { code: "PERMISSION_DENIED" })
      const checkpoint = (yield* hit("audit.checkpoint", 200, op.get("/audit/checkpoint"))).body
      yield* hit("audit.checkpoint", 403, a.get("/audit/checkpoint"), { code: "PERMISSION_DENIED" })
      yield* hit("audit.verifyAgainst", 200, op.post("/audit/verify", checkpoint)).pipe(Effect.tap((answer) => expect(answer.body.ok).toBe(true)))
      yield* hit("audit.verifyAgainst", 400, op.post("/audit/verify", { head: checkpoint.head }), { field: "records" })
      yield* hit("audit.verifyAgainst", 403, a.post("/audit/verify", checkpoint), { code: "PERMISSION_DENIED" })
      yield* hit("audit.state", 200, op.get("/state")).pipe(Effect.tap((answer) => expect(answer.body.state.agents).toHaveProperty("a")))
      yield* hit("audit.state", 200, op.get("/state?at=0")).pipe(Effect.tap((answer) => expect(answer.body).toMatchObject({ offset: 0, state: { agents: {} } })))
      yield* hit("audit.state", 400, op.get("/state?at=-1"), { field: "at" })
      yield* hit("audit.state", 403, a.get("/state"), { code: "PERMISSION_DENIED" })
      yield* hit("audit.head", 200, op.get("/log/head")).pipe(Effect.tap((answer) => expect(answer.body.offset).toBeGreaterThan(0)))
      yield* hit("audit.head", 403, a.get("/log/head"), { code: "PERMISSION_DENIED" })

      // --- Agent Assembly's routes (their details: Assembly.test.ts)
      yield* hit("assembly.register", 200, a.post("/agents/a/register", {}))
      yield* hit("assembly.register", 400, a.post("/agents/a/register", { depth: "two" }), { field: "depth" })
      yield* hit("assembly.register", 403, a.post("/agents/b/register", {}), { code: "PERMISSION_DENIED" })
      yield* hit("assembly.register", 403, op.post("/agents/a/register", { parent_agent_id: "a" }), { code: "PERMISSION_DENIED" })
      yield* hit("assembly.check", 200, a.post("/agents/a/policy/check", { action: "tool:http.get" }))
      yield* hit("assembly.check", 404, op.post("/agents/nobody/policy/check", { action: "tool:http.get" }), { code: "NO_ROUTE" })
      yield* hit("assembly.check", 400, a.post("/agents/a/policy/check", {}), { field: "action" })
      yield* hit("assembly.check", 403, a.post("/agents/b/policy/check", { action: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("assembly.edge", 201, a.post("/topology/edges", { source_agent_id: "a", target_agent_id: "c", edge_type: "calls" }))
      yield* hit("assembly.edge", 400, a.post("/topology/edges", { source_agent_id: "a", target_agent_id: "c", edge_type: "x" }), { field: "edge_type" })
      yield* hit("assembly.edge", 403, a.post("/topology/edges", { source_agent_id: "b", target_agent_id: "c", edge_type: "calls" }), { code: "PERMISSION_DENIED" })
      yield* hit("assembly.dispatch", 200, a.post("/dispatch_tool", { tool: "http.get", args: { k: "${API_KEY}" } }))
      yield* hit("assembly.dispatch", 202, a.post("/dispatch_tool", { tool: "deploy", args: { n: 3 } }))
      yield* hit("assembly.dispatch", 422, a.post("/dispatch_tool", { tool: "http.get", args: { k: "${NOPE}" } }), { code: "VALIDATION_ERROR" })
      yield* hit("assembly.dispatch", 403, a.post("/dispatch_tool", { tool: "shell.exec", args: {} }), { code: "PERMISSION_DENIED" })
      yield* hit("assembly.dispatch", 400, a.post("/dispatch_tool", { args: {} }), { field: "tool" })

      // --- ARCP: a remote agent's reports for a job it serves
      yield* hit("agents.register", 200, op.post("/agents", { agent_id: "rs", name: "RS", capabilities: ["arcp:sum@1.0.0"] }))
      const frames: Array<any> = []
      const { session_id } = yield* arcp.hello({ send: (text) => frames.push(JSON.parse(text)), close: () => {} }, {
        session_id: "sess_routes",
        principal: { _tag: "Operator", key_id: "op" },
        hello: { client: { name: "t", version: "1" }, auth: { scheme: "bearer", token: "" } }
      })
      yield* arcp.submit(session_id, { submit: { agent: "sum", input: 1 }, trace_id: undefined })
      const job = `/arcp/jobs/${frames.find((frame) => frame.type === "job.accepted").job_id}`
      const line = { events: [{ kind: "log", body: { level: "info", message: "x" } }] }
      yield* hit("arcp.reportEvents", 200, op.post(`${job}/events`, { agent_id: "rs", ...line }))
      yield* hit("arcp.reportEvents", 404, op.post("/arcp/jobs/job_nope/events", line), { code: "JOB_NOT_FOUND" })
      yield* hit("arcp.reportEvents", 403, a.post(`${job}/events`, line), { code: "PERMISSION_DENIED" })
      yield* hit("arcp.reportEvents", 400, op.post(`${job}/events`, { events: [] }), { field: "events" })
      yield* hit("arcp.reportResult", 404, op.post("/arcp/jobs/job_nope/result", { result: 1 }), { code: "JOB_NOT_FOUND" })
      yield* hit("arcp.reportResult", 400, op.post(`${job}/result`, { result_size: -1 }), { field: "result_size" })
      yield* hit("arcp.reportResult", 403, b.post(`${job}/result`, { result: 1 }), { code: "PERMISSION_DENIED" })
      yield* hit("arcp.reportError", 400, op.post(`${job}/error`, { code: "NOPE", message: "x" }), { field: "code" })
      yield* hit("arcp.reportError", 404, op.post("/arcp/jobs/job_nope/error", { code: "INTERNAL_ERROR", message: "x" }), { code: "JOB_NOT_FOUND" })
      yield* hit("arcp.reportError", 403, a.post(`${job}/error`, { code: "INTERNAL_ERROR", message: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("arcp.reportResult", 204, op.post(`${job}/result`, { result: { done: true } }))
      yield* hit("arcp.reportEvents", 409, op.post(`${job}/events`, line), { code: "JOB_ENDED" })
      yield* hit("arcp.reportResult", 409, op.post(`${job}/result`, { result: 1 }), { code: "JOB_ENDED" })
      yield* hit("arcp.reportError", 409, op.post(`${job}/error`, { code: "INTERNAL_ERROR", message: "x" }), { code: "JOB_ENDED" })
      expect(frames.map((frame) => frame.type)).toEqual(["session.welcome", "job.accepted", "job.event", "job.result"])
      // A job errs through the same route: a second one, ended by its agent's error.
      yield* arcp.submit(session_id, { submit: { agent: "sum", input: 2 }, trace_id: undefined })
      const second = `/arcp/jobs/${frames.filter((frame) => frame.type === "job.accepted")[1].job_id}`
      yield* hit("arcp.reportError", 204, op.post(`${second}/error`, { agent_id: "rs", code: "PERMISSION_DENIED", message: "no" }))
      expect(frames.at(-1)).toMatchObject({ type: "job.error", payload: { code: "PERMISSION_DENIED", retryable: false } })

      // --- Leaving
      yield* hit("agents.deregister", 403, a.post("/agents/b/deregister", { reason: "x" }), { code: "PERMISSION_DENIED" })
      yield* hit("agents.deregister", 400, op.post("/agents/d/deregister", {}), { field: "reason" })
      yield* hit("agents.deregister", 204, op.post("/agents/d/deregister", { reason: "done" }))
      yield* hit("agents.deregister", 404, op.post("/agents/nobody/deregister", { reason: "x" }), { code: "NO_ROUTE" })

      // Past the liveness timeout with no heartbeat, u is unavailable: 503, retry later.
      yield* TestClock.adjust("61 seconds")
      yield* Effect.repeat(op.get("/agents/u"), { until: (answer) => answer.body.available === false })
      yield* hit("messages.send", 503, a.post("/messages", { to: "u", envelope: envelope("a") }), { code: "AGENT_UNAVAILABLE" })
    }))

  it.scoped("the read-only views: the caller, mailboxes, kill switch, edges, the log, a timeline, ARCP", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const op = client(url, keys.operator)
      const a = client(url, keys.a)
      yield* a.post("/agents", { agent_id: "a", name: "A" })
      yield* op.post("/agents", { agent_id: "b", name: "B" })
      const sent = (yield* a.post("/messages", { to: "b", envelope: envelope("a") })).body.message_id as string
      const other = (yield* op.post("/messages", { to: "a", envelope: envelope("b") })).body.message_id as string
      yield* op.post("/agents", { agent_id: "c", name: "C" })
      const unrelated = (yield* op.post("/messages", { to: "c", envelope: envelope("b") })).body.message_id as string
      yield* op.post("/agents/b/suspend", { reason: "review" })

      yield* hit("inspect.whoami", 200, a.get("/whoami")).pipe(
        Effect.tap((answer) => expect(answer.body).toMatchObject({ role: "agent", agent_id: "a", open: false }))
      )
      yield* hit("inspect.mailboxes", 200, op.get("/mailboxes")).pipe(
        Effect.tap((answer) => expect(answer.body.map((box: any) => box.agent_id)).toEqual(["a", "b", "c"]))
      )
      yield* hit("inspect.mailboxes", 200, a.get("/mailboxes")).pipe(
        Effect.tap((answer) => expect(answer.body).toEqual([expect.objectContaining({ agent_id: "a", queued: 1 })]))
      )
      yield* hit("inspect.mailboxes", 400, op.get(`/mailboxes?agent_id=${long}`), { field: "agent_id" })
      yield* hit("inspect.mailboxes", 403, a.get("/mailboxes?agent_id=b"), { code: "PERMISSION_DENIED" })
      yield* hit("inspect.killSwitch", 200, op.get("/kill-switch")).pipe(
        Effect.tap((answer) => expect(answer.body).toEqual({ suspended: [{ agent_id: "b", reason: "review" }], killed: [] }))
      )
      yield* hit("inspect.killSwitch", 200, a.get("/kill-switch")).pipe(
        Effect.tap((answer) => expect(answer.body).toEqual({ suspended: [], killed: [] }))
      )
      yield* a.post("/topology/edges", { source_agent_id: "a", target_agent_id: "b", edge_type: "calls" })
      yield* hit("inspect.edges", 200, a.get("/topology/edges")).pipe(
        Effect.tap((answer) => expect(answer.body).toContainEqual(expect.objectContaining({ from: "a", to: "b", edge_type: "calls" })))
      )
      yield* hit("inspect.log", 200, op.get("/log?limit=2")).pipe(
        Effect.tap((answer) => {
          expect(answer.body.records.map((record: any) => record.offset)).toEqual([answer.body.head, answer.body.head - 1])
          expect(answer.body.next).toBe(answer.body.head - 1)
        })
      )
      yield* hit("inspect.log", 400, op.get("/log?stage=SOON"), { field: "stage" })
      yield* hit("inspect.log", 403, a.get("/log"), { code: "PERMISSION_DENIED" })
      yield* hit("inspect.timeline", 200, a.get(`/messages/${sent}/timeline`)).pipe(
        Effect.tap((answer) => expect(answer.body.entries[0].event._tag).toBe("MessageAccepted"))
      )
      yield* hit("inspect.timeline", 400, a.get(`/messages/${long}/timeline`), { field: "message_id" })
      yield* hit("inspect.timeline", 404, op.get("/messages/nothing/timeline"), { code: "VALIDATION_ERROR" })
      yield* hit("inspect.timeline", 200, a.get(`/messages/${other}/timeline`))
      yield* hit("inspect.timeline", 403, a.get(`/messages/${unrelated}/timeline`), { code: "PERMISSION_DENIED" })
      yield* hit("inspect.stateSummary", 200, op.get("/state/summary?at=2&limit=1")).pipe(
        Effect.tap((answer) => expect(answer.body).toMatchObject({ offset: 2, agents: { registered: 2 }, page: [] }))
      )
      yield* hit("inspect.stateSummary", 400, op.get("/state/summary?at=-1"), { field: "at" })
      yield* hit("inspect.stateSummary", 403, a.get("/state/summary"), { code: "PERMISSION_DENIED" })
      yield* hit("inspect.arcpSessions", 200, op.get("/arcp/sessions")).pipe(Effect.tap((answer) => expect(answer.body).toEqual([])))
      yield* hit("inspect.arcpJobs", 200, a.get("/arcp/jobs?limit=10")).pipe(Effect.tap((answer) => expect(answer.body).toEqual({ jobs: [] })))
      yield* hit("inspect.arcpJobs", 400, op.get("/arcp/jobs?status=lost"), { field: "status" })
    }))

  it.scoped("401 without a key or with an unknown one, on every route that needs a key", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      for (const route of routes.filter((route) => route.authenticated)) {
        const path = fillPath(route.path, {})
        for (const key of [undefined, strangerKey]) {
          const caller = client(url, key)
          const answer = route.method === "GET" ? yield* caller.get(path) : route.method === "DELETE" ? yield* caller.del(path) : yield* caller.post(path)
          check(route.id, 401, answer, { code: "UNAUTHENTICATED" })
        }
      }
    }))

  it.scoped("413 for a body over the limit on every route, declared or not, before anything is decoded", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, server: { maxBodyBytes: 4096 } })
      const body = JSON.stringify({ padding: "x".repeat(5_000) })
      for (const route of routes) {
        const path = fillPath(route.path, { agent_id: "a" })
        const answer = yield* rawRequest(url, {
          path,
          method: route.method,
          headers: { "content-type": "application/json", authorization: `Bearer ${keys.operator}` },
          body
        })
        check(route.id, 413, answer, { code: "OVERSIZE_PAYLOAD" })
        expect(answer.body).toMatchObject({ limit: 4096, retryable: false })
      }
      // Streamed with no length declared: refused as it is read.
      const chunked = yield* rawRequest(url, {
        path: "/messages",
        headers: { "content-type": "application/json", authorization: `Bearer ${keys.operator}` },
        body,
        chunked: true
      })
      check("messages.send", 413, chunked, { code: "OVERSIZE_PAYLOAD" })
    }))

  it.scoped("429 with Retry-After on every route that needs a key once the key's requests are spent; health is not limited", () =>
    Effect.gen(function*() {
      // One request, then none until the (test) clock moves.
      const { url } = yield* start({ keys: keysFile, server: { rateLimit: { ratePerSecond: 1, burst: 1 } } })
      expect((yield* client(url, keys.operator).get("/agents")).status).toBe(200)
      for (const route of routes.filter((route) => route.authenticated)) {
        const caller = client(url, keys.operator)
        const path = fillPath(route.path, { agent_id: "a" })
        const answer = route.method === "GET" ? yield* caller.get(path) : route.method === "DELETE" ? yield* caller.del(path) : yield* caller.post(path)
        check(route.id, 429, answer, { code: "RATE_LIMITED" })
        expect(answer.body).toMatchObject({ retryable: true, retry_after_ms: expect.any(Number) })
      }
      // Each key has its own allowance; health and readiness need none.
      expect((yield* client(url, keys.a).get("/agents")).status).toBe(200)
      expect((yield* client(url, keys.operator).get("/health")).status).toBe(200)
      yield* TestClock.adjust("1 second")
      expect((yield* client(url, keys.operator).get("/agents")).status).toBe(200)
    }))

  it.scoped("on a server without keys, requests are limited per client address", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ server: { rateLimit: { ratePerSecond: 1, burst: 2 } } })
      expect((yield* request(`${url}/agents`)).status).toBe(200)
      expect((yield* request(`${url}/agents`)).status).toBe(200)
      check("agents.list", 429, yield* request(`${url}/agents`), { code: "RATE_LIMITED" })
    }))

  it.scoped("503 with Retry-After and a problem when the server has as many connections as it takes", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ server: { maxConnections: 1 } })
      // One connection, kept open after its answer.
      const agent = new Http.Agent({ keepAlive: true, maxSockets: 1 })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const first = yield* Effect.async<number>((resume) => {
        const target = new URL(url)
        Http.get({ host: target.hostname, port: target.port, path: "/health", agent }, (response) => {
          response.resume()
          response.on("end", () => resume(Effect.succeed(response.statusCode ?? 0)))
        })
      })
      expect(first).toBe(200)
      const second = yield* rawRequest(url, { path: "/health" })
      expect({ status: second.status, type: second.type, retryAfter: second.headers.get("retry-after") }).toEqual({
        status: 503,
        type: "application/problem+json",
        retryAfter: "1"
      })
      expect(second.body).toMatchObject({ status: 503, code: "AGENT_UNAVAILABLE", retryable: true })
    }))

  it.scoped("every route was answered its success and each failure it documents (but those of a broken store), and nothing else", () =>
    Effect.sync(() => {
      /** Readable by every key: nothing to refuse. */
      const openToEveryKey = new Set(["agents.list", "agents.get", "agents.lineage", "agents.subtree", "agents.team", "agents.edges", "health.health", "health.ready",
        // An agent's key sees its own part of these: nothing to refuse either.
        "inspect.whoami", "inspect.killSwitch", "inspect.edges", "inspect.arcpSessions", "inspect.arcpJobs"])
      const missing: Array<string> = []
      const undocumented: Array<string> = []
      for (const route of routes) {
        const statuses = seen.get(route.id)!
        const takesInput = Option.isSome(route.payload) || Option.isSome(route.pathParams) || Option.isSome(route.urlParams)
        const required = [...route.successes, ...route.failures].filter((status) =>
          // 500 (an undecodable record) and 503 (InternalError, PersistenceError) need a broken store;
          // messages.send's own 503s (BufferFull, AgentShutdown, AgentUnavailable) do not.
          status !== 500 &&
          (status !== 503 || route.id === "messages.send") &&
          (status !== 400 || takesInput || route.method !== "GET") &&
          (status !== 403 || !openToEveryKey.has(route.id))
        )
        for (const status of required) if (!statuses.has(status)) missing.push(`${route.id} ${status}`)
        for (const status of statuses) {
          if (!route.successes.includes(status) && !route.failures.includes(status)) undocumented.push(`${route.id} ${status}`)
        }
      }
      expect(missing).toEqual([])
      expect(undocumented).toEqual([])
    }))
})

describe("Retry-After", () => {
  it.scoped("is sent with a retryable 429 (a rate limit), not with one that is not (a spent budget)", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, server: { rateLimit: { ratePerSecond: 1, burst: 3 } } })
      const a = client(url, keys.a)
      yield* client(url, keys.operator).post("/policies", { yaml: policy })
      yield* a.post("/agents", { agent_id: "a", name: "A" })
      const spent = yield* a.post("/agents/a/charge", { currency: "USD", amount: 100 })
      expect({ status: spent.status, code: spent.body.code, retryable: spent.body.retryable, retryAfter: spent.headers.get("retry-after") }).toEqual({
        status: 429,
        code: "BUDGET_EXHAUSTED",
        retryable: false,
        retryAfter: null
      })
      yield* a.get("/agents")
      const limited = yield* a.get("/agents")
      expect({ status: limited.status, code: limited.body.code, retryable: limited.body.retryable, retryAfter: Number(limited.headers.get("retry-after")) >= 1 }).toEqual({
        status: 429,
        code: "RATE_LIMITED",
        retryable: true,
        retryAfter: true
      })
    }))
})

describe("the OpenAPI document and the docs page", () => {
  it.scoped("/openapi.json is OpenAPI 3.1 listing every route of the API with its parameters, statuses and problem bodies", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const answer = yield* request(`${url}/openapi.json`)
      expect({ status: answer.status, type: answer.type }).toEqual({ status: 200, type: "application/json" })
      const doc = answer.body
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/)
      expect(doc.info).toMatchObject({ title: "Switchboard", version: expect.any(String) })
      expect(doc.components.securitySchemes).toEqual({ bearer: { type: "http", scheme: "bearer" } })

      const listed = Object.entries<any>(doc.paths).flatMap(([path, operations]) =>
        Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`)
      )
      const expected = routes.map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, "{$1}")}`)
      expect(listed.sort()).toEqual([...expected].sort())

      const operationIds = new Set<string>()
      for (const route of routes) {
        const operation = doc.paths[route.path.replace(/:(\w+)/g, "{$1}")][route.method.toLowerCase()]
        const where = `${route.method} ${route.path}`
        expect({ where, operationId: operation.operationId }).toEqual({ where, operationId: route.id })
        operationIds.add(operation.operationId)
        // Path parameters: each one declared, required.
        for (const name of [...route.path.matchAll(/:(\w+)/g)].map((match) => match[1])) {
          expect({ where, parameter: operation.parameters.find((p: any) => p.name === name && p.in === "path")?.required }).toEqual({
            where,
            parameter: true
          })
        }
        expect({ where, security: operation.security }).toEqual({ where, security: route.authenticated ? [{ bearer: [] }] : [] })
        expect({ where, statuses: Object.keys(operation.responses).map(Number).sort() }).toEqual({
          where,
          statuses: [...route.successes, ...route.failures].sort()
        })
        for (const [status, response] of Object.entries<any>(operation.responses)) {
          if (Number(status) < 400) continue
          // Every failure is a problem, whose schema has the members RFC 7807 and Switchboard give it.
          expect({ where, status, types: Object.keys(response.content ?? {}) }).toEqual({ where, status, types: ["application/problem+json"] })
          const schema = response.content["application/problem+json"].schema
          for (const ref of schema.$ref !== undefined ? [schema.$ref] : schema.anyOf.map((member: any) => member.$ref)) {
            const component = doc.components.schemas[ref.replace("#/components/schemas/", "")]
            expect({ where, status, ref, required: component?.required }).toEqual({
              where,
              status,
              ref,
              required: expect.arrayContaining(["type", "title", "status", "detail", "code", "retryable"])
            })
          }
        }
        if (Option.isSome(route.payload) && route.method !== "GET") {
          expect({ where, body: Object.keys(operation.requestBody?.content ?? {}) }).toEqual({ where, body: ["application/json"] })
        }
      }
      expect(operationIds.size).toBe(routes.length)

      // Every reference resolves.
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((match) => match[1])
      expect(refs.length).toBeGreaterThan(0)
      for (const ref of new Set(refs)) {
        const resolved = ref.replace(/^#\//, "").split("/").reduce((node: any, key) => node?.[key], doc)
        expect({ ref, resolved: resolved !== undefined }).toEqual({ ref, resolved: true })
      }
    }))

  it.scoped("/docs answers an HTML page built on the document", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const page = yield* request(`${url}/docs`)
      expect(page.status).toBe(200)
      expect(page.type).toMatch(/^text\/html/)
      expect(page.body).toMatch(/^<!doctype html>/i)
      expect(page.body).toContain("Switchboard")
    }))
})
