/**
 * The embedded EventLog: one SQLite file in WAL mode, through
 * `@effect/sql-sqlite-node`. One process writes a store at a time; for several
 * writers share a PostgreSQL store. Any number of processes may read it
 * meanwhile through `layerReadonly`, e.g. to replay it.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Effect, Layer } from "effect"
import { NotAStore, PersistenceError } from "../schema/Errors.js"
import { EventLog } from "../services/EventLog.js"
import { makeEventLog, persistence } from "./EventLogStore.js"
import { defaultTable, makeStore, migrationsTable, type SqlEventLogOptions } from "./EventLogSql.js"

export interface SqliteEventLogOptions extends SqlEventLogOptions {
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

/**
 * Refuses an SQLite database of another application: one that holds anything
 * (tables, views, triggers, indexes) yet not this store's migrations table, or
 * that carries an application's mark (`application_id`, `user_version`), which
 * Switchboard never sets. With `existingOnly`, refuses any database that is
 * not a store yet, an empty file included.
 */
const checkDatabase = (filename: string, table: string, existingOnly: boolean) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [{ application_id }] = yield* sql<{ application_id: number }>`PRAGMA application_id`
    const [{ user_version }] = yield* sql<{ user_version: number }>`PRAGMA user_version`
    const objects = yield* sql<{ type: string; name: string }>`SELECT type, name FROM sqlite_master`
    return { application_id, user_version, objects }
  }).pipe(
    persistence(`cannot read ${filename}`),
    Effect.flatMap(({ application_id, objects, user_version }) => {
      const notAStore = (reason: string) => Effect.fail(new NotAStore({ location: filename, reason }))
      if (application_id !== 0 || user_version !== 0) {
        return notAStore(
          `it is marked as another application's (application_id ${application_id}, user_version ${user_version})`
        )
      }
      const isStore = objects.some((object) => object.type === "table" && object.name === migrationsTable(table))
      if (isStore) return Effect.void
      if (objects.length > 0) {
        const others = objects.slice(0, 5).map((object) => `${object.type} ${object.name}`).join(", ")
        return notAStore(`it holds other objects (${others}) and no ${migrationsTable(table)}`)
      }
      return existingOnly ? notAStore(`it holds no store (no ${migrationsTable(table)})`) : Effect.void
    })
  )

/** What `layerReadonly` takes: a read-only store has no durability to set, and commits no groups. */
export type SqliteReadonlyOptions = Pick<SqliteEventLogOptions, "filename" | "table" | "pageSize">

const layerWith = (
  options: SqliteEventLogOptions,
  access: "readWrite" | "readonly"
): Layer.Layer<EventLog, NotAStore | PersistenceError> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const readonly = access === "readonly"
      yield* checkHeader(options.filename)
      // WAL only once the database is checked: switching journal modes is persistent,
      // and a database that is refused must be left as it was found.
      const client = yield* SqliteClient.make({ filename: options.filename, disableWAL: true, readonly }).pipe(
        Effect.provide(Reactivity.layer),
        persistence(`cannot open ${options.filename}`)
      )
      const durability = options.durability === "normal" ? "NORMAL" : "FULL"
      return yield* Effect.gen(function*() {
        yield* checkDatabase(options.filename, options.table ?? defaultTable, readonly)
        if (!readonly) {
          yield* client.unsafe("PRAGMA journal_mode = WAL").pipe(persistence("cannot switch to WAL mode"))
          yield* client.unsafe(`PRAGMA synchronous = ${durability}`).pipe(persistence("cannot set durability"))
        }
        const store = yield* makeStore({ table: options.table, readonly })
        return yield* makeEventLog(store, options)
      }).pipe(Effect.provideService(SqlClient.SqlClient, client))
    })
  )

/** The store in `filename`, made if the file is missing or empty, for reading and appending. */
export const layer = (options: SqliteEventLogOptions): Layer.Layer<EventLog, NotAStore | PersistenceError> =>
  layerWith(options, "readWrite")

/**
 * An existing store file, read-only: e.g. to replay it, also while another
 * process writes it. A missing file, or one that holds no store yet (an empty
 * file), is refused, never made a store. `head` is read from the file, so it
 * sees the writer's appends, and so does `follow`, within a second. Appending
 * to it is a defect.
 */
export const layerReadonly = (options: SqliteReadonlyOptions): Layer.Layer<EventLog, NotAStore | PersistenceError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const exists = yield* fs.exists(options.filename).pipe(
        Effect.mapError((cause) => new PersistenceError({ message: `cannot read ${options.filename}`, cause }))
      )
      if (!exists) return yield* new NotAStore({ location: options.filename, reason: "no such file" })
      return layerWith(options, "readonly")
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )
