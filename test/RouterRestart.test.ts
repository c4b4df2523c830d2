/**
 * Restart and reconciliation of the router on the SQLite store: starting on an
 * existing store folds the log back into state and reconciles. Unacknowledged
 * deliveries are delivered again, what expired meanwhile times out, and dedup
 * memory and delivery sequences continue where they stopped.
 *
 * The in-process tests close the router's scope and open it again on the same
 * file. The last test kills a child process running producers and consumers
 * with SIGKILL, twice, and finishes the work here.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Stream } from "effect"
import * as Replay from "../src/layers/Replay.js"
import * as Switchboard from "../src/layers/Switchboard.js"
import { isTerminal } from "../src/model/Messages.js"
import { snapshot } from "../src/model/Runtime.js"
import type { RuntimeOptions } from "../src/schema/Config.js"
import { messageOf } from "../src/model/Timeline.js"
import type { EnvelopeState } from "../src/schema/Envelope.js"
import type { RouterEvent } from "../src/schema/RouterEvents.js"
import { EventLogSqlite } from "../src/node.js"
import { Ids } from "../src/services/Ids.js"
import { type Delivery, Router } from "../src/services/Router.js"
import { runUntilKilled } from "./support/child.js"
import { openProcessed } from "./support/processed-tokens.js"
import { inbox, register, sendTo } from "./support/router.js"
import * as Workload from "./support/router-workload.js"

const dir = mkdtempSync(join(tmpdir(), "switchboard-restart-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The router on an SQLite file, with the log itself beside it for replays. */
const sqliteRouter = (filename: string, config: RuntimeOptions) =>
  Switchboard.layer({ livenessTimeoutMs: undefined, ...config }).pipe(
    Layer.provideMerge(EventLogSqlite.layer({ filename })),
    Layer.provideMerge(Ids.layerUuid)
  )

const deliveries = (items: ReadonlyArray<{ readonly _tag: string }>) => {
  for (const item of items) expect(item._tag).toBe("Delivery")
  return items as ReadonlyArray<Delivery>
}

/** The live state equals the log folded from scratch by Replay, at the same offset. */
const expectReplayMatches = Effect.gen(function*() {
  const router = yield* Router
  const live = yield* router.snapshot
  const replayed = yield* Replay.stateAt(live.offset)
  expect(replayed.offset).toBe(live.offset)
  expect(Replay.differences(snapshot(replayed.state), live.state)).toEqual([])
  return live
})

/** The next `n` inbound items, failing instead of hanging when they do not come. */
const take = (next: (n: number) => Effect.Effect<ReadonlyArray<{ readonly _tag: string }>>, n: number) =>
  Effect.flatMap(
    next(n).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`${n} deliveries did not come in 5 s`) })),
    (items) => Effect.succeed(deliveries(items))
  )

const sleepReal = (millis: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, millis)))

describe("Router restart, in process", () => {
  it.live("delivers unacknowledged messages again, in order, with delivery_seq continuing", () =>
    Effect.gen(function*() {
      const filename = join(dir, "redeliver.db")
      // Three in flight at most, so the first run leaves some messages queued, never delivered.
      const config = { ackWaitMs: 60_000, maxInFlight: 3 }

      const sent = yield* Effect.gen(function*() {
        const router = yield* Router
        yield* register("a")
        yield* register("b")
        const sent = yield* Effect.forEach([1, 2, 3, 4, 5], (n) =>
          sendTo("b", { producer_id: "a", payload: { n }, idempotency_token: `tok-${n}` }))
        const next = yield* inbox("b")
        const first = yield* take(next, 3)
        expect(first.map((d) => [d.envelope.message_id, d.attempt, d.delivery_seq])).toEqual(
          sent.slice(0, 3).map((receipt, i) => [receipt.message_id, 1, i + 1])
        )
        // 1 fulfilled, 2 read, 3 taken and not acknowledged, 4 delivered in 1's place, 5 still queued.
        yield* router.ack({ agent_id: "b", message_id: sent[0].message_id, stage: "FULFILLED" })
        yield* router.ack({ agent_id: "b", message_id: sent[1].message_id, stage: "READ" })
        const live = yield* expectReplayMatches
        expect(live.state.mailboxes["b"]).toMatchObject({
          queued: { STANDARD: [sent[4].message_id] },
          in_flight: 3,
          next_delivery_seq: 5
        })
        expect(live.state.messages[sent[3].message_id]).toMatchObject({ location: "in_flight", delivery_seq: 4 })
        return sent
      }).pipe(Effect.provide(sqliteRouter(filename, config)), Effect.scoped)

      yield* Effect.gen(function*() {
        const router = yield* Router
        // Reconciled at start: the live state is still the fold of the log.
        yield* expectReplayMatches
        const next = yield* inbox("b")
        // The unacknowledged ones first, in the order they were delivered, then the queued one.
        const requeued = yield* take(next, 3)
        for (const d of requeued) {
          yield* router.ack({ agent_id: "b", message_id: d.envelope.message_id, stage: "FULFILLED" })
        }
        const queued = yield* take(next, 1)
        yield* router.ack({ agent_id: "b", message_id: queued[0].envelope.message_id, stage: "FULFILLED" })
        expect([...requeued, ...queued].map((d) => [d.envelope.message_id, d.attempt, d.delivery_seq, d.envelope.retry_count]))
          .toEqual([
            [sent[1].message_id, 2, 5, 1],
            [sent[2].message_id, 2, 6, 1],
            [sent[3].message_id, 2, 7, 1],
            [sent[4].message_id, 1, 8, 0]
          ])
        expect(Option.getOrThrow(yield* router.status(sent[0].message_id))).toMatchObject({
          stage: "FULFILLED",
          attempts: 1,
          delivery_seq: 1
        })
        for (const receipt of sent) {
          expect(yield* router.awaitStage({ message_id: receipt.message_id, stage: "FULFILLED" })).toMatchObject({ stage: "FULFILLED" })
        }

        // Dedup memory survived the restart: a retry is answered with the original.
        for (const [n, receipt] of sent.entries()) {
          const duplicate = yield* Effect.flip(
            sendTo("b", { producer_id: "a", payload: { n: n + 1 }, idempotency_token: `tok-${n + 1}` })
          )
          expect(duplicate).toMatchObject({
            _tag: "DuplicateDetected",
            original_message_id: receipt.message_id,
            stage: "FULFILLED"
          })
        }
        // New messages continue the sequence.
        const fresh = yield* sendTo("b", { producer_id: "a", payload: { n: 6 }, idempotency_token: "tok-6" })
        const [sixth] = yield* take(next, 1)
        expect([sixth.envelope.message_id, sixth.attempt, sixth.delivery_seq]).toEqual([fresh.message_id, 1, 9])
        yield* expectReplayMatches
      }).pipe(Effect.provide(sqliteRouter(filename, config)), Effect.scoped)

      // A third start: only the sixth message is in flight; it comes back, and the sequence goes on.
      yield* Effect.gen(function*() {
        const router = yield* Router
        const live = yield* expectReplayMatches
        expect(live.state.mailboxes["b"]).toMatchObject({ in_flight: 0, next_delivery_seq: 10 })
        const next = yield* inbox("b")
        const [sixthAgain] = yield* take(next, 1)
        expect([sixthAgain.attempt, sixthAgain.delivery_seq]).toEqual([2, 10])
        yield* router.ack({ agent_id: "b", message_id: sixthAgain.envelope.message_id, stage: "FULFILLED" })
        const final = yield* expectReplayMatches
        expect(Object.values(final.state.messages).map((m) => m.stage)).toEqual(Array(6).fill("FULFILLED"))
      }).pipe(Effect.provide(sqliteRouter(filename, config)), Effect.scoped)
    }))

  it.live("times out what expired while the router was down: TTLs queued or in flight, and last attempts", () =>
    Effect.gen(function*() {
      const filename = join(dir, "expire.db")
      const config = { ackWaitMs: 300, maxAttempts: 2 }

      const ids = yield* Effect.gen(function*() {
        yield* register("a")
        yield* register("b")
        yield* register("c")
        yield* register("idle")
        // Taken twice, its last attempt still unacknowledged when the router goes down.
        const lastAttempt = yield* sendTo("c", { producer_id: "a", payload: 0 })
        const nextC = yield* inbox("c")
        expect((yield* take(nextC, 2)).map((d) => d.attempt)).toEqual([1, 2])
        // Queued for an agent that never subscribes, with a short TTL, and one without a TTL.
        const queuedTtl = yield* sendTo("idle", { producer_id: "a", payload: 1, ttl_ms: 200 })
        const queued = yield* sendTo("idle", { producer_id: "a", payload: 2 })
        // In flight (first attempt) with a short TTL.
        const flyingTtl = yield* sendTo("b", { producer_id: "a", payload: 3, ttl_ms: 200 })
        const nextB = yield* inbox("b")
        expect((yield* take(nextB, 1))[0].envelope.message_id).toBe(flyingTtl.message_id)
        return {
          lastAttempt: lastAttempt.message_id,
          queuedTtl: queuedTtl.message_id,
          queued: queued.message_id,
          flyingTtl: flyingTtl.message_id
        }
      }).pipe(Effect.provide(sqliteRouter(filename, config)), Effect.scoped)

      yield* sleepReal(400)

      yield* Effect.gen(function*() {
        const router = yield* Router
        expect(yield* router.awaitStage({ message_id: ids.queuedTtl, stage: "TIMED_OUT" })).toMatchObject({
          stage: "TIMED_OUT",
          error_code: "TTL_EXPIRED",
          dead_letter: true
        })
        expect(yield* router.awaitStage({ message_id: ids.flyingTtl, stage: "TIMED_OUT" })).toMatchObject({
          stage: "TIMED_OUT",
          error_code: "TTL_EXPIRED",
          attempts: 1
        })
        // Not requeued at start: no attempts left, and its ack wait ran out while the router was down.
        expect(yield* router.awaitStage({ message_id: ids.lastAttempt, stage: "TIMED_OUT" })).toMatchObject({
          stage: "TIMED_OUT",
          error_code: "ACK_TIMEOUT",
          attempts: 2,
          dead_letter: true
        })
        expect(Option.getOrThrow(yield* router.status(ids.queued))).toMatchObject({ stage: "RECEIVED", attempts: 0 })
        expect((yield* router.deadLetters("idle")).map((m) => m.message_id)).toEqual([ids.queuedTtl])
        expect((yield* router.deadLetters("b")).map((m) => m.message_id)).toEqual([ids.flyingTtl])
        expect((yield* router.deadLetters("c")).map((m) => m.message_id)).toEqual([ids.lastAttempt])
        // Nothing is delivered again to b or c.
        const nextB = yield* inbox("b")
        const nextC = yield* inbox("c")
        const late = yield* Effect.raceFirst(
          Effect.map(nextB(1), () => "b"),
          Effect.map(nextC(1), () => "c")
        ).pipe(Effect.timeoutOption("300 millis"))
        expect(late).toEqual(Option.none())
        yield* expectReplayMatches
      }).pipe(Effect.provide(sqliteRouter(filename, config)), Effect.scoped)
    }))
})

// ---------------------------------------------------------------------------
// SIGKILL under load

const workerScript = "test/support/router-crash-worker.ts"

interface Killed {
  /** Every `{ token, id, dup }` line: sends that returned. */
  readonly sent: ReadonlyArray<Workload.Sent>
  readonly holding: string
}

/**
 * Runs the worker until at least `killAfter` of its sends returned new
 * messages (or it sent everything) and one token is held processed but not
 * acknowledged, then kills it with SIGKILL.
 */
const runAndKill = async (options: {
  readonly store: string
  readonly processed: string
  readonly run: string
  readonly fibers: number
  readonly perFiber: number
  readonly hold: number
  readonly killAfter: number
}): Promise<Killed> => {
  const args = [options.store, options.processed, options.run, options.fibers, options.perFiber, options.hold].map(String)
  const sent: Array<Workload.Sent> = []
  let fresh = 0
  let done = false
  let holding: string | undefined
  await runUntilKilled({
    script: workerScript,
    args,
    timeoutMs: 20_000,
    onLine: (text) => {
      const value = JSON.parse(text) as Workload.Sent | { readonly holding: string } | { readonly done: true }
      if ("holding" in value) holding = value.holding
      else if ("done" in value) done = true
      else {
        sent.push(value)
        if (!value.dup) fresh++
      }
      return (fresh >= options.killAfter || done) && holding !== undefined
    },
    name: `worker ${options.run}`,
    progress: () => `${fresh} new sends, holding ${holding}`
  })
  // The kill comes only once a token is held.
  if (holding === undefined) throw new Error(`worker ${options.run} was killed holding no token`)
  return { sent, holding }
}

const terminalStages = new Set<EnvelopeState>(["FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"])

/**
 * Walks the whole log: delivery_seq is gap-free per recipient, every message
 * reaches a terminal stage at most once and never leaves it, and each token
 * was accepted once.
 */
const checkLog = Effect.gen(function*() {
  const nextSeq = new Map<string, number>()
  const stages = new Map<string, EnvelopeState>()
  const terminalTransitions = new Map<string, number>()
  const acceptedPerToken = new Map<string, number>()
  /** The times of the reconciles that requeued something: one per start after a kill. */
  const restarts = new Set<number>()
  const problems: Array<string> = []
  yield* Stream.runForEach(Replay.steps(), ({ record, state }) =>
    Effect.sync(() => {
      const event = record.event as RouterEvent
      if (event._tag === "MessageAccepted" && event.envelope.idempotency_token !== undefined) {
        const token = event.envelope.idempotency_token
        acceptedPerToken.set(token, (acceptedPerToken.get(token) ?? 0) + 1)
      }
      if (event._tag === "MessageDelivered") {
        const expected = nextSeq.get(event.to) ?? 1
        if (event.delivery_seq !== expected) {
          problems.push(`offset ${record.offset}: ${event.to} got delivery_seq ${event.delivery_seq}, expected ${expected}`)
        }
        nextSeq.set(event.to, event.delivery_seq + 1)
      }
      if (event._tag === "MessageRequeued" && event.reason === "restart") restarts.add(event.at)
      const id = messageOf(event)
      const message = id === undefined ? undefined : state.messages.get(id)
      if (id === undefined || message === undefined) return
      const before = stages.get(id)
      if (before !== undefined && terminalStages.has(before) && message.stage !== before) {
        problems.push(`offset ${record.offset}: ${id} left terminal stage ${before} for ${message.stage}`)
      }
      if ((before === undefined || !terminalStages.has(before)) && isTerminal(message.stage)) {
        terminalTransitions.set(id, (terminalTransitions.get(id) ?? 0) + 1)
      }
      stages.set(id, message.stage)
    })
  )
  return { problems, terminalTransitions, acceptedPerToken, restarts: restarts.size }
})

describe("Router restart after SIGKILL", () => {
  it("every message whose send returned reaches exactly one terminal stage, each token processed once", async () => {
    const store = join(dir, "crash-router.db")
    const processedFile = join(dir, "crash-processed.db")
    const fibers = 8
    const perFiber = 60
    const tokens = Workload.allTokens(fibers, perFiber)

    // Two children, each killed under load; the second starts on the first one's store.
    const runs = [
      await runAndKill({ store, processed: processedFile, run: "r1", fibers, perFiber, hold: 5, killAfter: 150 }),
      await runAndKill({ store, processed: processedFile, run: "r2", fibers, perFiber, hold: 5, killAfter: 150 })
    ]
    const promised = new Map<string, string>()
    for (const { sent } of runs) {
      for (const { id, token } of sent) {
        // The same token always answered with the same id: dedup remembered across the first kill.
        expect(promised.get(token) ?? id).toBe(id)
        promised.set(token, id)
      }
    }
    expect(promised.size).toBeGreaterThanOrEqual(300)

    const processed = openProcessed(processedFile)
    try {
      const result = await Effect.gen(function*() {
        const router = yield* Router
        const consumers = yield* Workload.consume({ processed, run: "finish" }).pipe(Effect.fork)
        // The producer sends every token again: dedup answers for what the router kept.
        const sent = new Map<string, Workload.Sent>()
        yield* Workload.produce(fibers, perFiber, (s) => sent.set(s.token, s))
        for (const [token, id] of promised) expect(sent.get(token)).toEqual({ token, id, dup: true })

        const statuses = yield* Effect.forEach(
          tokens,
          (token) => router.awaitStage({ message_id: sent.get(token)!.id, stage: "FULFILLED" }),
          { concurrency: "unbounded" }
        ).pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("not every message finished in 20 s") })
        )
        yield* Fiber.interrupt(consumers)
        for (const status of statuses) expect(status.stage).toBe("FULFILLED")

        const live = yield* expectReplayMatches
        const log = yield* checkLog
        return { sent, statuses, live, log }
      }).pipe(
        // A short ack wait and few deliveries in flight: whatever is left unacknowledged comes back quickly.
        Effect.provide(Workload.routerOn(store, { ackWaitMs: 200, maxInFlight: 4, maxAttempts: 50 })),
        Effect.scoped,
        Effect.runPromise
      )

      const { live, log } = result
      expect(log.problems).toEqual([])
      // Both kills left work in flight that the next start requeued.
      expect(log.restarts).toBe(2)
      // One message per token, and each reached exactly one terminal stage: FULFILLED.
      expect([...log.acceptedPerToken.keys()].sort()).toEqual([...tokens].sort())
      expect([...log.acceptedPerToken.values()].every((n) => n === 1)).toBe(true)
      const messages = Object.entries(live.state.messages)
      expect(messages.length).toBe(tokens.length)
      for (const [id, message] of messages) {
        if (message.stage !== "FULFILLED" || log.terminalTransitions.get(id) !== 1) {
          expect.fail(`${id}: ${message.stage}, ${log.terminalTransitions.get(id)} terminal transitions`)
        }
      }

      // The consumer processed each logical message once, with the id the router gave it.
      const effects = processed.effects()
      expect(effects.length).toBe(tokens.length)
      for (const effect of effects) {
        if (effect.count !== 1 || effect.message_id !== result.sent.get(effect.token)?.id) {
          expect.fail(`token ${effect.token}: ${effect.count} effects, message ${effect.message_id}`)
        }
      }
      // The held tokens were processed before the kill and delivered again after it: skipped, not redone.
      for (const { holding } of runs) {
        expect(result.statuses[tokens.indexOf(holding)].attempts).toBeGreaterThan(1)
        expect(processed.handledCount(holding)).toBeGreaterThanOrEqual(2)
      }
    } finally {
      processed.close()
    }
  }, 60_000)
})
