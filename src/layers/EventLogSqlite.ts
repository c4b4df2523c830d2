/**
 * The embedded EventLog: one SQLite file in WAL mode, through
 * `@effect/sql-sqlite-node`. One process writes a store at a time; for several
 * writers share a PostgreSQL store.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Effect, Layer } from "effect"
import { NotAStore, PersistenceError } from "../schema/Errors.js"
import { EventLog } from "../services/EventLog.js"
import { type EventLogOptions, makeEventLog, persistence } from "./EventLogStore.js"
import { defaultTable, makeSqlStore, migrationsTable, type SqlStoreOptions } from "./EventLogSql.js"

export interface SqliteEventLogOptions extends EventLogOptions, SqlStoreOptions {
  readonly filename: string
  /**
   * `full` (default): every append that returned survives a power loss
   * (synchronous=FULL; group commit keeps the cost of the syncs low).
   * `normal`: survives a crash of the process, not of the machine.
   */
  readonly durability?: "full" | "normal"
}

const sqliteHeader = "SQLite format 3\0"

/** Refuses a file that is not SQLite at all, before the driver touches it. */
const checkHeader = (filename: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if (filename === ":memory:" || !(yield* fs.exists(filename))) return
    const file = yield* fs.open(filename, { flag: "r" })
    const header = new Uint8Array(sqliteHeader.length)
    const read = yield* file.read(header)
    if (read === 0n) return
    if (Number(read) < header.length || new TextDecoder().decode(header) !== sqliteHeader) {
      return yield* new NotAStore({ location: filename, reason: "the file is not an SQLite database" })
    }
  }).pipe(
    Effect.scoped,
    Effect.catchTag("SystemError", "BadArgument", (error) =>
      new PersistenceError({ message: `cannot open ${filename}: ${error.message}`, cause: error })),
    Effect.provide(NodeFileSystem.layer)
  )

/** Refuses an SQLite database that holds another application's tables. */
const checkTables = (filename: string, table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = (yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`.pipe(
      persistence(`cannot read ${filename}`)
    )).map((row) => row.name)
    if (tables.length > 0 && !tables.includes(migrationsTable(table))) {
      return yield* new NotAStore({
        location: filename,
        reason: `it holds other tables (${tables.slice(0, 5).join(", ")}) and no ${migrationsTable(table)}`
      })
    }
  })

export const layerSqlite = (options: SqliteEventLogOptions): Layer.Layer<EventLog, NotAStore | PersistenceError> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      yield* checkHeader(options.filename)
      // WAL only once the tables are checked: switching journal modes is persistent,
      // and a database that is refused must be left as it was found.
      const client = yield* SqliteClient.make({ filename: options.filename, disableWAL: true }).pipe(
        Effect.provide(Reactivity.layer),
        persistence(`cannot open ${options.filename}`)
      )
      const durability = options.durability === "normal" ? "NORMAL" : "FULL"
      return yield* Effect.gen(function*() {
        yield* checkTables(options.filename, options.table ?? defaultTable)
        yield* client.unsafe("PRAGMA journal_mode = WAL").pipe(persistence("cannot switch to WAL mode"))
        yield* client.unsafe(`PRAGMA synchronous = ${durability}`).pipe(persistence("cannot set durability"))
        const store = yield* makeSqlStore(options)
        return yield* makeEventLog(store, options)
      }).pipe(Effect.provideService(SqlClient.SqlClient, client))
    })
  )

/**
 * An existing store file as an EventLog, e.g. to replay it: a missing file is
 * refused, never created.
 */
export const openStore = (
  filename: string,
  options: Omit<SqliteEventLogOptions, "filename"> = {}
): Layer.Layer<EventLog, NotAStore | PersistenceError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const exists = yield* fs.exists(filename).pipe(
        Effect.mapError((cause) => new PersistenceError({ message: `cannot read ${filename}`, cause }))
      )
      if (!exists) return yield* new NotAStore({ location: filename, reason: "no such file" })
      return layerSqlite({ ...options, filename })
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )
