/**
 * The EventLog backends under test. Each gives fresh, isolated logs (a temp
 * SQLite file, a new PostgreSQL table) and a way to write a raw record behind
 * the log's back, as a hand edit or a newer version would.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Context, Effect, ExecutionStrategy, Exit, Layer, Random, Redacted, Scope } from "effect"
import type { StoredEvent } from "../../src/schema/Event.js"
import { EventLog } from "../../src/index.js"
import { makeEventLog } from "../../src/layers/EventLogStore.js"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import { EventLogPg, EventLogSql, EventLogSqlite } from "../../src/node.js"

export interface FreshLog {
  readonly log: EventLog["Type"]
  /** Writes a record at `offset` as given, bypassing encoding. */
  readonly writeRaw: (offset: number, stored: StoredEvent) => Effect.Effect<void>
  /** Closes `log`, as a stop would; the store stays. */
  readonly close: Effect.Effect<void>
  /** The same store opened again, as after a restart (an SQLite store takes one writer: `close` first). */
  readonly reopen: Effect.Effect<EventLog["Type"], unknown, Scope.Scope>
}

export class Backend extends Context.Tag("test/Backend")<Backend, {
  readonly name: string
  readonly fresh: Effect.Effect<FreshLog, unknown, Scope.Scope>
}>() {}

export const pgUrl = process.env.SWITCHBOARD_PG_URL

const build = <E>(layer: Layer.Layer<EventLog, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, EventLog))

/** Opens a log in a scope of its own, so that `close` can end it before the test's scope (and the store) ends. */
const closable = <E>(open: Effect.Effect<EventLog["Type"], E, Scope.Scope>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const log = yield* Scope.extend(open, scope)
    return { log, close: Scope.close(scope, Exit.void) }
  })

export const memoryBackend = Layer.succeed(Backend, {
  name: "memory",
  fresh: Effect.gen(function*() {
    const store = yield* EventLogMemory.makeStore
    const { close, log } = yield* closable(makeEventLog(store))
    return {
      log,
      close,
      writeRaw: (offset: number, stored: StoredEvent) => Effect.asVoid(Effect.orDie(store.commit([stored], 0, { id: `raw-${offset}` }))),
      reopen: makeEventLog(store)
    }
  })
})

export const tempFile = (name: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "switchboard-test-" })
    return `${dir}/${name}`
  }).pipe(Effect.provide(NodeFileSystem.layer))

/** Fresh SQLite stores, each opened by `open`. */
const sqliteBackend = (name: string, open: (filename: string) => Layer.Layer<EventLog, unknown>) =>
  Layer.succeed(Backend, {
    name,
    fresh: Effect.gen(function*() {
      const filename = yield* tempFile("log.db")
      const { close, log } = yield* closable(build(open(filename)))
      const raw = yield* SqliteClient.make({ filename }).pipe(Effect.provide(Reactivity.layer))
      return {
        log,
        close,
        writeRaw: (offset: number, stored: StoredEvent) =>
          raw`INSERT INTO switchboard_events (log_offset, committed_at, event_type, event_version, payload)
              VALUES (${offset}, 0, ${stored.type}, ${stored.version}, ${stored.payload})`.pipe(Effect.asVoid, Effect.orDie),
        reopen: build(open(filename))
      }
    })
  })

/** Fresh PostgreSQL stores, each a new table opened by `open`. */
const pgBackend = (name: string, url: string, open: (table: string) => Layer.Layer<EventLog, unknown>) =>
  Layer.succeed(Backend, {
    name,
    fresh: Effect.gen(function*() {
      const table = `test_${(yield* Random.nextInt).toString(36).replace("-", "n")}_${Date.now().toString(36)}`
      const raw = yield* PgClient.make({ url: Redacted.make(url) }).pipe(Effect.provide(Reactivity.layer))
      yield* Effect.addFinalizer(() =>
        Effect.ignore(raw`DROP TABLE IF EXISTS ${raw(table)}, ${raw(`${table}_migrations`)}`)
      )
      const { close, log } = yield* closable(build(open(table)))
      return {
        log,
        close,
        writeRaw: (offset: number, stored: StoredEvent) =>
          raw`INSERT INTO ${raw(table)} (log_offset, committed_at, event_type, event_version, payload)
              VALUES (${offset}, 0, ${stored.type}, ${stored.version}, ${stored.payload})`.pipe(Effect.asVoid, Effect.orDie),
        reopen: build(open(table))
      }
    })
  })

export const backends: ReadonlyArray<Layer.Layer<Backend>> = [
  memoryBackend,
  sqliteBackend("sqlite", (filename) => EventLogSqlite.layer({ filename })),
  sqliteBackend(
    "sql on the application's SqliteClient",
    (filename) => EventLogSql.layer().pipe(Layer.provide(SqliteClient.layer({ filename })))
  ),
  ...(pgUrl
    ? [
      pgBackend("postgres", pgUrl, (table) => EventLogPg.layer({ url: pgUrl, table })),
      pgBackend(
        "sql on the application's PgClient",
        pgUrl,
        (table) => EventLogSql.layer({ table }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(pgUrl) })))
      )
    ]
    : [])
]
