import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Schema, Scope, TestClock } from "effect"
import * as Processor from "../src/layers/Processor.js"
import { buildEnvelope, payloadJson, payloadText } from "../src/model/Envelopes.js"
import { Envelope } from "../src/schema/Envelope.js"
import { PermissionDenied, type ValidationError } from "../src/schema/Errors.js"
import { newEnvelope } from "../src/layers/Envelopes.js"
import { EventLog } from "../src/services/EventLog.js"
import { Registry } from "../src/services/Registry.js"
import { type Delivery, type Inbound, Router, type StageNotice } from "../src/services/Router.js"
import { inbox, isAvailable, recipientOf, register, routerLayer, sendTo } from "./support/router.js"

const asDeliveries = (items: ReadonlyArray<Inbound>) => items as ReadonlyArray<Delivery>
const texts = (items: ReadonlyArray<Inbound>) => asDeliveries(items).map((d) => payloadText(d.envelope))

describe("Router lanes and order", () => {
  it.scoped("PRIVILEGED first within its rate, BULK every n-th delivery, FIFO per producer", () =>
    Effect.gen(function*() {
      yield* register("p", { communication_class: "PRIVILEGED" })
      yield* register("s", { communication_class: "STANDARD" })
      yield* register("b", { communication_class: "BULK" })
      yield* register("c")
      for (let i = 1; i <= 3; i++) yield* sendTo("c", { producer_id: "b", payload: `b${i}` })
      for (let i = 1; i <= 9; i++) yield* sendTo("c", { producer_id: "s", payload: `s${i}` })
      for (let i = 1; i <= 3; i++) yield* sendTo("c", { producer_id: "p", payload: `p${i}` })
      const next = yield* inbox("c")
      const got = yield* next(15)
      // Two PRIVILEGED tokens; p3 is over the rate and competes as STANDARD, after s1..s9 by acceptance order.
      expect(texts(got)).toEqual([
        "p1", "p2", "s1", "b1", "s2", "s3", "s4", "b2", "s5", "s6", "s7", "b3", "s8", "s9", "p3"
      ])
      expect(asDeliveries(got).map((d) => d.lane)).toEqual([
        "PRIVILEGED", "PRIVILEGED", "STANDARD", "BULK", "STANDARD", "STANDARD", "STANDARD", "BULK",
        "STANDARD", "STANDARD", "STANDARD", "BULK", "STANDARD", "STANDARD", "STANDARD"
      ])
      expect(asDeliveries(got).map((d) => d.delivery_seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1))
    }).pipe(Effect.provide(routerLayer({ privilegedPerSecond: 2, bulkEvery: 4 }))))

  it.scoped("BULK keeps its share against a PRIVILEGED stream within its rate", () =>
    Effect.gen(function*() {
      yield* register("p", { communication_class: "PRIVILEGED" })
      yield* register("b", { communication_class: "BULK" })
      yield* register("c")
      yield* sendTo("c", { producer_id: "b", payload: "b1" })
      for (let i = 1; i <= 6; i++) yield* sendTo("c", { producer_id: "p", payload: `p${i}` })
      const next = yield* inbox("c")
      const got = yield* next(7)
      expect(texts(got)).toEqual(["p1", "p2", "p3", "b1", "p4", "p5", "p6"])
      expect(asDeliveries(got).map((d) => d.lane)).toEqual([
        "PRIVILEGED", "PRIVILEGED", "PRIVILEGED", "BULK", "PRIVILEGED", "PRIVILEGED", "PRIVILEGED"
      ])
    }).pipe(Effect.provide(routerLayer({ privilegedPerSecond: 100, bulkEvery: 4 }))))

  it.scoped("concurrent producers keep FIFO per (producer, recipient)", () =>
    Effect.gen(function*() {
      const producers = ["a", "b", "c", "d"]
      for (const id of [...producers, "r"]) yield* register(id)
      yield* Effect.forEach(producers, (producer) =>
        Effect.forEach(Array.from({ length: 25 }, (_, i) => i), (i) =>
          sendTo("r", { producer_id: producer, payload: `${producer}:${i}`, sequence_number: i + 1 }), { discard: true }),
        { concurrency: "unbounded", discard: true })
      const next = yield* inbox("r")
      const got = texts(yield* next(100))
      for (const producer of producers) {
        const own = got.filter((text) => text.startsWith(`${producer}:`)).map((text) => Number(text.split(":")[1]))
        expect(own).toEqual(Array.from({ length: 25 }, (_, i) => i))
      }
    }).pipe(Effect.provide(routerLayer())))
})

describe("Router routing by capability", () => {
  it.scoped("spreads over the least loaded agents and moves work away from an agent that is lost", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const registry = yield* Registry
      yield* register("planner")
      yield* register("w1", { capabilities: ["work"] })
      yield* register("w2", { capabilities: ["work"] })
      const receipts = []
      for (let i = 0; i < 4; i++) receipts.push(yield* sendTo({ capability: "work" }, { producer_id: "planner", payload: `job${i}` }))
      expect(receipts.map((r) => r.to)).toEqual(["w1", "w2", "w1", "w2"])
      const w1 = yield* inbox("w1")
      const [taken] = asDeliveries(yield* w1(1))
      // w1 holds one delivery and one queued message; it stops heartbeating, w2 goes on.
      yield* TestClock.adjust("600 millis")
      yield* registry.heartbeat({ agent_id: "w2" })
      yield* TestClock.adjust("600 millis")
      const lost = yield* registry.get("w1")
      expect(lost._tag === "Some" && lost.value.available).toBe(false)
      const queuedOnW1 = receipts.filter((r) => r.to === "w1" && r.message_id !== taken.envelope.message_id)
      for (const r of queuedOnW1) expect((yield* router.status(r.message_id)).pipe((s) => s._tag === "Some" && s.value.to)).toBe("w2")
      yield* registry.heartbeat({ agent_id: "w2" })
      yield* TestClock.adjust("600 millis")
      // The delivery w1 held comes back after its ack wait, for w2.
      const moved = yield* router.awaitStage({ message_id: taken.envelope.message_id, stage: "RECEIVED" })
      expect(moved.to).toBe("w2")
      // One delivery in flight at a time (maxInFlight 1): take, acknowledge, take the next.
      const w2 = yield* inbox("w2")
      const all: Array<string> = []
      for (let i = 0; i < 4; i++) {
        const [delivery] = asDeliveries(yield* w2(1))
        all.push(payloadText(delivery.envelope))
        yield* router.ack({ agent_id: "w2", message_id: delivery.envelope.message_id, stage: "FULFILLED" })
      }
      expect(all.sort()).toEqual(["job0", "job1", "job2", "job3"])
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: 1000, ackWaitMs: 1500, maxInFlight: 1 }))))

  it.scoped("agents lost in the same tick hand their queued work to a live agent, not to each other", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* register("planner")
      for (const id of ["w1", "w2", "w3"]) yield* register(id, { capabilities: ["work"] })
      // w3 carries more load, so the two jobs go to w1 and w2.
      for (let i = 0; i < 3; i++) yield* sendTo("w3", { producer_id: "planner", payload: `direct${i}` })
      const jobs = [
        yield* sendTo({ capability: "work" }, { producer_id: "planner", payload: "job0" }),
        yield* sendTo({ capability: "work" }, { producer_id: "planner", payload: "job1" })
      ]
      expect(jobs.map((r) => r.to)).toEqual(["w1", "w2"])
      yield* TestClock.adjust("600 millis")
      yield* registry.heartbeat({ agent_id: "w3" })
      yield* TestClock.adjust("600 millis")
      for (const id of ["w1", "w2"]) expect(yield* isAvailable(id)).toBe(false)
      for (const r of jobs) expect(yield* recipientOf(r.message_id)).toBe("w3")
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: 1000 }))))

  it.scoped("a delivery whose ack wait ends in the tick its agent is lost goes to a live agent", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const registry = yield* Registry
      yield* register("planner")
      yield* register("w1", { capabilities: ["work"] })
      const job = yield* sendTo({ capability: "work" }, { producer_id: "planner", payload: "job" })
      const w1 = yield* inbox("w1")
      yield* w1(1)
      yield* register("w2", { capabilities: ["work"] })
      yield* TestClock.adjust("500 millis")
      yield* registry.heartbeat({ agent_id: "w2" })
      // w1's liveness and the job's ack wait both run out at 1000.
      yield* TestClock.adjust("500 millis")
      expect(yield* isAvailable("w1")).toBe(false)
      expect(yield* router.status(job.message_id)).toMatchObject({ value: { to: "w2", stage: "RECEIVED", attempts: 1 } })
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: 1000, ackWaitMs: 1000 }))))

  it.scoped("work stranded on a lost agent, with no other to take it then, goes to the next agent able to", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* register("planner")
      yield* register("w1", { capabilities: ["work"] })
      yield* register("w2", { capabilities: ["other"] })
      const job = yield* sendTo({ capability: "work" }, { producer_id: "planner", payload: "job" })
      const direct = yield* sendTo("w1", { producer_id: "planner", payload: "for w1 only" })
      yield* TestClock.adjust("600 millis")
      yield* registry.heartbeat({ agent_id: "w2" })
      yield* TestClock.adjust("600 millis")
      // w1 is lost; nobody else has "work": the job waits where it is.
      expect(yield* recipientOf(job.message_id)).toBe("w1")
      // w2 coming back changes nothing: it cannot do "work".
      yield* TestClock.adjust("1 second")
      yield* registry.heartbeat({ agent_id: "w2" })
      expect(yield* recipientOf(job.message_id)).toBe("w1")
      // A new agent with the capability takes it; what was sent to w1 by name stays.
      yield* register("w3", { capabilities: ["work"] })
      expect(yield* recipientOf(job.message_id)).toBe("w3")
      expect(yield* recipientOf(direct.message_id)).toBe("w1")
      const next = yield* inbox("w3")
      expect(texts(yield* next(1))).toEqual(["job"])
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: 1000 }))))

  it.scoped("an agent coming back from unavailable takes the work stranded for its capabilities", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const registry = yield* Registry
      yield* register("planner")
      yield* register("w1", { capabilities: ["work"] })
      yield* register("w2", { capabilities: ["work"] })
      yield* TestClock.adjust("1 second")
      // Both lost together; a job sent to w1 before stays stranded there.
      const job = yield* sendTo("w1", { producer_id: "planner", payload: "direct" }).pipe(Effect.flip)
      expect(job).toMatchObject({ _tag: "AgentUnavailable" })
      yield* registry.heartbeat({ agent_id: "w1" })
      const routed = yield* sendTo({ capability: "work" }, { producer_id: "planner", payload: "job" })
      expect(routed.to).toBe("w1")
      yield* TestClock.adjust("1 second")
      yield* registry.heartbeat({ agent_id: "w2" })
      expect(yield* router.status(routed.message_id)).toMatchObject({ value: { to: "w2" } })
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: 1000 }))))

  it.scoped("a redriven dead letter counts as accepted again: a message moving in later still keeps FIFO", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const registry = yield* Registry
      yield* register("p")
      yield* register("q")
      yield* register("w1", { capabilities: ["work"] })
      yield* register("w2", { capabilities: ["work"] })
      const r = yield* sendTo("w2", { producer_id: "q", payload: "R", ttl_ms: 1000 })
      const m = yield* sendTo({ capability: "work" }, { producer_id: "p", payload: "M" })
      const a = yield* sendTo("w2", { producer_id: "p", payload: "A" })
      expect([r.to, m.to, a.to]).toEqual(["w2", "w1", "w2"])
      yield* TestClock.adjust("2 seconds")
      yield* router.awaitStage({ message_id: r.message_id, stage: "TIMED_OUT" })
      yield* router.redrive(r.message_id)
      yield* registry.deregister({ agent_id: "w1", reason: "done" })
      const next = yield* inbox("w2")
      expect(texts(yield* next(3))).toEqual(["M", "A", "R"])
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: undefined }))))

  it.scoped("queued messages that move to another agent take their place there by acceptance order", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* register("planner")
      yield* register("w1", { capabilities: ["work"] })
      yield* register("w2", { capabilities: ["work"] })
      const receipts = []
      for (const [to, payload] of [["w2", "a1"], [{ capability: "work" }, "c1"], ["w2", "a2"], [{ capability: "work" }, "c2"], ["w2", "a3"]] as const) {
        receipts.push(yield* sendTo(to, { producer_id: "planner", payload }))
      }
      expect(receipts.map((r) => r.to)).toEqual(["w2", "w1", "w2", "w1", "w2"])
      yield* registry.deregister({ agent_id: "w1", reason: "done" })
      const next = yield* inbox("w2")
      const got = asDeliveries(yield* next(5))
      expect(got.map((d) => payloadText(d.envelope))).toEqual(["a1", "c1", "a2", "c2", "a3"])
      expect(got.map((d) => d.attempt)).toEqual([1, 1, 1, 1, 1])
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("refuses agents that are gone or shutting down", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* register("a")
      yield* register("b")
      yield* registry.heartbeat({ agent_id: "b", state: "SHUTTING_DOWN" })
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: 1 }))).toMatchObject({ _tag: "AgentShutdown", retryable: true })
      yield* registry.deregister({ agent_id: "b", reason: "done" })
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: 1 }))).toMatchObject({ _tag: "NoRoute" })
      expect(yield* Effect.flip(registry.heartbeat({ agent_id: "ghost" }))).toMatchObject({ _tag: "NoRoute" })
      expect(yield* Effect.flip(registry.register({ agent_id: "", name: 3 } as never))).toMatchObject({ _tag: "ValidationError" })
      expect((yield* registry.list).map((agent) => agent.descriptor.agent_id)).toEqual(["a"])
    }).pipe(Effect.provide(routerLayer())))
})

describe("Router ACK lifecycle", () => {
  it.scoped("messages whose ack waits end together come back in the order they were delivered", () =>
    Effect.gen(function*() {
      yield* register("a")
      yield* register("b")
      for (let i = 1; i <= 4; i++) yield* sendTo("b", { producer_id: "a", payload: `m${i}` })
      const next = yield* inbox("b")
      expect(texts(yield* next(4))).toEqual(["m1", "m2", "m3", "m4"])
      yield* TestClock.adjust("1 second")
      const again = asDeliveries(yield* next(4))
      expect(again.map((d) => payloadText(d.envelope))).toEqual(["m1", "m2", "m3", "m4"])
      expect(again.map((d) => d.attempt)).toEqual([2, 2, 2, 2])
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1000 }))))

  it.scoped("READ restarts the ack wait; producers hear of stage changes; an ACK envelope is the same ack", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const producerInbox = yield* inbox("a")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "work" })
      const next = yield* inbox("b")
      yield* next(1)
      yield* TestClock.adjust("800 millis")
      yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "READ" })
      yield* TestClock.adjust("700 millis")
      expect((yield* router.status(receipt.message_id)).pipe((s) => s._tag === "Some" && s.value.attempts)).toBe(1)
      const ackPayload = new TextEncoder().encode(JSON.stringify({ ack_for_message_id: receipt.message_id, ack_stage: "FULFILLED" }))
      const ackEnvelope = buildEnvelope({ producer_id: "b", payload: ackPayload, message_type: "ACKNOWLEDGEMENT", content_type: "application/json" }, "ack-1", 1500)
      const ackReceipt = yield* router.send({ to: "a", envelope: ackEnvelope })
      expect(ackReceipt).toMatchObject({ message_id: "ack-1", to: "a" })
      expect(yield* router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FULFILLED", attempts: 1 })
      const notices = (yield* producerInbox(2)) as ReadonlyArray<StageNotice>
      expect(notices.map((n) => [n._tag, n.ack.ack_stage, n.envelope.message_type])).toEqual([
        ["StageNotice", "READ", "ACKNOWLEDGEMENT"],
        ["StageNotice", "FULFILLED", "ACKNOWLEDGEMENT"]
      ])
      for (const notice of notices) {
        expect(Schema.is(Envelope)(notice.envelope)).toBe(true)
        expect(payloadJson(notice.envelope)).toEqual({ ack_for_message_id: receipt.message_id, ack_stage: notice.ack.ack_stage })
      }
      // The router's own for the READ acked by `ack`; b's very envelope for the FULFILLED it sent as one.
      expect(notices[0]).toMatchObject({ relayed: false, to: "b" })
      expect(notices[0].envelope).toMatchObject({ producer_id: "switchboard", state: "RECEIVED", content_type: "application/json" })
      expect(notices[1]).toMatchObject({ relayed: true, to: "b" })
      expect(notices[1].envelope).toMatchObject({ message_id: "ack-1", producer_id: "b", state: "RECEIVED" })
      const junk = buildEnvelope({ producer_id: "b", payload: "not json", message_type: "ACKNOWLEDGEMENT" }, "ack-2", 1500)
      expect(yield* Effect.flip(router.send({ to: "a", envelope: junk }))).toMatchObject({ _tag: "ValidationError" })
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1000 }))))

  it.scoped("a recipient's RECEIVED is recorded and told to the producer, and changes nothing", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const producerInbox = yield* inbox("a")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "work" })
      const next = yield* inbox("b")
      const [delivery] = asDeliveries(yield* next(1))
      // As SW4RM's clients write it: the stage by number.
      const payload = new TextEncoder().encode(JSON.stringify({ ack_for_message_id: receipt.message_id, ack_stage: 1 }))
      const received = buildEnvelope({ producer_id: "b", payload, message_type: "ACKNOWLEDGEMENT" }, "ack-r", 1)
      expect(yield* router.send({ to: "a", envelope: received })).toMatchObject({ message_id: "ack-r", to: "a" })
      expect(yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "RECEIVED" }))
        .toMatchObject({ stage: "RECEIVED", late: false })
      expect(yield* router.status(receipt.message_id)).toMatchObject({ value: { stage: "RECEIVED", attempts: 1 } })
      yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "FULFILLED", delivery_seq: delivery.delivery_seq })
      // Late now: recorded, never told.
      expect(yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "RECEIVED" })).toMatchObject({ late: true })
      const notices = (yield* producerInbox(3)) as ReadonlyArray<StageNotice>
      expect(notices.map((notice) => [notice.ack.ack_stage, notice.relayed, notice.envelope.producer_id])).toEqual([
        ["RECEIVED", true, "b"],
        ["RECEIVED", false, "switchboard"],
        ["FULFILLED", false, "switchboard"]
      ])
      expect(Array.from(notices[0].envelope.payload)).toEqual(Array.from(payload))
      expect(yield* Effect.flip(router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "TIMED_OUT" })))
        .toMatchObject({ _tag: "ValidationError" })
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("a FAILED that asks for it makes a dead letter, which can be redriven", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "poison" })
      const next = yield* inbox("b")
      const [delivery] = asDeliveries(yield* next(1))
      expect(yield* Effect.flip(router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "FULFILLED", dead_letter: true })))
        .toMatchObject({ _tag: "ValidationError" })
      yield* router.ack({
        agent_id: "b",
        message_id: receipt.message_id,
        stage: "FAILED",
        error_code: "VALIDATION_ERROR",
        delivery_seq: delivery.delivery_seq,
        dead_letter: true
      })
      expect(yield* router.status(receipt.message_id)).toMatchObject({ value: { stage: "FAILED", dead_letter: true } })
      expect((yield* router.deadLetters("b")).map((status) => status.message_id)).toEqual([receipt.message_id])
      yield* router.redrive(receipt.message_id)
      expect(texts(yield* next(1))).toEqual(["poison"])
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("producers hear of each stage change once: READ and FULFILLED in one turn both, a late ACK never", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const producerInbox = yield* inbox("a")
      const first = yield* sendTo("b", { producer_id: "a", payload: "first" })
      const second = yield* sendTo("b", { producer_id: "a", payload: "second" })
      const next = yield* inbox("b")
      yield* next(2)
      yield* router.ackMany([
        { agent_id: "b", message_id: first.message_id, stage: "READ" },
        { agent_id: "b", message_id: first.message_id, stage: "FULFILLED" }
      ])
      expect(yield* router.ack({ agent_id: "b", message_id: first.message_id, stage: "FULFILLED" })).toMatchObject({ late: true })
      yield* router.ack({ agent_id: "b", message_id: second.message_id, stage: "FULFILLED" })
      const notices = (yield* producerInbox(3)) as ReadonlyArray<StageNotice>
      expect(notices.map((n) => [n.ack.ack_for_message_id, n.ack.ack_stage])).toEqual([
        [first.message_id, "READ"],
        [first.message_id, "FULFILLED"],
        [second.message_id, "FULFILLED"]
      ])
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("ackMany decides each ack alone: a malformed one fails by itself, and each receipt has the stage its ack left", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const first = yield* sendTo("b", { producer_id: "a", payload: "first" })
      const second = yield* sendTo("b", { producer_id: "a", payload: "second" })
      const next = yield* inbox("b")
      yield* next(2)
      const [results, other] = yield* Effect.all([
        router.ackMany([
          { agent_id: "b", message_id: first.message_id, stage: "READ" },
          { agent_id: "b", message_id: first.message_id, stage: "DONE" as never },
          { agent_id: "b", message_id: first.message_id, stage: "FULFILLED" },
          { agent_id: "b", message_id: second.message_id, stage: "FAILED", error_code: "NOPE" as never }
        ]),
        sendTo("b", { producer_id: "a", payload: "meanwhile" })
      ], { concurrency: "unbounded" })
      expect(results.map((result) => result._tag === "Right" ? result.right.stage : result.left._tag)).toEqual([
        "READ",
        "ValidationError",
        "FULFILLED",
        "ValidationError"
      ])
      expect(other.stage).toBe("RECEIVED")
      expect(yield* router.status(first.message_id)).toMatchObject({ value: { stage: "FULFILLED" } })
      expect(yield* Effect.flip(router.ack({ agent_id: "b", message_id: "", stage: "READ" }))).toMatchObject({
        _tag: "ValidationError",
        subject: "ack"
      })
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("sendMany decides each send alone, in order: a refused or malformed one fails by itself", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const log = yield* EventLog
      yield* register("a")
      yield* register("b")
      const first = yield* newEnvelope({ producer_id: "a", payload: "first", idempotency_token: "once" })
      const again = yield* newEnvelope({ producer_id: "a", payload: "again", idempotency_token: "once" })
      const second = yield* newEnvelope({ producer_id: "a", payload: "second" })
      const sent = yield* sendTo("b", { producer_id: "a", payload: "earlier" })
      const ack = yield* newEnvelope({
        producer_id: "b",
        message_type: "ACKNOWLEDGEMENT",
        payload: JSON.stringify({ ack_for_message_id: sent.message_id, ack_stage: "READ" })
      })
      const before = yield* log.head
      const results = yield* router.sendMany([
        { to: "b", envelope: first },
        { to: "nobody", envelope: second },
        { to: "b", envelope: again },
        { to: "b", envelope: { ...second, payload: "not bytes" as never } },
        { to: "b", envelope: ack },
        { to: "b", envelope: second }
      ])
      expect(results.map((result) => result._tag === "Right" ? result.right.message_id : result.left._tag)).toEqual([
        first.message_id,
        "NoRoute",
        "DuplicateDetected",
        "ValidationError",
        ack.message_id,
        second.message_id
      ])
      expect(yield* router.status(sent.message_id)).toMatchObject({ value: { stage: "READ" } })
      const next = yield* inbox("b")
      const delivered = yield* next(3)
      expect(delivered.map((item) => item.envelope.message_id)).toEqual([sent.message_id, first.message_id, second.message_id])
      expect((yield* log.head) - before).toBeGreaterThan(0)
      expect(yield* Effect.flip(router.sendMany(null as never))).toMatchObject({ _tag: "ValidationError" })
      // An ack is decided where it stands: before the message it acknowledges, that message is not there yet.
      const later = yield* newEnvelope({ producer_id: "a", payload: "later" })
      const early = yield* newEnvelope({
        producer_id: "b",
        message_type: "ACKNOWLEDGEMENT",
        payload: JSON.stringify({ ack_for_message_id: later.message_id, ack_stage: "FULFILLED" })
      })
      const ordered = yield* router.sendMany([{ to: "a", envelope: early }, { to: "b", envelope: later }])
      expect(ordered.map((result) => result._tag)).toEqual(["Left", "Right"])
      expect(yield* router.status(later.message_id)).toMatchObject({ value: { stage: "RECEIVED" } })
      const junk = yield* router.sendMany([null, 42, { to: "b", envelope: null }, { to: {}, envelope: second }] as never)
      expect(junk.map((result) => result._tag === "Left" ? result.left._tag : "Right")).toEqual(Array(4).fill("ValidationError"))
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("deliveries a subscriber leaves untaken go to the next subscriber at once, and cost no attempt", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "work" })
      const scope = yield* Scope.make()
      yield* router.subscription("b").pipe(Scope.extend(scope))
      expect(yield* router.status(receipt.message_id)).toMatchObject({ value: { attempts: 1, delivery_seq: 1 } })
      yield* Scope.close(scope, Exit.void)
      const next = yield* inbox("b")
      expect(yield* router.status(receipt.message_id)).toMatchObject({ value: { stage: "RECEIVED", attempts: 1, delivery_seq: 2 } })
      const [delivery] = asDeliveries(yield* next(1))
      expect(delivery).toMatchObject({ attempt: 1, delivery_seq: 2 })
      expect(delivery.envelope.message_id).toBe(receipt.message_id)
      yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "FULFILLED" })
      expect(yield* router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FULFILLED", attempts: 1 })
    }).pipe(Effect.provide(routerLayer({ maxAttempts: 1 }))))

  it.scoped("holds at most maxInFlight unacknowledged deliveries per subscriber", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      for (let i = 0; i < 5; i++) yield* sendTo("b", { producer_id: "a", payload: `m${i}` })
      const next = yield* inbox("b")
      const first = asDeliveries(yield* next(2))
      const before = (yield* router.snapshot).state.mailboxes["b"]
      expect(before.in_flight).toBe(2)
      expect(before.queued.STANDARD.length).toBe(3)
      yield* router.ack({ agent_id: "b", message_id: first[0].envelope.message_id, stage: "FULFILLED" })
      expect(texts(yield* next(1))).toEqual(["m2"])
      const after = (yield* router.snapshot).state.mailboxes["b"]
      expect(after.in_flight).toBe(2)
      expect(after.queued.STANDARD.length).toBe(2)
    }).pipe(Effect.provide(routerLayer({ maxInFlight: 2 }))))
})

describe("Message processor", () => {
  it.scoped("FULFILLED on success, FAILED with the error's code, REJECTED without a handler, redelivery after a defect", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      let dies = 1
      const processor = yield* Effect.fork(Processor.run("b", {
        handlers: {
          DATA: (delivery) => {
            const text = payloadText(delivery.envelope)
            if (text === "deny") return Effect.fail(new PermissionDenied({ reason: "not today" }))
            if (text === "crash" && dies-- > 0) return Effect.die("boom")
            return Effect.void
          }
        }
      }))
      const ok = yield* sendTo("b", { producer_id: "a", payload: "fine" })
      const denied = yield* sendTo("b", { producer_id: "a", payload: "deny" })
      const unknown = yield* sendTo("b", { producer_id: "a", payload: "?", message_type: "NOTIFICATION" })
      const crash = yield* sendTo("b", { producer_id: "a", payload: "crash" })
      expect(yield* router.awaitStage({ message_id: ok.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FULFILLED" })
      expect(yield* router.awaitStage({ message_id: denied.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FAILED", error_code: "PERMISSION_DENIED" })
      expect(yield* router.awaitStage({ message_id: unknown.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "REJECTED", error_code: "UNSUPPORTED_MESSAGE_TYPE" })
      expect(yield* router.awaitStage({ message_id: crash.message_id, stage: "READ" })).toMatchObject({ stage: "READ", attempts: 1 })
      yield* TestClock.adjust("1 second")
      expect(yield* router.awaitStage({ message_id: crash.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FULFILLED", attempts: 2 })
      yield* Fiber.interrupt(processor)
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1000 }))))

  it.scoped("keeps its agent available with heartbeatEvery; without, the agent is lost after the liveness timeout", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* register("a")
      yield* register("beating")
      yield* register("silent")
      const beating = yield* Effect.fork(Processor.run("beating", { default: () => Effect.void, heartbeatEvery: "20 seconds" }))
      const silent = yield* Effect.fork(Processor.run("silent", { default: () => Effect.void }))
      yield* TestClock.adjust("2 minutes")
      expect(yield* isAvailable("beating")).toBe(true)
      expect(yield* isAvailable("silent")).toBe(false)
      // It keeps the agent's own state: one going away stays unavailable.
      yield* registry.heartbeat({ agent_id: "beating", state: "SHUTTING_DOWN", health: { reason: "draining" } })
      // Within the SHUTTING_DOWN timeout (30 s): past it the agent would be FAILED.
      yield* TestClock.adjust("25 seconds")
      expect(yield* registry.get("beating")).toMatchObject({ value: { state: "SHUTTING_DOWN", health: { reason: "draining" } } })
      expect(yield* isAvailable("beating")).toBe(false)
      yield* registry.heartbeat({ agent_id: "beating", state: "RUNNING" })
      const receipt = yield* sendTo("beating", { producer_id: "a", payload: "still here" })
      expect(yield* (yield* Router).awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FULFILLED" })
      yield* Fiber.interrupt(beating)
      yield* Fiber.interrupt(silent)
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: 60_000 }))))

  it.effect("keepAlive reports liveness alone: the agent keeps the state and health it reported last", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* register("w")
      yield* registry.heartbeat({ agent_id: "w", state: "WAITING", health: { queue: "7" } })
      yield* TestClock.adjust("2 minutes")
      expect(yield* isAvailable("w")).toBe(false)
      const info = yield* registry.keepAlive("w")
      expect(info).toMatchObject({ state: "WAITING", health: { queue: "7" }, available: true })
      // One going away stays so, and unavailable.
      yield* registry.heartbeat({ agent_id: "w", state: "SHUTTING_DOWN", health: { reason: "draining" } })
      expect(yield* registry.keepAlive("w")).toMatchObject({
        state: "SHUTTING_DOWN",
        health: { reason: "draining" },
        available: false
      })
      expect(yield* Effect.flip(registry.keepAlive("nobody"))).toMatchObject({ _tag: "NoRoute" })
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: 60_000 }))))
})

describe("Runtime options", () => {
  it.effect("refuses options that would make it fail or stall later, naming each", () =>
    Effect.gen(function*() {
      const bad = { ackWaitMs: Number.NaN, maxInFlight: 0, livenessTimeoutMs: 1500.5, privilegedPerSecond: -1 }
      const error = yield* Effect.flip(Effect.scoped(Layer.build(routerLayer(bad))))
      expect(error).toMatchObject({ _tag: "ValidationError", subject: "RuntimeOptions" })
      const paths = (error as ValidationError).issues.map((issue) => issue.path)
      expect(paths).toEqual(expect.arrayContaining(["ackWaitMs", "maxInFlight", "livenessTimeoutMs", "privilegedPerSecond"]))
    }))

  it.scoped("a processor refuses a heartbeat interval that would heartbeat without end", () =>
    Effect.gen(function*() {
      yield* register("w")
      for (const heartbeatEvery of [0, "0 millis", Infinity] as const) {
        const refused = yield* Effect.flip(Processor.run("w", { default: () => Effect.void, heartbeatEvery }))
        expect(refused).toMatchObject({ _tag: "ValidationError" })
      }
    }).pipe(Effect.provide(routerLayer())))
})
