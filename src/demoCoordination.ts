/**
 * The demo's last act (`npm start`): coordination. A builder agent runs a
 * nightly build when an urgent hotfix arrives: the scheduler asks it to
 * yield (a CONTROL envelope), it yields at its next safe point, the hotfix
 * runs, then the build again. Then two reviewers disagree on a release plan
 * in a negotiation room: the room escalates to a human, who answers from
 * the one HITL queue.
 */
import { Console, Effect, Fiber, Schedule, Stream } from "effect"
import { payloadJson } from "./model/Envelopes.js"
import { describe } from "./model/Timeline.js"
import { EventLog } from "./services/EventLog.js"
import { Hitl } from "./services/Hitl.js"
import { Negotiation } from "./services/Negotiation.js"
import { Registry } from "./services/Registry.js"
import { Router } from "./services/Router.js"
import { Scheduler } from "./services/Scheduler.js"

const quiet: ReadonlySet<string> = new Set(["AgentHeartbeat", "AuditRecorded", "MessageDelivered", "AgentLivenessLost"])

/** Prints coordination's facts (and the messages that carry them) from `from` on. */
const monitor = (from: number) =>
  Effect.flatMap(EventLog, (log) =>
    log.follow(from).pipe(
      Stream.runForEach((record) =>
        // The earlier acts' agents have gone quiet: their liveness is not this act's story.
        quiet.has(record.event._tag)
          ? Effect.void
          : Console.log(`  log #${record.offset}  ${describe(record.event)}`)
      )
    ))

/**
 * The builder: it works on one task at a time, and yields a task it is
 * asked to give up at its next safe point (here, at once).
 */
const builder = Effect.gen(function*() {
  const router = yield* Router
  const scheduler = yield* Scheduler
  const working = new Map<string, Fiber.RuntimeFiber<unknown, unknown>>()
  yield* router.subscribe("builder").pipe(
    Stream.runForEach((item) => {
      if (item._tag !== "Delivery") return Effect.void
      const message_id = item.envelope.message_id
      const body = payloadJson(item.envelope) as { readonly type?: string; readonly task_id?: string; readonly input?: { readonly ms?: number } }
      if (item.envelope.message_type === "CONTROL" && body.type === "preempt" && body.task_id !== undefined) {
        return Effect.gen(function*() {
          yield* router.ack({ agent_id: "builder", message_id, stage: "FULFILLED" })
          const running = working.get(body.task_id!)
          if (running !== undefined) yield* Fiber.interrupt(running)
          yield* Console.log(`\n  >>> builder yields ${body.task_id} at a safe point\n`)
          yield* scheduler.yieldTask({ agent_id: "builder", task_id: body.task_id! })
        })
      }
      if (body.type !== "task" || body.task_id === undefined) return router.ack({ agent_id: "builder", message_id, stage: "FULFILLED" })
      return Effect.gen(function*() {
        yield* router.ack({ agent_id: "builder", message_id, stage: "READ" })
        const fiber = yield* Effect.fork(
          Effect.sleep(`${body.input?.ms ?? 300} millis`).pipe(
            Effect.zipRight(router.ack({ agent_id: "builder", message_id, stage: "FULFILLED" })),
            Effect.ensuring(Effect.sync(() => working.delete(body.task_id!)))
          )
        )
        working.set(body.task_id!, fiber)
      })
    })
  )
})

/** `read` again every 50 ms until `done` holds of what it reads. */
const until = <A, E, R>(read: Effect.Effect<A, E, R>, done: (a: A) => boolean): Effect.Effect<A, E, R> =>
  Effect.flatMap(read, (a) => done(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("50 millis"), until(read, done)))

export const coordinationAct = Effect.gen(function*() {
  const registry = yield* Registry
  const scheduler = yield* Scheduler
  const rooms = yield* Negotiation
  const hitl = yield* Hitl
  yield* Console.log("\nCoordination: a preemption, and a negotiation room that escalates to a human\n")
  const logging = yield* Effect.fork(monitor((yield* Effect.flatMap(EventLog, (log) => log.head)) + 1))

  yield* registry.register({ agent_id: "builder", name: "Builder", capabilities: ["build"] })
  const beating = yield* Effect.fork(
    registry.heartbeat({ agent_id: "builder", state: "RUNNING" }).pipe(Effect.repeat(Schedule.spaced("300 millis")))
  )
  const working = yield* Effect.fork(builder)

  yield* scheduler.submit({ task_id: "nightly-build", capability: "build", priority: 10, scope: "repo", input: { ms: 1_200 } })
  yield* until(scheduler.task("nightly-build"), (task) => task.started)
  yield* Console.log(`\n  >>> an urgent hotfix (priority -10) arrives while the nightly build (priority 10) runs\n`)
  yield* scheduler.submit({ task_id: "hotfix", capability: "build", priority: -10, scope: "repo/api", input: { ms: 300 } })
  const hotfix = yield* until(scheduler.task("hotfix"), (task) => task.status === "COMPLETED")
  const nightly = yield* until(scheduler.task("nightly-build"), (task) => task.status === "COMPLETED")

  for (const id of ["reviewer-1", "reviewer-2"]) yield* registry.register({ agent_id: id, name: id })
  yield* rooms.submitProposal({
    negotiation_room_id: "release-plan",
    artifact_type: "PLAN",
    artifact: { release: "2.0", steps: ["freeze", "migrate", "ship"] },
    producer_id: "planner",
    requested_critics: ["reviewer-1", "reviewer-2"],
    deadline_ms: 10_000
  })
  yield* rooms.submitVote({ negotiation_room_id: "release-plan", critic_id: "reviewer-1", score: 10, confidence: 0.9, passed: true, strengths: ["clear steps"] })
  yield* rooms.submitVote({ negotiation_room_id: "release-plan", critic_id: "reviewer-2", score: 3, confidence: 0.8, passed: false, weaknesses: ["no rollback"] })
  const decision = yield* rooms.waitForDecision({ negotiation_room_id: "release-plan", timeout_ms: 5_000 })
  const [item] = yield* hitl.queue()
  yield* Console.log(`\n  >>> the reviewers disagree: ${decision.outcome}; the human's queue holds: ${item?.summary}\n`)
  yield* hitl.decide({ id: decision.hitl_id!, action: "approve", rationale: "ship, with a rollback step added", by: "release-manager" })
  const resolved = yield* rooms.waitForDecision({ negotiation_room_id: "release-plan" })
  yield* Effect.sleep("100 millis")
  yield* Fiber.interrupt(logging)
  yield* Fiber.interrupt(working)
  yield* Fiber.interrupt(beating)

  yield* Console.log("\nCoordination summary")
  yield* Console.log(`  hotfix: ${hotfix.status} first; nightly-build: ${nightly.status} after ${nightly.preemptions} preemption`)
  yield* Console.log(`  release-plan: ${decision.outcome} (${decision.reason}), then ${resolved.resolution?.outcome} by ${resolved.resolution?.by}`)
})
