/**
 * The shared EventLog on PostgreSQL, through `@effect/sql-pg`. Several
 * processes may append to one store: offsets stay gap-free, and each process's
 * `follow` learns of the others' appends through LISTEN/NOTIFY.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Deferred, Effect, Layer, Redacted, Schedule, Stream } from "effect"
import { type NotAStore, PersistenceError } from "../schema/Errors.js"
import { EventLog } from "../services/EventLog.js"
import { type EventLogOptions, makeEventLog, persistence } from "./EventLogStore.js"
import { makeSqlStore, type SqlStoreOptions } from "./EventLogSql.js"

export interface PgEventLogOptions extends EventLogOptions, SqlStoreOptions {
  /** e.g. `postgres://postgres@127.0.0.1:5432/test` */
  readonly url: string | Redacted.Redacted
  /** Connections in the pool; default 10. */
  readonly maxConnections?: number
}

export const layer = (options: PgEventLogOptions): Layer.Layer<EventLog, NotAStore | PersistenceError> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const url = Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url)
      const client = yield* PgClient.make({ url, maxConnections: options.maxConnections ?? 10 }).pipe(
        Effect.provide(Reactivity.layer),
        persistence("cannot connect to PostgreSQL")
      )
      const { channel, ...store } = yield* makeSqlStore(options).pipe(
        Effect.provideService(SqlClient.SqlClient, client)
      )
      // LISTEN gives no sign of when it starts, and an append committed before it
      // is never announced to this process. A notification coming back is the
      // sign: a head of 0, which moves no log's head, is announced until one
      // does; then the head is read again, so no append after opening is missed.
      const ping = Effect.ignore(client`SELECT pg_notify(${channel}, '0')`)
      const externalHeads = Stream.unwrap(Effect.map(Deferred.make<void>(), (listening) =>
        Stream.merge(
          client.listen(channel).pipe(
            Stream.tap(() => Deferred.succeed(listening, undefined)),
            Stream.map(Number),
            Stream.mapError((cause) => new PersistenceError({ message: "lost the PostgreSQL notifications", cause }))
          ),
          Stream.fromEffect(
            Effect.raceFirst(Effect.repeat(ping, Schedule.spaced("100 millis")), Deferred.await(listening)).pipe(
              Effect.zipRight(store.head),
              // Follows that wait read the head now and then anyway.
              Effect.orElseSucceed(() => 0)
            )
          )
        )))
      return yield* makeEventLog({ ...store, externalHeads }, options)
    })
  )
