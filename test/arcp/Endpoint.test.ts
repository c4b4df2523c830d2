/**
 * The ARCP endpoint over a real WebSocket: the handshake, features, auth and
 * the typed answers to bad frames.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { echoAgent } from "../../src/services/Arcp.js"
import { connect, envelope, hello, makeKey, start } from "./harness.js"

const next = (wire: { next: () => Promise<any> }) => Effect.promise(() => wire.next())

describe("ARCP endpoint", () => {
  it.scopedLive("welcomes with the intersection of features, the agents and a resume token", () =>
    Effect.gen(function*() {
      const server = yield* start({ agents: echoAgent })
      const wire = yield* connect(server.url)
      wire.send(hello("", ["ack", "subscribe", "made-up", "agent_versions"]))
      const welcome = yield* next(wire)
      expect(welcome.type).toBe("session.welcome")
      expect(welcome.session_id).toMatch(/^sess_[0-9A-Z]{26}$/)
      expect(welcome.payload.capabilities.features.sort()).toEqual(["ack", "agent_versions", "subscribe"])
      expect(welcome.payload.heartbeat_interval_sec).toBeUndefined()
      expect(welcome.payload.resume_token).toMatch(/^rt_[0-9a-f]{64}$/)
      expect(welcome.payload.resume_window_sec).toBe(600)
      expect(welcome.payload.capabilities.agents).toEqual([{ name: "echo", versions: ["1.0.0"], default: "1.0.0" }])
    }))

  it.scopedLive("refuses an unknown key with UNAUTHENTICATED, carrying a session id, then closes", () =>
    Effect.gen(function*() {
      const created = makeKey(7)
      const server = yield* start({ agents: echoAgent, keys: { version: 1, keys: [created.entry] } })
      const wire = yield* connect(server.url)
      wire.send(hello("sb_not-a-key"))
      const refused = yield* next(wire)
      expect(refused.type).toBe("session.error")
      expect(refused.session_id).toMatch(/^sess_/)
      expect(refused.payload).toMatchObject({ code: "UNAUTHENTICATED", retryable: false })
      expect((yield* Effect.promise(() => wire.closed)).code).toBe(1008)
      const good = yield* connect(server.url)
      good.send(hello(created.key))
      expect((yield* next(good)).type).toBe("session.welcome")
    }))

  it.scopedLive("answers bad frames with typed session errors and keeps the session and the others going", () =>
    Effect.gen(function*() {
      const server = yield* start({ agents: echoAgent })
      const other = yield* connect(server.url)
      other.send(hello())
      const otherWelcome = yield* next(other)
      const wire = yield* connect(server.url)
      wire.sendRaw("not json")
      expect((yield* next(wire)).payload.code).toBe("INVALID_REQUEST")
      wire.sendRaw(Buffer.from([1, 2, 3]))
      const binary = yield* next(wire)
      expect(binary.type).toBe("session.error")
      expect(binary.session_id).toMatch(/^sess_/)
      wire.send({ ...hello(), arcp: "2.0" })
      expect((yield* next(wire)).payload.message).toContain("version")
      wire.send(envelope("job.submit", { agent: "echo" }))
      expect((yield* next(wire)).payload.message).toContain("hello first")
      wire.send(hello())
      const welcome = yield* next(wire)
      const session_id = welcome.session_id
      wire.send(envelope("job.submit", { agent: 42 }, { session_id }))
      expect((yield* next(wire)).payload.code).toBe("INVALID_REQUEST")
      wire.send(envelope("job.explode", {}, { session_id }))
      expect((yield* next(wire)).payload.code).toBe("INVALID_REQUEST")
      wire.send(envelope("x-other.thing", {}, { session_id, extensions: { optional: true } }))
      wire.send(envelope("session.ping", { nonce: "n1", sent_at: "2026-01-01T00:00:00Z" }, { session_id }))
      const pong = yield* next(wire)
      expect(pong).toMatchObject({ type: "session.pong", payload: { ping_nonce: "n1" } })
      wire.send(envelope("session.close", {}, { session_id }))
      expect((yield* next(wire)).type).toBe("session.closed")
      expect((yield* Effect.promise(() => wire.closed)).code).toBe(1000)
      other.send(envelope("job.submit", { agent: "echo", input: 1 }, { session_id: otherWelcome.session_id }))
      expect((yield* Effect.promise(() => other.nextOf("job.result"))).payload.result).toBe(1)
    }))

  it.scopedLive("closes a silent peer with HEARTBEAT_LOST", () =>
    Effect.gen(function*() {
      const server = yield* start({ agents: echoAgent, arcp: { heartbeatIntervalSec: 1 } })
      const wire = yield* connect(server.url)
      wire.send(hello("", ["heartbeat"]))
      const welcome = yield* next(wire)
      expect(welcome.payload.heartbeat_interval_sec).toBe(1)
      const lost = yield* Effect.promise(() => wire.nextOf("session.error"))
      expect(lost.payload.code).toBe("HEARTBEAT_LOST")
      expect(wire.skipped.some((frame) => frame.type === "session.ping")).toBe(true)
    }), 10_000)
})
