import { Effect, Layer } from "effect"
import { EventLogMemory, newEnvelope, payloadJson, Processor, Registry, Router, Switchboard } from "../src/index.js"

const program = Effect.gen(function*() {
  const registry = yield* Registry
  const router = yield* Router
  yield* registry.register({ agent_id: "planner", name: "Planner" })
  yield* registry.register({ agent_id: "worker", name: "Worker", capabilities: ["summarize"] })

  // The worker marks each delivery READ, runs its handler, then FULFILLED
  // (FAILED with the error's code if the handler fails).
  yield* Effect.fork(Processor.run("worker", {
    handlers: {
      DATA: (delivery) => Effect.log("summarizing", payloadJson(delivery.envelope))
    }
  }))

  // send returns once the message is durably in the worker's mailbox (RECEIVED).
  const envelope = yield* newEnvelope({ producer_id: "planner", payload: { text: "..." }, ttl_ms: 60_000 })
  const receipt = yield* router.send({ to: { capability: "summarize" }, envelope })
  return yield* router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" })
})

// In memory here; `EventLogSqlite.layer({ filename })` from "switchboard/node" for a durable store.
// Ids are random UUIDs unless an `Ids` layer is provided (`Ids.layerSequential()` for tests).
const Runtime = Switchboard.layer({ ackWaitMs: 5_000 }).pipe(Layer.provideMerge(EventLogMemory.layer()))

export const main = program.pipe(Effect.provide(Runtime))
