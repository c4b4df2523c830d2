import { describe, expect, it } from "@effect/vitest"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Chunk, Context, Effect, Fiber, Layer, Redacted, Stream } from "effect"
import { EventLog } from "../src/index.js"
import { layerPg } from "../src/node.js"
import { pgUrl } from "./support/backends.js"
import { nameOf, registered } from "./support/events.js"

if (!pgUrl) console.warn("EventLog on PostgreSQL with several writers: SKIPPING, SWITCHBOARD_PG_URL is not set")

describe.skipIf(!pgUrl)("EventLog on PostgreSQL with several writers", () => {
  it.scoped("two logs on one table (two pools, as two processes would have) keep offsets gap-free, and each follows the other", () =>
    Effect.gen(function*() {
      const url = pgUrl!
      const table = `writers_${Date.now().toString(36)}`
      const raw = yield* PgClient.make({ url: Redacted.make(url) }).pipe(Effect.provide(Reactivity.layer))
      yield* Effect.addFinalizer(() => Effect.ignore(raw`DROP TABLE IF EXISTS ${raw(table)}, ${raw(`${table}_migrations`)}`))
      const open = Effect.map(Layer.build(layerPg({ url, table, maxConnections: 4 })), (context) => Context.get(context, EventLog))
      const first = yield* open
      const second = yield* open
      // The second log learns of the first's appends only through NOTIFY.
      const following = yield* second.follow(1).pipe(Stream.take(400), Stream.runCollect, Effect.fork)
      yield* Effect.all([
        Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) => first.append([registered(`a${i}.1`), registered(`a${i}.2`)]), { concurrency: 10 }),
        Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) => second.append([registered(`b${i}.1`), registered(`b${i}.2`)]), { concurrency: 10 })
      ], { concurrency: "unbounded" })
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(first.read()))
      expect(all.map((record) => record.offset)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1))
      // Each append's two events sit side by side.
      for (let i = 0; i < all.length; i += 2) {
        expect(nameOf(all[i].event).replace(/\.1$/, "")).toBe(nameOf(all[i + 1].event).replace(/\.2$/, ""))
      }
      const followed = Chunk.toReadonlyArray(yield* Fiber.join(following))
      expect(followed.map((record) => record.offset)).toEqual(all.map((record) => record.offset))
      expect(yield* second.head).toBe(400)
    }), 60_000)
})
