/**
 * Every failure over gRPC is a status with the SW4RM code in its trailers,
 * never a crash, never another caller's failure: malformed protobuf, wrong
 * enum numbers, missing fields, values past their bounds, oversize payloads,
 * unknown agents, refused keys (each refusal of an agent's key audited, as
 * over HTTP); and a stream open meanwhile goes on receiving.
 */
import * as Grpc from "@grpc/grpc-js"
import { status as Code } from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { type CallError, connect, envelope, ackEnvelope, trailers } from "./grpcClient.js"
import { start } from "./harness.js"
import { keys, keysFile, strangerKey } from "./wire.js"

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

const refusalOf = (evaluate: () => Promise<unknown>) =>
  promise(() =>
    evaluate().then(
      (answer) => Promise.reject(new Error(`expected a refusal, got ${JSON.stringify(answer)}`)),
      (error: CallError) => error
    )
  )

/** A unary call with raw bytes for a request, as no client built from the .proto would send. */
const rawCall = (port: number, path: string, bytes: Buffer) =>
  new Promise<CallError>((resolve, reject) => {
    const client = new Grpc.Client(`127.0.0.1:${port}`, Grpc.credentials.createInsecure())
    client.makeUnaryRequest(path, (value: Buffer) => value, (value: Buffer) => value, bytes, (error, answer) => {
      client.close()
      if (error === null) reject(new Error(`expected a refusal, got ${answer?.length} bytes`))
      else resolve(error as CallError)
    })
  })

describe("SW4RM over gRPC, refused", () => {
  it.scoped("bad input is INVALID_ARGUMENT naming the field; unknown agents NOT_FOUND; too large RESOURCE_EXHAUSTED; a stream open meanwhile goes on", () =>
    Effect.gen(function*() {
      const started = yield* start({ runtime: { payloadLimit: 1024 }, grpc: { maxReceiveMessageBytes: 64 * 1024 } })
      const port = started.grpcPort!
      const sw4rm = connect(port)
      yield* Effect.addFinalizer(() => Effect.sync(() => sw4rm.close()))
      for (const agent of ["p", "q"]) yield* promise(() => sw4rm.register(agent))
      const inbox = sw4rm.stream("q")
      const bad = (field: string, value: unknown) => envelope("p", { x: 1 }, { [field]: value })
      const cases: ReadonlyArray<readonly [string, () => Promise<unknown>, number, string, RegExp]> = [
        ["no envelope", () => sw4rm.sendRaw({}, { "sw4rm-to": "q" }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /msg: is required/],
        ["no timestamp", () => sw4rm.send(bad("timestamp", null), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /timestamp: is required/],
        ["no message type", () => sw4rm.send(bad("message_type", 0), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /message_type: is required \(0 is MESSAGE_TYPE_UNSPECIFIED\)/],
        ["an unknown message type", () => sw4rm.send(bad("message_type", 42), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /message_type: 42 is not a MESSAGE_TYPE/],
        ["an unknown state", () => sw4rm.send(bad("state", 9), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /state: 9 is not a ENVELOPE_STATE/],
        ["no message id", () => sw4rm.send(bad("message_id", ""), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /message_id: must not be empty/],
        ["a wrong content length", () => sw4rm.send(bad("content_length", 3), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /content_length: must equal the payload's byte length/],
        ["a sequence number past 2^53", () => sw4rm.send(bad("sequence_number", "18446744073709551615"), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /sequence_number: must be between 0 and/],
        ["an id past its bound", () => sw4rm.send(bad("producer_id", "p".repeat(300)), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /producer_id: must be at most 256/],
        ["a timestamp past the year 9999", () => sw4rm.send(bad("timestamp", { seconds: 1e14, nanos: 0 }), "q"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /timestamp: must be between the years 0000 and 9999/],
        ["an ACK payload that is not JSON", () => sw4rm.send({ ...envelope("q", "not json"), message_type: "ACKNOWLEDGEMENT" }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /payload/],
        ["an ACK of a stage by an unknown number", () => sw4rm.send(ackEnvelope("q", "m", 9)), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /ack_stage/],
        ["an empty capability", () => sw4rm.send(envelope("p", 2), "capability:"), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /sw4rm-to: must not be empty/],
        ["an unknown recipient", () => sw4rm.send(envelope("p", 3), "nobody"), Code.NOT_FOUND, "NO_ROUTE", /no route to nobody/],
        ["an expired TTL", () => sw4rm.send(envelope("p", 4, { timestamp: { seconds: -10, nanos: 0 }, ttl_ms: 1_000 }), "q"), Code.FAILED_PRECONDITION, "TTL_EXPIRED", /expired/],
        ["a payload over the runtime's limit", () => sw4rm.send(envelope("p", "x".repeat(2_000)), "q"), Code.RESOURCE_EXHAUSTED, "OVERSIZE_PAYLOAD", /exceeds the limit of 1024 bytes/],
        ["an unknown agent's stream", () => sw4rm.stream("nobody").until(1), Code.NOT_FOUND, "NO_ROUTE", /nobody/],
        ["an ACK of seq 0", () => sw4rm.ack("q", 0), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /seq: is required/],
        ["an ACK of a negative seq", () => sw4rm.ack("q", -1), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /seq: must be a whole number/],
        ["a heartbeat of an unknown agent", () => sw4rm.heartbeat("nobody"), Code.NOT_FOUND, "NO_ROUTE", /nobody/],
        ["a heartbeat with a state by an unknown number", () => sw4rm.heartbeat("q", 77 as never), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /state: 77 is not a AGENT_STATE/],
        ["too much health", () => sw4rm.heartbeat("q", "RUNNING", Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, "v"]))), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /health: must have at most 256 entries/],
        ["too many capabilities", () => sw4rm.register("r", { capabilities: Array.from({ length: 300 }, (_, i) => `c${i}`) }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /capabilities: must have at most 256 items/],
        ["no descriptor", () => sw4rm.deregister("").then(() => undefined), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /agent_id: must not be empty/]
      ]
      for (const [what, attempt, code, sw4rmCode, details] of cases) {
        const error = yield* refusalOf(attempt)
        expect({ what, ...trailers(error) }).toEqual({ what, code, sw4rm: sw4rmCode, retryable: "false" })
        expect(error.details, what).toMatch(details)
      }
      // Bytes that are no protobuf message, and a message larger than the server takes.
      const malformed = yield* promise(() => rawCall(port, "/sw4rm.router.RouterService/SendMessage", Buffer.from([0x0a, 0xff, 0xff])))
      expect(trailers(malformed)).toEqual({ code: Code.INVALID_ARGUMENT, sw4rm: "VALIDATION_ERROR", retryable: "false" })
      expect(malformed.details).toMatch(/is not a SendMessageRequest message/)
      const wrongWireType = yield* promise(() => rawCall(port, "/sw4rm.registry.RegistryService/Heartbeat", Buffer.from([0x10, 0xff])))
      expect(wrongWireType.code).toBe(Code.INVALID_ARGUMENT)
      const huge = yield* refusalOf(() => sw4rm.send(envelope("p", "x".repeat(100_000)), "q"))
      expect(huge.code).toBe(Code.RESOURCE_EXHAUSTED)
      // None of it reached q, and the stream q had open all along still takes what comes.
      const after = envelope("p", { after: true })
      yield* promise(() => sw4rm.send(after, "q"))
      const [item] = yield* promise(() => inbox.until(1))
      expect(item.msg.message_id).toBe(after.message_id)
      expect(inbox.items).toHaveLength(1)
    }))

  it.scoped("a key acts only as its agent: refusals are PERMISSION_DENIED and audited; no key or an unknown one is UNAUTHENTICATED", () =>
    Effect.gen(function*() {
      const started = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined }, grpc: {} })
      const port = started.grpcPort!
      const [a, b, operator, stranger, anonymous] = [connect(port, keys.a), connect(port, keys.b), connect(port, keys.operator), connect(port, strangerKey), connect(port)]
      yield* Effect.addFinalizer(() => Effect.sync(() => [a, b, operator, stranger, anonymous].forEach((client) => client.close())))
      yield* promise(() => a.register("a"))
      yield* promise(() => b.register("b"))
      const bInbox = b.stream("b")
      const toB = envelope("a", { hi: "b" })
      yield* promise(() => a.send(toB, "b"))
      const [delivered] = yield* promise(() => bInbox.until(1))

      for (const [what, attempt] of [
        ["no key", () => anonymous.register("x")],
        ["an unknown key", () => stranger.send(envelope("a", 1), "b")]
      ] as const) {
        expect({ what, ...trailers(yield* refusalOf(attempt)) }).toEqual({ what, code: Code.UNAUTHENTICATED, sw4rm: "PERMISSION_DENIED", retryable: "false" })
      }
      const attempts = [
        ["register another agent", () => a.register("b")],
        ["send as another agent", () => a.send(envelope("b", 1), "a")],
        ["stream another agent's mailbox", () => a.stream("b").until(1)],
        ["settle another agent's delivery", () => a.ack("b", delivered.seq)],
        ["heartbeat for another agent", () => a.heartbeat("b")],
        ["deregister another agent", () => a.deregister("b")],
        ["acknowledge a message it was not sent", () => a.send(ackEnvelope("a", toB.message_id, 3))]
      ] as const
      for (const [what, attempt] of attempts) {
        expect({ what, ...trailers(yield* refusalOf(attempt)) }).toEqual({ what, code: Code.PERMISSION_DENIED, sw4rm: "PERMISSION_DENIED", retryable: "false" })
      }
      const audited = Chunk.toReadonlyArray(yield* Stream.runCollect(started.gateway.audit))
        .map((entry) => entry.record)
        .filter((record) => record.agent_id === "a" && /^den/.test(record.decision))
      expect(audited.length).toBeGreaterThanOrEqual(attempts.length)
      // b settles its own; the operator may act for anyone.
      expect(yield* promise(() => b.ack("", delivered.seq))).toEqual({ recorded: true })
      expect(yield* promise(() => operator.send(envelope("b", 2), "a"))).toEqual({ accepted: true, reason: "" })
      expect(yield* promise(() => operator.heartbeat("a"))).toEqual({ ok: true })
      expect(trailers(yield* refusalOf(() => operator.ack("", 1)))).toMatchObject({ code: Code.INVALID_ARGUMENT })
    }))

  it.scoped("past its rate limit a caller is RESOURCE_EXHAUSTED with OVERLOADED and when to try again", () =>
    Effect.gen(function*() {
      const started = yield* start({ grpc: { rateLimit: { ratePerSecond: 1, burst: 2 } } })
      const sw4rm = connect(started.grpcPort!)
      yield* Effect.addFinalizer(() => Effect.sync(() => sw4rm.close()))
      yield* promise(() => sw4rm.register("p"))
      yield* promise(() => sw4rm.heartbeat("p"))
      const limited = yield* refusalOf(() => sw4rm.heartbeat("p"))
      expect(trailers(limited)).toEqual({ code: Code.RESOURCE_EXHAUSTED, sw4rm: "OVERLOADED", retryable: "true" })
      expect(Number(limited.metadata.get("retry-after-ms")[0])).toBeGreaterThan(0)
    }))

  it.scoped("a stream cancelled with deliveries unsettled gives them back at once: the next stream receives them", () =>
    Effect.gen(function*() {
      const started = yield* start({ grpc: {} })
      const sw4rm = connect(started.grpcPort!)
      yield* Effect.addFinalizer(() => Effect.sync(() => sw4rm.close()))
      yield* promise(() => sw4rm.register("p"))
      // Sent to every other agent while there is none: no route.
      expect(trailers(yield* refusalOf(() => sw4rm.send(envelope("p", 0))))).toMatchObject({ code: Code.NOT_FOUND, sw4rm: "NO_ROUTE" })
      yield* promise(() => sw4rm.register("q"))
      const sent = Array.from({ length: 20 }, (_, i) => envelope("p", { i }))
      yield* promise(() => Promise.all(sent.map((message) => sw4rm.send(message, "q"))))
      const first = sw4rm.stream("q")
      const taken = yield* promise(() => first.until(20))
      yield* promise(() => Promise.all(taken.slice(0, 5).map((item) => sw4rm.ack("q", item.seq))))
      first.cancel()
      const second = sw4rm.stream("q")
      const again = yield* promise(() => second.until(15))
      expect(again.map((item) => item.msg.message_id).sort()).toEqual(taken.slice(5).map((item) => item.msg.message_id).sort())
      expect(Math.min(...again.map((item) => item.seq))).toBeGreaterThan(20)
    }))
})
