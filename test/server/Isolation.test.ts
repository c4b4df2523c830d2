/**
 * Who may do what, over the wire, with a keys file of two agents (`a`, `b`)
 * and an operator: agent `a`'s key acts as `a` and nothing else. It cannot
 * send as `b`, read the status of a message that does not concern it, ack
 * `b`'s deliveries (one at a time or in a batch), stream `b`'s mailbox
 * (WebSocket and Server-Sent Events are refused before the upgrade), read
 * `b`'s dead letters, or reach an operator's route: each attempt is a 403
 * problem. The operator's key can do all of it. No key, or a key no file
 * holds, is a 401 on every route that needs one.
 */
import { describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream, TestClock } from "effect"
import { readFileSync } from "node:fs"
import { expect } from "vitest"
import { type Answer, request, start } from "./harness.js"
import { envelope, expectProblem, fillPath, keys, keysFile, openStream, rawRequest, routes, strangerKey, upgrade } from "./wire.js"

/**
 * Whether refusals are recorded in the audit yet: `Gateway.recordDenied` is
 * being added beside this suite. Until it is, the audit test is skipped, not
 * passed.
 */
const refusalsAudited = readFileSync(new URL("../../src/services/Gateway.ts", import.meta.url), "utf8").includes("recordDenied")

const policy = `
id: isolation
scope: { kind: global }
tools:
  "*": { allow: true }
`

/** A server with keys; `a`, `b` and `c` registered, one message of each kind and one dead letter of `b`'s. */
const world = Effect.gen(function*() {
  const started = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined } })
  const { url } = started
  const as = (key: string | undefined) => ({
    get: (path: string) => request(`${url}${path}`, { key }),
    post: (path: string, body: unknown = {}) => request(`${url}${path}`, { method: "POST", body, key }),
    del: (path: string) => request(`${url}${path}`, { method: "DELETE", key })
  })
  const operator = as(keys.operator)
  const a = as(keys.a)
  const b = as(keys.b)
  expect((yield* a.post("/agents", { agent_id: "a", name: "A" })).status).toBe(200)
  expect((yield* b.post("/agents", { agent_id: "b", name: "B" })).status).toBe(200)
  expect((yield* operator.post("/agents", { agent_id: "c", name: "C" })).status).toBe(200)
  expect((yield* operator.post("/policies", { yaml: policy })).status).toBe(200)
  const send = (who: ReturnType<typeof as>, from: string, to: string, fields: Parameters<typeof envelope>[1] = {}) =>
    Effect.map(who.post("/messages", { to, envelope: envelope(from, fields) }), (answer) => {
      expect(answer.status).toBe(200)
      return answer.body.message_id as string
    })
  const bToC = yield* send(b, "b", "c")
  const bToA = yield* send(b, "b", "a")
  const aToB = yield* send(a, "a", "b")
  // A message to b that expires unread: b's dead letter. The server runs on the test's clock.
  const expired = yield* send(operator, "c", "b", { timestamp: 0, ttl_ms: 1_000 })
  yield* TestClock.adjust("2 seconds")
  expect(yield* operator.get(`/messages/${expired}/await?stage=TIMED_OUT`)).toMatchObject({
    status: 200,
    body: { stage: "TIMED_OUT", dead_letter: true }
  })
  return { ...started, operator, a, b, anonymous: as(undefined), stranger: as(strangerKey), messages: { bToC, bToA, aToB, expired } }
})

/** Every attempt of agent `a`'s key to act beyond `a`, with the route it goes through. */
const attemptsOfA = (w: Effect.Effect.Success<typeof world>) => {
  const { a, messages } = w
  const { aToB, bToA, bToC, expired } = messages
  return [
    // Messages: as another producer, another's status, another's ACKs.
    ["send as b", a.post("/messages", { to: "c", envelope: envelope("b") })],
    ["send a batch with one as b", a.post("/messages/batch", { sends: [{ to: "c", envelope: envelope("a") }, { to: "c", envelope: envelope("b") }] })],
    ["send an ACK envelope as b", a.post("/messages", { to: "c", envelope: envelope("b", { message_type: "ACKNOWLEDGEMENT", payload: { ack_for_message_id: aToB, ack_stage: "FULFILLED" } }) })],
    ["status of b→c", a.get(`/messages/${bToC}`)],
    ["await b→c", a.get(`/messages/${bToC}/await?stage=FULFILLED&wait_ms=0`)],
    ["ack b's delivery as b", a.post("/acks", { agent_id: "b", message_id: aToB, stage: "FULFILLED" })],
    // (These two pass the edge, acting as a, and the runtime refuses them: a is no recipient.)
    ["ack b's delivery as a", a.post("/acks", { agent_id: "a", message_id: aToB, stage: "FULFILLED" }), "runtime"],
    ["ack b→c as a", a.post("/acks", { agent_id: "a", message_id: bToC, stage: "READ" }), "runtime"],
    ["ack a batch with one of b's", a.post("/acks/batch", { acks: [{ agent_id: "a", message_id: bToA, stage: "READ" }, { agent_id: "b", message_id: aToB, stage: "READ" }] })],
    ["redrive b's dead letter", a.post(`/messages/${expired}/redrive`)],
    ["b's dead letters", a.get("/agents/b/dead-letters")],
    // Streams, refused before the upgrade.
    ["stream b's mailbox (WebSocket)", upgrade(w.url, "/agents/b/stream", keys.a)],
    ["stream b's mailbox (SSE)", rawRequest(w.url, { path: "/agents/b/events", headers: { authorization: `Bearer ${keys.a}` } })],
    ["stream b's mailbox (SSE, key in the query)", rawRequest(w.url, { path: `/agents/b/events?access_token=${keys.a}` })],
    // The registry, as b.
    ["register b", a.post("/agents", { agent_id: "b", name: "B" })],
    ["register b (Agent Assembly)", a.post("/agents/b/register", {})],
    ["heartbeat b", a.post("/agents/b/heartbeat", {})],
    ["keep b alive", a.post("/agents/b/keepalive")],
    ["deregister b", a.post("/agents/b/deregister", { reason: "gone" })],
    ["an edge from b", a.post("/topology/edges", { source_agent_id: "b", target_agent_id: "c", edge_type: "calls" })],
    // Governance, as b.
    ["check b's action", a.post("/check", { kind: "tool_call", agent_id: "b", tool: "x", args: {} })],
    ["check b's action (Agent Assembly)", a.post("/agents/b/policy/check", { action: "x" })],
    ["dispatch b's tool call", a.post("/tools/dispatch", { agent_id: "b", tool: "x", args: {} })],
    ["dispatch b's tool call (Agent Assembly)", a.post("/dispatch_tool", { agent_id: "b", tool: "x", args: {} })],
    ["charge b", a.post("/agents/b/charge", { currency: "USD", amount: 1 })],
    ["b's budgets", a.get("/agents/b/budgets")],
    ["delegate a lease to b", a.post("/leases/l1/delegate", { lease_id: "l2", agent_id: "b", grants: {} })],
    // Operators only.
    ["load a policy", a.post("/policies", { yaml: policy })],
    ["list the policies", a.get("/policies")],
    ["remove a policy", a.del("/policies/isolation")],
    ["list approvals", a.get("/approvals")],
    ["approve", a.post("/approvals/approval-1/approve", {})],
    ["reject", a.post("/approvals/approval-1/reject", {})],
    ["suspend b", a.post("/agents/b/suspend", { reason: "x" })],
    ["suspend itself", a.post("/agents/a/suspend", { reason: "x" })],
    ["resume b", a.post("/agents/b/resume", {})],
    ["kill b", a.post("/agents/b/kill", { reason: "x" })],
    ["halt", a.post("/halt", { reason: "x" })],
    ["unhalt", a.post("/unhalt", {})],
    ["grant a lease", a.post("/leases", { lease_id: "l3", agent_id: "a", grants: { "fs.read": ["**"] } })],
    ["read the audit", a.get("/audit")],
    ["verify the audit", a.get("/audit/verify")],
    ["verify the audit against a checkpoint", a.post("/audit/verify", { records: 0, head: "0".repeat(64) })],
    ["the audit checkpoint", a.get("/audit/checkpoint")],
    ["the state", a.get("/state")],
    ["the state at an offset", a.get("/state?at=1")],
    ["the log head", a.get("/log/head")],
    ["follow the log", rawRequest(w.url, { path: "/log/follow", headers: { authorization: `Bearer ${keys.a}` } })]
  ] as const
}

describe("agent a's key acts as a, and nothing else", () => {
  it.scoped("every attempt beyond a is a 403 problem, and changes nothing", () =>
    Effect.gen(function*() {
      const w = yield* world
      const before = yield* w.operator.get("/state")
      for (const [what, attempt] of attemptsOfA(w)) {
        const answer: Answer = yield* attempt
        expect({ what, status: answer.status, code: answer.body?.code }).toEqual({ what, status: 403, code: "PERMISSION_DENIED" })
        expectProblem(answer, 403, "PERMISSION_DENIED")
      }
      const after = yield* w.operator.get("/state")
      // Refused, so nothing happened: no agent, message, policy or kill switch changed (the audit may grow).
      const { gateway: gatewayBefore, ...restBefore } = before.body.state
      const { gateway: gatewayAfter, ...restAfter } = after.body.state
      expect(restAfter).toEqual(restBefore)
      expect({ ...gatewayAfter, audit_head: undefined, audits: undefined }).toEqual({ ...gatewayBefore, audit_head: undefined, audits: undefined })
    }))

  it.scoped("what does concern a is allowed: its own messages' status, its deliveries, its stream and dead letters", () =>
    Effect.gen(function*() {
      const { a, messages, url } = yield* world
      expect(yield* a.get(`/messages/${messages.bToA}`)).toMatchObject({ status: 200, body: { to: "a" } })
      expect(yield* a.get(`/messages/${messages.aToB}`)).toMatchObject({ status: 200, body: { producer_id: "a" } })
      expect(yield* a.get("/agents/a/dead-letters")).toMatchObject({ status: 200, body: [] })
      const stream = yield* openStream(url, "a", keys.a)
      const [delivery] = yield* stream.next(1)
      expect(delivery).toMatchObject({ type: "delivery", envelope: { message_id: messages.bToA } })
      expect(yield* a.post("/acks/batch", { acks: [{ agent_id: "a", message_id: messages.bToA, stage: "FULFILLED" }] })).toMatchObject({
        status: 200,
        body: [{ ok: true, receipt: { stage: "FULFILLED" } }]
      })
      const sse = yield* rawRequest(url, { path: `/agents/a/events?access_token=${keys.a}` })
      expect({ status: sse.status, type: sse.type }).toEqual({ status: 200, type: "text/event-stream" })
    }))

  it.scoped("the operator's key can do each of it", () =>
    Effect.gen(function*() {
      const { messages, operator, url } = yield* world
      expect(yield* operator.get(`/messages/${messages.bToC}`)).toMatchObject({ status: 200, body: { producer_id: "b", to: "c" } })
      expect(yield* operator.get("/agents/b/dead-letters")).toMatchObject({ status: 200, body: [{ message_id: messages.expired }] })
      expect(yield* operator.post("/acks", { agent_id: "c", message_id: messages.bToC, stage: "READ" })).toMatchObject({ status: 200 })
      expect((yield* upgrade(url, "/agents/b/stream", keys.operator)).status).toBe(101)
      expect((yield* rawRequest(url, { path: `/agents/b/events?access_token=${keys.operator}` })).status).toBe(200)
      expect((yield* rawRequest(url, { path: "/log/follow", headers: { authorization: `Bearer ${keys.operator}` } })).status).toBe(200)
      expect((yield* operator.get("/policies")).body).toEqual([expect.objectContaining({ policy_id: "isolation" })])
      for (const path of ["/approvals", "/audit", "/audit/verify", "/audit/checkpoint", "/state", "/state?at=1", "/log/head"]) {
        expect({ path, status: (yield* operator.get(path)).status }).toEqual({ path, status: 200 })
      }
      expect((yield* operator.post("/agents/b/suspend", { reason: "x" })).status).toBe(204)
      expect((yield* operator.post("/agents/b/resume", {})).status).toBe(204)
      expect((yield* operator.post("/halt", { reason: "x" })).status).toBe(204)
      expect((yield* operator.post("/unhalt", {})).status).toBe(204)
      expect((yield* operator.post("/leases", { lease_id: "l1", agent_id: "a", grants: { "fs.read": ["/data/**"] } })).status).toBe(200)
      expect((yield* operator.post(`/messages/${messages.expired}/redrive`)).status).toBe(200)
      expect((yield* operator.post("/agents/b/kill", { reason: "x" })).status).toBe(204)
      expect((yield* operator.del("/policies/isolation")).status).toBe(204)
    }))

  it.scoped.skipIf(!refusalsAudited)("every refusal is in the audit trail, under the refused agent", () =>
    Effect.gen(function*() {
      const w = yield* world
      const attempts = attemptsOfA(w)
      for (const [, attempt] of attempts) expect((yield* attempt).status).toBe(403)
      const records = Chunk.toReadonlyArray(yield* Stream.runCollect(w.gateway.audit)).map((entry) => entry.record)
      const refusals = records.filter((record) => record.agent_id === "a" && /^den/.test(record.decision))
      // One per refusal at the edge at least; the runtime's own refusals may add theirs.
      const atTheEdge = attempts.filter((attempt) => attempt.length === 2)
      expect(refusals.length).toBeGreaterThanOrEqual(atTheEdge.length)
    }))
})

describe("an ACK on a's stream", () => {
  it.scoped("for a message a did not receive is refused on the socket, audited under a, and changes nothing", () =>
    Effect.gen(function*() {
      const w = yield* world
      const stream = yield* openStream(w.url, "a", keys.a)
      yield* stream.next(1)
      stream.socket.send(JSON.stringify({ type: "ack", ref: "theirs", message_id: w.messages.aToB, stage: "FULFILLED" }))
      const frames = yield* stream.next(2)
      expect(frames[1]).toMatchObject({ type: "error", ref: "theirs", error: { status: 403, code: "PERMISSION_DENIED" } })
      expect((yield* w.operator.get(`/messages/${w.messages.aToB}`)).body.stage).not.toBe("FULFILLED")
      const records = Chunk.toReadonlyArray(yield* Stream.runCollect(w.gateway.audit)).map((entry) => entry.record)
      expect(records).toContainEqual(expect.objectContaining({ agent_id: "a", action: "messages.ack", decision: expect.stringMatching(/^den/) }))
    }))
})

describe("an ACKNOWLEDGEMENT envelope", () => {
  it.scoped("for a message a did not receive is refused and audited under a, as an ACK, alone or in a batch", () =>
    Effect.gen(function*() {
      const w = yield* world
      const ackOf = (message_id: string) =>
        envelope("a", { message_type: "ACKNOWLEDGEMENT", payload: { ack_for_message_id: message_id, ack_stage: "FULFILLED" } })
      const audited = Effect.map(Stream.runCollect(w.gateway.audit), (entries) =>
        Chunk.toReadonlyArray(entries).filter(({ record }) => record.agent_id === "a" && record.action === "messages.ack").length)
      const before = yield* audited
      expect(yield* w.a.post("/messages", { to: "b", envelope: ackOf(w.messages.aToB) })).toMatchObject({ status: 403 })
      expect(yield* audited).toBe(before + 1)
      const batch = yield* w.a.post("/messages/batch", { sends: [1, 2, 3].map(() => ({ to: "b", envelope: ackOf(w.messages.aToB) })) })
      expect(batch.body.map((result: any) => result.error?.code)).toEqual(Array(3).fill("PERMISSION_DENIED"))
      expect(yield* audited).toBe(before + 2)
    }))
})

describe("without a key, or with one no file holds", () => {
  it.scoped("every route that needs a key answers 401 UNAUTHENTICATED, streams included; health and readiness do not", () =>
    Effect.gen(function*() {
      const { anonymous, stranger, url } = yield* world
      const keyed = routes.filter((route) => route.authenticated)
      expect(keyed.length).toBe(routes.length - 2)
      for (const route of routes) {
        const path = fillPath(route.path, { agent_id: "a", message_id: "m", policy_id: "p", approval_id: "x", lease_id: "l", team_id: "t" })
        for (const [who, caller, key] of [["no key", anonymous, undefined], ["an unknown key", stranger, strangerKey]] as const) {
          const answer = route.method === "GET"
            ? yield* caller.get(path)
            : route.method === "DELETE"
            ? yield* caller.del(path)
            : yield* caller.post(path, {})
          const what = `${route.method} ${path} with ${who}`
          if (route.authenticated) {
            expect({ what, status: answer.status, code: answer.body?.code }).toEqual({ what, status: 401, code: "UNAUTHENTICATED" })
            expectProblem(answer, 401, "UNAUTHENTICATED")
            // The reason never repeats the token.
            if (key !== undefined) expect(JSON.stringify(answer.body)).not.toContain(key)
          } else {
            expect({ what, status: answer.status }).toEqual({ what, status: 200 })
          }
        }
      }
      for (const path of ["/agents/a/stream", "/agents/a/events", "/log/follow"]) {
        expectProblem(yield* upgrade(url, path), 401, "UNAUTHENTICATED")
        expectProblem(yield* rawRequest(url, { path }), 401, "UNAUTHENTICATED")
        expectProblem(yield* rawRequest(url, { path: `${path}?access_token=${strangerKey}` }), 401, "UNAUTHENTICATED")
        expectProblem(yield* rawRequest(url, { path, headers: { authorization: `Bearer ${strangerKey}` } }), 401, "UNAUTHENTICATED")
      }
      // A malformed header is no key either.
      for (const authorization of ["Bearer", "Bearer ", "Basic YTpi", `bearer ${"x".repeat(5000)}`, keys.a]) {
        expectProblem(yield* rawRequest(url, { path: "/agents", headers: { authorization } }), 401, "UNAUTHENTICATED")
      }
    }))
})
