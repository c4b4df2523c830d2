import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream, TestClock } from "effect"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { gatewayLayer } from "./support/gateway.js"
import { sendTo } from "./support/router.js"

const payments = `
id: pay
scope: { kind: global }
tools:
  "*": { allow: false }
  payments.send: { allow: true, limit_per_hour: 2, requires_approval_if: "args.amount > 1000", redact: ["args.memo"] }
approval_timeout_s: 60
`

const send = (args: Record<string, unknown>, approval_id?: string) =>
  Effect.flatMap(Gateway, (gateway) => gateway.dispatchTool({ agent_id: "alice", tool: "payments.send", args, approval_id }))

/** Opens an approval for `args` and has carol approve it. */
const approved = (args: Record<string, unknown>) =>
  Effect.gen(function*() {
    const waiting = yield* send(args)
    if (waiting._tag !== "AwaitingApproval") return yield* Effect.dieMessage(`expected a pending call, got ${waiting._tag}`)
    yield* (yield* Gateway).approve({ approval_id: waiting.approval_id, by: "carol" })
    return waiting.approval_id
  })

const setUp = Effect.gen(function*() {
  yield* (yield* Registry).register({ agent_id: "alice", name: "alice", team_id: "research-eu" })
  yield* (yield* Gateway).loadPolicy(payments)
})

describe("Gateway approvals", () => {
  it.scoped("an approval is good for the very call it was opened for: same tool, same args", () =>
    Effect.gen(function*() {
      yield* setUp
      const id = yield* approved({ amount: 5_000 })
      const other = yield* Effect.flip(send({ amount: 5_000_000 }, id))
      expect(other).toMatchObject({ _tag: "PermissionDenied", reason: `approval ${id} is for another action` })
      // Refused, not used up: the very call still goes through, once.
      expect(yield* send({ amount: 5_000 }, id)).toMatchObject({ _tag: "Dispatched" })
      expect(yield* Effect.flip(send({ amount: 5_000 }, id))).toMatchObject({ _tag: "PermissionDenied" })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("what the rule redacts is still redacted once a human approves", () =>
    Effect.gen(function*() {
      yield* setUp
      const id = yield* approved({ amount: 5_000, memo: "private" })
      const sent = yield* send({ amount: 5_000, memo: "private" }, id)
      expect(sent).toMatchObject({ _tag: "Dispatched", args: { amount: 5_000, memo: "[REDACTED]" } })
      expect(sent.decision).toMatchObject({ decision: "redact", redact: ["args.memo"] })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("at its deadline an approval has timed out: approving it then fails, and it stays a deny", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* setUp
      const waiting = yield* send({ amount: 5_000 })
      const id = waiting._tag === "AwaitingApproval" ? waiting.approval_id : ""
      const late = yield* Effect.fork(Effect.flip(gateway.approve({ approval_id: id, by: "carol" })).pipe(Effect.delay("60 seconds")))
      yield* TestClock.adjust("60 seconds")
      expect(yield* Fiber.join(late)).toMatchObject({ _tag: "ValidationError" })
      expect((yield* gateway.approvals()).map((approval) => approval.status)).toEqual(["timed_out"])
      expect(yield* Effect.flip(send({ amount: 5_000 }, id))).toMatchObject({ _tag: "PermissionDenied" })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("an approval lifts a pending, never a deny: a policy denying the call since overrules it", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* setUp
      const id = yield* approved({ amount: 5_000 })
      yield* gateway.loadPolicy(`id: freeze\nscope: { kind: global }\ntools: { payments.send: { allow: false } }\n`)
      const refused = yield* Effect.flip(send({ amount: 5_000 }, id))
      expect(refused).toMatchObject({ _tag: "PermissionDenied", reason: expect.stringContaining("payments.send") })
      yield* gateway.removePolicy("freeze")
      expect(yield* send({ amount: 5_000 }, id)).toMatchObject({ _tag: "Dispatched" })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("an approved call is counted once against its hourly limit: when approved, not again when dispatched", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* (yield* Registry).register({ agent_id: "alice", name: "alice" })
      yield* gateway.loadPolicy(payments.replace("limit_per_hour: 2", "limit_per_hour: 1"))
      const id = yield* approved({ amount: 5_000 })
      expect(yield* send({ amount: 5_000 }, id)).toMatchObject({ _tag: "Dispatched" })
      expect(yield* Effect.flip(send({ amount: 5 }))).toMatchObject({ _tag: "PermissionDenied" })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("a human cannot approve a call whose hourly limit filled up while it waited", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* (yield* Registry).register({ agent_id: "alice", name: "alice" })
      yield* gateway.loadPolicy(payments.replace("limit_per_hour: 2", "limit_per_hour: 1"))
      const waiting = yield* send({ amount: 5_000 })
      const id = waiting._tag === "AwaitingApproval" ? waiting.approval_id : ""
      // A small payment needs no human and takes the hour's one call.
      expect(yield* send({ amount: 5 })).toMatchObject({ _tag: "Dispatched" })
      const refused = yield* Effect.flip(gateway.approve({ approval_id: id, by: "carol" }))
      expect(refused).toMatchObject({ _tag: "PermissionDenied", reason: expect.stringContaining("limit") })
      expect((yield* gateway.approvals()).map((approval) => approval.status)).toEqual(["open"])
      expect(yield* Effect.flip(send({ amount: 5_000 }, id))).toMatchObject({ _tag: "PermissionDenied" })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("an approved call must be made within the approval's window, or the approval lapses", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* setUp
      const id = yield* approved({ amount: 5_000 })
      yield* TestClock.adjust("59 seconds")
      const kept = yield* approved({ amount: 6_000 })
      yield* TestClock.adjust("1 second")
      expect(yield* Effect.flip(send({ amount: 5_000 }, id))).toMatchObject({ _tag: "PermissionDenied" })
      expect((yield* gateway.approvals({ status: "lapsed" })).map((approval) => approval.approval_id)).toEqual([id])
      // The other is still within its own window.
      expect(yield* send({ amount: 6_000 }, kept)).toMatchObject({ _tag: "Dispatched" })
      const decisions = Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit)).map((entry) => entry.record.decision)
      expect(decisions).toContain("lapsed")
      expect(yield* gateway.verifyAudit).toMatchObject({ ok: true })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("a redaction loaded since the approval applies to the approved call too", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* (yield* Registry).register({ agent_id: "alice", name: "alice" })
      yield* gateway.loadPolicy(payments.replace(', redact: ["args.memo"]', ""))
      const id = yield* approved({ amount: 5_000, memo: "private", to: "bob" })
      yield* gateway.loadPolicy(`id: privacy\nscope: { kind: global }\ntools: { payments.send: { allow: true, redact: ["args.to"] } }\n`)
      const sent = yield* send({ amount: 5_000, memo: "private", to: "bob" }, id)
      expect(sent).toMatchObject({ _tag: "Dispatched", args: { memo: "private", to: "[REDACTED]" } })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("approved calls count toward limit_per_hour like allowed ones", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* setUp
      for (const amount of [5_000, 6_000]) yield* send({ amount }, yield* approved({ amount }))
      const third = yield* gateway.check({ kind: "tool_call", agent_id: "alice", tool: "payments.send", args: { amount: 7_000 } })
      expect(third).toMatchObject({ decision: "deny", reason: expect.stringContaining("limit of 2 calls per hour") })
    }).pipe(Effect.provide(gatewayLayer())))
})

describe("Gateway input checks", () => {
  it.scoped("an audit context is decoded before it reaches the hashed record: bad ones fail alone, the trail verifies", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* setUp
      const call = { kind: "tool_call", agent_id: "alice", tool: "payments.send", args: { amount: 1 } } as const
      const node = { id: "n1", kind: "tool", label: "search", latency_ms: 3, children: [] }
      for (
        const context of [
          { call_stack: { ...node, latency_ms: Number.NaN } },
          { call_stack: { ...node, extra: "x" } },
          { trace_id: 42 },
          { spam: true }
        ]
      ) {
        const refused = yield* Effect.flip(gateway.check({ ...call, context: context as never }))
        expect(refused).toMatchObject({ _tag: "ValidationError", subject: "context" })
      }
      const fine = yield* gateway.check({ ...call, context: { trace_id: "t-1", call_stack: node as never } })
      expect(fine.decision).toBe("redact")
      expect(yield* gateway.verifyAudit).toEqual({ ok: true, count: 1 })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("a network host must be a host name or an IP address, so an allowlist pattern cannot be fooled", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* (yield* Registry).register({ agent_id: "alice", name: "alice" })
      yield* gateway.loadPolicy(`id: net\nscope: { kind: global }\nnetwork: { allow: ["*.example.com"] }\n`)
      const decide = (host: string) => Effect.map(gateway.check({ kind: "network", agent_id: "alice", host }), (d) => d.decision)
      expect(yield* decide("api.example.com")).toBe("allow")
      expect(yield* decide("api.example.com.")).toBe("allow")
      expect(yield* decide("evil-example.com")).toBe("deny")
      expect(yield* decide("example.com.evil.net")).toBe("deny")
      expect(yield* decide("10.0.0.1")).toBe("deny")
      for (const host of ["evil.net/.example.com", "evil.net#.example.com", "user@evil.net", "", "a..example.com", "-a.example.com"]) {
        expect(yield* Effect.flip(decide(host))).toMatchObject({ _tag: "ValidationError", subject: "action" })
      }
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("requests from outside fail alone with ValidationError, and the runtime goes on", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const registry = yield* Registry
      yield* registry.register({ agent_id: "alice", name: "alice" })
      yield* registry.register({ agent_id: "bob", name: "bob" })
      const junk = <A>(value: unknown) => value as A
      const refused: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
        gateway.charge({ agent_id: "alice", currency: "", amount: 1 }),
        gateway.charge(junk({ agent_id: "alice", currency: "EUR", amount: "1" })),
        gateway.checkLease(junk({ lease_id: "l1", namespace: "fs.read", resource: 42 })),
        gateway.suspend({ agent_id: "", reason: "why" }),
        registry.heartbeat({ agent_id: "bob", state: "RUNNING", health: junk({ cpu: 0.5 }) }),
        registry.deregister({ agent_id: "bob", reason: junk(undefined) }),
        registry.addEdge(junk({ from: "", to: "bob", edge_type: "calls" })),
        registry.addEdge(junk({ from: "alice", to: "bob", edge_type: "likes" }))
      ]
      // All at once with a good send: each bad one fails by itself, the send goes through.
      const [results, sent] = yield* Effect.all([
        Effect.all(refused.map((effect) => Effect.flip(effect)), { concurrency: "unbounded" }),
        sendTo("bob", { producer_id: "alice", payload: "fine" })
      ], { concurrency: "unbounded" })
      for (const error of results) expect(error).toMatchObject({ _tag: "ValidationError" })
      expect(sent.stage).toBe("RECEIVED")
      // A charge past what a counter holds, with no limit set, is refused; the runtime still answers.
      yield* gateway.charge({ agent_id: "alice", currency: "EUR", amount: 1e308 })
      expect(yield* Effect.flip(gateway.charge({ agent_id: "alice", currency: "EUR", amount: 1e308 }))).toMatchObject({
        _tag: "ValidationError",
        message: expect.stringContaining("overflow")
      })
      expect((yield* registry.list).length).toBe(2)
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("budgets follow policies scoped by a glob, as decisions do", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* (yield* Registry).register({ agent_id: "bot-1", name: "bot", team_id: "research-eu" })
      yield* gateway.loadPolicy(`id: bots\nscope: { kind: agent, id: "bot-*" }\nbudgets: [{ currency: USD, limit: 10, per: agent }]\n`)
      yield* gateway.loadPolicy(`id: teams\nscope: { kind: team, id: "research-*" }\nbudgets: [{ currency: EUR, limit: 5, per: team }]\n`)
      expect(yield* Effect.flip(gateway.charge({ agent_id: "bot-1", currency: "USD", amount: 11 }))).toMatchObject({
        _tag: "BudgetExhausted",
        scope: "agent bot-1",
        limit: 10
      })
      expect(yield* Effect.flip(gateway.charge({ agent_id: "bot-1", currency: "EUR", amount: 6 }))).toMatchObject({
        _tag: "BudgetExhausted",
        scope: "team research-eu",
        limit: 5
      })
    }).pipe(Effect.provide(gatewayLayer())))
})
