/**
 * Copies of an envelope sent to every agent (SW4RM's reference profile,
 * `src/model/Broadcast.ts`): each its own message, acknowledged by the id
 * its producer gave it, deduplicated copy by copy, and handed back to its
 * recipient as sent.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc } from "effect"
import { newEnvelope } from "../src/layers/Envelopes.js"
import * as Broadcast from "../src/model/Broadcast.js"
import { buildEnvelope, payloadText } from "../src/model/Envelopes.js"
import { maxIdLength } from "../src/schema/Envelope.js"
import { Registry } from "../src/services/Registry.js"
import { type Delivery, Router, type StageNotice } from "../src/services/Router.js"
import { inbox, register, routerLayer, sendTo } from "./support/router.js"

describe("Broadcast copies", () => {
  it.prop("a copy's id is told apart again from the recipient alone, and only for that recipient", [
    fc.string({ minLength: 1, maxLength: Broadcast.maxBroadcastIdLength }),
    fc.string({ minLength: 1, maxLength: maxIdLength }),
    fc.string({ minLength: 1, maxLength: maxIdLength })
  ], ([id, recipient, other]) => {
    const copy = Broadcast.copyId(id, recipient)
    expect(copy.length).toBeLessThanOrEqual(maxIdLength)
    expect(Broadcast.originalId(copy, recipient)).toBe(id)
    if (other !== recipient) expect(Broadcast.originalId(copy, other)).toBeUndefined()
    // An id that is no copy stays as it is.
    expect(Broadcast.originalId(id, recipient)).toBeUndefined()
  })

  it("restores the producer's id and token for the copy's recipient, and nothing else", () => {
    const envelope = buildEnvelope({ producer_id: "p", payload: "x", idempotency_token: "tok" }, "m-1", 0)
    const copy = Broadcast.copyFor(envelope, "a")
    expect(copy.message_id).toMatch(/^m-1#[0-9a-f]{16}$/)
    expect(copy.idempotency_token).toMatch(/^tok#[0-9a-f]{16}$/)
    expect(Broadcast.copyFor(envelope, "b").message_id).not.toBe(copy.message_id)
    expect(Broadcast.restore(copy, "a")).toEqual(envelope)
    expect(Broadcast.restore(copy, "b")).toEqual(copy)
    const untokened = buildEnvelope({ producer_id: "p", payload: "x" }, "m-2", 0)
    expect(Broadcast.restore(Broadcast.copyFor(untokened, "a"), "a")).toEqual(untokened)
  })

  it("refuses ids that leave no room for the copies' tags, naming the field", () => {
    const long = "x".repeat(Broadcast.maxBroadcastIdLength + 1)
    expect(Broadcast.checkBroadcast(buildEnvelope({ producer_id: "p", payload: "x" }, long, 0))?.issues[0].path).toBe("message_id")
    expect(
      Broadcast.checkBroadcast(buildEnvelope({ producer_id: "p", payload: "x", idempotency_token: long }, "m", 0))?.issues[0].path
    ).toBe("idempotency_token")
    expect(Broadcast.checkBroadcast(buildEnvelope({ producer_id: "p", payload: "x" }, "m", 0))).toBeUndefined()
  })

  it.scoped("every other available agent gets its own copy, acknowledges it by the producer's id, and retries are dropped copy by copy", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const registry = yield* Registry
      for (const id of ["p", "a", "b"]) yield* register(id)
      const producer = yield* inbox("p")
      const aInbox = yield* inbox("a")
      const bInbox = yield* inbox("b")
      // As SW4RM's clients send: a fresh message id per try, every message numbered 1.
      const send = (id: string) =>
        Effect.gen(function*() {
          const envelope = yield* newEnvelope({ producer_id: "p", payload: "hello", sequence_number: 1 })
          const recipients = Broadcast.recipientsOf(yield* registry.list, "p")
          const sent = { ...envelope, message_id: id }
          return yield* router.sendMany(recipients.map((to) => ({ to, envelope: Broadcast.copyFor(sent, to) })))
        })
      const first = yield* send("m-1")
      expect(first.map(Either.isRight)).toEqual([true, true])
      const [toA] = (yield* aInbox(1)) as ReadonlyArray<Delivery>
      const [toB] = (yield* bInbox(1)) as ReadonlyArray<Delivery>
      expect(Broadcast.restore(toA.envelope, "a").message_id).toBe("m-1")
      expect(Broadcast.restore(toB.envelope, "b").message_id).toBe("m-1")
      expect(payloadText(toA.envelope)).toBe("hello")
      // A retry with a new id and the same number and payload is each copy's duplicate.
      const retry = yield* send("m-2")
      expect(retry.map((result) => Either.isLeft(result) && result.left._tag)).toEqual(["DuplicateDetected", "DuplicateDetected"])
      // Each acknowledges by the producer's id: its own copy is acked.
      yield* router.ack({ agent_id: "a", message_id: "m-1", stage: "FULFILLED", delivery_seq: toA.delivery_seq })
      expect(yield* router.status(toA.envelope.message_id)).toMatchObject({ value: { stage: "FULFILLED" } })
      expect(yield* router.status(toB.envelope.message_id)).toMatchObject({ value: { stage: "RECEIVED" } })
      const [notice] = (yield* producer(1)) as ReadonlyArray<StageNotice>
      expect(notice).toMatchObject({ to: "a", ack: { ack_for_message_id: toA.envelope.message_id, ack_stage: "FULFILLED" } })
      // An agent with no copy of it is refused as for any message it was not sent.
      yield* register("c")
      expect(yield* Effect.flip(router.ack({ agent_id: "c", message_id: "m-1", stage: "FULFILLED" })))
        .toMatchObject({ _tag: "MessageNotFound" })
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("the same number and payload sent to two agents are two messages; a retry to the same one is a duplicate", () =>
    Effect.gen(function*() {
      for (const id of ["p", "a", "b"]) yield* register(id)
      yield* sendTo("a", { producer_id: "p", payload: "ping", sequence_number: 1 })
      yield* sendTo("b", { producer_id: "p", payload: "ping", sequence_number: 1 })
      expect(yield* Effect.flip(sendTo("b", { producer_id: "p", payload: "ping", sequence_number: 1 })))
        .toMatchObject({ _tag: "DuplicateDetected" })
    }).pipe(Effect.provide(routerLayer())))
})
