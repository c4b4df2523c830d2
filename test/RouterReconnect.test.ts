/**
 * A consumer on a connection that drops and comes back (PROTOCOLS.md §1,
 * at-least-once): a subscription that ends with `{ unsettled: "release" }`
 * gives back at once what its consumer took and had not settled, so that the
 * next subscription receives it again with a fresh delivery_seq, its attempt
 * counted. Without the option, nothing changes: those wait for their ack wait.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, FastCheck as fc, Scope, Stream, TestClock, TestContext } from "effect"
import * as Replay from "../src/layers/Replay.js"
import { payloadText } from "../src/model/Envelopes.js"
import type { RuntimeOptions } from "../src/schema/Config.js"
import { EventLog } from "../src/services/EventLog.js"
import { type Delivery, type Inbound, Router, type SubscriptionOptions } from "../src/services/Router.js"
import { register, routerLayer, sendTo } from "./support/router.js"

const release: SubscriptionOptions = { unsettled: "release" }

/** A subscription in a scope of its own, and a function that takes its next `n` deliveries. */
const connect = (agentId: string, options?: SubscriptionOptions) =>
  Effect.gen(function*() {
    const router = yield* Router
    const scope = yield* Scope.make()
    const pull = yield* router.subscription(agentId, options).pipe(
      Effect.flatMap(Stream.toPull),
      Effect.orDie,
      Scope.extend(scope)
    )
    let buffer: Array<Inbound> = []
    const take = (n: number) =>
      Effect.gen(function*() {
        while (buffer.length < n) buffer = buffer.concat([...(yield* Effect.orDie(pull))])
        const taken = buffer.slice(0, n)
        buffer = buffer.slice(n)
        return taken as ReadonlyArray<Delivery>
      })
    return { take, close: Scope.close(scope, Exit.void) }
  })

const texts = (deliveries: ReadonlyArray<Delivery>) => deliveries.map((delivery) => payloadText(delivery.envelope))

const fulfil = (delivery: Delivery) =>
  Effect.flatMap(Router, (router) =>
    router.ack({
      agent_id: "b",
      message_id: delivery.envelope.message_id,
      stage: "FULFILLED",
      delivery_seq: delivery.delivery_seq
    }))

/** The reasons of the requeues in the log, in order. */
const requeues = Effect.gen(function*() {
  const records = yield* Stream.runCollect((yield* EventLog).read())
  return Chunk.toReadonlyArray(records).flatMap(({ event }) => event._tag === "MessageRequeued" ? [event.reason] : [])
})

/** Lets the close's decision, forked, reach the loop before the next look at the state. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

const checkReplay = (config: RuntimeOptions) =>
  Effect.gen(function*() {
    yield* settle
    const live = yield* (yield* Router).snapshot
    const replayed = yield* Replay.stateAt(live.offset, config)
    expect(replayed.offset).toBe(live.offset)
    expect(Replay.differences(live.state, Replay.snapshot(replayed.state))).toEqual([])
  })

describe("Subscriptions that release what they did not settle", () => {
  // No heartbeats here: the agent must stay available while the clock moves.
  const config: RuntimeOptions = { ackWaitMs: 30_000, maxAttempts: 3, livenessTimeoutMs: undefined }

  it.scoped("give back at once what the consumer took and did not settle: the next subscription receives exactly that, with fresh delivery_seq", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      for (let i = 1; i <= 5; i++) yield* sendTo("b", { producer_id: "a", payload: `m${i}` })
      const first = yield* connect("b", release)
      const taken = yield* first.take(5)
      expect(taken.map((delivery) => delivery.delivery_seq)).toEqual([1, 2, 3, 4, 5])
      // m1 and m4 are done; m2 was only read, which settles nothing.
      yield* fulfil(taken[0])
      yield* fulfil(taken[3])
      yield* router.ack({ agent_id: "b", message_id: taken[1].envelope.message_id, stage: "READ" })
      yield* first.close
      // No clock moves: they come back at once, in the order they were accepted.
      const second = yield* connect("b")
      const again = yield* second.take(3)
      expect(texts(again)).toEqual(["m2", "m3", "m5"])
      expect(again.map((delivery) => delivery.delivery_seq)).toEqual([6, 7, 8])
      expect(again.map((delivery) => delivery.attempt)).toEqual([2, 2, 2])
      expect(again.map((delivery) => delivery.envelope.retry_count)).toEqual([1, 1, 1])
      expect(yield* requeues).toEqual(["released", "released", "released"])
      const { state } = yield* router.snapshot
      expect(state.mailboxes["b"]).toMatchObject({ in_flight: 3, queued: { STANDARD: [] } })
      for (const delivery of again) yield* fulfil(delivery)
      yield* checkReplay(config)
    }).pipe(Effect.provide(routerLayer(config))))

  it.scoped("give back untaken deliveries as before, their attempt given back, behind the released ones", () =>
    Effect.gen(function*() {
      yield* register("a")
      yield* register("b")
      for (let i = 1; i <= 2; i++) yield* sendTo("b", { producer_id: "a", payload: `m${i}` })
      const first = yield* connect("b", release)
      yield* first.take(2)
      // Delivered to the subscription, never taken by its consumer.
      yield* sendTo("b", { producer_id: "a", payload: "m3" })
      const m4 = yield* sendTo("b", { producer_id: "a", payload: "m4" })
      const router = yield* Router
      expect(yield* router.status(m4.message_id)).toMatchObject({ value: { attempts: 1, delivery_seq: 4 } })
      yield* first.close
      const again = yield* (yield* connect("b")).take(4)
      expect(texts(again)).toEqual(["m1", "m2", "m3", "m4"])
      expect(again.map((delivery) => delivery.attempt)).toEqual([2, 2, 1, 1])
      expect(again.map((delivery) => delivery.delivery_seq)).toEqual([5, 6, 7, 8])
      expect(yield* requeues).toEqual(["subscriber_left", "subscriber_left", "released", "released"])
      yield* checkReplay(config)
    }).pipe(Effect.provide(routerLayer(config))))

  it.scoped("is what subscribe does too when its stream ends", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      for (let i = 1; i <= 2; i++) yield* sendTo("b", { producer_id: "a", payload: `m${i}` })
      const once = yield* Stream.runCollect(router.subscribe("b", release).pipe(Stream.take(2)))
      expect(Chunk.size(once)).toBe(2)
      const again = yield* (yield* connect("b")).take(2)
      expect(texts(again)).toEqual(["m1", "m2"])
      expect(again.map((delivery) => delivery.attempt)).toEqual([2, 2])
    }).pipe(Effect.provide(routerLayer(config))))

  it.scoped("attach pushes each delivery to its sink as it becomes durable, and releases what it was handed and had not settled when it ends", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      yield* sendTo("b", { producer_id: "a", payload: "m1" })
      const pushed: Array<Inbound> = []
      const scope = yield* Scope.make()
      yield* router.attach("b", release, { offer: (item) => pushed.push(item), end: () => undefined }).pipe(Scope.extend(scope))
      yield* sendTo("b", { producer_id: "a", payload: "m2" })
      yield* settle
      const delivered = pushed as ReadonlyArray<Delivery>
      expect(texts(delivered)).toEqual(["m1", "m2"])
      expect(delivered.map((delivery) => delivery.delivery_seq)).toEqual([1, 2])
      yield* fulfil(delivered[0])
      yield* Scope.close(scope, Exit.void)
      // Ended: nothing more is pushed; m2 comes back at once to the next consumer.
      yield* sendTo("b", { producer_id: "a", payload: "m3" })
      const again = yield* (yield* connect("b")).take(2)
      expect(texts(again)).toEqual(["m2", "m3"])
      expect(again.map((delivery) => delivery.attempt)).toEqual([2, 1])
      expect(pushed).toHaveLength(2)
      expect(yield* requeues).toEqual(["released"])
      expect(yield* Effect.flip(router.attach("nobody", release, { offer: () => undefined, end: () => undefined }))).toMatchObject({
        _tag: "NoRoute"
      })
      yield* checkReplay(config)
    }).pipe(Effect.provide(routerLayer(config))))

  it.scoped("keep one on its last attempt in flight: it may still be acknowledged, and else times out after its ack wait", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      yield* sendTo("b", { producer_id: "a", payload: "m1" })
      const m2 = yield* sendTo("b", { producer_id: "a", payload: "m2" })
      const first = yield* connect("b", release)
      yield* first.take(2)
      yield* first.close
      const second = yield* connect("b", release)
      const last = yield* second.take(2)
      expect(last.map((delivery) => delivery.attempt)).toEqual([2, 2])
      yield* second.close
      yield* settle
      // Both on their last attempt: nothing comes back, both wait in flight.
      expect((yield* router.snapshot).state.mailboxes["b"]).toMatchObject({ in_flight: 2, queued: { STANDARD: [] } })
      expect(yield* fulfil(last[0])).toMatchObject({ stage: "FULFILLED", late: false })
      yield* TestClock.adjust("30 seconds")
      expect(yield* router.awaitStage({ message_id: m2.message_id, stage: "FULFILLED" })).toMatchObject({
        stage: "TIMED_OUT",
        error_code: "ACK_TIMEOUT",
        dead_letter: true,
        attempts: 2
      })
      expect(yield* requeues).toEqual(["released", "released"])
      yield* checkReplay({ ...config, maxAttempts: 2 })
    }).pipe(Effect.provide(routerLayer({ ...config, maxAttempts: 2 }))))

  it.scoped("an ACK of a released delivery still applies, as that of any requeued one: the redelivery's is then late", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      yield* sendTo("b", { producer_id: "a", payload: "m1" })
      yield* sendTo("b", { producer_id: "a", payload: "m2" })
      const first = yield* connect("b", release)
      const [m1, m2] = yield* first.take(2)
      yield* first.close
      yield* settle
      // Acknowledged while queued again, m1 is never delivered again.
      expect(yield* fulfil(m1)).toMatchObject({ stage: "FULFILLED", late: false })
      const again = yield* (yield* connect("b")).take(1)
      expect(texts(again)).toEqual(["m2"])
      // The old delivery's ACK arrives after the new delivery: it settles the message.
      expect(yield* fulfil(m2)).toMatchObject({ stage: "FULFILLED", late: false })
      expect(yield* fulfil(again[0])).toMatchObject({ stage: "FULFILLED", late: true })
      expect((yield* router.snapshot).state.mailboxes["b"]).toMatchObject({ in_flight: 0, queued: { STANDARD: [] } })
      yield* checkReplay(config)
    }).pipe(Effect.provide(routerLayer(config))))

  it.scoped("closed while its consumer acknowledges: each message is settled once, and nothing settled comes back", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      for (let round = 0; round < 6; round++) {
        const payloads = [`r${round}a`, `r${round}b`, `r${round}c`]
        const ids: Array<string> = []
        for (const text of payloads) ids.push((yield* sendTo("b", { producer_id: "a", payload: text })).message_id)
        const consumer = yield* connect("b", release)
        const taken = yield* consumer.take(3)
        // The close and the acks race, in another order each round; the last message is never acknowledged.
        const acks = Effect.forEach(taken.slice(0, 2), (delivery) =>
          round % 2 === 0
            ? fulfil(delivery)
            : router.ack({ agent_id: "b", message_id: delivery.envelope.message_id, stage: "FULFILLED" }))
        yield* Effect.all(
          round % 3 === 0 ? [consumer.close, acks] : [Effect.zipRight(Effect.repeatN(Effect.yieldNow(), round), acks), consumer.close],
          { concurrency: "unbounded", discard: true }
        )
        const next = yield* connect("b")
        const [again] = yield* next.take(1)
        expect(again.envelope.message_id).toBe(ids[2])
        expect(again.attempt).toBe(2)
        for (const id of ids.slice(0, 2)) {
          expect(yield* router.status(id)).toMatchObject({ value: { stage: "FULFILLED", attempts: 1 } })
        }
        yield* fulfil(again)
        yield* next.close
        yield* settle
        expect((yield* router.snapshot).state.mailboxes["b"]).toMatchObject({ in_flight: 0, queued: { STANDARD: [] } })
      }
      yield* checkReplay(config)
    }).pipe(Effect.provide(routerLayer(config))))
})

describe("Subscriptions that hold what they did not settle (the default)", () => {
  // No heartbeats here: the agent must stay available while the clock moves.
  const config: RuntimeOptions = { ackWaitMs: 30_000, maxAttempts: 3, livenessTimeoutMs: undefined }

  it.scoped("leave what the consumer took in flight until its ack wait runs out", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      for (const [round, options] of [undefined, { unsettled: "hold" } as const].entries()) {
        const sent = [`r${round}a`, `r${round}b`]
        for (const text of sent) yield* sendTo("b", { producer_id: "a", payload: text })
        const first = yield* connect("b", options)
        yield* first.take(2)
        yield* first.close
        yield* settle
        expect((yield* router.snapshot).state.mailboxes["b"]).toMatchObject({ in_flight: 2, queued: { STANDARD: [] } })
        const second = yield* connect("b")
        yield* TestClock.adjust("30 seconds")
        const again = yield* second.take(2)
        expect(texts(again)).toEqual(sent)
        expect(again.map((delivery) => delivery.attempt)).toEqual([2, 2])
        for (const delivery of again) yield* fulfil(delivery)
        yield* second.close
      }
      expect(yield* requeues).toEqual(["ack_wait", "ack_wait", "ack_wait", "ack_wait"])
      yield* checkReplay(config)
    }).pipe(Effect.provide(routerLayer(config))))

  it.scoped("refuse options they do not know", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("b")
      const wrong = [{ unsettled: "later" }, { release: "unacknowledged" }, "release"] as unknown as ReadonlyArray<SubscriptionOptions>
      for (const options of wrong) {
        expect(yield* Effect.flip(router.subscription("b", options))).toMatchObject({ _tag: "ValidationError", subject: "subscription" })
      }
    }).pipe(Effect.provide(routerLayer(config))))
})

describe("Reconnecting consumers, at random", () => {
  const config: RuntimeOptions = { ackWaitMs: 1_000, maxAttempts: 3, maxInFlight: 3, livenessTimeoutMs: undefined }

  const step = fc.oneof(
    { weight: 4, arbitrary: fc.record({ _tag: fc.constant("send" as const) }) },
    { weight: 2, arbitrary: fc.record({ _tag: fc.constant("connect" as const), release: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ _tag: fc.constant("drop" as const), pick: fc.nat() }) },
    {
      weight: 4,
      arbitrary: fc.record({
        _tag: fc.constant("ack" as const),
        pick: fc.nat(),
        stage: fc.constantFrom("READ" as const, "FULFILLED" as const, "FAILED" as const),
        named: fc.boolean()
      })
    },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("tick" as const), ms: fc.constantFrom(500, 1_100) }) }
  )

  /**
   * Consumers connect (releasing or holding), take what comes, drop, and
   * acknowledge any delivery they ever took, stale or not. At each step the
   * live state is its replay and no terminal stage changes; in the end every
   * message is settled or a dead letter, never lost, delivered at most
   * `maxAttempts` times, and delivery_seq has no gap.
   */
  const scenario = (steps: ReadonlyArray<typeof step extends fc.Arbitrary<infer A> ? A : never>) =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const consumers: Array<Scope.CloseableScope> = []
      const taken: Array<Delivery> = []
      const sent: Array<string> = []
      const terminal = new Map<string, string>()
      const consume = (options: SubscriptionOptions, onDelivery: (delivery: Delivery) => Effect.Effect<unknown>) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const stream = yield* Effect.orDie(Scope.extend(router.subscription("b", options), scope))
          yield* Effect.forkIn(
            Stream.runForEach(stream, (inbound) => inbound._tag === "Delivery" ? onDelivery(inbound) : Effect.void),
            scope
          )
          return scope
        })
      for (const next of steps) {
        switch (next._tag) {
          case "send":
            sent.push((yield* sendTo("b", { producer_id: "a", payload: `m${sent.length}` })).message_id)
            break
          case "connect":
            consumers.push(yield* consume({ unsettled: next.release ? "release" : "hold" }, (delivery) => Effect.sync(() => taken.push(delivery))))
            break
          case "drop":
            if (consumers.length > 0) yield* Scope.close(consumers.splice(next.pick % consumers.length, 1)[0], Exit.void)
            break
          case "ack":
            if (taken.length > 0) {
              const delivery = taken[next.pick % taken.length]
              yield* Effect.either(router.ack({
                agent_id: "b",
                message_id: delivery.envelope.message_id,
                stage: next.stage,
                error_code: next.stage === "FAILED" ? "INTERNAL_ERROR" : undefined,
                delivery_seq: next.named ? delivery.delivery_seq : undefined
              }))
            }
            break
          case "tick":
            yield* TestClock.adjust(next.ms)
            break
        }
        yield* checkReplay(config)
        for (const id of sent) {
          const status = yield* router.status(id)
          const stage = status._tag === "Some" ? status.value.stage : undefined
          const before = terminal.get(id)
          if (before !== undefined) expect(stage).toBe(before)
          else if (stage === "FULFILLED" || stage === "FAILED" || stage === "TIMED_OUT") terminal.set(id, stage)
        }
      }
      // Every consumer drops, releasing; one comes back and fulfils all it gets.
      for (const scope of consumers) yield* Scope.close(scope, Exit.void)
      yield* settle
      yield* consume(release, (delivery) =>
        Effect.ignore(router.ack({ agent_id: "b", message_id: delivery.envelope.message_id, stage: "FULFILLED" })))
      for (let i = 0; i < 2 * (config.maxAttempts ?? 0); i++) {
        yield* settle
        yield* TestClock.adjust(config.ackWaitMs ?? 0)
      }
      yield* settle
      for (const id of sent) {
        const status = yield* router.status(id)
        expect(status._tag === "Some" && ["FULFILLED", "FAILED", "TIMED_OUT"].includes(status.value.stage)).toBe(true)
      }
      const delivered = Chunk.toReadonlyArray(yield* Stream.runCollect((yield* EventLog).read())).flatMap(({ event }) =>
        event._tag === "MessageDelivered" ? [event] : []
      )
      expect(delivered.map((event) => event.delivery_seq)).toEqual(delivered.map((_, i) => i + 1))
      expect(delivered.every((event) => event.attempt <= (config.maxAttempts ?? 0))).toBe(true)
      yield* checkReplay(config)
    }).pipe(Effect.scoped, Effect.provide(routerLayer(config)), Effect.provide(TestContext.TestContext))

  it.effect("keep the live state equal to its replay and lose no message", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), (steps) => Effect.runPromise(scenario(steps))),
        { numRuns: 40 }
      )
    ))
})
