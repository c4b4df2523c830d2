import { HttpClient } from "@effect/platform"
import { NodeHttpClient, NodeSocket } from "@effect/platform-node"
import { it } from "@effect/vitest"
import { Cause, Context, Effect, Either, Exit, Fiber, Layer, Option, Queue, Stream } from "effect"
import { expect } from "vitest"
import * as Remote from "../../src/client/Remote.js"
import { SwitchboardClient } from "../../src/client/SwitchboardClient.js"
import { newEnvelope } from "../../src/layers/Envelopes.js"
import * as Processor from "../../src/layers/Processor.js"
import { payloadText } from "../../src/model/Envelopes.js"
import { ValidationError } from "../../src/schema/Errors.js"
import { Registry } from "../../src/services/Registry.js"
import { type Inbound, Router } from "../../src/services/Router.js"
import { start } from "../server/harness.js"
import { makeKeys } from "./support.js"

/** The remote services, built in the test's scope; `paths` has the path of every HTTP request they made. */
const remote = (options: Remote.RemoteOptions, paths: Array<string> = []) =>
  Effect.map(Layer.build(Remote.layer(options).pipe(Layer.provide(recording(paths)))), (context) => ({
    router: Context.get(context, Router),
    registry: Context.get(context, Registry),
    client: Context.get(context, SwitchboardClient),
    context
  }))

/** Node's clients, with every HTTP request's method and path written down. */
const recording = (paths: Array<string>) =>
  Layer.merge(
    Layer.effect(
      HttpClient.HttpClient,
      Effect.map(
        HttpClient.HttpClient,
        HttpClient.tapRequest((request) =>
          Effect.sync(() => paths.push(`${request.method} ${request.url.replace(/^https?:\/\/[^/]*/, "")}`))
        )
      )
    ).pipe(Layer.provide(NodeHttpClient.layerUndici)),
    NodeSocket.layerWebSocketConstructor
  )

class Refused extends Error {
  readonly _tag = "Refused"
}

it.scopedLive("Processor.run, unchanged, handles messages end to end over Remote.layer", () =>
  Effect.gen(function*() {
    const server = yield* start({ runtime: { ackWaitMs: 2_000 } })
    const paths: Array<string> = []
    const { client, context, registry, router } = yield* remote({ baseUrl: server.url }, paths)
    yield* registry.register({ agent_id: "planner", name: "Planner" })
    yield* registry.register({ agent_id: "worker", name: "Worker", capabilities: ["summarize"] })
    const handled = yield* Queue.unbounded<string>()
    const notices = yield* Queue.unbounded<Inbound>()

    yield* Processor.run("worker", {
      handlers: {
        DATA: (delivery) =>
          payloadText(delivery.envelope).includes("refuse")
            ? Effect.fail(Object.assign(new Refused("will not"), { code: "PERMISSION_DENIED" }))
            : Queue.offer(handled, payloadText(delivery.envelope))
      },
      heartbeatEvery: "1 second"
    }).pipe(Effect.provide(context), Effect.forkScoped)
    // The planner sees its messages' stages over its own stream.
    yield* router.subscribe("planner").pipe(Stream.runForEach((item) => Queue.offer(notices, item)), Effect.forkScoped)

    const send = (payload: unknown, message_type: "DATA" | "CONTROL" = "DATA") =>
      Effect.flatMap(
        newEnvelope({ producer_id: "planner", payload, ttl_ms: 60_000, message_type }),
        (envelope) => router.send({ to: { capability: "summarize" }, envelope })
      )
    const done = (message_id: string) => router.awaitStage({ message_id, stage: "FULFILLED" })

    const m1 = yield* send({ text: "hello" })
    expect(m1).toMatchObject({ to: "worker", stage: "RECEIVED" })
    expect(yield* done(m1.message_id)).toMatchObject({ stage: "FULFILLED", attempts: 1, delivery_seq: 1 })
    expect(yield* Queue.take(handled)).toBe(JSON.stringify({ text: "hello" }))
    // Seen through the API as well, by anyone asking.
    expect(yield* client.messages.status({ path: { message_id: m1.message_id } })).toMatchObject({ stage: "FULFILLED" })
    expect(yield* server.router.status(m1.message_id)).toMatchObject({ value: { stage: "FULFILLED" } })

    // A typed failure of the handler: FAILED with its code; an unhandled type: REJECTED.
    const m2 = yield* send({ refuse: true })
    expect(yield* done(m2.message_id)).toMatchObject({ stage: "FAILED", error_code: "PERMISSION_DENIED" })
    const m3 = yield* send("stop", "CONTROL")
    expect(yield* done(m3.message_id)).toMatchObject({ stage: "REJECTED", error_code: "UNSUPPORTED_MESSAGE_TYPE" })

    // Notices come in order; READ and RECEIVED among them, the terminal stages last for each message.
    const terminal: Array<string> = []
    while (terminal.length < 3) {
      const item = yield* Queue.take(notices).pipe(Effect.timeout("10 seconds"))
      if (item._tag === "StageNotice" && ["FULFILLED", "FAILED", "REJECTED"].includes(item.ack.ack_stage)) {
        terminal.push(`${item.ack.ack_for_message_id}:${item.ack.ack_stage}`)
      }
    }
    expect(terminal).toEqual([`${m1.message_id}:FULFILLED`, `${m2.message_id}:FAILED`, `${m3.message_id}:REJECTED`])
    // The processor's heartbeats keep the remote agent available.
    expect(yield* registry.get("worker")).toMatchObject({ value: { available: true } })
    expect(paths).toContain("POST /agents/worker/keepalive")
    // Its ACKs all went over its socket: none over HTTP.
    expect(paths.filter((path) => path.includes("/acks"))).toEqual([])
  }))

it.scopedLive("the remote services answer as the in-process ones, and fail with the same typed errors", () =>
  Effect.gen(function*() {
    const server = yield* start()
    const { registry, router } = yield* remote({ baseUrl: server.url })
    yield* registry.register({ agent_id: "a", name: "A", team_id: "t" })
    yield* registry.register({ agent_id: "b", name: "B", parent_agent_id: "a", capabilities: ["x"] })

    expect(yield* registry.get("nobody")).toEqual(Option.none())
    expect((yield* registry.list).map((agent) => agent.descriptor.agent_id).sort()).toEqual(["a", "b"])
    expect((yield* registry.byCapability("x")).map((agent) => agent.descriptor.agent_id)).toEqual(["b"])
    expect((yield* registry.lineage("b")).map((agent) => agent.descriptor.agent_id)).toEqual(["b", "a"])
    expect((yield* registry.team("t")).map((agent) => agent.descriptor.agent_id)).toEqual(["a"])
    yield* registry.addEdge({ from: "a", to: "b", edge_type: "calls" })
    expect((yield* registry.edges("a")).map((edge) => edge.edge_type).sort()).toEqual(["calls", "delegates_to"])
    expect(yield* registry.heartbeat({ agent_id: "b", state: "WAITING", health: { load: "low" } })).toMatchObject({
      state: "WAITING",
      health: { load: "low" }
    })
    expect((yield* Effect.flip(registry.heartbeat({ agent_id: "nobody" })))._tag).toBe("NoRoute")
    // Checked before it travels, as in process.
    expect(yield* Effect.flip(registry.register({ agent_id: "", name: "empty" }))).toBeInstanceOf(ValidationError)

    const envelope = yield* newEnvelope({ producer_id: "a", payload: "p", ttl_ms: 60_000 })
    expect((yield* Effect.flip(router.send({ to: "nobody", envelope })))._tag).toBe("NoRoute")
    const bad = yield* Effect.flip(router.send({ to: "b", envelope: { ...envelope, content_length: 99 } }))
    expect(bad).toBeInstanceOf(ValidationError)
    const sent = yield* router.send({ to: "b", envelope })
    expect(yield* router.status(sent.message_id)).toMatchObject({ value: { stage: "RECEIVED", to: "b", delivery_seq: undefined } })
    expect(yield* router.status("nothing")).toEqual(Option.none())
    expect((yield* Effect.flip(router.awaitStage({ message_id: "nothing", stage: "READ" })))._tag).toBe("MessageNotFound")

    // No subscription is open for b: its ACKs go over HTTP. A bad one in a batch fails alone.
    const acks = yield* router.ackMany([
      { agent_id: "b", message_id: sent.message_id, stage: "REJECTED", error_code: "VALIDATION_ERROR" },
      { agent_id: "b", message_id: "", stage: "READ" },
      { agent_id: "b", message_id: "nothing", stage: "READ" }
    ])
    expect(acks.map((result) => Either.isRight(result) ? result.right.stage : result.left._tag)).toEqual([
      "REJECTED",
      "ValidationError",
      "MessageNotFound"
    ])
    expect((yield* router.ack({ agent_id: "b", message_id: sent.message_id, stage: "FULFILLED" })).late).toBe(true)
    expect(yield* router.awaitStage({ message_id: sent.message_id, stage: "READ" })).toMatchObject({ stage: "REJECTED" })
    const snapshot = yield* router.snapshot
    expect(snapshot.state.messages[sent.message_id]).toMatchObject({ stage: "REJECTED", location: "done" })
    expect(snapshot).toEqual(yield* server.router.snapshot)
    expect((yield* Effect.flip(Stream.runDrain(router.subscribe("nobody"))))._tag).toBe("NoRoute")
    yield* registry.deregister({ agent_id: "b", reason: "done" })
    expect(yield* registry.get("b")).toMatchObject({ value: { available: false } })
  }))

it.scopedLive("a key's refusals: typed where the method declares them, a defect carrying the server's error where not", () =>
  Effect.gen(function*() {
    const keys = makeKeys(["a"])
    const server = yield* start({ keys: keys.file })
    yield* server.registry.register({ agent_id: "z", name: "Z" })
    const a = yield* remote({ baseUrl: server.url, apiKey: keys.agents.a })
    yield* a.registry.register({ agent_id: "a", name: "A" })
    const envelope = yield* newEnvelope({ producer_id: "z", payload: "p", ttl_ms: 60_000 })
    expect((yield* Effect.flip(a.router.send({ to: "a", envelope })))._tag).toBe("PermissionDenied")

    const died = (exit: Exit.Exit<unknown, unknown>) =>
      Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined
    expect(died(yield* Effect.exit(a.router.snapshot))).toMatchObject({ _tag: "PermissionDenied" })
    expect(died(yield* Effect.exit(a.registry.keepAlive("z")))).toMatchObject({ _tag: "PermissionDenied" })
    // A batch with an ACK for another agent is refused whole: each of its ACKs says so.
    const batch = yield* a.router.ackMany([
      { agent_id: "a", message_id: "m-1", stage: "READ" },
      { agent_id: "z", message_id: "m-2", stage: "READ" }
    ])
    expect(batch.map((result) => Either.isLeft(result) ? result.left._tag : "receipt")).toEqual([
      "PermissionDenied",
      "PermissionDenied"
    ])
    const stranger = yield* remote({ baseUrl: server.url, apiKey: "sb_unknown" })
    expect(died(yield* Effect.exit(stranger.registry.list))).toMatchObject({ _tag: "Unauthorized" })
    expect(died(yield* Effect.exit(Stream.runDrain(stranger.router.subscribe("a"))))).toMatchObject({ _tag: "Unauthorized" })

    // A server that is not there: InternalError, retryable.
    const nowhere = yield* remote({ baseUrl: "http://127.0.0.1:9" })
    expect(yield* Effect.flip(nowhere.registry.list)).toMatchObject({ _tag: "InternalError", retryable: true })
    const fiber = yield* Effect.fork(a.router.awaitStage({ message_id: "m", stage: "READ" }))
    expect((yield* Effect.flip(Fiber.join(fiber)))._tag).toBe("MessageNotFound")
  }))
