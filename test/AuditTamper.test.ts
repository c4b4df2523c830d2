import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Chunk, Effect, Layer, Stream } from "effect"
import * as Switchboard from "../src/layers/Switchboard.js"
import { EventLogSqlite } from "../src/node.js"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { SecretStore } from "../src/services/SecretStore.js"
import { tempFile } from "./support/backends.js"
import { toolsPolicy } from "./support/gateway.js"

const onFile = (filename: string) =>
  Switchboard.layer().pipe(Layer.provideMerge(EventLogSqlite.layer({ filename })), Layer.provideMerge(SecretStore.layerMemory({})))

describe("Audit trail on SQLite", () => {
  it.scoped("verifies a clean trail, and fails at exactly the record edited in the file", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("audit.db")
      const entries = yield* Effect.gen(function*() {
        const gateway = yield* Gateway
        const registry = yield* Registry
        yield* registry.register({ agent_id: "alice", name: "alice" })
        yield* gateway.loadPolicy(toolsPolicy)
        for (const tool of ["web.search", "shell.exec", "http.get", "payments.send"]) {
          yield* gateway.check({ kind: "tool_call", agent_id: "alice", tool, args: { amount: 5000 } })
        }
        yield* gateway.suspend("alice", "review")
        expect(yield* gateway.verifyAudit).toEqual({ ok: true, count: 5 })
        return Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit))
      }).pipe(Effect.provide(onFile(filename)), Effect.scoped)

      // A hand edit of the third record: its decision turned from allow to deny. It still decodes.
      const target = entries[2]
      expect(target.record.decision).toBe("allow")
      const db = new Database(filename)
      const row = db.prepare("SELECT payload FROM switchboard_events WHERE log_offset = ?").get(target.offset) as { payload: string }
      expect(row.payload).toContain(`"decision":"allow"`)
      db.prepare("UPDATE switchboard_events SET payload = ? WHERE log_offset = ?").run(
        row.payload.replace(`"decision":"allow"`, `"decision":"deny"`),
        target.offset
      )
      db.close()

      const verified = yield* Effect.flatMap(Gateway, (gateway) => gateway.verifyAudit).pipe(
        Effect.provide(onFile(filename)),
        Effect.scoped
      )
      expect(verified).toMatchObject({ ok: false, offset: target.offset })
    }))
})
