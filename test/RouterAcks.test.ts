/**
 * What a receipt says, which ACK may finish a message, and what counts as a
 * duplicate (PROTOCOLS.md §1, "dedup", and "SW4RM over gRPC").
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream, TestClock } from "effect"
import { EventLog } from "../src/services/EventLog.js"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { type Delivery, Router } from "../src/services/Router.js"
import { gatewayLayer } from "./support/gateway.js"
import { inbox, register, routerLayer, sendTo } from "./support/router.js"

describe("Send receipts", () => {
  it.scoped("name the recipient and the offset of the message's own record, beside an audit record and a new edge", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* register("a")
      yield* register("w", { capabilities: ["sum"] })
      yield* gateway.loadPolicy(`
id: messaging
scope: { kind: global }
messages:
  - { from: "*", to: "*", allow: true }
`)
      // Its decision records an audit record, a new "messages" edge, then the message.
      const receipt = yield* sendTo({ capability: "sum" }, { producer_id: "a", payload: "x" })
      expect(receipt.to).toBe("w")
      const records = yield* Stream.runCollect((yield* EventLog).read({ from: receipt.offset, to: receipt.offset }))
      expect([...records].map((record) => record.event._tag)).toEqual(["MessageAccepted"])
    }).pipe(Effect.provide(gatewayLayer())))
})

describe("ACKs matched to their delivery", () => {
  it.scoped("an ACK of a delivery made before a redrive is recorded late and changes nothing", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const next = yield* inbox("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "job" })
      const [first] = (yield* next(1)) as ReadonlyArray<Delivery>
      // Its only attempt runs out: a dead letter, then redriven and delivered again.
      yield* TestClock.adjust("2 seconds")
      yield* router.awaitStage({ message_id: receipt.message_id, stage: "TIMED_OUT" })
      yield* router.redrive(receipt.message_id)
      const [second] = (yield* next(1)) as ReadonlyArray<Delivery>
      expect(second.delivery_seq).not.toBe(first.delivery_seq)
      const stale = yield* router.ack({
        agent_id: "b",
        message_id: receipt.message_id,
        stage: "FULFILLED",
        delivery_seq: first.delivery_seq
      })
      expect(stale).toMatchObject({ late: true, stage: "RECEIVED" })
      expect(yield* router.status(receipt.message_id)).toMatchObject({ value: { stage: "RECEIVED" } })
      const current = yield* router.ack({
        agent_id: "b",
        message_id: receipt.message_id,
        stage: "FULFILLED",
        delivery_seq: second.delivery_seq
      })
      expect(current).toMatchObject({ late: false, stage: "FULFILLED" })
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1_000, maxAttempts: 1 }))))

  it.scoped("an agent that had the message only before a redrive may no longer acknowledge it", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("w1", { capabilities: ["job"] })
      const w1 = yield* inbox("w1")
      const receipt = yield* sendTo({ capability: "job" }, { producer_id: "a", payload: "job" })
      yield* w1(1)
      yield* TestClock.adjust("2 seconds")
      yield* router.awaitStage({ message_id: receipt.message_id, stage: "TIMED_OUT" })
      // w1 leaves; w2 takes the redriven message.
      yield* (yield* Registry).deregister({ agent_id: "w1", reason: "done" })
      yield* register("w2", { capabilities: ["job"] })
      yield* router.redrive(receipt.message_id)
      expect(yield* Effect.flip(router.ack({ agent_id: "w1", message_id: receipt.message_id, stage: "FULFILLED" })))
        .toMatchObject({ _tag: "PermissionDenied" })
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1_000, maxAttempts: 1, livenessTimeoutMs: undefined }))))
})

describe("Dedup by sequence number", () => {
  it.scoped("takes the same number with other content for a new message, and only a true retry for a duplicate", () =>
    Effect.gen(function*() {
      yield* register("a")
      yield* register("b")
      // SW4RM's own clients number every message 1.
      const one = yield* sendTo("b", { producer_id: "a", payload: "first", sequence_number: 1 })
      const two = yield* sendTo("b", { producer_id: "a", payload: "second", sequence_number: 1 })
      expect(two.message_id).not.toBe(one.message_id)
      const otherType = yield* sendTo("b", { producer_id: "a", payload: "second", sequence_number: 1, message_type: "CONTROL" })
      expect(otherType.stage).toBe("RECEIVED")
      // The same type and payload again: a retry of the last one, answered with its id.
      const retry = yield* Effect.flip(
        sendTo("b", { producer_id: "a", payload: "second", sequence_number: 1, message_type: "CONTROL" })
      )
      expect(retry).toMatchObject({ _tag: "DuplicateDetected", original_message_id: otherType.message_id })
      // A retry of the first, although others reused its number since, is still its duplicate.
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: "first", sequence_number: 1 })))
        .toMatchObject({ _tag: "DuplicateDetected", original_message_id: one.message_id })
      // A token still wins over the content: the same token is a duplicate whatever it carries.
      const token = yield* sendTo("b", { producer_id: "a", payload: "x", idempotency_token: "t", sequence_number: 7 })
      expect(yield* Effect.flip(sendTo("b", { producer_id: "a", payload: "y", idempotency_token: "t", sequence_number: 8 })))
        .toMatchObject({ _tag: "DuplicateDetected", original_message_id: token.message_id })
    }).pipe(Effect.provide(routerLayer())))
})
