import { describe, expect, it } from "@effect/vitest"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Cause, Chunk, Context, Effect, Exit, Fiber, Layer, Random, Redacted, Schedule, Stream } from "effect"
import { EventLog } from "../src/index.js"
import { EventLogPg, EventLogSql } from "../src/node.js"
import { pgUrl } from "./support/backends.js"
import { start } from "./support/child.js"
import { nameOf, registered } from "./support/events.js"

if (!pgUrl) console.warn("EventLog on PostgreSQL with several writers: SKIPPING, SWITCHBOARD_PG_URL is not set")

describe.skipIf(!pgUrl)("EventLog on PostgreSQL with several writers", () => {
  it.scoped("two logs on one table (two pools, as two processes would have) keep offsets gap-free, and each follows the other", () =>
    Effect.gen(function*() {
      const url = pgUrl!
      const table = `writers_${Date.now().toString(36)}`
      const raw = yield* PgClient.make({ url: Redacted.make(url) }).pipe(Effect.provide(Reactivity.layer))
      yield* Effect.addFinalizer(() => Effect.ignore(raw`DROP TABLE IF EXISTS ${raw(table)}, ${raw(`${table}_migrations`)}`))
      const open = Effect.map(Layer.build(EventLogPg.layer({ url, table, maxConnections: 4 })), (context) => Context.get(context, EventLog))
      const first = yield* open
      const second = yield* open
      // The second log learns of the first's appends only through NOTIFY.
      const following = yield* second.follow(1).pipe(Stream.take(400), Stream.runCollect, Effect.fork)
      yield* Effect.all([
        Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) => first.append([registered(`a${i}.1`), registered(`a${i}.2`)]), { concurrency: 10 }),
        Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) => second.append([registered(`b${i}.1`), registered(`b${i}.2`)]), { concurrency: 10 })
      ], { concurrency: "unbounded" })
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(first.read()))
      expect(all.map((record) => record.offset)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1))
      // Each append's two events sit side by side.
      for (let i = 0; i < all.length; i += 2) {
        expect(nameOf(all[i].event).replace(/\.1$/, "")).toBe(nameOf(all[i + 1].event).replace(/\.2$/, ""))
      }
      const followed = Chunk.toReadonlyArray(yield* Fiber.join(following))
      expect(followed.map((record) => record.offset)).toEqual(all.map((record) => record.offset))
      expect(yield* second.head).toBe(400)
    }), 60_000)

  /** `url` with a session option (a search_path) and a name to find its connections by. */
  const connection = (url: string, name: string, searchPath?: string) => {
    const withParams = new URL(url)
    withParams.searchParams.set("application_name", name)
    if (searchPath) withParams.searchParams.set("options", `-c search_path=${searchPath}`)
    return withParams.toString()
  }
  const open = <E>(layer: Layer.Layer<EventLog, E>) =>
    Effect.map(Layer.build(layer), (context) => Context.get(context, EventLog))
  const freshTable = Effect.gen(function*() {
    const table = `writers_${Date.now().toString(36)}_${(yield* Random.nextInt).toString(36).replace("-", "n")}`
    const raw = yield* PgClient.make({ url: Redacted.make(pgUrl!) }).pipe(Effect.provide(Reactivity.layer))
    yield* Effect.addFinalizer(() =>
      Effect.ignore(raw`DROP TABLE IF EXISTS ${raw(table)}, ${raw(`${table}_migrations`)}`)
    )
    return { table, raw }
  })

  it.scopedLive("many first opens of one new store at once, in this process and in three others, all succeed", () =>
    Effect.gen(function*() {
      const { table } = yield* freshTable
      // The children load first, then all open at the same moment as this process's logs. Loading tsx
      // on a loaded 2-core machine has taken over 30 s: the limits only catch a hang.
      const children = yield* Effect.promise(() =>
        Promise.all([1, 2, 3].map((i) =>
          new Promise<ReturnType<typeof start>>((resolve) => {
            const started = start({
              script: "test/support/pg-opener.ts",
              args: [pgUrl!, table, `child${i}`],
              timeoutMs: 90_000,
              onLine: (line) => line === "ready" && resolve(started)
            })
          })
        ))
      )
      for (const { child } of children) child.stdin.end("go\n")
      const opened = yield* Effect.forEach(
        [1, 2, 3, 4, 5, 6],
        (i) =>
          Effect.flatMap(open(EventLogPg.layer({ url: pgUrl!, table, maxConnections: 2 })), (log) =>
            log.append([registered(`local${i}`)])),
        { concurrency: "unbounded" }
      )
      const finished = yield* Effect.promise(() => Promise.all(children.map(({ finished }) => finished)))
      for (const { code, stderr } of finished) expect({ code, stderr }).toEqual({ code: 0, stderr: "" })
      const offsets = [...opened.map((records) => records[0].offset), ...finished.map(({ stdout }) => Number(stdout.trim().split("\n").pop()))]
      expect(offsets.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    }), 120_000)

  it.scopedLive("refuses a pool of one connection, on which the first open would wait forever, as a defect", () =>
    Effect.gen(function*() {
      const { table } = yield* freshTable
      const exit = yield* Effect.exit(Effect.scoped(open(EventLogPg.layer({ url: pgUrl!, table, maxConnections: 1 }))))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause))).toMatch(/2 connections or more/)
    }), 60_000)

  it.scopedLive("stores of one table name in two schemas listen on channels of their own", () =>
    Effect.gen(function*() {
      const tag = `${Date.now().toString(36)}_${(yield* Random.nextInt).toString(36).replace("-", "n")}`
      const raw = yield* PgClient.make({ url: Redacted.make(pgUrl!) }).pipe(Effect.provide(Reactivity.layer))
      const schemas = [`one_${tag}`, `two_${tag}`]
      for (const schema of schemas) yield* raw`CREATE SCHEMA ${raw(schema)}`
      yield* Effect.addFinalizer(() => Effect.ignore(raw`DROP SCHEMA ${raw(schemas[0])}, ${raw(schemas[1])} CASCADE`))
      const logs = yield* Effect.forEach(schemas, (schema) =>
        open(EventLogPg.layer({ url: connection(pgUrl!, schema, schema), table: "events" })))
      // Each log's listener has started once a log hears its own append.
      for (const log of logs) {
        yield* log.append([registered("first")])
        yield* log.follow(1).pipe(Stream.take(1), Stream.runDrain)
      }
      const listening = Effect.forEach(schemas, (schema) =>
        Effect.map(
          raw<{ query: string }>`SELECT query FROM pg_stat_activity
            WHERE application_name = ${schema} AND query LIKE 'LISTEN %'`,
          (rows) => rows.map((row) => row.query)
        ))
      // Hearing its own append does not wait for the listener's LISTEN (the
      // append is read back from the table): on a busy machine, give it time.
      const listens = yield* listening.pipe(
        Effect.filterOrFail((found) => found.every((queries) => queries.length > 0)),
        Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 }),
        // Still not there: the assertion below says what was found.
        Effect.orElse(() => listening)
      )
      expect(listens.map((queries) => queries.length)).toEqual([1, 1])
      expect(listens[0][0]).not.toBe(listens[1][0])
    }), 60_000)

  it.scopedLive("a log follows an append another process commits just after it opens", () =>
    Effect.gen(function*() {
      for (let attempt = 0; attempt < 10; attempt++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const { table } = yield* freshTable
          const other = yield* open(EventLogPg.layer({ url: pgUrl!, table }))
          const log = yield* open(EventLogPg.layer({ url: pgUrl!, table }))
          yield* other.append([registered("x")])
          // Well within the second after which a waiting follow reads the head anyway.
          const followed = yield* log.follow(1).pipe(Stream.take(1), Stream.runCollect, Effect.timeout("900 millis"))
          expect(Chunk.size(followed)).toBe(1)
        }))
      }
    }), 60_000)

  it.scopedLive("a log on the application's own PgClient hears another writer's appends through LISTEN", () =>
    Effect.gen(function*() {
      const { raw, table } = yield* freshTable
      const name = `app_${table}`
      const log = yield* open(
        EventLogSql.layer({ table }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(connection(pgUrl!, name)) })))
      )
      const other = yield* open(EventLogPg.layer({ url: pgUrl!, table }))
      yield* log.append([registered("1")])
      yield* log.follow(1).pipe(Stream.take(1), Stream.runDrain)
      const listens = yield* raw`SELECT pid FROM pg_stat_activity WHERE application_name = ${name} AND query LIKE 'LISTEN %'`
      expect(listens.length).toBe(1)
      yield* other.append([registered("2")])
      // Well within the second after which a waiting follow reads the head anyway.
      const followed = yield* log.follow(2).pipe(Stream.take(1), Stream.runCollect, Effect.timeout("900 millis"))
      expect(Chunk.toReadonlyArray(followed).map((record) => nameOf(record.event))).toEqual(["2"])
    }), 60_000)

  it.scopedLive("a follow still sees another writer's appends after its LISTEN connection is lost", () =>
    Effect.gen(function*() {
      const { raw, table } = yield* freshTable
      const name = `listener_${table}`
      const log = yield* open(EventLogPg.layer({ url: connection(pgUrl!, name), table }))
      const other = yield* open(EventLogPg.layer({ url: pgUrl!, table }))
      yield* other.append([registered("1")])
      yield* log.follow(1).pipe(Stream.take(1), Stream.runDrain)
      const killed = yield* raw`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = ${name} AND query LIKE 'LISTEN %'`
      expect(killed.length).toBe(1)
      const follower = yield* log.follow(2).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* other.append([registered("2")])
      const followed = yield* Fiber.join(follower).pipe(Effect.timeout("5 seconds"))
      expect(Chunk.toReadonlyArray(followed).map((record) => nameOf(record.event))).toEqual(["2"])
    }), 60_000)
})
