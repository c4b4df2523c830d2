/**
 * The EventLog on `@effect/sql`: one implementation, two dialects (SQLite and
 * PostgreSQL), on the SqlClient in context. `layer` takes that client from
 * the application, which so shares its own connection or pool with the log;
 * `EventLogSqlite` and `EventLogPg` build on the same store with a client of
 * their own. Tables are created by `@effect/sql`'s migrator.
 *
 * Offsets are given inside the append transaction as `max(offset) + 1`, under
 * the writer lock (SQLite's single writer; a transaction-scoped advisory lock on
 * PostgreSQL), so they stay gap-free with any number of writers: a transaction
 * that fails takes its offsets with it.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Deferred, Effect, Layer, Schedule, type Scope, Stream } from "effect"
import { PersistenceError } from "../schema/Errors.js"
import type { StoredEvent } from "../schema/Event.js"
import { EventLog } from "../services/EventLog.js"
import {
  type Batch,
  type EventLogOptions,
  type LogStore,
  makeEventLog,
  persistence,
  type StoredRecord
} from "./EventLogStore.js"

export interface SqlEventLogOptions extends EventLogOptions {
  /** Table of the log; its migrations live in `<table>_migrations`. Default `switchboard_events`. */
  readonly table?: string
}

const isPgClient = (sql: SqlClient.SqlClient): sql is PgClient.PgClient => PgClient.TypeId in sql

const readonlyCommit: LogStore["commit"] = () => Effect.dieMessage("this event log is open read-only: nothing may append to it")

export const defaultTable = "switchboard_events"

/** Rows per INSERT statement: well under both dialects' bound-parameter limits. */
const rowsPerInsert = 500

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/

export const migrationsTable = (table: string) => `${table}_migrations`

const migrate = (table: string) =>
  Migrator.make({})({
    table: migrationsTable(table),
    loader: Migrator.fromRecord({
      "1_create_events": Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.onDialectOrElse({
          // INTEGER PRIMARY KEY makes the offset SQLite's rowid: no second index.
          sqlite: () =>
            sql`CREATE TABLE ${sql(table)} (
              log_offset INTEGER PRIMARY KEY,
              committed_at INTEGER NOT NULL,
              event_type TEXT NOT NULL,
              event_version INTEGER NOT NULL,
              payload TEXT NOT NULL
            )`,
          orElse: () =>
            sql`CREATE TABLE ${sql(table)} (
              log_offset BIGINT PRIMARY KEY,
              committed_at BIGINT NOT NULL,
              event_type TEXT NOT NULL,
              event_version INTEGER NOT NULL,
              payload TEXT NOT NULL
            )`
        })),
      // The id of each commit, on its first row: a commit whose acknowledgement
      // was lost is found by its retry. Only PostgreSQL's can be lost: SQLite
      // answers in the process that commits.
      "2_batch_ids": Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.onDialectOrElse({
          pg: () =>
            Effect.zipRight(
              sql`ALTER TABLE ${sql(table)} ADD COLUMN batch_id TEXT`,
              sql`CREATE UNIQUE INDEX ${sql(`${table}_batch_id`)} ON ${sql(table)} (batch_id) WHERE batch_id IS NOT NULL`
            ),
          orElse: () => Effect.void
        }))
    })
  })

// The session-level lock that first opens of one store take in turn: its
// migrator looks for its table, then creates it, so two at once both try to
// create it and one fails. The key is the schema and table the migrations
// would create (the first schema of the search path), in a key space of its
// own, apart from the writers' transaction lock.
const migrationLockKey = `hashtext('switchboard migrations'), hashtext(coalesce(current_schema(), '') || '.' || $1)`

/**
 * Runs `migrations` holding the migration lock of `table`, on PostgreSQL. The
 * lock lives on a connection reserved from the pool until it is released, so
 * the migrations themselves need a second one; a session that dies (a killed
 * process) releases it too.
 */
const withMigrationLock = (sql: SqlClient.SqlClient, table: string) =>
<A, E, R>(migrations: Effect.Effect<A, E, R>) =>
  sql.onDialectOrElse({
    pg: () =>
      Effect.scoped(Effect.gen(function*() {
        const connection = yield* sql.reserve
        yield* Effect.acquireRelease(
          connection.executeUnprepared(`SELECT pg_advisory_lock(${migrationLockKey})`, [table], undefined),
          () => Effect.ignore(connection.executeUnprepared(`SELECT pg_advisory_unlock(${migrationLockKey})`, [table], undefined))
        )
        return yield* migrations
      })),
    orElse: () => migrations
  })

/**
 * Builds the store on the SqlClient in context, creating its tables if needed.
 * On PostgreSQL, each append is announced on the store's `channel`.
 *
 * `readonly`: the tables must exist already, and nothing is created. Another
 * process may be writing the store, so `head` is always read from it; an
 * append is a bug of the caller, a defect (in the appending fiber: a read-only
 * store commits each append alone).
 */
export const makeStore = (options: { readonly table?: string; readonly readonly?: boolean } = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = options.table ?? defaultTable
    if (!identifier.test(table)) return yield* Effect.dieMessage(`invalid table name ${JSON.stringify(table)}`)
    if (!options.readonly) {
      if (isPgClient(sql) && sql.config.maxConnections !== undefined && sql.config.maxConnections < 2) {
        return yield* Effect.dieMessage("the event log on PostgreSQL needs a pool of 2 connections or more to open")
      }
      yield* migrate(table).pipe(withMigrationLock(sql, table), persistence("cannot create the event log tables"))
    }

    // NOTIFY channels are shared by the whole database: a store's own is named
    // after its schema and table, so that stores of one name in two schemas
    // do not hear each other. Hashed, as a channel name is at most 63 bytes.
    const channel = yield* sql.onDialectOrElse({
      pg: () =>
        sql<{ channel: string }>`SELECT 'switchboard_' || md5(n.nspname || '.' || c.relname) AS channel
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = to_regclass(quote_ident(${table}))`.pipe(
          Effect.flatMap((rows) =>
            rows.length === 1
              ? Effect.succeed(rows[0].channel)
              : Effect.fail(new Error(`table ${table} is not on the search path`))
          ),
          persistence("cannot find the event log table")
        ),
      orElse: () => Effect.succeed(table)
    })

    const lockWriters = sql.onDialectOrElse({
      pg: () => sql`SELECT pg_advisory_xact_lock(hashtext(${table}))`,
      orElse: () => Effect.void
    })
    const announce = (head: number) =>
      sql.onDialectOrElse({
        pg: () => sql`SELECT pg_notify(${channel}, ${String(head)})`,
        orElse: () => Effect.void
      })

    const recordsBatches = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const columns = recordsBatches ? 6 : 5

    // The text of a multi-row INSERT, made once per row count. Building it with
    // `sql.insert(rows)` on every commit ran the statement compiler over every
    // bound value, which cost several times the SQLite work itself.
    const placeholders = sql.onDialectOrElse({
      pg: () => (row: number) =>
        `(${Array.from({ length: columns }, (_, column) => `$${row * columns + column + 1}`).join(", ")})`,
      orElse: () => () => "(?, ?, ?, ?, ?)"
    })
    const insertTexts = new Map<number, string>()
    const insertText = (rows: number) => {
      let text = insertTexts.get(rows)
      if (text === undefined) {
        text = `INSERT INTO ${table} (log_offset, committed_at, event_type, event_version, payload${
          recordsBatches ? ", batch_id" : ""
        }) VALUES ` + Array.from({ length: rows }, (_, row) => placeholders(row)).join(", ")
        insertTexts.set(rows, text)
      }
      return text
    }

    // Where the retried commit put its events, if it landed: looked up under
    // the writer lock, so that commit has ended, one way or the other.
    const landedAt = (retryOf: Batch["retryOf"]) =>
      recordsBatches && retryOf !== undefined
        ? Effect.map(
          sql<{ log_offset: number | string }>`SELECT log_offset FROM ${sql(table)} WHERE batch_id = ${retryOf.id}`,
          (rows) => rows.length === 0 ? undefined : Number(rows[0].log_offset) + retryOf.skip
        )
        : Effect.succeed(undefined)

    // On SQLite, a commit that fits one statement is that statement alone:
    // SQLite makes it atomic, the rowid is the next offset, and the driver
    // tells the last one. The transaction's BEGIN, head read and COMMIT each
    // cost as much again as the insert (and RETURNING costs five times it).
    const singleTexts = new Map<number, string>()
    const singleText = (rows: number) => {
      let text = singleTexts.get(rows)
      if (text === undefined) {
        text = `INSERT INTO ${table} (committed_at, event_type, event_version, payload) VALUES ` +
          Array.from({ length: rows }, () => "(?, ?, ?, ?)").join(", ")
        singleTexts.set(rows, text)
      }
      return text
    }
    const commitOne = (events: ReadonlyArray<StoredEvent>, committedAt: number) =>
      Effect.suspend(() => {
        const params: Array<unknown> = new Array(events.length * 4)
        for (let i = 0; i < events.length; i++) {
          const event = events[i]
          params[i * 4] = committedAt
          params[i * 4 + 1] = event.type
          params[i * 4 + 2] = event.version
          params[i * 4 + 3] = event.payload
        }
        return Effect.flatMap(sql.unsafe(singleText(events.length), params).raw, (result) => {
          const { changes, lastInsertRowid } = result as { readonly changes?: unknown; readonly lastInsertRowid?: unknown }
          // One writer inserts one row after another: anything else is a bug, never a gap in the log.
          return changes === events.length && (typeof lastInsertRowid === "number" || typeof lastInsertRowid === "bigint")
            ? Effect.succeed(Number(lastInsertRowid) - events.length + 1)
            : Effect.dieMessage(`event log: an append of ${events.length} events reported ${String(changes)} rows`)
        })
      }).pipe(persistence("event log append failed"))
    const isSqlite = sql.onDialectOrElse({ sqlite: () => true, orElse: () => false })

    const commit: LogStore["commit"] = (events, committedAt, batch) =>
      isSqlite && events.length <= rowsPerInsert ? commitOne(events, committedAt) : Effect.gen(function*() {
        yield* lockWriters
        const landed = yield* landedAt(batch.retryOf)
        if (landed !== undefined) return landed
        const [{ head }] = yield* sql<{ head: number | string }>`SELECT COALESCE(MAX(log_offset), 0) AS head FROM ${
          sql(table)
        }`
        const first = Number(head) + 1
        for (let start = 0; start < events.length; start += rowsPerInsert) {
          const rows = Math.min(rowsPerInsert, events.length - start)
          const params: Array<unknown> = new Array(rows * columns)
          for (let i = 0; i < rows; i++) {
            const event = events[start + i]
            const at = i * columns
            params[at] = first + start + i
            params[at + 1] = committedAt
            params[at + 2] = event.type
            params[at + 3] = event.version
            params[at + 4] = event.payload
            if (recordsBatches) params[at + 5] = start + i === 0 ? batch.id : null
          }
          yield* sql.unsafe(insertText(rows), params)
        }
        yield* announce(first + events.length - 1)
        return first
      }).pipe(sql.withTransaction, persistence("event log append failed"))

    const readPage: LogStore["readPage"] = (from, to, limit) =>
      sql`SELECT log_offset, committed_at, event_type, event_version, payload FROM ${sql(table)}
          WHERE log_offset >= ${from} AND log_offset <= ${to} ORDER BY log_offset LIMIT ${limit}`.values.pipe(
        Effect.map((rows) =>
          rows.map((row): StoredRecord => ({
            offset: Number(row[0]),
            committedAt: Number(row[1]),
            type: row[2] as string,
            version: Number(row[3]),
            payload: row[4] as string
          }))
        ),
        persistence("event log read failed")
      )

    const head: Effect.Effect<number, PersistenceError> = sql<{ head: number | string }>`SELECT COALESCE(MAX(log_offset), 0) AS head FROM ${
      sql(table)
    }`.pipe(Effect.map((rows) => Number(rows[0].head)), persistence("event log head failed"))

    if (options.readonly) {
      return {
        commit: readonlyCommit,
        readPage,
        head,
        channel,
        groupCommit: false,
        externalHeads: Stream.never
      } satisfies LogStore & { readonly channel: string }
    }
    return { commit, readPage, head, channel } satisfies LogStore & { readonly channel: string }
  })

/**
 * The heads other processes commit to a PostgreSQL store, heard on its channel.
 *
 * LISTEN gives no sign of when it starts, and an append committed before it
 * is never announced to this process. A notification coming back is the
 * sign: a head of 0, which moves no log's head, is announced until one
 * does; then the head is read again, so no append after opening is missed.
 */
const listenForHeads = (client: PgClient.PgClient, channel: string, head: LogStore["head"]) => {
  const ping = Effect.ignore(client`SELECT pg_notify(${channel}, '0')`)
  return Stream.unwrap(Effect.map(Deferred.make<void>(), (listening) =>
    Stream.merge(
      client.listen(channel).pipe(
        Stream.tap(() => Deferred.succeed(listening, undefined)),
        Stream.map(Number),
        Stream.mapError((cause) => new PersistenceError({ message: "lost the PostgreSQL notifications", cause }))
      ),
      Stream.fromEffect(
        Effect.raceFirst(Effect.repeat(ping, Schedule.spaced("100 millis")), Deferred.await(listening)).pipe(
          Effect.zipRight(head),
          // Follows that wait read the head now and then anyway.
          Effect.orElseSucceed(() => 0)
        )
      )
    )))
}

/**
 * The EventLog on the SqlClient in context, its tables created if needed. On
 * PostgreSQL other processes may append too: a `PgClient` hears their appends
 * through LISTEN/NOTIFY; any other client has `follow` read the head every
 * second instead.
 */
export const make = (
  options: SqlEventLogOptions = {}
): Effect.Effect<EventLog["Type"], PersistenceError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { channel, ...store } = yield* makeStore({ table: options.table })
    const externalHeads = sql.onDialectOrElse({
      pg: () => isPgClient(sql) ? listenForHeads(sql, channel, store.head) : Stream.never,
      orElse: () => undefined
    })
    return yield* makeEventLog(externalHeads ? { ...store, externalHeads } : store, options)
  })

/**
 * The EventLog on the application's own SqlClient (SQLite or PostgreSQL), so
 * that the log shares its connection or pool. The client's settings stay the
 * application's: on SQLite, WAL mode and `synchronous` are for it to choose
 * (`EventLogSqlite.layer` sets both), and no other process may append to the
 * store meanwhile.
 */
export const layer = (
  options?: SqlEventLogOptions
): Layer.Layer<EventLog, PersistenceError, SqlClient.SqlClient> => Layer.scoped(EventLog, make(options))
