/**
 * SW4RM over gRPC, end to end on 127.0.0.1: a real server (`Grpc.layer`
 * beside `Server.layer`, on a free port) and a client built only from the
 * project's `.proto` files (`grpcClient.ts`). Agents register, stream, send
 * to one agent and to every agent, acknowledge by envelope and by
 * `AckDelivery`, heartbeat and deregister; SW4RM's own ACK flow runs as its
 * clients run it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { status as Code } from "@grpc/grpc-js"
import { ackEnvelope, type CallError, type Client, connect, envelope, trailers } from "./grpcClient.js"
import { main } from "../../examples/sw4rm.js"
import { start } from "./harness.js"

const payloadOf = (item: { msg: { payload: Buffer } }) => JSON.parse(item.msg.payload.toString())

/** A server and one client per agent, closed with the test's scope. */
const world = (options: Parameters<typeof start>[0] = {}) =>
  Effect.gen(function*() {
    const started = yield* start({ ...options, grpc: { ...options.grpc } })
    const clients: Array<Client> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => clients.forEach((client) => client.close())))
    const client = (key?: string) => {
      const made = connect(started.grpcPort!, key)
      clients.push(made)
      return made
    }
    return { ...started, client }
  })

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

/** The error a call fails with; the test fails if it succeeds. */
const refusalOf = (evaluate: () => Promise<unknown>) =>
  promise(() =>
    evaluate().then(
      (answer) => Promise.reject(new Error(`expected a refusal, got ${JSON.stringify(answer)}`)),
      (error: CallError) => error
    )
  )

describe("SW4RM over gRPC", () => {
  it.scoped("agents register, stream, send to one agent by id or capability, acknowledge by AckDelivery, heartbeat and deregister", () =>
    Effect.gen(function*() {
      const { client, registry, router } = yield* world()
      const sw4rm = client()
      expect(yield* promise(() => sw4rm.register("planner"))).toEqual({ accepted: true, reason: "" })
      yield* promise(() =>
        sw4rm.register("worker", {
          capabilities: ["summarize"],
          communication_class: "PRIVILEGED",
          description: "sums things up",
          reasoning_connectors: ["https://example.test/llm"],
          registration_type: "STANDARD_AGENT"
        })
      )
      const worker = Option.getOrThrow(yield* registry.get("worker"))
      expect(worker.descriptor).toMatchObject({ capabilities: ["summarize"], communication_class: "PRIVILEGED", description: "sums things up" })

      const inbox = sw4rm.stream("worker")
      const first = envelope("planner", { text: "one" })
      const second = envelope("planner", { text: "two" }, { idempotency_token: "two" })
      expect(yield* promise(() => sw4rm.send(first, "worker"))).toEqual({ accepted: true, reason: "" })
      expect(yield* promise(() => sw4rm.send(second, "capability:summarize"))).toEqual({ accepted: true, reason: "" })
      const items = yield* promise(() => inbox.until(2))
      expect(items.map((item) => [item.msg.message_id, item.seq, payloadOf(item).text])).toEqual([
        [first.message_id, 1, "one"],
        [second.message_id, 2, "two"]
      ])
      expect(items[1].msg).toMatchObject({ producer_id: "planner", idempotency_token: "two", message_type: "DATA", content_type: "application/json" })

      // By seq and message id, then by seq alone: each settles its delivery once.
      expect(yield* promise(() => sw4rm.ack("worker", 1, first.message_id))).toEqual({ recorded: true })
      expect(yield* promise(() => sw4rm.ack("worker", 2))).toEqual({ recorded: true })
      expect(yield* promise(() => sw4rm.ack("worker", 2))).toEqual({ recorded: false })
      expect(yield* promise(() => sw4rm.ack("worker", 1, first.message_id))).toEqual({ recorded: false })
      expect(yield* promise(() => sw4rm.ack("worker", 99, first.message_id))).toEqual({ recorded: false })
      expect(yield* promise(() => sw4rm.ack("planner", 1, first.message_id))).toEqual({ recorded: false })
      expect(yield* promise(() => sw4rm.ack("worker", 1, "no-such-message"))).toEqual({ recorded: false })
      for (const message of [first, second]) {
        expect(yield* router.status(message.message_id)).toMatchObject({ value: { stage: "FULFILLED", dead_letter: false } })
      }

      expect(yield* promise(() => sw4rm.heartbeat("worker", "WAITING", { load: "0.3" }))).toEqual({ ok: true })
      expect(Option.getOrThrow(yield* registry.get("worker"))).toMatchObject({ state: "WAITING", health: { load: "0.3" } })
      expect(yield* promise(() => sw4rm.heartbeat("worker", "FAILED_STATE"))).toEqual({ ok: true })
      expect(Option.getOrThrow(yield* registry.get("worker")).state).toBe("FAILED")
      expect(yield* promise(() => sw4rm.deregister("worker", "shutting down"))).toEqual({ ok: true })
      expect(Option.isNone(yield* registry.get("worker")) || !Option.getOrThrow(yield* registry.get("worker")).available).toBe(true)
    }))

  it.scoped("the README's SW4RM example, a plain grpc-js client, runs its ACK flow against the server", () =>
    Effect.gen(function*() {
      const { grpcPort } = yield* world()
      const result = yield* promise(() => main(`127.0.0.1:${grpcPort}`))
      expect(result).toEqual({ ack: { ack_for_message_id: result.sent, ack_stage: 1 }, recorded: true, sent: result.sent })
    }))

  it.scoped("SW4RM's ACK flow: B sends to no one in particular, A answers with an ACK envelope, and B hears it on its own stream", () =>
    Effect.gen(function*() {
      const { client, router } = yield* world()
      const a = client()
      const b = client()
      yield* promise(() => a.register("A"))
      yield* promise(() => b.register("B"))
      const aStream = a.stream("A")
      const bStream = b.stream("B")
      const data = envelope("B", { question: "ready?" })
      expect(yield* promise(() => b.send(data))).toEqual({ accepted: true, reason: "" })
      const [delivered] = yield* promise(() => aStream.until(1))
      // A sees B's envelope as B sent it: its id, its payload.
      expect(delivered.msg).toMatchObject({ message_id: data.message_id, producer_id: "B", message_type: "DATA" })
      expect(payloadOf(delivered)).toEqual({ question: "ready?" })

      const received = ackEnvelope("A", delivered.msg.message_id, 1)
      expect(yield* promise(() => a.send(received))).toEqual({ accepted: true, reason: "" })
      // Within a second, as SW4RM's clients wait for it (their default is 10 s).
      const [ack] = yield* promise(() => bStream.until(1, 1_000))
      expect(ack.seq).toBe(0)
      expect(ack.msg).toMatchObject({
        message_id: received.message_id,
        producer_id: "A",
        message_type: "ACKNOWLEDGEMENT",
        content_type: "application/vnd.sw4rm.ack+json;v=1"
      })
      expect(payloadOf(ack)).toEqual({ ack_for_message_id: data.message_id, ack_stage: 1 })

      // FULFILLED by envelope ends the delivery: AckDelivery then records nothing.
      yield* promise(() => a.send(ackEnvelope("A", data.message_id, 3)))
      const [, fulfilled] = yield* promise(() => bStream.until(2))
      expect(payloadOf(fulfilled)).toEqual({ ack_for_message_id: data.message_id, ack_stage: 3 })
      expect(yield* promise(() => a.ack("A", delivered.seq, data.message_id))).toEqual({ recorded: false })
      const copies = (yield* router.snapshot).state.messages
      expect(Object.values(copies).map((message: any) => [message.to, message.stage])).toEqual([["A", "FULFILLED"]])
    }))

  it.scoped("an envelope sent to no one goes to every other available agent, each copy with a lifecycle of its own", () =>
    Effect.gen(function*() {
      const { client, router } = yield* world({ runtime: { mailboxCapacity: 1 } })
      const sw4rm = client()
      for (const agent of ["P", "A", "C", "D"]) yield* promise(() => sw4rm.register(agent))
      const streams = { A: sw4rm.stream("A"), C: sw4rm.stream("C") }
      const producer = sw4rm.stream("P")
      const data = envelope("P", { job: 1 }, { idempotency_token: "job-1" })
      expect(yield* promise(() => sw4rm.send(data))).toEqual({ accepted: true, reason: "" })
      const [toA] = yield* promise(() => streams.A.until(1))
      const [toC] = yield* promise(() => streams.C.until(1))
      for (const item of [toA, toC]) expect(item.msg).toMatchObject({ message_id: data.message_id, idempotency_token: "job-1" })
      // A fulfils its copy, C fails its own for good: a dead letter, A's copy untouched.
      expect(yield* promise(() => sw4rm.ack("A", toA.seq))).toEqual({ recorded: true })
      expect(yield* promise(() => sw4rm.ack("C", toC.seq, data.message_id, "DELIVERY_ACK_OUTCOME_PERMANENT_FAILURE"))).toEqual({ recorded: true })
      const deadLetters = yield* router.deadLetters("C")
      expect(deadLetters).toHaveLength(1)
      expect(deadLetters[0]).toMatchObject({ stage: "FAILED", error_code: "VALIDATION_ERROR", dead_letter: true })
      // P hears of each copy by the id it gave, the enums by number.
      const notices = yield* promise(() => producer.until(2))
      expect(notices.map((item) => [payloadOf(item).ack_for_message_id, payloadOf(item).ack_stage, item.msg.content_type]).sort())
        .toEqual([[data.message_id, 3, "application/vnd.sw4rm.ack+json;v=1"], [data.message_id, 5, "application/vnd.sw4rm.ack+json;v=1"]])
      expect(notices.find((item) => payloadOf(item).ack_stage === 5)!.msg.payload.toString()).toContain("\"error_code\":6")

      // A retry (a new message id, the same token) is every copy's duplicate.
      const retry = { ...data, message_id: `${data.message_id}-retry` }
      const duplicate = yield* refusalOf(() => sw4rm.send(retry))
      expect(trailers(duplicate)).toEqual({ code: Code.ALREADY_EXISTS, sw4rm: "DUPLICATE_DETECTED", retryable: "false" })

      // D's mailbox (capacity 1) holds the first copy, unread: the next broadcast reaches A and C only.
      const next = envelope("P", { job: 2 })
      const partial = yield* promise(() => sw4rm.send(next))
      expect(partial.accepted).toBe(false)
      expect(partial.reason).toMatch(/^taken for 2 of 3 agents; refused for D \(BUFFER_FULL: /)
    }))
})
