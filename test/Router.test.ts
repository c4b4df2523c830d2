import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Fiber, Layer, Option, Scope, TestClock } from "effect"
import * as EventLogMemory from "../src/layers/EventLogMemory.js"
import * as Processor from "../src/layers/Processor.js"
import * as Switchboard from "../src/layers/Switchboard.js"
import { Ids } from "../src/services/Ids.js"
import { buildEnvelope, payloadJson } from "../src/model/Envelopes.js"
import { Router, type Delivery } from "../src/services/Router.js"
import { Registry } from "../src/services/Registry.js"
import { inbox, register, routerLayer, sendTo } from "./support/router.js"

const deliveries = (items: ReadonlyArray<{ readonly _tag: string }>) => items as ReadonlyArray<Delivery>

describe("Router", () => {
  it.scoped("delivers a message and follows it to FULFILLED", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: { task: 1 } })
      expect(receipt).toMatchObject({ to: "b", stage: "RECEIVED" })
      expect(receipt.offset).toBeGreaterThan(0)
      const next = yield* inbox("b")
      const [delivery] = deliveries(yield* next(1))
      expect(delivery).toMatchObject({ _tag: "Delivery", attempt: 1, delivery_seq: 1 })
      expect(payloadJson(delivery.envelope)).toEqual({ task: 1 })
      const ack = yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "FULFILLED" })
      expect(ack).toMatchObject({ stage: "FULFILLED", late: false })
      const status = yield* router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" })
      expect(status).toMatchObject({ stage: "FULFILLED", attempts: 1, delivery_seq: 1, dead_letter: false })
      const late = yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "FAILED", error_code: "INTERNAL_ERROR" })
      expect(late).toMatchObject({ stage: "FULFILLED", late: true })
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("redelivers after the ack wait, then times out into the dead letters, and a redrive sends it again", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "x" })
      const next = yield* inbox("b")
      const first = deliveries(yield* next(1))[0]
      expect(first.attempt).toBe(1)
      yield* TestClock.adjust("1 second")
      const second = deliveries(yield* next(1))[0]
      expect(second).toMatchObject({ attempt: 2, delivery_seq: 2 })
      expect(second.envelope.retry_count).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* next(1)
      yield* TestClock.adjust("1 second")
      const status = yield* router.awaitStage({ message_id: receipt.message_id, stage: "TIMED_OUT" })
      expect(status).toMatchObject({ stage: "TIMED_OUT", error_code: "ACK_TIMEOUT", dead_letter: true, attempts: 3 })
      expect((yield* router.deadLetters("b")).map((dead) => dead.message_id)).toEqual([receipt.message_id])
      yield* router.redrive(receipt.message_id)
      const again = deliveries(yield* next(1))[0]
      expect(again).toMatchObject({ attempt: 1, delivery_seq: 4 })
      expect(yield* router.deadLetters("b")).toEqual([])
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1000, maxAttempts: 3 }))))

  it.scoped("typed failures: no route, unavailable, full, oversize, expired, duplicate, not a recipient", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      expect(yield* Effect.flip(sendTo("nobody", { producer_id: "a", payload: 1 }))).toMatchObject({ _tag: "NoRoute", code: "NO_ROUTE", retryable: false })
      expect(yield* Effect.flip(sendTo({ capability: "none" }, { producer_id: "a", payload: 1 }))).toMatchObject({ _tag: "NoRoute" })
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: new Uint8Array(65) }))).toMatchObject({ _tag: "OversizePayload", size: 65, limit: 64 })
      yield* TestClock.adjust("10 millis")
      const stale = buildEnvelope({ producer_id: "a", payload: 1, ttl_ms: 5 }, "stale", 0)
      expect(yield* Effect.flip(router.send({ to: "b", envelope: stale }))).toMatchObject({ _tag: "TtlExpired", retryable: false })
      const unsound = { ...buildEnvelope({ producer_id: "a", payload: 1 }, "unsound", 0), content_length: 99 }
      const invalid = yield* Effect.flip(router.send({ to: "b", envelope: unsound }))
      expect(invalid).toMatchObject({ _tag: "ValidationError", code: "VALIDATION_ERROR" })
      expect(invalid.message).toMatch(/content_length/)
      const first = yield* sendTo("b", { producer_id: "a", payload: 1, idempotency_token: "t1" })
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: 1, idempotency_token: "t1" }))).toMatchObject({
        _tag: "DuplicateDetected",
        original_message_id: first.message_id,
        stage: "RECEIVED"
      })
      yield* sendTo("b", { producer_id: "a", payload: 2 , sequence_number: 7})
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: 2, sequence_number: 7 }))).toMatchObject({ _tag: "DuplicateDetected" })
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: 3, sequence_number: 8 }))).toMatchObject({ _tag: "BufferFull", code: "BUFFER_FULL", retryable: true })
      expect(yield* Effect.flip(router.ack({ agent_id: "a", message_id: first.message_id, stage: "FULFILLED" }))).toMatchObject({ _tag: "PermissionDenied" })
      expect(yield* Effect.flip(router.ack({ agent_id: "b", message_id: "nope", stage: "FULFILLED" }))).toMatchObject({ _tag: "MessageNotFound" })
      expect(yield* Effect.flip(router.ack({ agent_id: "b", message_id: first.message_id, stage: "FAILED" }))).toMatchObject({ _tag: "ValidationError" })
      yield* TestClock.adjust("61 seconds")
      const registry = yield* Registry
      expect(Option.getOrThrow(yield* registry.get("b")).available).toBe(false)
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: 1 }))).toMatchObject({ _tag: "AgentUnavailable" })
      yield* registry.heartbeat({ agent_id: "b" })
      expect(Option.getOrThrow(yield* registry.get("b")).available).toBe(true)
    }).pipe(Effect.provide(routerLayer({ payloadLimit: 64, mailboxCapacity: 2 }))))

  it.scoped("an envelope RFC 3339 cannot write fails at send, alone, not in the log with everything sent with it", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const far = { ...buildEnvelope({ producer_id: "a", payload: 1 }, "far", 0), timestamp: DateTime.unsafeMake(253402300800000) }
      const [good, bad] = yield* Effect.all([
        Effect.either(sendTo("b", { producer_id: "a", payload: "fine" })),
        Effect.either(router.send({ to: "b", envelope: far }))
      ], { concurrency: "unbounded" })
      expect(good._tag).toBe("Right")
      expect(bad._tag === "Left" && bad.left).toMatchObject({ _tag: "ValidationError" })
      expect(bad._tag === "Left" && bad.left.message).toMatch(/timestamp: must be between the years 0000 and 9999/)
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("a TTL runs out into TIMED_OUT with TTL_EXPIRED", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: 1, ttl_ms: 500 })
      const waiting = yield* Effect.fork(router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" }))
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(waiting)).toMatchObject({ stage: "TIMED_OUT", error_code: "TTL_EXPIRED", dead_letter: true })
    }).pipe(Effect.provide(routerLayer())))
})

describe("The runtime's layers", () => {
  it.effect("mints random UUIDs for ids unless an Ids layer is provided", () =>
    Effect.gen(function*() {
      const mint = Effect.flatMap(Ids, (ids) => ids.next)
      const runtime = Switchboard.layer().pipe(Layer.provideMerge(EventLogMemory.layer()))
      expect(yield* mint.pipe(Effect.provide(runtime))).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4/)
      expect(yield* mint.pipe(Effect.provide(runtime.pipe(Layer.provideMerge(Ids.layerSequential("x")))))).toBe("x-1")
    }))

  it.scoped("runs a processor for as long as its layer lives", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("w")
      const handled: Array<unknown> = []
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(
        Processor.layer("w", { default: (delivery) => Effect.sync(() => handled.push(payloadJson(delivery.envelope))) }),
        scope
      )
      const first = yield* sendTo("w", { producer_id: "a", payload: { n: 1 } })
      expect(yield* router.awaitStage({ message_id: first.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FULFILLED" })
      expect(handled).toEqual([{ n: 1 }])
      // Its layer gone, the processor is too: the next message waits.
      yield* Scope.close(scope, Exit.void)
      const second = yield* sendTo("w", { producer_id: "a", payload: { n: 2 } })
      yield* TestClock.adjust("10 millis")
      expect(yield* router.status(second.message_id)).toMatchObject({ value: { stage: "RECEIVED", attempts: 0 } })
    }).pipe(Effect.provide(routerLayer())))
})
