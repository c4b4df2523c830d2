/**
 * A group commit on PostgreSQL whose COMMIT landed but whose answer was lost
 * (the connection dropped after the server committed): the retries of its
 * appends must find it and return what it committed, never append it again.
 * The loss is simulated by a store whose commit succeeds, then reports failure.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Random, Redacted, Stream } from "effect"
import { PersistenceError } from "../src/index.js"
import { type LogStore, makeEventLog } from "../src/layers/EventLogStore.js"
import { EventLogSql } from "../src/node.js"
import { pgUrl } from "./support/backends.js"
import { nameOf, registered } from "./support/events.js"

if (!pgUrl) console.warn("EventLog on PostgreSQL, lost commit answers: SKIPPING, SWITCHBOARD_PG_URL is not set")

describe.skipIf(!pgUrl)("EventLog on PostgreSQL, lost commit answers", () => {
  const freshStore = Effect.gen(function*() {
    const table = `lost_${Date.now().toString(36)}_${(yield* Random.nextInt).toString(36).replace("-", "n")}`
    const client = yield* PgClient.make({ url: Redacted.make(pgUrl!) }).pipe(Effect.provide(Reactivity.layer))
    yield* Effect.addFinalizer(() =>
      Effect.ignore(client`DROP TABLE IF EXISTS ${client(table)}, ${client(`${table}_migrations`)}`)
    )
    const { channel: _, ...store } = yield* EventLogSql.makeStore({ table }).pipe(
      Effect.provideService(SqlClient.SqlClient, client)
    )
    return { store, client, table }
  })

  it.scoped("the appends of a group whose commit landed unanswered get the records it committed, once each", () =>
    Effect.gen(function*() {
      const { client, store, table } = yield* freshStore
      let lost = 0
      // The first commit of several appends lands, and its caller hears of a failure.
      const lossy: LogStore = {
        ...store,
        commit: (events, committedAt, batch) =>
          Effect.flatMap(store.commit(events, committedAt, batch), (first) =>
            events.length > 2 && lost++ === 0
              ? Effect.fail(new PersistenceError({ message: "connection lost after COMMIT" }))
              : Effect.succeed(first))
      }
      const log = yield* makeEventLog(lossy)
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => log.append([registered(`c${i}.1`), registered(`c${i}.2`)]),
        { concurrency: "unbounded" }
      )
      expect(lost).toBeGreaterThan(0)

      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read()))
      expect(all.map((record) => record.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
      expect(all.map((record) => nameOf(record.event)).sort()).toEqual(
        Array.from({ length: 50 }, (_, i) => [`c${i}.1`, `c${i}.2`]).flat().sort()
      )
      for (const records of results) {
        for (const record of records) expect(all[record.offset - 1]).toEqual(record)
      }
      // One id for each commit that wrote, on its first row.
      const [{ ids }] = yield* client<{ ids: string }>`SELECT count(batch_id) AS ids FROM ${client(table)}`
      expect(Number(ids)).toBeGreaterThan(0)
    }))

  it.scoped("a retry of a commit that did not land appends its events; one of a commit that landed writes nothing", () =>
    Effect.gen(function*() {
      const { store } = yield* freshStore
      const first = yield* store.commit([{ type: "AgentRegistered", version: 1, payload: "{}" }], 1, { id: "a" })
      const retried = yield* store.commit(
        [{ type: "AgentRegistered", version: 1, payload: "{}" }],
        1,
        { id: "b", retryOf: { id: "never-landed", skip: 0 } }
      )
      const found = yield* store.commit(
        [{ type: "AgentRegistered", version: 1, payload: "{}" }],
        1,
        { id: "c", retryOf: { id: "a", skip: 0 } }
      )
      expect([first, retried, found]).toEqual([1, 2, 1])
      expect(yield* store.head).toBe(2)
    }))
})
