/**
 * `ArcpClient` against the server's `/arcp`, over a real socket: submit and
 * stream, a streamed result put back together, typed errors, list, cancel,
 * and resume from the last seen `event_seq`.
 */
import { NodeSocket } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Scope, Stream } from "effect"
import * as ArcpClient from "../../src/client/ArcpClient.js"
import { testAgents } from "./agents.js"
import { start } from "./harness.js"

const setup = Effect.gen(function*() {
  const gate = yield* Deferred.make<void>()
  const server = yield* start({ agents: testAgents(gate) })
  return { server, gate }
})

describe("ArcpClient", () => {
  it.scopedLive("submits, streams a job's messages, and gets its result", () =>
    Effect.gen(function*() {
      const { server } = yield* setup
      const session = yield* ArcpClient.connect({ url: server.url })
      const job = yield* session.submit({ agent: "echo", input: { hi: 1 } })
      expect(job.accepted.agent).toBe("echo@1.0.0")
      const messages = Chunk.toArray(yield* Stream.runCollect(job.messages))
      expect(messages.map((message) => message.type === "job.event" ? message.payload.kind : message.type)).toEqual(["log", "progress", "job.result"])
      expect((yield* job.result).result).toEqual({ hi: 1 })
      const streamed = yield* session.submit({ agent: "chunks" })
      expect(yield* streamed.result).toMatchObject({ result_id: "res_1", assembled: "hello, world", summary: "3 chunks" })
      const many = yield* Effect.all(Array.from({ length: 30 }, (_, i) => Effect.flatMap(session.submit({ agent: "echo", input: i }), (handle) => handle.result)), { concurrency: "unbounded" })
      expect(many.map((result) => result.result)).toEqual(Array.from({ length: 30 }, (_, i) => i))
    }).pipe(Effect.provide(NodeSocket.layerWebSocketConstructor)))

  it.scopedLive("fails with typed errors: unknown agent, unknown version, a cancelled job", () =>
    Effect.gen(function*() {
      const { server } = yield* setup
      const session = yield* ArcpClient.connect({ url: server.url })
      const unknown = yield* Effect.flip(session.submit({ agent: "nobody" }))
      expect(unknown).toMatchObject({ code: "AGENT_NOT_AVAILABLE", retryable: false })
      const version = yield* Effect.flip(session.submit({ agent: "echo@0.0.1" }))
      expect(version.code).toBe("AGENT_VERSION_NOT_AVAILABLE")
      const forever = yield* session.submit({ agent: "forever" })
      yield* session.cancel(forever.job_id, "stop")
      const cancelled = yield* Effect.flip(forever.result)
      expect(cancelled).toMatchObject({ code: "CANCELLED", retryable: false })
      const listed = yield* session.listJobs({ filter: { status: ["cancelled"] } })
      expect(listed.jobs.map((job: any) => job.job_id)).toEqual([forever.job_id])
    }).pipe(Effect.provide(NodeSocket.layerWebSocketConstructor)))

  it.scopedLive("resumes from the last event_seq it took and gets what it missed", () =>
    Effect.gen(function*() {
      const { gate, server } = yield* setup
      const scope = yield* Scope.make()
      const first = yield* Scope.extend(ArcpClient.connect({ url: server.url }), scope)
      const job = yield* Scope.extend(first.submit({ agent: "gated" }), scope)
      yield* Stream.runHead(job.messages)
      const last = yield* first.lastEventSeq
      expect(last).toBe(1)
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.succeed(gate, undefined)
      const second = yield* ArcpClient.connect({
        url: server.url,
        resume: { session_id: first.session_id, resume_token: first.resumeToken, last_event_seq: last }
      })
      expect(second.session_id).toBe(first.session_id)
      expect((yield* second.job(job.job_id).result).result).toBe("done")
      expect(yield* second.lastEventSeq).toBe(3)
    }).pipe(Effect.provide(NodeSocket.layerWebSocketConstructor)))
})
