/**
 * The ARCP runtime in process, on the TestClock: a job's max_runtime_sec, a
 * detached session's window, and a replay of the log giving the same state.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Stream, TestClock } from "effect"
import * as EventLogMemory from "../src/layers/EventLogMemory.js"
import { foldLog } from "../src/layers/RuntimeLoop.js"
import * as Switchboard from "../src/layers/Switchboard.js"
import { arcpSnapshot } from "../src/model/ArcpJobs.js"
import { snapshot } from "../src/model/Runtime.js"
import { agent, Arcp, type Connection, echoAgent } from "../src/services/Arcp.js"
import { EventLog } from "../src/services/EventLog.js"
import { Runtime } from "../src/services/Runtime.js"
import { Registry } from "../src/services/Registry.js"
import { PersistenceError } from "../src/schema/Errors.js"

const agents = Layer.mergeAll(
  echoAgent,
  agent({ name: "forever", version: "1.0.0" }, () => Effect.never),
  // Never lets go, even when interrupted.
  agent("stubborn", () => Effect.uninterruptible(Effect.never))
)

const build = Effect.gen(function*() {
  const context = yield* Layer.build(
    Layer.provideMerge(agents, Switchboard.layer({}, { resumeWindowSec: 60 })).pipe(Layer.provideMerge(EventLogMemory.layer()))
  )
  return { arcp: Context.get(context, Arcp), runtime: Context.get(context, Runtime), log: Context.get(context, EventLog) }
})

/** A connection that keeps what is sent, parsed. */
const recorder = () => {
  const frames: Array<any> = []
  const connection: Connection = { send: (text) => frames.push(JSON.parse(text)), close: () => {} }
  return { frames, connection }
}

const hello = (resume?: { session_id: string; resume_token: string; last_event_seq: number }) => ({
  client: { name: "t", version: "1" },
  auth: { scheme: "bearer", token: "" },
  capabilities: { features: ["ack", "list_jobs"] },
  ...(resume === undefined ? {} : { resume })
})
const operator = { _tag: "Operator" as const, key_id: "op" }

describe("ARCP runtime on the TestClock", () => {
  it.scoped("ends a job past its max_runtime_sec with TIMEOUT when the clock gets there, not before", () =>
    Effect.gen(function*() {
      const { arcp } = yield* build
      const { connection, frames } = recorder()
      const { session_id } = yield* arcp.hello(connection, { session_id: "sess_1", principal: operator, hello: hello() })
      yield* arcp.submit(session_id, { submit: { agent: "forever", input: null, max_runtime_sec: 30 }, trace_id: undefined })
      yield* TestClock.adjust("29 seconds")
      expect(frames.map((frame) => frame.type)).toEqual(["session.welcome", "job.accepted"])
      yield* TestClock.adjust("1 second")
      yield* Effect.iterate(0, { while: () => frames.length < 3, body: (n) => Effect.as(Effect.yieldNow(), n + 1) })
      expect(frames[2]).toMatchObject({ type: "job.error", event_seq: 1, payload: { final_status: "timed_out", code: "TIMEOUT", retryable: true } })
    }))

  it.scoped("ends a cancelled job whose handler will not stop after the 30 s grace, with CANCELLED", () =>
    Effect.gen(function*() {
      const { arcp } = yield* build
      const { connection, frames } = recorder()
      const { session_id } = yield* arcp.hello(connection, { session_id: "sess_4", principal: operator, hello: hello() })
      yield* arcp.submit(session_id, { submit: { agent: "stubborn", input: null }, trace_id: undefined })
      const job_id = frames[1].job_id
      yield* arcp.cancel(session_id, job_id, "stop", "req")
      yield* TestClock.adjust("29 seconds")
      expect(frames.map((frame) => frame.type)).toEqual(["session.welcome", "job.accepted", "job.cancelled"])
      yield* TestClock.adjust("1 second")
      yield* Effect.iterate(0, { while: () => frames.length < 4, body: (n) => Effect.as(Effect.yieldNow(), n + 1) })
      expect(frames[3]).toMatchObject({ type: "job.error", job_id, payload: { final_status: "cancelled", code: "CANCELLED" } })
    }))

  it.scoped("keeps a detached session resumable for its window, then expires it", () =>
    Effect.gen(function*() {
      const { arcp, runtime } = yield* build
      const first = recorder()
      const { session_id } = yield* arcp.hello(first.connection, { session_id: "sess_2", principal: operator, hello: hello() })
      const token = first.frames[0].payload.resume_token
      yield* arcp.detach(session_id, first.connection, "gone")
      yield* TestClock.adjust("59 seconds")
      const second = recorder()
      yield* arcp.hello(second.connection, { session_id: "sess_x", principal: operator, hello: hello({ session_id, resume_token: token, last_event_seq: 0 }) })
      const rotated = second.frames[0].payload.resume_token
      yield* arcp.detach(session_id, second.connection, "gone again")
      yield* TestClock.adjust("60 seconds")
      const known = yield* Effect.iterate(true, {
        while: (exists) => exists,
        body: () => Effect.zipRight(Effect.yieldNow(), runtime.query((state) => state.arcpSessions.has(session_id)))
      })
      expect(known).toBe(false)
      const late = yield* Effect.flip(arcp.hello(recorder().connection, {
        session_id: "sess_y",
        principal: operator,
        hello: hello({ session_id, resume_token: rotated, last_event_seq: 0 })
      }))
      expect(late.code).toBe("RESUME_WINDOW_EXPIRED")
    }))

  it.scoped("folds its log again into the very same state", () =>
    Effect.gen(function*() {
      const { arcp, log, runtime } = yield* build
      const { connection, frames } = recorder()
      const { session_id } = yield* arcp.hello(connection, { session_id: "sess_3", principal: operator, hello: hello() })
      for (let i = 0; i < 5; i++) yield* arcp.submit(session_id, { submit: { agent: "echo", input: i, idempotency_key: `k${i % 3}` }, trace_id: undefined })
      yield* Effect.iterate(0, { while: () => frames.filter((frame) => frame.event_seq !== undefined).length < 11, body: (n) => Effect.as(Effect.yieldNow(), n + 1) })
      yield* arcp.ack(session_id, 2)
      const live = yield* runtime.query((state) => ({ ...snapshot(state), ...arcpSnapshot(state) }))
      const replayed = yield* foldLog(log, runtime.config)
      expect({ ...snapshot(replayed.state), ...arcpSnapshot(replayed.state) }).toEqual(live)
      expect(live.arcp_sessions[session_id]).toMatchObject({ seq: 11, floor: 2 })
      // Three jobs (a log, a progress, a result each), and two submits refused: keys k0 and k1 again, with other input.
      expect(frames.filter((frame) => frame.type === "job.error").map((frame) => frame.payload.code)).toEqual(["DUPLICATE_KEY", "DUPLICATE_KEY"])
    }))
})

describe("ARCP runtime limits", () => {
  const chatty = agent("chatty", (context) =>
    Effect.gen(function*() {
      for (let i = 0; i < 10; i++) yield* context.log("info", `line ${i}`)
      return "done"
    }))
  const buildWith = (options: { readonly ackWindow?: number; readonly maxRunningJobs?: number }) =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        Layer.provideMerge(Layer.mergeAll(agents, chatty), Switchboard.layer({}, options)).pipe(Layer.provideMerge(EventLogMemory.layer()))
      )
      return { arcp: Context.get(context, Arcp), runtime: Context.get(context, Runtime), log: Context.get(context, EventLog) }
    })
  // The loop lets the event loop run before each turn: a few of its rounds, not only microtasks.
  const settle = Effect.iterate(0, {
    while: (n) => n < 50,
    body: (n) => Effect.as(Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve))), n + 1)
  })

  it.scoped("says back_pressure as the last message of a full ACK window, holds the rest until an ACK, and replays the same", () =>
    Effect.gen(function*() {
      const { arcp, log, runtime } = yield* buildWith({ ackWindow: 4 })
      const { connection, frames } = recorder()
      const { session_id } = yield* arcp.hello(connection, { session_id: "sess_bp", principal: operator, hello: hello() })
      yield* arcp.submit(session_id, { submit: { agent: "chatty", input: null }, trace_id: undefined })
      yield* settle
      const stamped = () => frames.filter((frame) => frame.event_seq !== undefined)
      expect(stamped().map((frame) => frame.event_seq)).toEqual([1, 2, 3, 4])
      expect(stamped()[3].payload).toMatchObject({ kind: "status", body: { phase: "back_pressure" } })
      expect(stamped().slice(0, 3).map((frame) => frame.payload.kind)).toEqual(["log", "log", "log"])
      // An ACK of all four opens the window: four more of what was held (stamped already, so no status again).
      yield* arcp.ack(session_id, 4)
      yield* settle
      expect(stamped().map((frame) => frame.event_seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      expect(stamped().slice(4).map((frame) => frame.payload.kind)).toEqual(["log", "log", "log", "log"])
      yield* arcp.ack(session_id, 8)
      yield* settle
      const all = stamped()
      expect(all).toHaveLength(12)
      expect(all.filter((frame) => frame.payload.body?.phase === "back_pressure")).toHaveLength(1)
      expect(all.map((frame) => frame.event_seq)).toEqual(all.map((_, i) => i + 1))
      // Ten lines and the result, none lost, in order, between the statuses.
      expect(all.filter((frame) => frame.payload.kind === "log").map((frame) => frame.payload.body.message))
        .toEqual(Array.from({ length: 10 }, (_, i) => `line ${i}`))
      expect(all.at(-1)).toMatchObject({ type: "job.result", payload: { result: "done" } })
      const live = yield* runtime.query((state) => arcpSnapshot(state))
      const replayed = yield* foldLog(log, runtime.config)
      expect(arcpSnapshot(replayed.state)).toEqual(live)
    }))

  it.scoped("refuses a submit past the session's running jobs with a session error, and takes it once one ends", () =>
    Effect.gen(function*() {
      const { arcp, log, runtime } = yield* buildWith({ maxRunningJobs: 2 })
      const { connection, frames } = recorder()
      const { session_id } = yield* arcp.hello(connection, { session_id: "sess_cap", principal: operator, hello: hello() })
      for (let i = 0; i < 2; i++) yield* arcp.submit(session_id, { submit: { agent: "forever", input: i }, trace_id: undefined })
      const refused = yield* Effect.flip(arcp.submit(session_id, { submit: { agent: "forever", input: 2 }, trace_id: undefined }))
      expect(refused.code).toBe("INVALID_REQUEST")
      expect(refused.message).toContain("2 jobs running")
      // Another session has its own count.
      const other = recorder()
      const { session_id: second } = yield* arcp.hello(other.connection, { session_id: "sess_cap2", principal: operator, hello: hello() })
      yield* arcp.submit(second, { submit: { agent: "echo", input: 1 }, trace_id: undefined })
      const first = frames.find((frame) => frame.type === "job.accepted")!.job_id
      yield* arcp.cancel(session_id, first, "make room", "req")
      yield* Effect.iterate(0, { while: () => !frames.some((frame) => frame.type === "job.error"), body: (n) => Effect.as(Effect.yieldNow(), n + 1) })
      yield* arcp.submit(session_id, { submit: { agent: "forever", input: 3 }, trace_id: undefined })
      expect(frames.filter((frame) => frame.type === "job.accepted")).toHaveLength(3)
      const live = yield* runtime.query((state) => arcpSnapshot(state))
      expect(live.arcp_sessions[session_id]).toMatchObject({ running: 2 })
      const replayed = yield* foldLog(log, runtime.config)
      expect(arcpSnapshot(replayed.state)).toEqual(live)
    }))

  it.effect("refuses options that would stall every session", () =>
    Effect.gen(function*() {
      for (const options of [{ ackWindow: 0 }, { maxRunningJobs: 1.5 }, { ackWindow: Number.NaN }]) {
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(Switchboard.layer({}, options).pipe(Layer.provideMerge(EventLogMemory.layer())))))
        expect(exit._tag).toBe("Failure")
      }
    }))
})

describe("ARCP jobs and the log", () => {
  it.live("starts no handler before the job's acceptance is durable: an append that fails runs nothing", () =>
    Effect.gen(function*() {
      let broken = false
      let runs = 0
      const counted = agent("counted", () => Effect.sync(() => ++runs))
      const failing = Layer.effect(
        EventLog,
        Effect.map(EventLog, (log) =>
          EventLog.of({
            ...log,
            append: (events) =>
              broken && events.some((event) => event._tag === "ArcpJobAccepted")
                ? Effect.fail(new PersistenceError({ message: "disk gone" }))
                : log.append(events),
            read: (range) => log.read(range) as Stream.Stream<any, any>
          }))
      ).pipe(Layer.provide(EventLogMemory.layer()))
      const context = yield* Layer.build(Layer.provideMerge(counted, Switchboard.layer({}, {})).pipe(Layer.provideMerge(failing)))
      const arcp = Context.get(context, Arcp)
      const { connection, frames } = recorder()
      const { session_id } = yield* arcp.hello(connection, { session_id: "sess_durable", principal: operator, hello: hello() })
      broken = true
      const failed = yield* Effect.flip(arcp.submit(session_id, { submit: { agent: "counted", input: null }, trace_id: undefined }))
      expect(failed.code).toBe("INTERNAL_ERROR")
      yield* Effect.sleep("20 millis")
      expect(runs).toBe(0)
      expect(frames.map((frame) => frame.type)).toEqual(["session.welcome"])
      broken = false
      yield* arcp.submit(session_id, { submit: { agent: "counted", input: null }, trace_id: undefined })
      yield* Effect.iterate(0, { while: () => !frames.some((frame) => frame.type === "job.result"), body: (n) => Effect.as(Effect.sleep("1 millis"), n + 1) })
      expect(runs).toBe(1)
      expect(frames.map((frame) => frame.type)).toEqual(["session.welcome", "job.accepted", "job.result"])
    }).pipe(Effect.scoped))
})

describe("ARCP remote jobs across a restart", () => {
  it.live("keeps a remote agent's job running across a restart, its message still in the router, while an in-process one fails", () =>
    Effect.gen(function*() {
      const store = yield* Layer.build(EventLogMemory.layer())
      const boot = Effect.gen(function*() {
        const context = yield* Layer.build(
          Layer.provideMerge(agents, Switchboard.layer({}, {})).pipe(Layer.provideMerge(Layer.succeedContext(store)))
        )
        return { arcp: Context.get(context, Arcp), runtime: Context.get(context, Runtime), registry: Context.get(context, Registry) }
      })
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const { arcp, registry, runtime } = yield* boot
        yield* registry.register({ agent_id: "remote-1", name: "remote-1", capabilities: ["arcp:summarise@1.0.0"] })
        const { connection, frames } = recorder()
        const { session_id } = yield* arcp.hello(connection, { session_id: "sess_restart", principal: operator, hello: hello() })
        yield* arcp.submit(session_id, { submit: { agent: "summarise", input: 1 }, trace_id: undefined })
        yield* arcp.submit(session_id, { submit: { agent: "forever", input: 2 }, trace_id: undefined })
        const [remote, local] = frames.filter((frame) => frame.type === "job.accepted").map((frame) => frame.job_id)
        // The remote job's message is sent once its acceptance is durable.
        yield* Effect.iterate(0, {
          while: (n) => n >= 0,
          body: () =>
            Effect.zipRight(Effect.sleep("5 millis"), runtime.query((state) =>
              [...state.messages.values()].some((message) => message.correlationId === remote) ? -1 : 0))
        })
        return { remote, local }
      }))
      const { runtime } = yield* boot
      const after = yield* runtime.query((state) => ({
        remote: state.arcpJobs.get(first.remote)?.status,
        local: state.arcpJobs.get(first.local)?.status,
        messages: [...state.messages.values()].filter((message) => message.correlationId === first.remote).length
      }))
      expect(after).toEqual({ remote: "running", local: "error", messages: 1 })
    }).pipe(Effect.scoped))
})
