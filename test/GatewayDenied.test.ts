/**
 * Requests the network edge refuses (403) are audited (PROTOCOLS.md §2,
 * "Audit"): `recordDenied` seals a `deny` record into the same hash chain as
 * the gateway's own decisions, bounded whatever the request carried.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as Replay from "../src/layers/Replay.js"
import { Gateway } from "../src/services/Gateway.js"
import { Router } from "../src/services/Router.js"
import type { DeniedAccess } from "../src/schema/Requests.js"
import { gatewayLayer } from "./support/gateway.js"
import { register } from "./support/router.js"

const auditTrail = Effect.flatMap(Gateway, (gateway) => Effect.map(Stream.runCollect(gateway.audit), Chunk.toReadonlyArray))

describe("Refused requests in the audit", () => {
  it.scoped("are deny records in the hash chain, with the key's id, beside the gateway's own decisions", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* register("alice")
      const entry = yield* gateway.recordDenied({
        agent_id: "alice",
        key_id: "key-7",
        action: "http:POST /agents/bob/messages",
        reason: "the key of alice may not act as bob"
      })
      expect(entry.record).toMatchObject({
        agent_id: "alice",
        action: "http:POST /agents/bob/messages",
        decision: "deny",
        reason: "the key of alice may not act as bob (key key-7)",
        rule: "api key",
        lineage: ["alice"],
        dry_run: false
      })
      // A key with no agent, on an operator route, while everything is halted: recorded all the same.
      yield* gateway.halt({ reason: "drill" })
      yield* gateway.recordDenied({ key_id: "key-9", action: "http:POST /operator/halt", reason: "not an operator key" })
      yield* gateway.check({ kind: "tool_call", agent_id: "alice", tool: "web.search", args: {} })
      const trail = yield* auditTrail
      expect(trail.map(({ record }) => [record.agent_id, record.action, record.decision])).toEqual([
        ["alice", "http:POST /agents/bob/messages", "deny"],
        ["*", "gateway.halt", "halted"],
        ["*", "http:POST /operator/halt", "deny"],
        ["alice", "tool_call:web.search", "deny"]
      ])
      expect(trail[0]).toEqual(entry)
      expect(trail[2].record.prev_hash).toBe(trail[1].record.hash)
      expect(yield* gateway.verifyAudit).toEqual({ ok: true, count: 4 })
      expect(yield* gateway.verifyAuditAgainst(yield* gateway.auditCheckpoint)).toEqual({ ok: true, count: 4 })
      const live = yield* (yield* Router).snapshot
      const replayed = yield* Replay.stateAt(live.offset)
      expect(Replay.differences(live.state, Replay.snapshot(replayed.state))).toEqual([])
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("keep long texts within bounds, cut and marked, and the chain still verifies", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { record } = yield* gateway.recordDenied({
        agent_id: "x".repeat(10_000),
        key_id: "k".repeat(10_000),
        action: `http:GET /${"a".repeat(100_000)}`,
        reason: "r".repeat(100_000)
      })
      expect(record.agent_id).toBe(`${"x".repeat(256)}…`)
      expect(record.action).toHaveLength(257)
      expect(record.action.endsWith("a…")).toBe(true)
      expect(record.reason).toBe(`${"r".repeat(1024)}… (key ${"k".repeat(256)}…)`)
      // Cut between the halves of a surrogate pair, the text would not be valid UTF-16.
      const emoji = yield* gateway.recordDenied({ key_id: "k", action: `${"a".repeat(255)}😀😀`, reason: "r" })
      expect(emoji.record.action).toBe(`${"a".repeat(255)}…`)
      expect(yield* gateway.verifyAudit).toEqual({ ok: true, count: 2 })
    }).pipe(Effect.provide(gatewayLayer())))

  it.scoped("refuse a request that is not one, and record nothing for it", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const wrong: ReadonlyArray<unknown> = [
        undefined,
        "http:GET /",
        { action: "http:GET /", reason: "no key" },
        { key_id: "", action: "http:GET /", reason: "empty key" },
        { key_id: "k", action: "", reason: "empty action" },
        { key_id: "k", action: "http:GET /", reason: "" },
        { key_id: "k", action: "http:GET /", reason: "r", agent_id: 7 },
        { key_id: "k", action: "http:GET /", reason: "r", api_key: "sk-secret" }
      ]
      for (const request of wrong) {
        expect(yield* Effect.flip(gateway.recordDenied(request as DeniedAccess))).toMatchObject({
          _tag: "ValidationError",
          subject: "denied"
        })
      }
      expect(yield* auditTrail).toEqual([])
    }).pipe(Effect.provide(gatewayLayer())))
})
