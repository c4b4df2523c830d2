/**
 * The in-memory EventLog: the same promises as the durable backends, for
 * tests and for runs that need no durability.
 */
import { Effect, Layer } from "effect"
import { EventLog } from "../services/EventLog.js"
import { type EventLogOptions, type LogStore, makeEventLog, type StoredRecord } from "./EventLogStore.js"

export const makeStore = Effect.sync((): LogStore => {
  const records: Array<StoredRecord> = []
  return {
    commit: (events, committedAt) =>
      Effect.sync(() => {
        const first = records.length + 1
        for (let i = 0; i < events.length; i++) {
          const { payload, type, version } = events[i]
          records.push({ type, version, payload, offset: first + i, committedAt })
        }
        return first
      }),
    readPage: (from, to, limit) => Effect.sync(() => records.slice(from - 1, Math.min(to, from - 1 + limit))),
    head: Effect.sync(() => records.length),
    groupCommit: false
  }
})

export const layer = (options?: EventLogOptions): Layer.Layer<EventLog> =>
  // The memory store cannot fail.
  Layer.scoped(EventLog, Effect.orDie(Effect.flatMap(makeStore, (store) => makeEventLog(store, options))))
