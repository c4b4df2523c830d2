import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Either, Exit, Fiber, Queue, Stream } from "effect"
import { type Event, UndecodableRecord, ValidationError } from "../src/index.js"
import * as EventLogMemory from "../src/layers/EventLogMemory.js"
import { makeEventLog, persistence } from "../src/layers/EventLogStore.js"
import { Backend, backends, pgUrl } from "./support/backends.js"
import { nameOf, registered } from "./support/events.js"

if (!pgUrl) {
  console.warn("EventLog contract: SKIPPING the PostgreSQL backend: SWITCHBOARD_PG_URL is not set")
  describe.skip("postgres (SWITCHBOARD_PG_URL not set)", () => {
    it("contract", () => {})
  })
}

const offsets = (records: ReadonlyArray<{ readonly offset: number }>) => records.map((record) => record.offset)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const deeplyNested = "[".repeat(100_000) + "]".repeat(100_000)
/** The payload of an ApprovalOpened whose tool call's args are `args`, JSON text. */
const openedWithArgs = (args: string) =>
  `{"_tag":"ApprovalOpened","approval_id":"x","action":{"kind":"tool_call","agent_id":"a","tool":"t","args":${args}},` +
  `"reason":"r","rule":"r","expires_at":1,"at":1}`

for (const backend of backends) {
  it.layer(backend, { timeout: 60_000 })("EventLog contract", (it) => {
    const fresh = Effect.flatMap(Backend, (backend) => backend.fresh)

    it.scoped("appends in order with offsets from 1, gap-free, and reads them back", () =>
      Effect.gen(function*() {
        const { log } = yield* fresh
        expect(yield* log.head).toBe(0)
        const first = yield* log.append([registered("a"), registered("b")])
        const second = yield* log.append([registered("c")])
        expect(offsets(first)).toEqual([1, 2])
        expect(offsets(second)).toEqual([3])
        expect(first[0].committedAt).toBeTypeOf("number")
        expect(yield* log.head).toBe(3)
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read()))
        expect(offsets(all)).toEqual([1, 2, 3])
        expect(all.map((record) => nameOf(record.event))).toEqual(["a", "b", "c"])
        expect(all[0].event).toEqual(registered("a"))
        expect(yield* log.append([])).toEqual([])
      }))

    it.scoped("reads ranges, inclusive, across pages", () =>
      Effect.gen(function*() {
        const { log } = yield* fresh
        yield* log.append(range(1, 5000).map((i) => registered(`e${i}`)))
        const read = (from?: number, to?: number) =>
          Effect.map(Stream.runCollect(log.read({ from, to })), (chunk) => offsets(Chunk.toReadonlyArray(chunk)))
        expect(yield* read(4000)).toEqual(range(4000, 5000))
        expect(yield* read(1999, 2001)).toEqual([1999, 2000, 2001])
        expect(yield* read(10, 10)).toEqual([10])
        expect(yield* read(10, 9)).toEqual([])
        expect(yield* read(5001)).toEqual([])
        expect(yield* read(0, 2)).toEqual([1, 2])
        expect((yield* read()).length).toBe(5000)
      }))

    it.scoped("concurrent appends get gap-free offsets and keep each caller's events together, in order", () =>
      Effect.gen(function*() {
        const { log } = yield* fresh
        const results = yield* Effect.forEach(
          range(1, 300),
          (caller) => log.append(range(1, 1 + (caller % 3)).map((i) => registered(`${caller}.${i}`))),
          { concurrency: "unbounded" }
        )
        const total = results.reduce((n, records) => n + records.length, 0)
        expect(yield* log.head).toBe(total)
        for (const records of results) {
          const first = records[0].offset
          expect(offsets(records)).toEqual(range(first, first + records.length - 1))
        }
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read()))
        expect(offsets(all)).toEqual(range(1, total))
        for (const records of results) {
          for (const record of records) expect(all[record.offset - 1].event).toEqual(record.event)
        }
      }))

    it.scoped("a batch that cannot be encoded lands not at all, and offsets stay gap-free", () =>
      Effect.gen(function*() {
        const { log } = yield* fresh
        yield* log.append([registered("a")])
        const bad = { ...registered("bad"), agent: { agent_id: "", name: 7 } } as never
        const failed = yield* Effect.either(log.append([registered("b"), bad]))
        expect(Either.isLeft(failed) && failed.left).toBeInstanceOf(ValidationError)
        expect(yield* log.head).toBe(1)
        const next = yield* log.append([registered("c")])
        expect(offsets(next)).toEqual([2])
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read()))
        expect(all.map((record) => nameOf(record.event))).toEqual(["a", "c"])
      }))

    it.scoped("an event too deeply nested to be checked fails with ValidationError and lands not at all", () =>
      Effect.gen(function*() {
        const { log } = yield* fresh
        const event = JSON.parse(openedWithArgs(deeplyNested)) as Event
        const failed = yield* Effect.either(log.append([event]))
        expect(Either.isLeft(failed) && failed.left).toBeInstanceOf(ValidationError)
        expect(yield* log.head).toBe(0)
      }))

    it.scoped("follow reads history, then live records, with no gap or duplicate at the seam", () =>
      Effect.gen(function*() {
        const { log } = yield* fresh
        yield* log.append(range(1, 50).map((i) => registered(`h${i}`)))
        const follower = yield* log.follow(20).pipe(Stream.take(231), Stream.runCollect, Effect.fork)
        // Appends race with the follower's catch-up: many small concurrent ones.
        yield* Effect.forEach(range(1, 100), (i) => log.append([registered(`l${i}a`), registered(`l${i}b`)]), {
          concurrency: 10
        })
        const followed = Chunk.toReadonlyArray(yield* Fiber.join(follower))
        expect(offsets(followed)).toEqual(range(20, 250))
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read({ from: 20 })))
        expect(followed.map((record) => record.event)).toEqual(all.map((record) => record.event))
      }))

    it.scoped("follow from beyond the head waits for the records to come", () =>
      Effect.gen(function*() {
        const { log } = yield* fresh
        const follower = yield* log.follow(3).pipe(Stream.take(2), Stream.runCollect, Effect.fork)
        yield* log.append([registered("1"), registered("2")])
        yield* log.append([registered("3")])
        yield* log.append([registered("4")])
        expect(offsets(Chunk.toReadonlyArray(yield* Fiber.join(follower)))).toEqual([3, 4])
      }))

    it.scoped("a follow waiting at the head fails when the log closes, and so does one started after", () =>
      Effect.gen(function*() {
        const { close, log } = yield* fresh
        yield* log.append([registered("a")])
        const first = yield* Deferred.make<void>()
        const follower = yield* log.follow(1).pipe(
          Stream.tap(() => Deferred.succeed(first, undefined)),
          Stream.runDrain,
          Effect.fork
        )
        yield* Deferred.await(first)
        yield* close
        const failure = yield* Effect.flip(Fiber.join(follower))
        expect(failure).toMatchObject({ _tag: "PersistenceError", message: "event log closed" })
        const late = yield* Effect.flip(Stream.runDrain(log.follow(1)))
        expect(late).toMatchObject({ _tag: "PersistenceError", message: "event log closed" })
      }))

    it.scoped("a record that no longer decodes fails reading with its offset, never skipped", () =>
      Effect.gen(function*() {
        const { log, writeRaw } = yield* fresh
        yield* log.append([registered("a"), registered("b")])
        const good = JSON.stringify({ _tag: "AgentRegistered", agent: registered("c").agent })
        const cases = [
          { type: "AgentRegistered", version: 1, payload: "{not json", reason: /not JSON/ },
          { type: "AgentRegistered", version: 1, payload: '{"_tag":"AgentRegistered","agent":{}}', reason: /agent_id/ },
          { type: "AgentRegistered", version: 99, payload: good, reason: /newer/ },
          { type: "SomethingElse", version: 1, payload: good, reason: /unknown event type/ },
          // Schema calls String() on a union's tag to pick the member: this one throws.
          { type: "AgentRegistered", version: 1, payload: '{"_tag":{"toString":""}}', reason: /cannot be checked/ },
          // Checking JSON this deep would overflow the stack: it is refused as too deep first.
          { type: "ApprovalOpened", version: 1, payload: openedWithArgs(deeplyNested), reason: /nested more than 128 levels deep/ }
        ]
        for (const [i, { reason, ...stored }] of cases.entries()) {
          const offset = 3 + i
          yield* writeRaw(offset, stored)
          const failure = yield* Effect.flip(Stream.runCollect(log.read({ from: offset, to: offset })))
          expect(failure).toBeInstanceOf(UndecodableRecord)
          expect((failure as UndecodableRecord).offset).toBe(offset)
          expect((failure as UndecodableRecord).reason).toMatch(reason)
        }
        // The good records of the same page come first, then the failure.
        for (const stream of [log.read(), log.follow(1)]) {
          const seen: Array<number> = []
          const whole = yield* Effect.flip(
            Stream.runForEach(stream, (record) => Effect.sync(() => seen.push(record.offset)))
          )
          expect(whole).toMatchObject({ _tag: "UndecodableRecord", offset: 3 })
          expect(seen).toEqual([1, 2])
        }
        expect(offsets(Chunk.toReadonlyArray(yield* Stream.runCollect(log.read({ to: 2 }))))).toEqual([1, 2])
      }))

    it.scoped("a reopened store continues where it stopped", () =>
      Effect.gen(function*() {
        const { close, log, reopen } = yield* fresh
        yield* log.append([registered("a"), registered("b")])
        yield* close
        const again = yield* reopen
        expect(yield* again.head).toBe(2)
        expect(offsets(yield* again.append([registered("c")]))).toEqual([3])
      }))
  })
}

describe("EventLog on a store that hears other writers' heads", () => {
  it.scoped("a follow told of a head the store has not reached waits, instead of reading again and again", () =>
    Effect.gen(function*() {
      const memory = yield* EventLogMemory.makeStore
      let pagesRead = 0
      const heads = yield* Queue.unbounded<number>()
      const log = yield* makeEventLog({
        ...memory,
        readPage: (from, to, limit) => Effect.zipRight(Effect.sync(() => pagesRead++), memory.readPage(from, to, limit)),
        externalHeads: Stream.fromQueue(heads)
      })
      // An announcement meant for another store.
      yield* Queue.offer(heads, 50)
      const follower = yield* log.follow(1).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* Effect.repeatN(Effect.yieldNow(), 100)
      expect(pagesRead).toBeLessThanOrEqual(2)
      yield* log.append([registered("a")])
      expect(offsets(Chunk.toReadonlyArray(yield* Fiber.join(follower)))).toEqual([1])
    }))
})

describe("EventLog options", () => {
  it.scoped("refuses a page size or group size that would make reads never end or appends never commit", () =>
    Effect.gen(function*() {
      for (const options of [{ pageSize: 0 }, { pageSize: Number.NaN }, { maxGroup: 0 }, { maxGroup: 1.5 }]) {
        const store = yield* EventLogMemory.makeStore
        const exit = yield* Effect.exit(makeEventLog(store, options))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        expect(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause))).toMatch(/must be a positive integer/)
      }
    }))
})

describe("persistence", () => {
  it.effect("makes the store's typed failures a PersistenceError, and leaves a defect a defect", () =>
    Effect.gen(function*() {
      const failed = yield* Effect.flip(persistence("cannot write")(Effect.fail(new Error("disk full"))))
      expect(failed).toMatchObject({ _tag: "PersistenceError", message: "cannot write", retryable: true })
      const died = yield* Effect.exit(persistence("cannot write")(Effect.die(new TypeError("a bug"))))
      expect(Exit.isFailure(died) && Cause.isDie(died.cause)).toBe(true)
    }))
})
