/**
 * The shared EventLog on PostgreSQL, through `@effect/sql-pg`. Several
 * processes may append to one store: offsets stay gap-free, and each process's
 * `follow` learns of the others' appends through LISTEN/NOTIFY.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, Redacted, Stream } from "effect"
import { type NotAStore, PersistenceError } from "../schema/Errors.js"
import { EventLog } from "../services/EventLog.js"
import { type EventLogOptions, makeEventLog, persistence } from "./EventLogStore.js"
import { defaultTable, makeSqlStore, type SqlStoreOptions } from "./EventLogSql.js"

export interface PgEventLogOptions extends EventLogOptions, SqlStoreOptions {
  /** e.g. `postgres://postgres@127.0.0.1:5432/test` */
  readonly url: string | Redacted.Redacted
  /** Connections in the pool; default 10. */
  readonly maxConnections?: number
}

export const layerPg = (options: PgEventLogOptions): Layer.Layer<EventLog, NotAStore | PersistenceError> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const url = Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url)
      const client = yield* PgClient.make({ url, maxConnections: options.maxConnections ?? 10 }).pipe(
        Effect.provide(Reactivity.layer),
        persistence("cannot connect to PostgreSQL")
      )
      const store = yield* makeSqlStore(options).pipe(Effect.provideService(SqlClient.SqlClient, client))
      const externalHeads = client.listen(options.table ?? defaultTable).pipe(
        Stream.map(Number),
        Stream.mapError((cause) => new PersistenceError({ message: "lost the PostgreSQL notifications", cause }))
      )
      return yield* makeEventLog({ ...store, externalHeads }, options)
    })
  )
