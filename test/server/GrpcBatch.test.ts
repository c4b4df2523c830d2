/**
 * Concurrent `SendMessage` and `AckDelivery` calls are handled as batches
 * (`GrpcBatch.ts`): each call must still get its own answer or its own
 * refusal, whoever else shares its batch, and a cancelled caller must take
 * no one else down.
 */
import { status as Code } from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type CallError, connect, envelope, trailers } from "./grpcClient.js"
import { start } from "./harness.js"
import { keys, keysFile } from "./wire.js"

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)
const settled = <A>(calls: ReadonlyArray<Promise<A>>) => promise(() => Promise.allSettled(calls))

describe("SW4RM over gRPC, calls handled together", () => {
  it.scoped("concurrent sends: the refused ones fail alone, the others are taken in order, each answered", () =>
    Effect.gen(function*() {
      const started = yield* start({ runtime: { payloadLimit: 1024 }, grpc: {} })
      const sw4rm = connect(started.grpcPort!)
      yield* Effect.addFinalizer(() => Effect.sync(() => sw4rm.close()))
      for (const agent of ["p", "q"]) yield* promise(() => sw4rm.register(agent))
      const inbox = sw4rm.stream("q")
      // Fired in one go: they reach the server together.
      const results = yield* settled(Array.from({ length: 40 }, (_, i) => {
        if (i === 7) return sw4rm.send(envelope("p", { i }, { message_type: 42 as never }), "q")
        if (i === 13) return sw4rm.send(envelope("p", { i }), "nobody")
        if (i === 21) return sw4rm.send(envelope("p", "x".repeat(2_000)), "q")
        return sw4rm.send(envelope("p", { i }), "q")
      }))
      const refusals = results.flatMap((result, i) => result.status === "rejected" ? [[i, trailers(result.reason as CallError)]] : [])
      expect(refusals).toEqual([
        [7, { code: Code.INVALID_ARGUMENT, sw4rm: "VALIDATION_ERROR", retryable: "false" }],
        [13, { code: Code.NOT_FOUND, sw4rm: "NO_ROUTE", retryable: "false" }],
        [21, { code: Code.RESOURCE_EXHAUSTED, sw4rm: "OVERSIZE_PAYLOAD", retryable: "false" }]
      ])
      expect(results.filter((result) => result.status === "fulfilled").map((result) => result.value))
        .toEqual(Array(37).fill({ accepted: true, reason: "" }))
      const items = yield* promise(() => inbox.until(37))
      expect(items.map(({ msg }) => JSON.parse(Buffer.from(msg.payload).toString()).i))
        .toEqual(Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 7 && i !== 13 && i !== 21))
      expect(items.map(({ seq }) => Number(seq))).toEqual(Array.from({ length: 37 }, (_, i) => i + 1))

      // Settled together: each its own `recorded`, an unknown seq and a second settle false, a missing seq refused.
      const acks = yield* settled([
        ...items.map(({ seq }) => sw4rm.ack("q", Number(seq))),
        sw4rm.ack("q", 999),
        sw4rm.ack("q", Number(items[0].seq)),
        sw4rm.ack("q", 0)
      ])
      const recorded = acks.slice(0, 37).map((result) => result.status === "fulfilled" ? result.value.recorded : undefined)
      const second = acks[38]
      // The first settle of items[0] and the repeat: exactly one of them recorded.
      expect(recorded.filter((r) => r === true).length + (second.status === "fulfilled" && second.value.recorded ? 1 : 0)).toBe(37)
      expect(acks[37]).toEqual({ status: "fulfilled", value: { recorded: false } })
      expect(acks[39].status === "rejected" && trailers(acks[39].reason as CallError).sw4rm).toBe("VALIDATION_ERROR")
    }))

  it.scoped("callers with different keys in one batch: a refused key fails alone, the others are taken", () =>
    Effect.gen(function*() {
      const started = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined }, grpc: {} })
      const port = started.grpcPort!
      const [a, b] = [connect(port, keys.a), connect(port, keys.b)]
      yield* Effect.addFinalizer(() => Effect.sync(() => [a, b].forEach((client) => client.close())))
      yield* promise(() => a.register("a"))
      yield* promise(() => b.register("b"))
      const inbox = b.stream("b")
      const results = yield* settled([
        a.send(envelope("a", { n: 1 }), "b"),
        // b's key sends as a: refused, audited, alone.
        b.send(envelope("a", { n: 2 }), "b"),
        a.send(envelope("a", { n: 3 }), "b")
      ])
      expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"])
      expect(trailers((results[1] as PromiseRejectedResult).reason as CallError).code).toBe(Code.PERMISSION_DENIED)
      const items = yield* promise(() => inbox.until(2))
      expect(items.map(({ msg }) => JSON.parse(Buffer.from(msg.payload).toString()).n)).toEqual([1, 3])
      // a's key may not settle b's deliveries: recorded false; b's own: recorded.
      const acks = yield* settled([a.ack("b", Number(items[0].seq)), b.ack("b", Number(items[1].seq))])
      expect(acks[0].status).toBe("rejected")
      expect(trailers((acks[0] as PromiseRejectedResult).reason as CallError).code).toBe(Code.PERMISSION_DENIED)
      expect(acks[1]).toEqual({ status: "fulfilled", value: { recorded: true } })
    }))

  it.scoped("a cancelled caller: the rest of its batch is answered, and the server goes on", () =>
    Effect.gen(function*() {
      const started = yield* start({ grpc: {} })
      const sw4rm = connect(started.grpcPort!)
      yield* Effect.addFinalizer(() => Effect.sync(() => sw4rm.close()))
      for (const agent of ["p", "q"]) yield* promise(() => sw4rm.register(agent))
      const inbox = sw4rm.stream("q")
      const calls = Array.from({ length: 20 }, (_, i) => sw4rm.sendCancellable(envelope("p", { i }), "q"))
      calls[5].cancel()
      const results = yield* settled(calls.map(({ answer }) => answer))
      expect(results[5].status === "rejected" && (results[5].reason as CallError).code).toBe(Code.CANCELLED)
      expect(results.filter((result, i) => i !== 5 && result.status === "fulfilled")).toHaveLength(19)
      yield* promise(() => sw4rm.send(envelope("p", { i: 20 }), "q"))
      // The cancelled one may or may not have been taken before it was cancelled: at least the 20 others come.
      const items = yield* promise(() => inbox.until(20))
      const seen = items.map(({ msg }) => JSON.parse(Buffer.from(msg.payload).toString()).i as number)
      expect(seen.filter((i) => i !== 5)).toEqual(Array.from({ length: 21 }, (_, i) => i).filter((i) => i !== 5).slice(0, seen.filter((i) => i !== 5).length))
      expect(seen).toContain(20)
    }))
})
