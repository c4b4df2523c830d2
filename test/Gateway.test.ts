import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream, TestClock } from "effect"
import * as Processor from "../src/layers/Processor.js"
import * as Replay from "../src/layers/Replay.js"
import { buildEnvelope } from "../src/model/Envelopes.js"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { Router } from "../src/services/Router.js"
import { EventLog } from "../src/services/EventLog.js"
import { gatewayLayer, SECRET, toolsPolicy } from "./support/gateway.js"
import { inbox, sendTo } from "./support/router.js"

const registerAll = Effect.gen(function*() {
  const registry = yield* Registry
  yield* registry.register({ agent_id: "alice", name: "alice", team_id: "research" })
  yield* registry.register({ agent_id: "bob", name: "bob", team_id: "research" })
  yield* registry.register({ agent_id: "watcher", name: "watcher", enforcement_mode: "observe" })
  yield* registry.register({ agent_id: "free", name: "free", enforcement_mode: "disabled" })
  yield* registry.register({ agent_id: "mallory", name: "mallory", team_id: "finance" })
})

describe("Gateway policies and decisions", () => {
  it.scoped("loads, replaces and refuses policies; a bad document lists every problem with its path", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      expect(yield* gateway.loadPolicy(toolsPolicy)).toMatchObject({ policy_id: "tools", version: 1 })
      expect(yield* gateway.loadPolicy(toolsPolicy)).toMatchObject({ policy_id: "tools", version: 2 })
      const bad = yield* Effect.flip(gateway.loadPolicy("id: broken\nscope: { kind: team }\ntools: { x: { allow: maybe, limit_per_hour: -1 } }\n"))
      expect(bad._tag).toBe("InvalidPolicy")
      const paths = (bad as { problems: ReadonlyArray<{ path: string }> }).problems.map((p) => p.path)
      expect(paths).toEqual(expect.arrayContaining(["scope.id", "tools.x.allow", "tools.x.limit_per_hour"]))
      expect((yield* gateway.policies).map((p) => [p.policy_id, p.version])).toEqual([["tools", 2]])
      yield* gateway.removePolicy("tools")
      expect(yield* gateway.policies).toEqual([])
      expect(yield* Effect.flip(gateway.removePolicy("tools"))).toMatchObject({ _tag: "ValidationError" })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("decides allow, deny, pending and redact, fails closed, and follows each enforcement mode", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* registerAll
      yield* gateway.loadPolicy(toolsPolicy)
      const tool = (agent_id: string, tool: string, args: unknown = {}) => gateway.check({ kind: "tool_call", agent_id, tool, args })
      expect(yield* tool("alice", "web.search")).toMatchObject({ decision: "allow", dry_run: false })
      expect(yield* tool("alice", "shell.exec")).toMatchObject({ decision: "deny" })
      const pending = yield* tool("alice", "payments.send", { amount: 5000 })
      expect(pending).toMatchObject({ decision: "pending", approval_id: "approval-1" })
      expect(yield* tool("alice", "payments.send", { amount: 5 })).toMatchObject({ decision: "allow" })
      expect(yield* tool("alice", "email.send", { body: "hi" })).toMatchObject({ decision: "redact", redact: ["args.body"] })
      // limit_per_hour: 2 allowed calls, then deny; an hour later, allowed again.
      yield* tool("alice", "web.search")
      expect(yield* tool("alice", "web.search")).toMatchObject({ decision: "deny" })
      yield* TestClock.adjust("61 minutes")
      expect(yield* tool("alice", "web.search")).toMatchObject({ decision: "allow" })
      expect(yield* tool("nobody", "web.search")).toMatchObject({ decision: "deny", rule: "registry" })
      expect(yield* tool("watcher", "shell.exec")).toMatchObject({ decision: "allow", dry_run: true, shadow_decision: "deny" })
      expect(yield* tool("free", "shell.exec")).toMatchObject({ decision: "allow", reason: "enforcement disabled: not evaluated" })
      // An action whose kind cannot even be stringified (Schema calls String() on a union's tag) is bad input, not a crash.
      const hostile = JSON.parse('{"kind":{"toString":""},"agent_id":"alice","tool":"web.search","args":{}}')
      expect(yield* Effect.flip(gateway.check(hostile))).toMatchObject({ _tag: "ValidationError", subject: "action" })
      const records = Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit)).map((entry) => entry.record)
      const watched = records.find((r) => r.agent_id === "watcher")!
      expect(watched).toMatchObject({ decision: "allow", dry_run: true, shadow_decision: "deny" })
      expect(records.find((r) => r.agent_id === "free")).toMatchObject({ reason: "enforcement disabled: not evaluated" })
      expect(records.find((r) => r.agent_id === "alice")!.lineage).toEqual(["alice"])
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("the router asks before admitting: a denied message is REJECTED with PERMISSION_DENIED and never delivered", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      yield* registerAll
      yield* gateway.loadPolicy(`
id: messaging
scope: { kind: global }
messages:
  - { from: { team: finance }, to: "*", allow: false }
  - { from: "*", to: "*", types: [DATA], allow: true }
`)
      const ok = yield* sendTo("bob", { producer_id: "alice", payload: "hi" })
      expect(ok.stage).toBe("RECEIVED")
      const denied = yield* Effect.flip(sendTo("bob", { producer_id: "mallory", payload: "psst" }))
      expect(denied).toMatchObject({ _tag: "PermissionDenied", code: "PERMISSION_DENIED" })
      const notData = yield* Effect.flip(sendTo("bob", { producer_id: "alice", payload: 1, message_type: "CONTROL" }))
      expect(notData._tag).toBe("PermissionDenied")
      const refusedId = (yield* router.snapshot).state.messages
      const refused = Object.entries(refusedId).find(([, m]) => m.producer_id === "mallory")!
      expect(refused[1]).toMatchObject({ stage: "REJECTED", error_code: "PERMISSION_DENIED", location: "done" })
      const next = yield* inbox("bob")
      const got = yield* next(1)
      expect(got.map((d) => d._tag === "Delivery" && d.envelope.message_id)).toEqual([ok.message_id])
      const snap = (yield* router.snapshot).state.mailboxes["bob"]
      expect(snap.in_flight + snap.queued.STANDARD.length).toBe(1)
    }).pipe(Effect.provide(gatewayLayer())))
})

describe("Gateway approvals and kill switch", () => {
  it.scoped("a pending decision opens an approval: approved, rejected, or timed out into deny", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* registerAll
      yield* gateway.loadPolicy(toolsPolicy)
      const pay = (amount: number) => gateway.check({ kind: "tool_call", agent_id: "alice", tool: "payments.send", args: { amount } })
      const first = yield* pay(2000)
      const second = yield* pay(3000)
      const third = yield* pay(4000)
      expect((yield* gateway.approvals({ status: "open" })).map((a) => a.approval_id)).toEqual([first.approval_id, second.approval_id, third.approval_id])
      const waiting = yield* Effect.fork(gateway.awaitApproval(first.approval_id!))
      expect(yield* gateway.approve({ approval_id: first.approval_id!, by: "carol", note: "fine" })).toMatchObject({ status: "approved", by: "carol" })
      expect(yield* Fiber.join(waiting)).toMatchObject({ status: "approved" })
      expect(yield* gateway.reject({ approval_id: second.approval_id!, by: "carol" })).toMatchObject({ status: "rejected" })
      expect(yield* Effect.flip(gateway.approve({ approval_id: second.approval_id!, by: "carol" }))).toMatchObject({ _tag: "ValidationError" })
      const timing = yield* Effect.fork(gateway.awaitApproval(third.approval_id!))
      yield* TestClock.adjust("61 seconds")
      expect(yield* Fiber.join(timing)).toMatchObject({ status: "timed_out" })
      const decisions = Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit)).map((e) => e.record.decision)
      // The approval nobody used lapses at the end of its window, as the open one times out.
      expect(decisions).toEqual(["pending", "pending", "pending", "approved", "rejected", "lapsed", "timed_out"])
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("suspend stops sending and receiving while deliveries wait; kill is for good; halt stops everyone", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      const registry = yield* Registry
      yield* registerAll
      yield* gateway.loadPolicy(toolsPolicy)
      const queued = yield* sendTo("bob", { producer_id: "alice", payload: "before" })
      yield* gateway.suspend({ agent_id: "bob", reason: "investigating" })
      expect(yield* Effect.flip(sendTo("alice", { producer_id: "bob", payload: "x" }))).toMatchObject({ _tag: "PermissionDenied" })
      const waiting = yield* sendTo("bob", { producer_id: "alice", payload: "during" })
      const next = yield* inbox("bob")
      yield* TestClock.adjust("10 millis")
      const mailbox = (yield* router.snapshot).state.mailboxes["bob"]
      expect(mailbox.in_flight).toBe(0)
      expect(mailbox.queued.STANDARD).toEqual([queued.message_id, waiting.message_id])
      expect(yield* gateway.check({ kind: "tool_call", agent_id: "bob", tool: "web.search", args: {} })).toMatchObject({ decision: "deny", rule: "kill switch" })
      yield* gateway.resume({ agent_id: "bob" })
      expect((yield* next(2)).map((d) => d._tag === "Delivery" && d.envelope.message_id)).toEqual([queued.message_id, waiting.message_id])
      yield* gateway.kill({ agent_id: "mallory", reason: "compromised" })
      expect(yield* Effect.flip(registry.register({ agent_id: "mallory", name: "again" }))).toMatchObject({ _tag: "AgentKilled", code: "PERMISSION_DENIED" })
      expect(yield* Effect.flip(sendTo("mallory", { producer_id: "alice", payload: 1 }))).toMatchObject({ _tag: "NoRoute" })
      yield* gateway.halt({ reason: "incident" })
      expect(yield* Effect.flip(sendTo("bob", { producer_id: "alice", payload: 1 }))).toMatchObject({ _tag: "PermissionDenied" })
      expect(yield* Effect.flip(gateway.halt({ reason: "again" }))).toMatchObject({ _tag: "ValidationError" })
      yield* gateway.unhalt()
      expect((yield* sendTo("bob", { producer_id: "alice", payload: 1 })).stage).toBe("RECEIVED")
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("a suspended agent cannot acknowledge either, by ack or by ACKNOWLEDGEMENT envelope, until resumed", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      yield* registerAll
      const receipt = yield* sendTo("bob", { producer_id: "alice", payload: "work" })
      const next = yield* inbox("bob")
      yield* next(1)
      yield* gateway.suspend({ agent_id: "bob", reason: "investigating" })
      const fulfil = { agent_id: "bob", message_id: receipt.message_id, stage: "FULFILLED" } as const
      expect(yield* Effect.flip(router.ack(fulfil))).toMatchObject({ _tag: "PermissionDenied", reason: expect.stringContaining("suspended") })
      const ackEnvelope = buildEnvelope({
        producer_id: "bob",
        message_type: "ACKNOWLEDGEMENT",
        payload: { ack_for_message_id: receipt.message_id, ack_stage: "FULFILLED" }
      }, "ack-1", 0)
      expect(yield* Effect.flip(router.send({ to: "alice", envelope: ackEnvelope }))).toMatchObject({ _tag: "PermissionDenied" })
      expect(yield* router.status(receipt.message_id)).toMatchObject({ value: { stage: "RECEIVED" } })
      // What it tried to send while suspended was refused, not recorded: sent again now, it is no duplicate.
      const retry = { producer_id: "bob", payload: "report", idempotency_token: "report-1" }
      expect(yield* Effect.flip(sendTo("alice", retry))).toMatchObject({ _tag: "PermissionDenied" })
      yield* gateway.resume({ agent_id: "bob" })
      expect(yield* router.ack(fulfil)).toMatchObject({ stage: "FULFILLED", late: false })
      expect(yield* sendTo("alice", retry)).toMatchObject({ stage: "RECEIVED" })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("work by capability waits in a suspended agent's mailbox when no other can take it, and a halt refuses as the kill switch", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      const registry = yield* Registry
      yield* registry.register({ agent_id: "p", name: "p" })
      yield* registry.register({ agent_id: "x", name: "x", capabilities: ["sum"] })
      yield* registry.register({ agent_id: "y", name: "y", capabilities: ["sum"] })
      yield* gateway.suspend({ agent_id: "x", reason: "short check" })
      expect((yield* sendTo({ capability: "sum" }, { producer_id: "p", payload: 1 })).to).toBe("y")
      yield* gateway.suspend({ agent_id: "y", reason: "short check" })
      const held = yield* sendTo({ capability: "sum" }, { producer_id: "p", payload: 2 })
      expect(held.to).toBe("x")
      // x, killed while y is suspended, leaves its work to y, which takes it once resumed.
      yield* gateway.kill({ agent_id: "x", reason: "compromised" })
      expect(yield* router.status(held.message_id)).toMatchObject({ value: { to: "y", stage: "RECEIVED" } })
      yield* gateway.resume({ agent_id: "y" })
      const next = yield* inbox("y")
      expect((yield* next(2)).length).toBe(2)
      yield* gateway.halt({ reason: "incident" })
      expect(yield* Effect.flip(sendTo({ capability: "sum" }, { producer_id: "p", payload: 3 }))).toMatchObject({
        _tag: "PermissionDenied"
      })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("a processor outlives its agent's suspension, and takes its messages again once resumed", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      const registry = yield* Registry
      yield* registry.register({ agent_id: "p", name: "p" })
      yield* registry.register({ agent_id: "w", name: "w" })
      const processor = yield* Effect.fork(Processor.run("w", { default: () => Effect.sleep("1 second") }))
      const first = yield* sendTo("w", { producer_id: "p", payload: 1 })
      yield* TestClock.adjust("10 millis")
      yield* gateway.suspend({ agent_id: "w", reason: "short check" })
      yield* TestClock.adjust("2 seconds")
      expect(processor.unsafePoll()).toBe(null)
      yield* gateway.resume({ agent_id: "w" })
      const second = yield* sendTo("w", { producer_id: "p", payload: 2 })
      yield* TestClock.adjust("40 seconds")
      for (const { message_id } of [first, second]) {
        expect(yield* router.status(message_id)).toMatchObject({ value: { stage: "FULFILLED" } })
      }
      yield* Fiber.interrupt(processor)
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("a dead letter of a killed agent cannot be redriven back to it", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      const registry = yield* Registry
      yield* registry.register({ agent_id: "p", name: "p" })
      yield* registry.register({ agent_id: "w", name: "w" })
      const sent = yield* sendTo("w", { producer_id: "p", payload: 1 })
      yield* gateway.kill({ agent_id: "w", reason: "compromised" })
      expect(yield* Effect.flip(router.redrive(sent.message_id))).toMatchObject({ _tag: "NoRoute", to: "w" })
      expect(yield* router.deadLetters("w")).toMatchObject([{ message_id: sent.message_id, error_code: "AGENT_SHUTDOWN" }])
      // One routed by capability may be redriven: it waits for the next agent able to take it.
      yield* registry.register({ agent_id: "c", name: "c", capabilities: ["sum"] })
      const job = yield* sendTo({ capability: "sum" }, { producer_id: "p", payload: 2, ttl_ms: 1000 })
      yield* TestClock.adjust("2 seconds")
      yield* router.awaitStage({ message_id: job.message_id, stage: "TIMED_OUT" })
      yield* gateway.kill({ agent_id: "c", reason: "compromised" })
      expect(yield* router.redrive(job.message_id)).toMatchObject({ to: "c" })
      yield* registry.register({ agent_id: "d", name: "d", capabilities: ["sum"] })
      expect(yield* router.status(job.message_id)).toMatchObject({ value: { to: "d", stage: "RECEIVED" } })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("killing an agent hands its capability work to a live agent and times out what was sent to it by name", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      const registry = yield* Registry
      yield* registry.register({ agent_id: "p", name: "p" })
      yield* registry.register({ agent_id: "w1", name: "w1", capabilities: ["work"] })
      const byCapability = yield* sendTo({ capability: "work" }, { producer_id: "p", payload: "job" })
      const byName = yield* sendTo("w1", { producer_id: "p", payload: "for w1" })
      const taken = yield* sendTo("w1", { producer_id: "p", payload: "taken" })
      const next = yield* inbox("w1")
      expect((yield* next(3)).length).toBe(3)
      const later = yield* sendTo("w1", { producer_id: "p", payload: "queued" })
      yield* registry.register({ agent_id: "w2", name: "w2", capabilities: ["work"] })
      yield* gateway.kill({ agent_id: "w1", reason: "compromised" })
      expect(yield* router.status(byCapability.message_id)).toMatchObject({ value: { to: "w2", stage: "RECEIVED" } })
      for (const { message_id } of [byName, taken, later]) {
        expect(yield* router.awaitStage({ message_id, stage: "FULFILLED" })).toMatchObject({
          stage: "TIMED_OUT",
          error_code: "AGENT_SHUTDOWN",
          dead_letter: true
        })
      }
    }).pipe(Effect.provide(gatewayLayer())))
})

describe("Gateway budgets and leases", () => {
  it.scoped("charges agent and team counters; crossing a limit fails with BudgetExhausted and charges nothing", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* registerAll
      yield* gateway.loadPolicy(toolsPolicy)
      const charged = yield* gateway.charge({ agent_id: "alice", currency: "USD", amount: 6 })
      expect(charged.map((b) => [b.scope, b.scope_id, b.spent, b.limit])).toEqual([["agent", "alice", 6, 10], ["team", "research", 6, 15]])
      expect(yield* gateway.charge({ agent_id: "alice", currency: "USD", amount: 4 })).toHaveLength(2)
      const exhausted = yield* Effect.flip(gateway.charge({ agent_id: "alice", currency: "USD", amount: 0.5 }))
      expect(exhausted).toMatchObject({ _tag: "BudgetExhausted", code: "BUDGET_EXHAUSTED", retryable: false, limit: 10, spent: 10 })
      // Bob has room of his own, but the team has 5 left.
      const teamFull = yield* Effect.flip(gateway.charge({ agent_id: "bob", currency: "USD", amount: 6 }))
      expect(teamFull).toMatchObject({ _tag: "BudgetExhausted", scope: "team research", spent: 10, limit: 15 })
      expect((yield* gateway.budgets("bob")).map((b) => b.spent)).toEqual([0, 10])
      expect(yield* Effect.flip(gateway.charge({ agent_id: "bob", currency: "USD", amount: -1 }))).toMatchObject({ _tag: "ValidationError" })
      const log = yield* EventLog
      const kinds = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read())).map((r) => r.event._tag)
      expect(kinds.filter((k) => k === "BudgetExhaustedRecorded")).toHaveLength(2)
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("grants leases, denies what they do not cover or after they expire, and keeps delegations to subsets", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* registerAll
      yield* gateway.grantLease({ lease_id: "L1", agent_id: "alice", grants: { "fs.read": ["/data/**"], "net.fetch": ["*.example.com"] }, expires_at: 5000 })
      yield* gateway.checkLease({ lease_id: "L1", namespace: "fs.read", resource: "/data/a/b.txt" })
      expect(yield* Effect.flip(gateway.checkLease({ lease_id: "L1", namespace: "fs.write", resource: "/data/a" }))).toMatchObject({ _tag: "PermissionDenied", retryable: false })
      const child = yield* gateway.delegateLease({ parent_lease_id: "L1", lease: { lease_id: "L2", agent_id: "bob", grants: { "fs.read": ["/data/public/**"] }, expires_at: 4000 } })
      expect(child.parent_lease_id).toBe("L1")
      expect(yield* Effect.flip(gateway.delegateLease({ parent_lease_id: "L1", lease: { lease_id: "L3", agent_id: "bob", grants: { "fs.read": ["/etc/**"] }, expires_at: 4000 } }))).toMatchObject({ _tag: "LeaseSubsetViolation", retryable: false })
      expect(yield* Effect.flip(gateway.grantLease({ lease_id: "L1", agent_id: "x", grants: {} }))).toMatchObject({ _tag: "ValidationError" })
      yield* TestClock.adjust("5 seconds")
      expect(yield* Effect.flip(gateway.checkLease({ lease_id: "L1", namespace: "fs.read", resource: "/data/a" }))).toMatchObject({ _tag: "LeaseExpired", retryable: false })
      const decisions = Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit)).map((e) => e.record.decision)
      expect(decisions).toEqual(["lease_denied", "lease_denied", "lease_expired"])
    }).pipe(Effect.provide(gatewayLayer())))
})

describe("Gateway dispatch and secrets", () => {
  it.scoped("dispatches with secrets injected just before, masks redacted args, and no secret reaches the log, audit or errors", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const log = yield* EventLog
      yield* registerAll
      yield* gateway.loadPolicy(toolsPolicy)
      const sent = yield* gateway.dispatchTool({ agent_id: "alice", tool: "http.get", args: { url: "https://x", headers: { authorization: "Bearer ${API_KEY}" } } })
      expect(sent).toMatchObject({ _tag: "Dispatched", substituted: ["API_KEY"], args: { headers: { authorization: `Bearer ${SECRET}` } } })
      const redacted = yield* gateway.dispatchTool({ agent_id: "alice", tool: "email.send", args: { to: "x", body: "secret plan ${API_KEY}" } })
      expect(redacted).toMatchObject({ _tag: "Dispatched", args: { to: "x", body: "[REDACTED]" } })
      const unknown = yield* Effect.flip(gateway.dispatchTool({ agent_id: "alice", tool: "http.get", args: { k: "${NOPE} ${API_KEY}" } }))
      expect(unknown).toMatchObject({ _tag: "UnknownPlaceholder", names: ["NOPE"] })
      expect(JSON.stringify(unknown) + unknown.message).not.toContain(SECRET)
      expect(yield* Effect.flip(gateway.dispatchTool({ agent_id: "alice", tool: "shell.exec", args: {} }))).toMatchObject({ _tag: "PermissionDenied" })
      // Args the log could not keep as they are: refused at the edge, nothing recorded.
      for (const args of [{ a: [undefined] }, { n: Number.NaN }, { when: new Date(0) }]) {
        expect(yield* Effect.flip(gateway.dispatchTool({ agent_id: "alice", tool: "http.get", args }))).toMatchObject({ _tag: "ValidationError" })
      }
      const awaiting = yield* gateway.dispatchTool({ agent_id: "alice", tool: "payments.send", args: { amount: 5000, key: "${API_KEY}" } })
      expect(awaiting._tag).toBe("AwaitingApproval")
      const approvalId = (awaiting as { approval_id: string }).approval_id
      expect(yield* Effect.flip(gateway.dispatchTool({ agent_id: "alice", tool: "payments.send", args: { amount: 5000, key: "${API_KEY}" }, approval_id: approvalId }))).toMatchObject({ _tag: "PermissionDenied" })
      yield* gateway.approve({ approval_id: approvalId, by: "carol" })
      const paid = yield* gateway.dispatchTool({ agent_id: "alice", tool: "payments.send", args: { amount: 5000, key: "${API_KEY}" }, approval_id: approvalId })
      expect(paid).toMatchObject({ _tag: "Dispatched", args: { key: SECRET } })
      expect(yield* Effect.flip(gateway.dispatchTool({ agent_id: "alice", tool: "payments.send", args: { amount: 5000 }, approval_id: approvalId }))).toMatchObject({ _tag: "PermissionDenied" })
      // Everything recorded holds the placeholder, never the value.
      const everything = JSON.stringify(Chunk.toReadonlyArray(yield* Stream.runCollect(log.read())))
      expect(everything).not.toContain(SECRET)
      expect(everything).toContain("${API_KEY}")
      const dispatched = Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit)).filter((e) => e.record.decision === "dispatched")
      expect(dispatched.map((e) => e.record.reason)).toEqual([
        "dispatched with ${API_KEY} injected",
        "dispatched with ${API_KEY} injected",
        "dispatched with ${API_KEY} injected"
      ])
    }).pipe(Effect.provide(gatewayLayer())))
})

describe("Gateway end to end", () => {
  it.scoped("a governed agent is denied, approved, runs out of budget and is suspended, all visible in the replayed log", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* registerAll
      yield* gateway.loadPolicy(toolsPolicy)
      expect(yield* Effect.flip(gateway.dispatchTool({ agent_id: "alice", tool: "shell.exec", args: {} }))).toMatchObject({ _tag: "PermissionDenied" })
      // Args the log could not keep as they are: refused at the edge, nothing recorded.
      for (const args of [{ a: [undefined] }, { n: Number.NaN }, { when: new Date(0) }]) {
        expect(yield* Effect.flip(gateway.dispatchTool({ agent_id: "alice", tool: "http.get", args }))).toMatchObject({ _tag: "ValidationError" })
      }
      const awaiting = yield* gateway.dispatchTool({ agent_id: "alice", tool: "payments.send", args: { amount: 2000 } })
      yield* gateway.approve({ approval_id: (awaiting as { approval_id: string }).approval_id, by: "carol" })
      yield* gateway.dispatchTool({ agent_id: "alice", tool: "payments.send", args: { amount: 2000 }, approval_id: (awaiting as { approval_id: string }).approval_id })
      yield* gateway.charge({ agent_id: "alice", currency: "USD", amount: 10 })
      yield* Effect.flip(gateway.charge({ agent_id: "alice", currency: "USD", amount: 1 }))
      yield* gateway.suspend({ agent_id: "alice", reason: "over budget" })
      const lines = Chunk.toReadonlyArray(yield* Stream.runCollect(Replay.timeline({ agent: "alice" }))).map((e) => e.text)
      expect(lines.filter((line) => line.startsWith("audit:"))).toEqual([
        "audit: alice tool_call:shell.exec → deny: tool shell.exec is not allowed (by the rule for *)",
        expect.stringMatching(/^audit: alice tool_call:payments\.send → pending/),
        expect.stringMatching(/^audit: alice tool_call:payments\.send → approved: approved by carol/),
        "audit: alice tool_call:payments.send → dispatched: dispatched",
        "audit: alice budget.charge:USD → charged: charged 10 USD",
        expect.stringMatching(/^audit: alice budget.charge:USD → budget_exhausted/),
        expect.stringMatching(/^audit: alice agent.suspend → suspended: over budget/)
      ])
      const replayed = yield* Replay.stateAt()
      const live = yield* Effect.flatMap(Router, (router) => router.snapshot)
      expect(Replay.differences(live.state, Replay.snapshot(replayed.state))).toEqual([])
      expect(yield* gateway.verifyAudit).toMatchObject({ ok: true, count: 7 })
    }).pipe(Effect.provide(gatewayLayer())))
})
