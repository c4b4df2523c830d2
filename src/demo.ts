/**
 * The main job (`npm start`): a multi-agent run on the embedded SQLite store.
 *
 * A planner routes work by capability to three summarizer workers. One worker
 * dies mid-task and its message is delivered again to another; a translation
 * request expires by TTL before any translator shows up; an archive job that
 * its agent never finishes lands in the dead letters. Every fact is printed as
 * it lands in the log, and the run ends with a summary and the replayed
 * timeline of the message whose worker died. Its last act is coordination
 * (`demoCoordination.ts`): a preemption, and a negotiation room that
 * escalates to a human.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FileSystem from "@effect/platform/FileSystem"
import { Console, Effect, Fiber, Layer, Schedule, Stream } from "effect"
import { newEnvelope } from "./layers/Envelopes.js"
import * as EventLogSqlite from "./layers/EventLogSqlite.js"
import * as Processor from "./layers/Processor.js"
import * as Replay from "./layers/Replay.js"
import * as Switchboard from "./layers/Switchboard.js"
import { payloadJson } from "./model/Envelopes.js"
import { describe } from "./model/Timeline.js"
import { EventLog } from "./services/EventLog.js"
import { Ids } from "./services/Ids.js"
import { Registry } from "./services/Registry.js"
import { Router } from "./services/Router.js"
import { coordinationAct } from "./demoCoordination.js"

const store = process.env.SWITCHBOARD_DEMO_STORE ?? "demo.db"
const jobs = 9
/** Capability routing spreads jobs w1, w2, w3, w1, w2, ...: job 5 is w2's second. */
const doomedJob = 5

/** Prints every fact as it becomes durable (heartbeats aside: they are many and say little). */
const monitor = Effect.flatMap(EventLog, (log) =>
  log.follow().pipe(
    Stream.runForEach((record) =>
      record.event._tag !== "AgentHeartbeat"
        ? Console.log(`  log #${record.offset}  ${describe(record.event)}`)
        : Effect.void
    )
  ))

const heartbeat = (agentId: string) =>
  Effect.flatMap(Registry, (registry) => registry.heartbeat({ agent_id: agentId, state: "RUNNING" })).pipe(
    Effect.repeat(Schedule.spaced("300 millis"))
  )

/** A summarizer: heartbeats, and handles each job in a little while. */
const worker = (agentId: string, onJob: (job: number) => Effect.Effect<void> = () => Effect.void) =>
  Effect.all([
    heartbeat(agentId),
    Processor.run(agentId, {
      handlers: {
        TOOL_CALL: (delivery) => {
          const { job } = payloadJson(delivery.envelope) as { readonly job: number }
          return Effect.zipRight(onJob(job), Effect.sleep(`${150 + 40 * job} millis`))
        }
      }
    })
  ], { concurrency: "unbounded", discard: true })

const program = Effect.gen(function*() {
  yield* Console.log(`Switchboard demo: one planner, three summarizers, a translator that comes late, an archiver that never finishes.`)
  yield* Console.log(`Store: ${store} (SQLite, durability full)\n`)

  const registry = yield* Registry
  const router = yield* Router
  const logging = yield* Effect.fork(monitor)

  yield* registry.register({ agent_id: "planner", name: "Planner", capabilities: ["plan"] })
  for (const id of ["w1", "w2", "w3"]) {
    yield* registry.register({ agent_id: id, name: `Summarizer ${id}`, capabilities: ["summarize"] })
  }
  yield* registry.register({ agent_id: "archiver", name: "Archiver", capabilities: ["archive"] })
  // The translator registers but never comes to take work.
  yield* registry.register({ agent_id: "translator", name: "Translator", capabilities: ["translate"] })
  const planner = yield* Effect.fork(heartbeat("planner"))

  // w2 dies in the middle of the doomed job: its fiber is interrupted, no ACK is ever sent.
  const w2Died = yield* Effect.makeLatch(false)
  const w2 = yield* Effect.fork(worker("w2", (job) => job === doomedJob ? w2Died.open.pipe(Effect.zipRight(Effect.never)) : Effect.void))
  const others = yield* Effect.fork(Effect.all([worker("w1"), worker("w3")], { concurrency: "unbounded" }))
  // The archiver reads its jobs and never finishes them.
  const archiver = yield* Effect.fork(Effect.all([
    heartbeat("archiver"),
    router.subscribe("archiver").pipe(
      Stream.runForEach((inbound) =>
        inbound._tag === "Delivery"
          ? router.ack({ agent_id: "archiver", message_id: inbound.envelope.message_id, stage: "READ" })
          : Effect.void
      )
    )
  ], { concurrency: "unbounded" }))

  const plan = (to: { readonly capability: string }, payload: unknown, ttl_ms = 0) =>
    Effect.flatMap(newEnvelope({ producer_id: "planner", message_type: "TOOL_CALL", payload, ttl_ms }), (envelope) =>
      router.send({ to, envelope }))

  const sent = yield* Effect.forEach(Array.from({ length: jobs }, (_, i) => i + 1), (job) =>
    plan({ capability: "summarize" }, { job, text: `chapter ${job}` }))
  const doomed = sent[doomedJob - 1]
  const translation = yield* plan({ capability: "translate" }, { text: "bonjour" }, 400)
  const archive = yield* plan({ capability: "archive" }, { what: "all summaries" })

  yield* w2Died.await
  yield* Console.log(`\n  >>> worker w2 dies in the middle of job ${doomedJob} (${doomed.message_id})\n`)
  yield* Fiber.interrupt(w2)

  const summarized = yield* Effect.forEach(sent, (receipt) => router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" }))
  const expired = yield* router.awaitStage({ message_id: translation.message_id, stage: "TIMED_OUT" })
  const dead = yield* router.awaitStage({ message_id: archive.message_id, stage: "TIMED_OUT" })
  yield* Effect.sleep("100 millis")
  yield* Fiber.interrupt(logging)
  yield* Fiber.interrupt(others)
  yield* Fiber.interrupt(archiver)
  yield* Fiber.interrupt(planner)

  const redelivered = summarized[doomedJob - 1]
  yield* Console.log("\nSummary")
  yield* Console.log(`  ${summarized.filter((s) => s.stage === "FULFILLED").length} of ${jobs} summaries FULFILLED`)
  yield* Console.log(`  job ${doomedJob}: worker w2 died holding it; FULFILLED by ${redelivered.to} on attempt ${redelivered.attempts}`)
  yield* Console.log(`  translation: ${expired.stage} (${expired.error_code}), nobody took it within its TTL`)
  yield* Console.log(`  archive: ${dead.stage} (${dead.error_code}) after ${dead.attempts} attempts`)
  const letters = yield* router.deadLetters(dead.to)
  yield* Console.log(`  dead letters of ${dead.to}: ${letters.map((letter) => letter.message_id).join(", ")}`)
  yield* Console.log(`  log head: offset ${yield* Effect.flatMap(EventLog, (log) => log.head)}`)

  yield* Console.log(`\nReplayed timeline of job ${doomedJob} (${doomed.message_id}), read back from ${store}:`)
  yield* Replay.timeline({ message: doomed.message_id }).pipe(
    Stream.runForEach((entry) => Console.log(`  #${entry.offset}  ${entry.text}`))
  )
  yield* Console.log(`\nReplay it yourself: npm run switchboard -- replay ${store} --message ${doomed.message_id}`)

  yield* coordinationAct
})

const runtime = Switchboard.layer({ ackWaitMs: 1_500, maxAttempts: 3, livenessTimeoutMs: 1_000, preemptionGraceMs: 1_000 }).pipe(
  Layer.provideMerge(EventLogSqlite.layer({ filename: store })),
  Layer.provideMerge(Ids.layerUuid)
)

/** A fresh store for every run: the layers open it, so it goes first. */
const resetStore = Effect.flatMap(FileSystem.FileSystem, (fs) =>
  Effect.forEach(["", "-wal", "-shm"], (suffix) => fs.remove(store + suffix, { force: true })))

resetStore.pipe(
  Effect.zipRight(Effect.provide(program, runtime)),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
