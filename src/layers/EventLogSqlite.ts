/**
 * The embedded EventLog: one SQLite file in WAL mode, through
 * `@effect/sql-sqlite-node`. One log writes a store at a time, and a second
 * one is refused with StoreInUse, in this process or another; for several
 * writers share a PostgreSQL store. Any number of processes may read it
 * meanwhile through `layerReadonly`, e.g. to replay it.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Effect, ExecutionStrategy, Layer, Scope } from "effect"
import { NotAStore, PersistenceError, StoreInUse } from "../schema/Errors.js"
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

const isBusy = (error: { readonly cause?: unknown }) =>
  typeof error.cause === "object" && error.cause !== null && "code" in error.cause && error.cause.code === "SQLITE_BUSY"

/**
 * Takes the writer's lock of the store in `filename` for the scope: an
 * exclusive transaction on `<filename>-lock`, an SQLite database of its own
 * that stays empty, held on a connection of its own. The operating system
 * releases the lock when the process ends, however it ends, so a killed
 * writer never leaves its store locked, and a lock file left behind locks
 * nothing. The file is never removed: a writer could still be about to lock it
 * while a third made a new one of the same name. SQLite's own locks of the
 * store could not serve: they are held only while a transaction is.
 */
const lockWriter = (filename: string) =>
  Effect.gen(function*() {
    if (filename === ":memory:" || filename === "") return
    // The store's real path: a link to it must lock the same file.
    const path = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.realPath(filename)).pipe(
      Effect.provide(NodeFileSystem.layer),
      persistence(`cannot lock ${filename}`)
    )
    const lock = yield* SqliteClient.make({ filename: `${path}-lock`, disableWAL: true }).pipe(
      Effect.provide(Reactivity.layer),
      persistence(`cannot lock ${filename}`)
    )
    // Refused at once, not after the driver's default wait of 5 seconds.
    yield* lock.unsafe("PRAGMA busy_timeout = 0").pipe(persistence(`cannot lock ${filename}`))
    yield* lock.unsafe("BEGIN EXCLUSIVE").pipe(
      Effect.mapError((error) =>
        isBusy(error)
          ? new StoreInUse({ location: filename })
          : new PersistenceError({ message: `cannot lock ${filename}`, cause: error })
      )
    )
  })

/** What `layerReadonly` takes: a read-only store has no durability to set, and commits no groups. */
export type SqliteReadonlyOptions = Pick<SqliteEventLogOptions, "filename" | "table" | "pageSize">

/** The store, opened read-only or for writing under `lock`. */
const layerWith = <E>(
  options: SqliteEventLogOptions,
  access: { readonly readonly: true } | { readonly readonly: false; readonly lock: Effect.Effect<void, E, Scope.Scope> }
): Layer.Layer<EventLog, NotAStore | PersistenceError | E> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const { readonly } = access
      // Made before the store's connection, so that it closes after it: the
      // writer's lock outlives every write.
      const lockScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
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
        if (!access.readonly) {
          // Only once the file is known to be a store (or empty): no lock file beside another application's.
          yield* Scope.extend(access.lock, lockScope)
          yield* client.unsafe("PRAGMA journal_mode = WAL").pipe(persistence("cannot switch to WAL mode"))
          yield* client.unsafe(`PRAGMA synchronous = ${durability}`).pipe(persistence("cannot set durability"))
        }
        const store = yield* makeStore({ table: options.table, readonly })
        return yield* makeEventLog(store, options)
      }).pipe(Effect.provideService(SqlClient.SqlClient, client))
    })
  )

/**
 * The store in `filename`, made if the file is missing or empty, for reading
 * and appending. While it is open, `<filename>-lock` beside it is locked, and
 * another writer of the store is refused with StoreInUse.
 */
export const layer = (
  options: SqliteEventLogOptions
): Layer.Layer<EventLog, NotAStore | StoreInUse | PersistenceError> =>
  layerWith(options, { readonly: false, lock: lockWriter(options.filename) })

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
      return layerWith<never>(options, { readonly: true })
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )
