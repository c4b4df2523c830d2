/**
 * ARCP jobs run by remote agents (`ArcpAgent.serve` in a "process" of its
 * own: over the network, through `Remote.layerNode`): the job as a router
 * delivery, its events and result reported over HTTP, the agent dying
 * (another instance takes the job again), a dead letter failing the job,
 * cancel and max_runtime_sec, and every refusal of the report routes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { ArcpAgent } from "../../src/index.js"
import { Remote } from "../../src/node.js"
import { ArcpError } from "../../src/services/Arcp.js"
import { connect, envelope, hello, start, type Started, type Wire } from "./harness.js"

const nextOf = (wire: Wire, type: string) => Effect.promise(() => wire.nextOf(type))

/** An agent serving `summarise@1.0.0` over the network, forked; its handler given. */
const agent = (server: Started, agent_id: string, handler: ArcpAgent.RemoteHandler<never>) =>
  Effect.forkScoped(
    ArcpAgent.serve({ agent_id, name: "summarise", version: "1.0.0", handler, heartbeatEvery: "200 millis" }).pipe(
      Effect.provide(Remote.layerNode({ baseUrl: server.baseUrl }))
    )
  )

/** Waits until the server lists the agent (its registration is in). */
const listed = (server: Started, name: string) =>
  Effect.iterate(false, {
    while: (found) => !found,
    body: () => Effect.zipRight(Effect.sleep("20 millis"), Effect.map(server.arcp.agents, (agents) => agents.some((a) => a.name === name)))
  })

const session = (server: Started) =>
  Effect.gen(function*() {
    const wire = yield* connect(server.url)
    wire.send(hello())
    const welcome = yield* nextOf(wire, "session.welcome")
    const submit = (payload: unknown) => wire.send(envelope("job.submit", payload, { session_id: welcome.session_id }))
    return { wire, welcome, submit, session_id: welcome.session_id as string }
  })

/** The frames of a job until its end. */
const untilEnd = (wire: Wire) =>
  Effect.promise(async () => {
    const frames: Array<any> = []
    while (true) {
      const frame = await wire.next()
      frames.push(frame)
      if (frame.type === "job.result" || frame.type === "job.error") return frames
    }
  })

const post = (server: Started, path: string, body: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${server.baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body)
    })
    return { status: response.status, body: await response.text().then((text) => text === "" ? undefined : JSON.parse(text)) }
  })

describe("ARCP remote agents", () => {
  it.scopedLive("runs a job on a remote agent: delivered through the router, its events and result reported over HTTP", () =>
    Effect.gen(function*() {
      const server = yield* start()
      yield* agent(server, "summariser-1", (job) =>
        Effect.gen(function*() {
          yield* job.log("info", `summarising for ${job.job.job_id}`)
          yield* job.progress(1, 2)
          return { summary: job.job.input }
        }))
      yield* listed(server, "summarise")
      const { submit, welcome, wire } = yield* session(server)
      expect(welcome.payload.capabilities.agents).toContainEqual({ name: "summarise", versions: ["1.0.0"], default: "1.0.0" })
      submit({ agent: "summarise", input: { text: "a long text" }, max_runtime_sec: 30 })
      const accepted = yield* nextOf(wire, "job.accepted")
      expect(accepted.payload.agent).toBe("summarise@1.0.0")
      const frames = yield* untilEnd(wire)
      expect(frames.map((frame) => frame.type)).toEqual(["job.event", "job.event", "job.result"])
      expect(frames[0].payload).toMatchObject({ kind: "log", body: { message: `summarising for ${accepted.job_id}` } })
      expect(frames[2].payload).toEqual({ final_status: "success", result: { summary: { text: "a long text" } } })
    }))

  it.scopedLive("gives a job whose agent died to another instance once the dead one's liveness lapses, which runs it to the end", () =>
    Effect.gen(function*() {
      const server = yield* start({ runtime: { livenessTimeoutMs: 800, ackWaitMs: 1500 } })
      let started = 0
      const first = yield* agent(server, "summariser-a", (job) =>
        Effect.zipRight(Effect.sync(() => started++), Effect.zipRight(job.log("info", "a took it"), Effect.never)))
      yield* listed(server, "summarise")
      const { submit, wire } = yield* session(server)
      submit({ agent: "summarise", input: 1 })
      yield* nextOf(wire, "job.accepted")
      const taken = yield* nextOf(wire, "job.event")
      expect(taken.payload.body.message).toBe("a took it")
      // The first instance dies; a second one comes up and gets the job again.
      yield* Fiber.interrupt(first)
      yield* agent(server, "summariser-b", (job) => Effect.as(job.log("info", "b took it"), "done by b"))
      const frames = yield* untilEnd(wire)
      expect(frames.at(-1)).toMatchObject({ type: "job.result", payload: { result: "done by b" } })
      expect(frames.some((frame) => frame.payload?.body?.message === "b took it")).toBe(true)
      expect(started).toBe(1)
    }))

  it.scopedLive("fails a job whose message became a dead letter, no agent having run it to the end, retryably", () =>
    Effect.gen(function*() {
      const server = yield* start({ runtime: { ackWaitMs: 300, maxAttempts: 1 } })
      yield* agent(server, "summariser-stuck", () => Effect.never)
      yield* listed(server, "summarise")
      const { submit, wire } = yield* session(server)
      submit({ agent: "summarise", input: 1 })
      yield* nextOf(wire, "job.accepted")
      const frames = yield* untilEnd(wire)
      expect(frames.at(-1)).toMatchObject({ type: "job.error", payload: { code: "INTERNAL_ERROR", retryable: true } })
    }))

  it.scopedLive("cancels a remote job at once; the agent's next report is refused and its handler stops", () =>
    Effect.gen(function*() {
      const server = yield* start()
      let reportsAfterCancel = 0
      let cancelled = false
      yield* agent(server, "summariser-c", (job) =>
        Effect.gen(function*() {
          while (true) {
            yield* job.log("info", "working")
            if (cancelled) reportsAfterCancel++
            yield* Effect.sleep("20 millis")
          }
        }))
      yield* listed(server, "summarise")
      const { session_id, submit, wire } = yield* session(server)
      submit({ agent: "summarise", input: 1 })
      const accepted = yield* nextOf(wire, "job.accepted")
      yield* nextOf(wire, "job.event")
      wire.send(envelope("job.cancel", { reason: "enough" }, { session_id, job_id: accepted.job_id }))
      cancelled = true
      yield* nextOf(wire, "job.cancelled")
      const end = yield* nextOf(wire, "job.error")
      expect(end.payload).toMatchObject({ final_status: "cancelled", code: "CANCELLED" })
      yield* Effect.sleep("200 millis")
      // At most the report in flight when the cancel landed.
      expect(reportsAfterCancel).toBeLessThanOrEqual(1)
    }))

  it.scopedLive("times a remote job out at its max_runtime_sec", () =>
    Effect.gen(function*() {
      const server = yield* start()
      yield* agent(server, "summariser-slow", () => Effect.never)
      yield* listed(server, "summarise")
      const { submit, wire } = yield* session(server)
      submit({ agent: "summarise", input: 1, max_runtime_sec: 0.3 })
      yield* nextOf(wire, "job.accepted")
      const end = yield* nextOf(wire, "job.error")
      expect(end.payload).toMatchObject({ final_status: "timed_out", code: "TIMEOUT", retryable: true })
    }))

  it.scopedLive("reports a handler's ArcpError as the job's error", () =>
    Effect.gen(function*() {
      const server = yield* start()
      yield* agent(server, "summariser-e", () => Effect.fail(ArcpError.of("PERMISSION_DENIED", "not my kind of text")))
      yield* listed(server, "summarise")
      const { submit, wire } = yield* session(server)
      submit({ agent: "summarise", input: 1 })
      const end = yield* nextOf(wire, "job.error")
      expect(end.payload).toMatchObject({ final_status: "error", code: "PERMISSION_DENIED", message: "not my kind of text", retryable: false })
    }))

  it.scopedLive("refuses reports for unknown, foreign and ended jobs, and junk bodies, with typed problems", () =>
    Effect.gen(function*() {
      const server = yield* start()
      let release: (() => void) | undefined
      yield* agent(server, "summariser-r", () => Effect.async<number>((resume) => {
        release = () => resume(Effect.succeed(1))
      }))
      yield* listed(server, "summarise")
      const { submit, wire } = yield* session(server)
      submit({ agent: "summarise", input: 1 })
      const accepted = yield* nextOf(wire, "job.accepted")
      const job = `/arcp/jobs/${accepted.job_id}`
      const unknown = yield* post(server, "/arcp/jobs/job_nope/events", { events: [{ kind: "log", body: { level: "info", message: "x" } }] })
      expect(unknown.status).toBe(404)
      expect(unknown.body.code).toBe("JOB_NOT_FOUND")
      // An agent that does not serve summarise@1.0.0 may not report for it.
      const foreign = yield* post(server, `${job}/events`, { agent_id: "someone-else", events: [{ kind: "log", body: { level: "info", message: "x" } }] })
      expect(foreign.status).toBe(403)
      for (const junk of ["{", { events: [] }, { events: [{ kind: "log", body: { level: "loud" } }] }, { events: [{ kind: "nope", body: {} }] }]) {
        const answer = yield* post(server, `${job}/events`, junk)
        expect(answer.status).toBe(400)
      }
      const both = yield* post(server, `${job}/result`, { result: 1, result_id: "r" })
      expect(both.status).toBe(400)
      // Refused tool calls are answered per event, not as a failure of the batch.
      const tool = yield* post(server, `${job}/events`, { events: [{ kind: "tool_call", body: { tool: "shell", call_id: "c1" } }] })
      expect(tool.status).toBe(200)
      expect(tool.body).toEqual([expect.objectContaining({ ok: false, code: "PERMISSION_DENIED" })])
      release!()
      const frames = yield* untilEnd(wire)
      expect(frames.at(-1)).toMatchObject({ type: "job.result", payload: { result: 1 } })
      const late = yield* post(server, `${job}/error`, { code: "INTERNAL_ERROR", message: "too late" })
      expect(late.status).toBe(409)
      expect(late.body.code).toBe("JOB_ENDED")
    }))
})

