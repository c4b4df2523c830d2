import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Option } from "effect"
import { ArcpAgent } from "../src/index.js"
import { Remote } from "../src/node.js"

// A remote ARCP agent: serves `summarise@1.0.0` jobs submitted on the server's /arcp endpoint.
const agent = ArcpAgent.serve({
  agent_id: "summariser",
  name: "summarise",
  version: "1.0.0",
  handler: (job) =>
    Effect.gen(function*() {
      yield* job.log("info", `summarising job ${job.job.job_id}`)
      const text = typeof job.job.input === "string" ? job.job.input : JSON.stringify(job.job.input)
      yield* job.progress(1, 1)
      return { summary: text.slice(0, 80), length: text.length }
    })
})

// SWITCHBOARD_URL (default http://127.0.0.1:7070) and SWITCHBOARD_KEY, a key of the agent "summariser".
const RemoteLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const baseUrl = yield* Config.string("SWITCHBOARD_URL").pipe(Config.withDefault("http://127.0.0.1:7070"))
    const apiKey = yield* Config.option(Config.redacted("SWITCHBOARD_KEY"))
    return Remote.layerNode({ baseUrl, apiKey: Option.getOrUndefined(apiKey) })
  })
)

// Runs until interrupted (Ctrl-C, SIGTERM).
agent.pipe(Effect.provide(RemoteLive), NodeRuntime.runMain)
