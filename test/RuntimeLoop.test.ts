/**
 * The command loop's own promises: a caller is never left waiting (the loop
 * stopping fails everyone at once), one bad command fails alone, waiters that
 * give up leave nothing behind, and long timers fire on an idle runtime.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Metric, Stream, TestClock } from "effect"
import * as EventLogMemory from "../src/layers/EventLogMemory.js"
import { waiters } from "../src/layers/Metrics.js"
import * as Switchboard from "../src/layers/Switchboard.js"
import * as Replay from "../src/layers/Replay.js"
import { buildEnvelope } from "../src/model/Envelopes.js"
import { accept } from "../src/model/State.js"
import { differences } from "../src/model/Timeline.js"
import { PersistenceError } from "../src/schema/Errors.js"
import { EventLog } from "../src/services/EventLog.js"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { type Delivery, Router } from "../src/services/Router.js"
import { Runtime } from "../src/services/Runtime.js"
import { gatewayLayer, toolsPolicy } from "./support/gateway.js"
import { inbox, register, routerLayer, sendTo } from "./support/router.js"

const waiting = Effect.map(Metric.value(waiters), (state) => state.value)

describe("The command loop", () => {
  it.live("fails every waiting and later caller at once when it dies, and never hangs one", () =>
    Effect.gen(function*() {
      let broken = false
      const disk = new PersistenceError({ message: "disk gone" })
      // Appends fail, then the refold that follows fails too: the loop cannot go on.
      const failing = Layer.effect(
        EventLog,
        Effect.map(EventLog, (log) =>
          EventLog.of({
            ...log,
            append: (events) => broken ? Effect.fail(disk) : log.append(events),
            read: (range) => broken ? Stream.fail(disk) : log.read(range)
          }))
      ).pipe(Layer.provide(EventLogMemory.layer()))
      yield* Effect.gen(function*() {
        const registry = yield* Registry
        const router = yield* Router
        const gateway = yield* Gateway
        yield* registry.register({ agent_id: "a", name: "a" })
        yield* registry.register({ agent_id: "alice", name: "alice" })
        yield* gateway.loadPolicy(toolsPolicy)
        const pending = yield* gateway.check({ kind: "tool_call", agent_id: "alice", tool: "payments.send", args: { amount: 5_000 } })
        const receipt = yield* sendTo("a", { producer_id: "alice", payload: "never done" })
        // Those who wait on the loop rather than call it: they must hear of its end too.
        const before = yield* waiting
        const stage = yield* Effect.fork(router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" }))
        const approval = yield* Effect.fork(gateway.awaitApproval(pending.approval_id!))
        const inbox = yield* Effect.fork(Stream.runDrain(router.subscribe("a")))
        yield* Effect.repeat(waiting, { until: (value) => value >= before + 2 }).pipe(Effect.timeout("5 seconds"))
        broken = true
        const callers = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => Effect.fork(registry.register({ agent_id: `b${i}`, name: "b" }))
        )
        const exits = yield* Effect.forEach(callers, Fiber.await).pipe(Effect.timeout("5 seconds"))
        for (const exit of exits) {
          expect(Exit.isFailure(exit)).toBe(true)
          const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
          expect(["PersistenceError", "InternalError"]).toContain(error?._tag)
        }
        for (const waiter of [stage, approval, inbox] as ReadonlyArray<Fiber.Fiber<unknown, unknown>>) {
          const exit = yield* Fiber.await(waiter).pipe(Effect.timeout("5 seconds"))
          expect(exit).toMatchObject({ _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "InternalError" } } })
        }
        // Every later call, read or write, fails at once, retryable.
        expect(yield* Effect.flip(registry.list)).toMatchObject({ _tag: "InternalError", retryable: true })
        expect(yield* Effect.flip(registry.register({ agent_id: "c", name: "c" }))).toMatchObject({
          _tag: "InternalError",
          code: "INTERNAL_ERROR",
          retryable: true
        })
      }).pipe(Effect.provide(Switchboard.layer().pipe(Layer.provide(failing))), Effect.scoped)
    }))

  it.scoped("refuses alone a decision whose events the log cannot take; the others of its turn land", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const [bad, good] = yield* Effect.all([
        Effect.flip(runtime.run(() => accept([{ _tag: "AgentLivenessLost", agent_id: "", at: 1.5 }]))),
        register("innocent")
      ], { concurrency: "unbounded" })
      expect(bad).toMatchObject({ _tag: "ValidationError" })
      expect(good).toMatchObject({ descriptor: { agent_id: "innocent" } })
      expect(yield* (yield* Registry).get("innocent")).toMatchObject({ _tag: "Some" })
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("refuses alone a decision whose events break evolve, and decides the rest of its turn again", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const [bad, good] = yield* Effect.all([
        Effect.exit(runtime.run(() => accept([{ _tag: "MessageAcked" } as never, { _tag: "AgentRegistered", at: 1 } as never]))),
        register("innocent")
      ], { concurrency: "unbounded" })
      expect(Exit.isFailure(bad) && bad.cause._tag).toBe("Die")
      expect(good).toMatchObject({ descriptor: { agent_id: "innocent" } })
      expect((yield* (yield* Registry).list).map((agent) => agent.descriptor.agent_id)).toEqual(["innocent"])
    }).pipe(Effect.provide(routerLayer())))

  it.live("stops, rather than spins, when its own events (an extension's) cannot be logged", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      yield* register("a")
      let once = true
      yield* runtime.extend({
        decide: () => {
          if (!once) return []
          once = false
          return [{ _tag: "AgentLivenessLost", agent_id: "", at: 1.5 }]
        }
      })
      const exit = yield* Effect.exit(register("b")).pipe(Effect.timeout("5 seconds"))
      expect(exit).toMatchObject({ _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "ValidationError" } } })
      expect(yield* Effect.flip((yield* Registry).list)).toMatchObject({ _tag: "InternalError" })
    }).pipe(Effect.provide(routerLayer()), Effect.scoped))

  it.scoped("answers each of two policy commands on one id in one turn, and goes on", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* gateway.loadPolicy(toolsPolicy)
      for (let round = 0; round < 5; round++) {
        const [removed, loaded] = yield* Effect.all([
          Effect.either(gateway.removePolicy("tools")),
          Effect.either(gateway.loadPolicy(toolsPolicy))
        ], { concurrency: "unbounded" })
        expect(removed._tag === "Right" || removed.left._tag === "ValidationError").toBe(true)
        expect(loaded._tag).toBe("Right")
      }
      expect((yield* gateway.policies).map((policy) => policy.policy_id)).toEqual(["tools"])
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("checks the input of every read, and a bad one fails alone", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      const router = yield* Router
      yield* register("a")
      for (const bad of [42, {}, null, ""] as Array<never>) {
        expect(yield* Effect.flip(registry.get(bad))).toMatchObject({ _tag: "ValidationError" })
        expect(yield* Effect.flip(registry.lineage(bad))).toMatchObject({ _tag: "ValidationError" })
        expect(yield* Effect.flip(router.status(bad))).toMatchObject({ _tag: "ValidationError" })
        expect(yield* Effect.flip(router.deadLetters(bad))).toMatchObject({ _tag: "ValidationError" })
        expect(yield* Effect.flip(router.awaitStage({ message_id: bad, stage: "READ" }))).toMatchObject({
          _tag: "ValidationError"
        })
      }
      expect(yield* registry.get("a")).toMatchObject({ _tag: "Some" })
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("leaves nothing behind when many waiters for stages and approvals are interrupted", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      yield* (yield* Registry).register({ agent_id: "alice", name: "alice" })
      yield* gateway.loadPolicy(toolsPolicy)
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "never read" })
      const pending = yield* gateway.check({ kind: "tool_call", agent_id: "alice", tool: "payments.send", args: { amount: 5_000 } })
      const before = yield* waiting
      const fibers = yield* Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) =>
        Effect.fork(
          i % 2 === 0
            ? Effect.asVoid(router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" }))
            : Effect.asVoid(gateway.awaitApproval(pending.approval_id!))
        ))
      // Every one is registered once the loop has answered a read after them.
      yield* Effect.repeat(waiting, { until: (value) => value === before + 300 }).pipe(Effect.timeout("5 seconds"))
      yield* Fiber.interruptAll(fibers)
      expect(yield* waiting).toBe(before)
      // The message and the approval still move on, and a new waiter still hears of it.
      const approver = yield* Effect.fork(gateway.awaitApproval(pending.approval_id!))
      yield* gateway.approve({ approval_id: pending.approval_id!, by: "carol" })
      expect(yield* Fiber.join(approver)).toMatchObject({ status: "approved" })
      expect(yield* waiting).toBe(before)
    }).pipe(Effect.provide(gatewayLayer())), { timeout: 20_000 })
})

describe("Time in the loop", () => {
  it.scoped("sleeps in bounded steps, so a 30-day TTL fires on an idle runtime", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const thirtyDays = 30 * 24 * 3_600_000
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "later", ttl_ms: thirtyDays })
      const timedOut = yield* Effect.fork(router.awaitStage({ message_id: receipt.message_id, stage: "TIMED_OUT" }))
      yield* Effect.yieldNow()
      // A timer beyond 2^31−1 ms would fire at once or never: the loop wakes at least hourly.
      const now = yield* TestClock.currentTimeMillis
      const sleeps = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      expect(sleeps.length).toBeGreaterThan(0)
      expect(Math.max(...sleeps)).toBeLessThanOrEqual(now + 3_600_000)
      yield* TestClock.adjust(thirtyDays + 1_000)
      expect(yield* Fiber.join(timedOut)).toMatchObject({ stage: "TIMED_OUT", error_code: "TTL_EXPIRED" })
    }).pipe(Effect.provide(routerLayer({ livenessTimeoutMs: undefined }))))

  it.scoped("saturates a TTL past the largest time an event can hold, and refuses nobody else's send for it", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const [endless, innocent] = yield* Effect.all([
        sendTo("b", { producer_id: "a", payload: "forever", ttl_ms: Number.MAX_SAFE_INTEGER }),
        sendTo("b", { producer_id: "a", payload: "plain" })
      ], { concurrency: "unbounded" })
      expect(endless.stage).toBe("RECEIVED")
      expect(innocent.stage).toBe("RECEIVED")
      expect(yield* router.status(endless.message_id)).toMatchObject({ _tag: "Some", value: { stage: "RECEIVED" } })
    }).pipe(Effect.provide(routerLayer())))
})

describe("What the runtime keeps is its own", () => {
  it.scoped("a caller changing its objects after a call changes nothing decided, and the live state equals its replay", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      yield* (yield* Registry).register({ agent_id: "alice", name: "alice" })
      yield* gateway.loadPolicy(toolsPolicy)
      const args = { amount: 5_000, to: "acct-1", fee: -0 }
      const pending = yield* gateway.check({ kind: "tool_call", agent_id: "alice", tool: "payments.send", args })
      args.amount = 999_999
      args.to = "acct-EVIL"
      const [approval] = yield* gateway.approvals({ status: "open" })
      expect(approval.action).toMatchObject({ args: { amount: 5_000, to: "acct-1" } })
      expect(Object.is((approval.action as unknown as { args: { fee: number } }).args.fee, 0)).toBe(true)
      expect(pending.approval_id).toBe(approval.approval_id)
      const bytes = new TextEncoder().encode("pay 10")
      const envelope = buildEnvelope({ producer_id: "a", payload: bytes }, "m-own", 0)
      yield* router.send({ to: "b", envelope })
      bytes.set(new TextEncoder().encode("pay 99"))
      const next = yield* inbox("b")
      const [delivery] = (yield* next(1)) as ReadonlyArray<Delivery>
      expect(new TextDecoder().decode(delivery.envelope.payload)).toBe("pay 10")
      const live = yield* router.snapshot
      const replayed = yield* Replay.stateAt(live.offset)
      expect(differences(live.state, Replay.snapshot(replayed.state))).toEqual([])
    }).pipe(Effect.provide(gatewayLayer())))
})
