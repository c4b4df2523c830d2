/**
 * Ids, headers, notes and agent descriptors are bounded where they come in
 * (`maxIdLength`, `maxNoteLength`, `maxListLength`): a refusal names the
 * field and the limit, and the runtime's own notes are cut to fit.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import * as Processor from "../src/layers/Processor.js"
import { newEnvelope } from "../src/layers/Envelopes.js"
import { maxIdLength, maxListLength, maxNoteLength } from "../src/schema/Envelope.js"
import { InternalError } from "../src/schema/Errors.js"
import { EventLog } from "../src/services/EventLog.js"
import { Registry } from "../src/services/Registry.js"
import { Router } from "../src/services/Router.js"
import { register, routerLayer } from "./support/router.js"

const long = (length: number) => "x".repeat(length)

describe("bounded headers", () => {
  it.scoped("send refuses an envelope header longer than maxIdLength, naming it and the limit", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const envelope = yield* newEnvelope({ producer_id: "a", payload: "hi" })
      const fits = yield* router.send({ to: "b", envelope: { ...envelope, correlation_id: long(maxIdLength) } })
      expect(fits.stage).toBe("RECEIVED")
      const error = yield* Effect.flip(router.send({
        to: "b",
        envelope: { ...envelope, message_id: "m-long", hlc_timestamp: long(100_000) }
      }))
      expect(error).toMatchObject({ _tag: "ValidationError", subject: "envelope" })
      expect(error.message).toMatch(
        /^invalid envelope: hlc_timestamp: must be at most 256 characters \(UTF-16 code units\), got 100000/
      )
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("an agent descriptor's id, name, capabilities and lists are bounded", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      const refused = (descriptor: Parameters<typeof registry.register>[0], message: RegExp) =>
        Effect.map(Effect.flip(registry.register(descriptor)), (error) => {
          expect(error._tag).toBe("ValidationError")
          expect(error.message).toMatch(message)
        })
      yield* refused({ agent_id: long(maxIdLength + 1), name: "a" }, /agent_id: must be at most 256 characters/)
      yield* refused({ agent_id: "a", name: long(maxIdLength + 1) }, /name: must be at most 256 characters/)
      yield* refused({ agent_id: "a", name: "a", capabilities: [long(maxIdLength + 1)] }, /capabilities\.0: must be at most 256/)
      yield* refused(
        { agent_id: "a", name: "a", capabilities: Array(maxListLength + 1).fill("c") },
        /capabilities: must have at most 256 items, got 257/
      )
      yield* refused({ agent_id: "a", name: "a", description: long(maxNoteLength + 1) }, /description: must be at most 4096/)
      const agent = yield* registry.register({
        agent_id: long(maxIdLength),
        name: long(maxIdLength),
        capabilities: Array(maxListLength).fill(long(maxIdLength))
      })
      expect(agent.descriptor.capabilities).toHaveLength(maxListLength)
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("a processor cuts a failure's message to fit an ACK's note", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const log = yield* EventLog
      yield* register("a")
      yield* register("b")
      const processor = yield* Effect.fork(Processor.run("b", {
        default: () => Effect.fail(new InternalError({ message: long(100_000) }))
      }))
      const envelope = yield* newEnvelope({ producer_id: "a", payload: "hi" })
      const sent = yield* router.send({ to: "b", envelope })
      expect(yield* router.awaitStage({ message_id: sent.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FAILED" })
      yield* Fiber.interrupt(processor)
      const acks = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read())).flatMap((record) =>
        record.event._tag === "MessageAcked" && record.event.stage === "FAILED" ? [record.event] : []
      )
      expect(acks).toHaveLength(1)
      expect(acks[0].note).toHaveLength(maxNoteLength)
      expect(acks[0].note?.endsWith("…")).toBe(true)
    }).pipe(Effect.provide(routerLayer())))
})
