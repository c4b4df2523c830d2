/**
 * Tampering with the audit trail where it is kept: a SQLite file edited by
 * hand, the runtime reopened on it, and `verifyAudit` asked what changed;
 * `verifyAuditAgainst` a checkpoint kept outside the file for what the chain
 * alone cannot show (a cut or rewritten tail).
 */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Chunk, type Context, Effect, Layer, Schema, Stream } from "effect"
import * as Switchboard from "../src/layers/Switchboard.js"
import { sealRecord } from "../src/model/Audit.js"
import { EventLogSqlite } from "../src/node.js"
import { AuditCheckpoint, type AuditRecord } from "../src/schema/Audit.js"
import { ValidationError } from "../src/schema/Errors.js"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { SecretStore } from "../src/services/SecretStore.js"
import { tempFile } from "./support/backends.js"
import { toolsPolicy } from "./support/gateway.js"

const onFile = (filename: string) =>
  Switchboard.layer().pipe(Layer.provideMerge(EventLogSqlite.layer({ filename })), Layer.provideMerge(SecretStore.layerMemory({})))

/**
 * Five audit records in a new SQLite file, verified clean: the file, the
 * trail as written, and its checkpoint as an operator would keep it (JSON).
 */
const writeTrail = Effect.gen(function*() {
  const filename = yield* tempFile("audit.db")
  const { checkpoint, entries } = yield* Effect.gen(function*() {
    const gateway = yield* Gateway
    const registry = yield* Registry
    yield* registry.register({ agent_id: "alice", name: "alice" })
    yield* gateway.loadPolicy(toolsPolicy)
    for (const tool of ["web.search", "shell.exec", "http.get", "payments.send"]) {
      yield* gateway.check({ kind: "tool_call", agent_id: "alice", tool, args: { amount: 5000 } })
    }
    yield* gateway.suspend({ agent_id: "alice", reason: "review" })
    expect(yield* gateway.verifyAudit).toEqual({ ok: true, count: 5 })
    const entries = Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit))
    const checkpoint = yield* gateway.auditCheckpoint
    expect(checkpoint).toEqual({ records: 5, head: entries[4].record.hash })
    expect(yield* gateway.verifyAuditAgainst(checkpoint)).toEqual({ ok: true, count: 5 })
    return { checkpoint: JSON.stringify(checkpoint), entries }
  }).pipe(Effect.provide(onFile(filename)), Effect.scoped)
  return { checkpoint: Schema.decodeUnknownSync(Schema.parseJson(AuditCheckpoint))(checkpoint), entries, filename }
})

/** Runs `f` on the file's database, as a hand with a SQLite shell would. */
const editFile = <A>(filename: string, f: (db: Database.Database) => A): A => {
  const db = new Database(filename)
  try {
    return f(db)
  } finally {
    db.close()
  }
}

const payloadAt = (db: Database.Database, offset: number) =>
  (db.prepare("SELECT payload FROM switchboard_events WHERE log_offset = ?").get(offset) as { payload: string }).payload

/** Replaces the audit record logged at `offset` with `edit` of it. */
const rewriteRecord = (db: Database.Database, offset: number, edit: (record: AuditRecord) => AuditRecord) => {
  const event = JSON.parse(payloadAt(db, offset)) as { record: AuditRecord }
  db.prepare("UPDATE switchboard_events SET payload = ? WHERE log_offset = ?").run(
    JSON.stringify({ ...event, record: edit(event.record) }),
    offset
  )
}

/** Runs `f` on the gateway of a runtime reopened on the file. */
const reopen = <A, E>(filename: string, f: (gateway: Context.Tag.Service<Gateway>) => Effect.Effect<A, E>) =>
  Effect.flatMap(Gateway, f).pipe(Effect.provide(onFile(filename)), Effect.scoped)

/** `verifyAudit` of a runtime reopened on the file. */
const verifyFile = (filename: string) => reopen(filename, (gateway) => gateway.verifyAudit)

describe("Audit trail on SQLite", () => {
  it.scoped("verifies a clean trail, and fails at exactly the record edited in the file", () =>
    Effect.gen(function*() {
      const { entries, filename } = yield* writeTrail
      // A hand edit of the third record: its decision turned from allow to deny. It still decodes.
      const target = entries[2]
      expect(target.record.decision).toBe("allow")
      editFile(filename, (db) => {
        const payload = payloadAt(db, target.offset)
        expect(payload).toContain(`"decision":"allow"`)
        db.prepare("UPDATE switchboard_events SET payload = ? WHERE log_offset = ?").run(
          payload.replace(`"decision":"allow"`, `"decision":"deny"`),
          target.offset
        )
      })
      expect(yield* verifyFile(filename)).toMatchObject({ ok: false, offset: target.offset })
    }))

  it.scoped("fails at exactly the record edited in the file when its hash was recomputed too", () =>
    Effect.gen(function*() {
      const { entries, filename } = yield* writeTrail
      const target = entries[2]
      editFile(filename, (db) =>
        rewriteRecord(db, target.offset, (record) => sealRecord(record.prev_hash, { ...record, decision: "deny" })))
      const verified = yield* verifyFile(filename)
      expect(verified).toMatchObject({ ok: false, offset: target.offset })
      expect(!verified.ok && verified.reason).toContain(`offset ${entries[3].offset}`)
    }))

  it.scoped("cannot tell, without a checkpoint, that the last records were removed; with the one kept, it can", () =>
    Effect.gen(function*() {
      const { checkpoint, entries, filename } = yield* writeTrail
      editFile(filename, (db) => db.prepare("DELETE FROM switchboard_events WHERE log_offset >= ?").run(entries[3].offset))
      expect(yield* verifyFile(filename)).toEqual({ ok: true, count: 3 })
      const verified = yield* reopen(filename, (gateway) => gateway.verifyAuditAgainst(checkpoint))
      expect(verified).toMatchObject({ ok: false, offset: entries[2].offset })
      expect(!verified.ok && verified.reason).toContain("the checkpoint counts 5")
    }))

  it.scoped("cannot tell, without a checkpoint, that a tail was rewritten; with the one kept, it can", () =>
    Effect.gen(function*() {
      const { checkpoint, entries, filename } = yield* writeTrail
      // The third record turned from allow to deny, and it and every record after it re-sealed.
      editFile(filename, (db) => {
        let prev = entries[1].record.hash
        for (const { offset } of entries.slice(2)) {
          rewriteRecord(db, offset, (record) => {
            const sealed = sealRecord(prev, offset === entries[2].offset ? { ...record, decision: "deny" } : record)
            prev = sealed.hash
            return sealed
          })
        }
      })
      expect(yield* verifyFile(filename)).toEqual({ ok: true, count: 5 })
      // The store's own head moved with the rewrite: a checkpoint is only worth one kept elsewhere.
      expect(yield* reopen(filename, (gateway) => gateway.auditCheckpoint)).not.toEqual(checkpoint)
      const verified = yield* reopen(filename, (gateway) => gateway.verifyAuditAgainst(checkpoint))
      expect(verified).toMatchObject({ ok: false, offset: entries[4].offset })
      expect(!verified.ok && verified.reason).toContain("rewritten")
    }))

  it.scoped("refuses a checkpoint that is not one", () =>
    Effect.gen(function*() {
      const { filename } = yield* writeTrail
      const refused = yield* reopen(filename, (gateway) =>
        Effect.flip(gateway.verifyAuditAgainst({ records: -1, head: "not a hash" })))
      expect(refused).toBeInstanceOf(ValidationError)
    }))
})
