/**
 * Coordination through its Effect services on the live runtime, the clock
 * being TestClock: a preemption seen from the agent's own stream, forced
 * after the grace; bounded waits for a room's decision and a human's
 * answer; deadlines that survive a restart; bad input refused at the edge.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Stream, TestClock } from "effect"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import { payloadJson } from "../../src/model/Envelopes.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { EventLog } from "../../src/services/EventLog.js"
import { Hitl } from "../../src/services/Hitl.js"
import { Negotiation } from "../../src/services/Negotiation.js"
import { type Delivery, Router } from "../../src/services/Router.js"
import { Scheduler } from "../../src/services/Scheduler.js"
import { Worktrees } from "../../src/services/Worktrees.js"
import { register } from "../support/router.js"

const runtime = (options: RuntimeOptions = {}) =>
  Switchboard.layer({ livenessTimeoutMs: undefined, ...options }).pipe(Layer.provideMerge(EventLogMemory.layer()))

/** The next `n` deliveries of the agent's stream (stage notices aside). */
const deliveries = (agent: string) =>
  Effect.gen(function*() {
    const router = yield* Router
    const stream = yield* router.subscription(agent)
    const pull = yield* Stream.toPull(stream.pipe(Stream.filter((item): item is Delivery => item._tag === "Delivery")))
    let buffer: Array<Delivery> = []
    return (n: number) =>
      Effect.gen(function*() {
        while (buffer.length < n) buffer = buffer.concat([...(yield* Effect.orDie(pull))])
        const taken = buffer.slice(0, n)
        buffer = buffer.slice(n)
        return taken
      })
  })

describe("the scheduler, live", () => {
  it.scoped("an agent sees its task, then a CONTROL asking it to yield; it yields and gets the urgent task; forced after the grace otherwise", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler
      const router = yield* Router
      yield* register("w", { capabilities: ["work"] })
      const next = yield* deliveries("w")
      yield* scheduler.submit({ task_id: "low", capability: "work", priority: 10, input: { n: 1 } })
      const [task] = yield* next(1)
      expect(payloadJson(task.envelope)).toEqual({ type: "task", task_id: "low", priority: 10, kind: "capability:work", input: { n: 1 }, attempt: 1 })
      yield* router.ack({ agent_id: "w", message_id: task.envelope.message_id, stage: "READ" })
      yield* scheduler.submit({ task_id: "urgent", capability: "work", priority: -10 })
      const [control] = yield* next(1)
      expect(control.envelope).toMatchObject({ message_type: "CONTROL", correlation_id: "low", producer_id: "switchboard" })
      expect(control.lane).toBe("PRIVILEGED")
      yield* router.ack({ agent_id: "w", message_id: control.envelope.message_id, stage: "FULFILLED" })
      yield* scheduler.yieldTask({ agent_id: "w", task_id: "low" })
      const [urgent] = yield* next(1)
      expect(urgent.envelope.correlation_id).toBe("urgent")
      expect(yield* scheduler.task("low")).toMatchObject({ status: "QUEUED", preemptions: 1 })

      // Now an agent that does not yield: the grace (10 s) takes the task back.
      yield* scheduler.submit({ task_id: "top", capability: "work", priority: -19 })
      yield* next(1)
      yield* TestClock.adjust("10 seconds")
      const [top] = yield* next(1)
      expect(top.envelope.correlation_id).toBe("top")
      expect(yield* router.status(urgent.envelope.message_id)).toMatchObject({ value: { stage: "FAILED", error_code: "FORCED_PREEMPTION" } })
      expect((yield* scheduler.tasks({ status: "QUEUED" })).map((t) => t.task_id)).toEqual(["low", "urgent"])
      expect((yield* scheduler.pollActivity("w")).entries.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(runtime())))

  it.scoped("a preemption's grace and a shutdown's survive a restart: the deadline is in the log, not in a timer", () =>
    Effect.gen(function*() {
      const log = yield* Layer.build(EventLogMemory.layer())
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Switchboard.layer({ livenessTimeoutMs: undefined, preemptionGraceMs: 5_000 }))
        return yield* Effect.gen(function*() {
          const scheduler = yield* Scheduler
          yield* register("w", { capabilities: ["work"] })
          const next = yield* deliveries("w")
          yield* scheduler.submit({ task_id: "low", capability: "work", priority: 1 })
          yield* next(1)
          yield* scheduler.submit({ task_id: "high", capability: "work", priority: 0 })
          yield* next(1)
          return (yield* scheduler.task("low")).preemption?.grace_deadline
        }).pipe(Effect.provide(context))
      }).pipe(Effect.provide(log)))
      expect(first).toBe(5_000)
      // Stopped; started again on the same log, later.
      yield* TestClock.adjust("6 seconds")
      const context = yield* Layer.build(Switchboard.layer({ livenessTimeoutMs: undefined, preemptionGraceMs: 5_000 })).pipe(Effect.provide(log))
      const scheduler = Context.get(context, Scheduler)
      const low = yield* Effect.repeat(scheduler.task("low"), { until: (task) => task.status === "QUEUED" })
      expect(low).toMatchObject({ preemptions: 1 })
      expect(yield* Effect.provide(Effect.flatMap(EventLog, (l) => l.head), log)).toBeGreaterThan(0)
    }))

  it.effect("refuses what does not decode, whole, at the edge", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler
      for (const junk of [null, 3, "x", { capability: "w", priority: 21 }, { capability: "w", priority: 1.5 }, { capability: "w", extra: 1 }, { agent_id: "" }]) {
        expect(yield* Effect.flip(scheduler.submit(junk as never))).toMatchObject({ _tag: "ValidationError" })
      }
      expect(yield* Effect.flip(scheduler.task("x".repeat(300)))).toMatchObject({ _tag: "ValidationError" })
      expect(yield* Effect.flip(scheduler.task("nope"))).toMatchObject({ _tag: "NotFound", code: "NOT_FOUND" })
      expect(yield* Effect.flip(scheduler.enterSection({ agent_id: "a", task_id: "t", max_ms: 0 }))).toMatchObject({ _tag: "ValidationError" })
      expect(yield* Effect.flip(scheduler.shutdownAgent({ agent_id: "a", grace_ms: Number.MAX_SAFE_INTEGER }))).toMatchObject({ _tag: "ValidationError" })
    }).pipe(Effect.provide(runtime())))
})

describe("bounded waits", () => {
  it.scoped("WaitForDecision answers at the decision, or DEADLINE_EXCEEDED after its bound (30 s by default)", () =>
    Effect.gen(function*() {
      const rooms = yield* Negotiation
      for (const id of ["p", "c1", "c2"]) yield* register(id)
      yield* rooms.submitProposal({ negotiation_room_id: "r", artifact_type: "PLAN", producer_id: "p", requested_critics: ["c1", "c2"] })
      const waiting = yield* Effect.fork(rooms.waitForDecision({ negotiation_room_id: "r" }))
      yield* TestClock.adjust("29 seconds")
      yield* rooms.submitVote({ negotiation_room_id: "r", critic_id: "c1", score: 9, confidence: 0.9, passed: true })
      expect(yield* rooms.decision("r")).toBeUndefined()
      yield* rooms.submitVote({ negotiation_room_id: "r", critic_id: "c2", score: 8, confidence: 0.9, passed: true })
      expect(yield* Fiber.join(waiting)).toMatchObject({ outcome: "APPROVED", negotiation_room_id: "r" })

      yield* rooms.submitProposal({ negotiation_room_id: "slow", artifact_type: "PLAN", producer_id: "p", requested_critics: ["c1"] })
      const bounded = yield* Effect.fork(Effect.flip(rooms.waitForDecision({ negotiation_room_id: "slow" })))
      yield* TestClock.adjust("30 seconds")
      expect(yield* Fiber.join(bounded)).toMatchObject({ _tag: "DeadlineExceeded", code: "DEADLINE_EXCEEDED", retryable: true, waited_ms: 30_000 })
      expect(yield* Effect.flip(rooms.waitForDecision({ negotiation_room_id: "nope", timeout_ms: 10 }))).toMatchObject({ _tag: "NotFound" })
      // At the room's deadline (5 min), an escalation is a decision too.
      const late = yield* Effect.fork(rooms.waitForDecision({ negotiation_room_id: "slow", timeout_ms: 600_000 }))
      yield* TestClock.adjust("5 minutes")
      expect(yield* Fiber.join(late)).toMatchObject({ outcome: "ESCALATED_TO_HITL" })
    }).pipe(Effect.provide(runtime())))

  it.scoped("a human's answer wakes whoever waits on the invocation; the queue lists it until then", () =>
    Effect.gen(function*() {
      const hitl = yield* Hitl
      const asked = yield* hitl.invoke({ reason: "MANUAL_OVERRIDE", context: { deploy: "prod" }, invoked_by: "agent" })
      const waiting = yield* Effect.fork(hitl.awaitDecision({ id: asked.hitl_id, timeout_ms: 60_000 }))
      expect((yield* hitl.queue()).map((item) => item.id)).toEqual([asked.hitl_id])
      yield* hitl.decide({ id: asked.hitl_id, action: "approve", rationale: "go", by: "alice" })
      expect(yield* Fiber.join(waiting)).toMatchObject({ status: "decided", decision: { action: "approve", by: "alice" } })
      expect(yield* hitl.queue()).toEqual([])
      const second = yield* hitl.invoke({ reason: "CONFLICT" })
      const bounded = yield* Effect.fork(Effect.flip(hitl.awaitDecision({ id: second.hitl_id })))
      yield* TestClock.adjust("30 seconds")
      expect(yield* Fiber.join(bounded)).toMatchObject({ _tag: "DeadlineExceeded" })
      // Nobody answers: at its deadline (5 min) the fallback does.
      const fallback = yield* Effect.fork(hitl.awaitDecision({ id: second.hitl_id, timeout_ms: 600_000 }))
      yield* TestClock.adjust("5 minutes")
      expect(yield* Fiber.join(fallback)).toMatchObject({ decision: { action: "deny", by: "fallback", automatic: true } })
    }).pipe(Effect.provide(runtime())))

  it.scoped("worktrees answer with the agent's status after the command", () =>
    Effect.gen(function*() {
      const worktrees = yield* Worktrees
      yield* register("a")
      expect(yield* worktrees.bind({ agent_id: "a", repo_id: "r", worktree_id: "main" })).toMatchObject({ state: "BOUND_HOME", worktree_id: "main" })
      expect(yield* worktrees.requestSwitch({ agent_id: "a", target_worktree_id: "b" })).toMatchObject({ state: "SWITCH_PENDING" })
      expect(yield* worktrees.approveSwitch({ agent_id: "a", ttl_ms: 1_000 })).toMatchObject({ state: "BOUND_NON_HOME", worktree_id: "b" })
      yield* TestClock.adjust("1 second")
      expect(yield* Effect.repeat(worktrees.status("a"), { until: (status) => status.state === "BOUND_HOME" })).toMatchObject({ worktree_id: "main" })
    }).pipe(Effect.provide(runtime())))
})
