import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Option, Schedule } from "effect"
import { payloadText, Processor, Registry } from "../src/index.js"
import { Remote } from "../src/node.js"

// The same program as in process: only the layer under it says the runtime is elsewhere.
const worker = Effect.gen(function*() {
  const registry = yield* Registry
  yield* registry.register({ agent_id: "worker", name: "Worker", capabilities: ["summarize"] })
  yield* Effect.log("worker: registered, waiting for messages")
  yield* Processor.run("worker", {
    heartbeatEvery: "20 seconds",
    handlers: {
      DATA: (delivery) => Effect.log(`worker: summarizing ${delivery.envelope.message_id}: ${payloadText(delivery.envelope)}`)
    }
  })
}).pipe(
  // Every error says whether trying again can help: a server not up yet, or gone
  // for longer than the stream and the ACKs wait for it, is worth waiting for.
  Effect.tapError((error) => Effect.logWarning(`worker: ${error.message}; starting again`)),
  Effect.retry({ while: (error) => error.retryable, schedule: Schedule.spaced("1 second") })
)

// SWITCHBOARD_URL (default http://127.0.0.1:7070) and SWITCHBOARD_KEY, the worker's key.
const RemoteLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const baseUrl = yield* Config.string("SWITCHBOARD_URL").pipe(Config.withDefault("http://127.0.0.1:7070"))
    const apiKey = yield* Config.option(Config.redacted("SWITCHBOARD_KEY"))
    return Remote.layerNode({ baseUrl, apiKey: Option.getOrUndefined(apiKey) })
  })
)

// Runs until interrupted (Ctrl-C, SIGTERM).
worker.pipe(Effect.provide(RemoteLive), NodeRuntime.runMain)
