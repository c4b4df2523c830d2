/**
 * The shared EventLog on PostgreSQL, through `@effect/sql-pg`, on a pool of
 * its own (`EventLogSql.layer` takes the application's instead). Several
 * processes may append to one store: offsets stay gap-free, and each process's
 * `follow` learns of the others' appends through LISTEN/NOTIFY.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, Redacted } from "effect"
import type { PersistenceError } from "../schema/Errors.js"
import { EventLog } from "../services/EventLog.js"
import { persistence } from "./EventLogStore.js"
import { make, type SqlEventLogOptions } from "./EventLogSql.js"

export interface PgEventLogOptions extends SqlEventLogOptions {
  /** e.g. `postgres://postgres@127.0.0.1:5432/test` */
  readonly url: string | Redacted.Redacted
  /** Connections in the pool; default 10. */
  readonly maxConnections?: number
}

export const layer = (options: PgEventLogOptions): Layer.Layer<EventLog, PersistenceError> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const url = Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url)
      const client = yield* PgClient.make({ url, maxConnections: options.maxConnections ?? 10 }).pipe(
        Effect.provide(Reactivity.layer),
        persistence("cannot connect to PostgreSQL")
      )
      return yield* make(options).pipe(Effect.provideService(SqlClient.SqlClient, client))
    })
  )
