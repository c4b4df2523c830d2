/**
 * `examples/remote-agent.ts` as a user runs it: in a process of its own
 * (`npx tsx`), against a server that requires keys, with the worker's key.
 */
import { it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Schedule } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { expect } from "vitest"
import * as SwitchboardClient from "../../src/client/SwitchboardClientNode.js"
import { newEnvelope } from "../../src/layers/Envelopes.js"
import { start } from "../server/harness.js"
import { makeKeys } from "./support.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** Signals the process group the child leads. */
const signal = (pid: number | undefined, name: NodeJS.Signals) => {
  try {
    if (pid !== undefined) process.kill(-pid, name)
  } catch {
    // Already gone.
  }
}

/**
 * The example in a child process, stopped (SIGTERM, then SIGKILL) when the
 * scope closes; what it prints. It runs in a process group of its own, and
 * the signal goes to the group: npx does not pass it on to the node process
 * it starts.
 */
const spawnAgent = (url: string, key: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn("npx", ["tsx", "examples/remote-agent.ts"], {
        cwd: root,
        env: { ...process.env, SWITCHBOARD_URL: url, SWITCHBOARD_KEY: key },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
      const output = { text: "" }
      child.stdout.on("data", (chunk) => (output.text += String(chunk)))
      child.stderr.on("data", (chunk) => (output.text += String(chunk)))
      return { child, output }
    }),
    ({ child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        signal(child.pid, "SIGTERM")
      }).pipe(
        Effect.timeoutTo({
          duration: "10 seconds",
          onSuccess: () => Effect.void,
          onTimeout: () => Effect.sync(() => signal(child.pid, "SIGKILL"))
        }),
        Effect.flatten
      )
  )

it.scopedLive("a remote agent in its own process registers, receives, acknowledges, and is governed by the operator", () =>
  Effect.gen(function*() {
    const keys = makeKeys(["worker"])
    const server = yield* start({ keys: keys.file })
    const operator = yield* Effect.map(
      Layer.build(SwitchboardClient.layerNode({ baseUrl: server.url, apiKey: keys.operator })),
      Context.get(SwitchboardClient.SwitchboardClient)
    )
    yield* server.registry.register({ agent_id: "planner", name: "Planner" })
    const agent = yield* spawnAgent(server.url, keys.agents.worker)
    yield* Effect.repeat(server.registry.get("worker"), { until: Option.isSome, schedule: Schedule.spaced("200 millis") }).pipe(
      Effect.timeoutFail({ duration: "90 seconds", onTimeout: () => new Error(`the agent never registered:\n${agent.output.text}`) })
    )
    expect(yield* server.registry.get("worker")).toMatchObject({ value: { descriptor: { agent_id: "worker", capabilities: ["summarize"] }, available: true } })

    const send = (text: string) =>
      Effect.flatMap(
        newEnvelope({ producer_id: "planner", payload: text, ttl_ms: 120_000 }),
        (envelope) => operator.messages.send({ payload: { to: { capability: "summarize" }, envelope } })
      )
    const stageOf = (message_id: string) => Effect.map(operator.messages.status({ path: { message_id } }), (status) => status.stage)
    const fulfilled = (message_id: string) =>
      operator.messages.awaitStage({ path: { message_id }, urlParams: { stage: "FULFILLED", wait_ms: 30_000 } })

    const m1 = yield* send("first")
    expect(yield* fulfilled(m1.message_id)).toMatchObject({ stage: "FULFILLED", to: "worker", attempts: 1 })
    expect(agent.output.text).toContain(`worker: summarizing ${m1.message_id}: first`)

    // Suspended by the operator: what is sent to it waits in its mailbox, undelivered.
    yield* operator.gateway.suspend({ path: { agent_id: "worker" }, payload: { reason: "audit", by: "carol" } })
    const m2 = yield* send("second")
    yield* Effect.sleep("1500 millis")
    expect(yield* stageOf(m2.message_id)).toBe("RECEIVED")
    expect(agent.output.text).not.toContain(m2.message_id)

    // Resumed: the same process, still running, takes it.
    yield* operator.gateway.resume({ path: { agent_id: "worker" }, payload: { by: "carol" } })
    expect(yield* fulfilled(m2.message_id)).toMatchObject({ stage: "FULFILLED", to: "worker" })
    expect(agent.output.text).toContain(`worker: summarizing ${m2.message_id}: second`)
    expect(agent.child.exitCode).toBe(null)
  }), 150_000)
