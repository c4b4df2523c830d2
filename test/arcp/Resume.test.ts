/**
 * ARCP resume over a real WebSocket: after the job finished, while it runs
 * (the events emitted meanwhile are replayed, gap-free), with a rotated
 * token, by another principal, and after the server stopped and started
 * again on the same SQLite store.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Scope } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as EventLogSqlite from "../../src/layers/EventLogSqlite.js"
import { testAgents } from "./agents.js"
import { allFeatures, connect, envelope, hello, makeKey, start, type Wire } from "./harness.js"

const next = (wire: Wire) => Effect.promise(() => wire.next())
const nextOf = (wire: Wire, type: string) => Effect.promise(() => wire.nextOf(type))
const resumeHello = (token: string, welcome: any, last_event_seq: number) =>
  hello(token, allFeatures, { session_id: welcome.session_id, resume_token: welcome.payload.resume_token, last_event_seq })

describe("ARCP resume", () => {
  it.scopedLive("replays what a running job emitted while the client was away, then goes on live", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const server = yield* start({ agents: testAgents(gate) })
      const scope = yield* Scope.make()
      const first = yield* Scope.extend(connect(server.url), scope)
      first.send(hello())
      const welcome = yield* next(first)
      first.send(envelope("job.submit", { agent: "gated" }, { session_id: welcome.session_id }))
      const accepted = yield* nextOf(first, "job.accepted")
      const before = yield* nextOf(first, "job.event")
      expect(before.event_seq).toBe(1)
      yield* Scope.close(scope, Exit.void)
      yield* Effect.promise(() => first.closed)
      // Away: the job goes on and ends.
      yield* Deferred.succeed(gate, undefined)
      const second = yield* connect(server.url)
      second.send(resumeHello("", welcome, 1))
      const resumed = yield* next(second)
      expect(resumed.type).toBe("session.welcome")
      expect(resumed.session_id).toBe(welcome.session_id)
      expect(resumed.payload.resume_token).not.toBe(welcome.payload.resume_token)
      const replay = [yield* next(second), yield* next(second)]
      expect(replay.map((frame) => [frame.type, frame.event_seq, frame.job_id])).toEqual([
        ["job.event", 2, accepted.job_id],
        ["job.result", 3, accepted.job_id]
      ])
      // Live again, numbering on.
      second.send(envelope("job.submit", { agent: "echo", input: 1 }, { session_id: welcome.session_id }))
      yield* nextOf(second, "job.accepted")
      expect((yield* next(second)).event_seq).toBe(4)
      // The old token was rotated away.
      const third = yield* connect(server.url)
      third.send(resumeHello("", welcome, 0))
      expect((yield* next(third)).payload.code).toBe("UNAUTHENTICATED")
    }))

  it.scopedLive("takes a resume at the newest event_seq (nothing to replay) and refuses one past it", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const server = yield* start({ agents: testAgents(gate) })
      const scope = yield* Scope.make()
      const first = yield* Scope.extend(connect(server.url), scope)
      first.send(hello())
      const welcome = yield* next(first)
      first.send(envelope("job.submit", { agent: "echo", input: 1 }, { session_id: welcome.session_id }))
      yield* nextOf(first, "job.result")
      yield* Scope.close(scope, Exit.void)
      const past = yield* connect(server.url)
      past.send(resumeHello("", welcome, 9))
      expect((yield* next(past)).payload.code).toBe("INVALID_REQUEST")
      const second = yield* connect(server.url)
      second.send(resumeHello("", welcome, 3))
      expect((yield* next(second)).type).toBe("session.welcome")
      second.send(envelope("session.ping", { nonce: "n" }, { session_id: welcome.session_id }))
      expect((yield* next(second)).type).toBe("session.pong")
    }))

  it.scopedLive("refuses a resume by another principal, and one after the window with RESUME_WINDOW_EXPIRED", () =>
    Effect.gen(function*() {
      const alice = makeKey(1)
      const bob = makeKey(2)
      const gate = yield* Deferred.make<void>()
      const server = yield* start({ agents: testAgents(gate), keys: { version: 1, keys: [alice.entry, bob.entry] }, arcp: { resumeWindowSec: 1 } })
      const scope = yield* Scope.make()
      const first = yield* Scope.extend(connect(server.url), scope)
      first.send(hello(alice.key))
      const welcome = yield* next(first)
      yield* Scope.close(scope, Exit.void)
      const byBob = yield* connect(server.url)
      byBob.send(resumeHello(bob.key, welcome, 0))
      expect((yield* next(byBob)).payload.code).toBe("UNAUTHENTICATED")
      yield* Effect.sleep("1500 millis")
      const late = yield* connect(server.url)
      late.send(resumeHello(alice.key, welcome, 0))
      expect((yield* next(late)).payload.code).toBe("RESUME_WINDOW_EXPIRED")
    }))

  it.scopedLive("resumes after the server stopped and started again on the same SQLite store; keys and jobs survive", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "switchboard-arcp-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const log = () => EventLogSqlite.layer({ filename: join(dir, "arcp.db") }) as Layer.Layer<any, unknown>
      const gate = yield* Deferred.make<void>()
      const firstRun = yield* Scope.make()
      const server = yield* Scope.extend(start({ agents: testAgents(gate), log: log() }), firstRun)
      const first = yield* Scope.extend(connect(server.url), firstRun)
      first.send(hello())
      const welcome = yield* next(first)
      const session_id = welcome.session_id
      first.send(envelope("job.submit", { agent: "echo", input: "kept", idempotency_key: "once" }, { session_id }))
      const done = yield* nextOf(first, "job.accepted")
      yield* nextOf(first, "job.result")
      first.send(envelope("job.submit", { agent: "gated" }, { session_id }))
      const running = yield* nextOf(first, "job.accepted")
      yield* nextOf(first, "job.event")
      yield* Scope.close(firstRun, Exit.void)

      const again = yield* start({ agents: testAgents(gate), log: log() })
      const second = yield* connect(again.url)
      second.send(resumeHello("", welcome, 3))
      expect((yield* next(second)).type).toBe("session.welcome")
      // What the client had not seen is replayed; the job that was running when
      // the server stopped fails, retryably, in the same numbering.
      const seen = yield* next(second)
      expect(seen).toMatchObject({ type: "job.event", job_id: running.job_id, event_seq: 4 })
      const lost = yield* next(second)
      expect(lost).toMatchObject({ type: "job.error", job_id: running.job_id, event_seq: 5 })
      expect(lost.payload).toMatchObject({ code: "INTERNAL_ERROR", retryable: true })
      second.send(envelope("job.submit", { agent: "echo", input: "kept", idempotency_key: "once" }, { session_id }))
      expect((yield* nextOf(second, "job.accepted")).payload.job_id).toBe(done.payload.job_id)
    }))
})
