import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Chunk, Context, Effect, Either, ExecutionStrategy, Exit, FastCheck as fc, Layer, Scope, Stream, TestClock, TestContext } from "effect"
import { spawn } from "node:child_process"
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as EventLogMemory from "../src/layers/EventLogMemory.js"
import * as Replay from "../src/layers/Replay.js"
import * as Switchboard from "../src/layers/Switchboard.js"
import { buildEnvelope } from "../src/model/Envelopes.js"
import type { RuntimeOptions } from "../src/schema/Config.js"
import { differences, messageOf } from "../src/model/Timeline.js"
import { EventLog } from "../src/services/EventLog.js"
import { Registry } from "../src/services/Registry.js"
import { Gateway } from "../src/services/Gateway.js"
import { Router } from "../src/services/Router.js"
import { EventLogSqlite } from "../src/node.js"
import { Ids } from "../src/services/Ids.js"
import { writeInBackground } from "./support/child.js"
import { inbox, register, routerLayer, sendTo } from "./support/router.js"

const config: RuntimeOptions = {
  ackWaitMs: 1000,
  maxAttempts: 2,
  livenessTimeoutMs: 3000,
  mailboxCapacity: 6,
  maxInFlight: 2,
  dedupWindowMs: 5000,
  retentionMs: 5000,
  privilegedPerSecond: 1,
  bulkEvery: 3
}

const agents = ["a", "b", "c", "d"] as const
const agent = fc.constantFrom(...agents)

const command = fc.oneof(
  { weight: 6, arbitrary: fc.record({ _tag: fc.constant("send" as const), from: agent, to: fc.oneof(agent, fc.constant("work")), ttl: fc.constantFrom(0, 0, 500, 2500), token: fc.option(fc.constantFrom("t1", "t2", "t3"), { nil: undefined }) }) },
  // A consuming subscriber takes every delivery at once; one that releases gives back what it did not settle when it leaves.
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("subscribe" as const), agent, consume: fc.boolean(), release: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("leave" as const), pick: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("ack" as const), agent, pick: fc.nat(), stage: fc.constantFrom("READ" as const, "FULFILLED" as const, "FAILED" as const, "REJECTED" as const) }) },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("tick" as const), ms: fc.constantFrom(100, 600, 1100, 3500) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("heartbeat" as const), agent }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("redrive" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("crash" as const) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("check" as const), agent, tool: fc.constantFrom("web.search", "payments.send", "shell.exec"), amount: fc.constantFrom(10, 5000) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("resolve" as const), pick: fc.nat(), approve: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("suspend" as const), agent, resume: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("charge" as const), agent, amount: fc.constantFrom(1, 4, 9) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("kill" as const), agent }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("halt" as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("deregister" as const), agent, back: fc.boolean() }) }
)

const policy = `
id: replayed
scope: { kind: global }
tools:
  "*": { allow: false }
  web.search: { allow: true, limit_per_hour: 3 }
  payments.send: { allow: true, requires_approval_if: "args.amount > 1000" }
budgets:
  - { currency: USD, limit: 10, per: agent }
approval_timeout_s: 2
`

/** The live router's state must be the state replayed from its log, at the same offset. */
const checkReplay = Effect.gen(function*() {
  const live = yield* (yield* Router).snapshot
  const replayed = yield* Replay.stateAt(live.offset, config)
  expect(replayed.offset).toBe(live.offset)
  expect(differences(live.state, Replay.snapshot(replayed.state))).toEqual([])
})

const scenario = (commands: ReadonlyArray<typeof command extends fc.Arbitrary<infer A> ? A : never>) =>
  Effect.gen(function*() {
    const logContext = yield* Layer.build(EventLogMemory.layer())
    let routerScope = yield* Scope.make()
    const start = Effect.gen(function*() {
      const context = yield* Layer.buildWithScope(Switchboard.layer(config), routerScope).pipe(Effect.provide(logContext))
      return Context.merge(logContext, context)
    })
    let context = yield* start
    /** The open subscriptions, each in a scope of its own within the runtime's: a crash closes them all. */
    let subscriptions: Array<Scope.CloseableScope> = []
    let n = 0
    /** Each message's terminal stage, once it has one: never to change (a TIMED_OUT dead letter may be redriven). */
    const terminal = new Map<string, string>()
    const run = <A, E>(effect: Effect.Effect<A, E, Router | Registry | Gateway | EventLog | Scope.Scope>) =>
      Effect.either(effect.pipe(Effect.provide(context), Scope.extend(routerScope)))
    yield* run(Effect.forEach(agents, (id) => register(id, id === "a" ? { communication_class: "PRIVILEGED" } : { capabilities: ["work"] })))
    yield* run(Effect.flatMap(Gateway, (gateway) => gateway.loadPolicy(policy)))
    for (const step of commands) {
      switch (step._tag) {
        case "send":
          yield* run(Effect.flatMap(Router, (router) =>
            router.send({
              to: step.to === "work" ? { capability: "work" } : step.to,
              envelope: buildEnvelope({ producer_id: step.from, payload: `m${n}`, ttl_ms: step.ttl, idempotency_token: step.token }, `m${n++}`, 0)
            })))
          break
        case "subscribe": {
          const scope = yield* Scope.fork(routerScope, ExecutionStrategy.sequential)
          subscriptions.push(scope)
          yield* Effect.either(Effect.gen(function*() {
            const router = yield* Router
            const stream = yield* router.subscription(step.agent, { unsettled: step.release ? "release" : "hold" })
            if (step.consume) yield* Effect.forkIn(Stream.runDrain(stream), scope)
          }).pipe(Effect.provide(context), Scope.extend(scope)))
          break
        }
        case "leave":
          if (subscriptions.length > 0) yield* Scope.close(subscriptions.splice(step.pick % subscriptions.length, 1)[0], Exit.void)
          break
        case "ack":
          yield* run(Effect.gen(function*() {
            const router = yield* Router
            const { state } = yield* router.snapshot
            const mine = Object.entries(state.messages).filter(([, m]) => m.recipients.includes(step.agent))
            if (mine.length === 0) return
            const [id] = mine[step.pick % mine.length]
            yield* router.ack({ agent_id: step.agent, message_id: id, stage: step.stage, error_code: step.stage === "FAILED" || step.stage === "REJECTED" ? "INTERNAL_ERROR" : undefined })
          }))
          break
        case "tick":
          yield* TestClock.adjust(step.ms)
          break
        case "heartbeat":
          yield* run(Effect.flatMap(Registry, (registry) => registry.heartbeat({ agent_id: step.agent })))
          break
        case "redrive":
          yield* run(Effect.gen(function*() {
            const router = yield* Router
            const dead = Object.entries((yield* router.snapshot).state.messages).filter(([, m]) => m.dead_letter)
            if (dead.length > 0) yield* router.redrive(dead[step.pick % dead.length][0])
          }))
          break
        case "check":
          yield* run(Effect.flatMap(Gateway, (gateway) =>
            gateway.check({ kind: "tool_call", agent_id: step.agent, tool: step.tool, args: { amount: step.amount } })))
          break
        case "resolve":
          yield* run(Effect.gen(function*() {
            const gateway = yield* Gateway
            const open = yield* gateway.approvals({ status: "open" })
            if (open.length === 0) return
            const { approval_id } = open[step.pick % open.length]
            yield* step.approve ? gateway.approve({ approval_id, by: "human" }) : gateway.reject({ approval_id, by: "human" })
          }))
          break
        case "suspend":
          yield* run(Effect.flatMap(Gateway, (gateway) =>
            step.resume ? gateway.resume({ agent_id: step.agent }) : gateway.suspend({ agent_id: step.agent, reason: "random" })))
          break
        case "charge":
          yield* run(Effect.flatMap(Gateway, (gateway) => gateway.charge({ agent_id: step.agent, currency: "USD", amount: step.amount })))
          break
        case "kill":
          yield* run(Effect.flatMap(Gateway, (gateway) => gateway.kill({ agent_id: step.agent, reason: "random" })))
          break
        case "halt":
          yield* run(Effect.flatMap(Gateway, (gateway) => step.on ? gateway.halt({ reason: "random" }) : gateway.unhalt()))
          break
        case "deregister":
          yield* run<void, unknown>(step.back
            ? Effect.asVoid(register(step.agent, step.agent === "a" ? { communication_class: "PRIVILEGED" } : { capabilities: ["work"] }))
            : Effect.flatMap(Registry, (registry) => registry.deregister({ agent_id: step.agent, reason: "random" })))
          break
        case "crash":
          yield* Scope.close(routerScope, Exit.void)
          subscriptions = []
          routerScope = yield* Scope.make()
          context = yield* start
          break
      }
      const checked = yield* run(checkReplay)
      if (Either.isLeft(checked)) return yield* Effect.die(checked.left)
      const snapshot = yield* run(Effect.flatMap(Router, (router) => router.snapshot))
      if (Either.isRight(snapshot)) {
        for (const [id, message] of Object.entries(snapshot.right.state.messages)) {
          const before = terminal.get(id)
          if (before !== undefined && before !== "TIMED_OUT" && message.stage !== before) {
            return yield* Effect.die(new Error(`the terminal stage of ${id} went from ${before} to ${message.stage} at ${JSON.stringify(step)}`))
          }
          if (["FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"].includes(message.stage)) terminal.set(id, message.stage)
          else terminal.delete(id)
        }
      }
    }
    yield* Scope.close(routerScope, Exit.void)
  }).pipe(Effect.scoped, Effect.provide(TestContext.TestContext))

describe("Replay", () => {
  it.effect("a live runtime's state always equals the state replayed from its log, and no terminal stage changes (random scenarios of routing and governance, subscribers leaving and releasing, kills and halts included, with crashes and clock jumps)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 40 }), (commands) => Effect.runPromise(scenario(commands))),
        { numRuns: 60 }
      )
    ))

  it.scoped("steps through records with the state each leads to, and describes a message's timeline", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "hello" })
      yield* router.subscription("b")
      yield* router.awaitStage({ message_id: receipt.message_id, stage: "RECEIVED" })
      yield* Effect.flatMap(Router, (r) => r.snapshot)
      const steps = Chunk.toReadonlyArray(yield* Stream.runCollect(Replay.steps().pipe(Stream.map((step) => ({ offset: step.record.offset, messages: Object.keys(Replay.snapshot(step.state).messages) })))))
      expect(steps.map((s) => s.offset)).toEqual(steps.map((_, i) => i + 1))
      // 1, 2: the agents; 3: the edge a messages b; 4: the message.
      expect(steps[2].messages).toEqual([])
      expect(steps[3].messages).toEqual([receipt.message_id])
      yield* router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "FULFILLED" })
      const lines = Chunk.toReadonlyArray(yield* Stream.runCollect(Replay.timeline({ message: receipt.message_id }))).map((e) => e.text)
      expect(lines).toEqual([
        `${receipt.message_id} DATA from a accepted for b, lane STANDARD: RECEIVED`,
        `${receipt.message_id} delivered to b, attempt 1, delivery_seq 1`,
        `${receipt.message_id} FULFILLED by b`
      ])
      const atTwo = yield* Replay.stateAt(2)
      expect(atTwo.offset).toBe(2)
      expect(atTwo.state.agents.size).toBe(2)
      expect(atTwo.state.messages.size).toBe(0)
    }).pipe(Effect.provide(routerLayer())))

  it.effect("refuses to replay a store file that does not exist, rather than create one", () =>
    Effect.gen(function*() {
      const failure = yield* Effect.flip(Layer.build(EventLogSqlite.layerReadonly({ filename: "/nonexistent/switchboard.db" })).pipe(Effect.scoped))
      expect(failure).toMatchObject({ _tag: "NotAStore", reason: "no such file" })
    }))

  it.scoped("gives an agent every event of the messages it produced or was sent: acks, time-outs, requeues and redrives included", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* Effect.forEach(["a", "b", "c"], (id) => register(id))
      const next = yield* inbox("b")
      const fulfilled = yield* sendTo("b", { producer_id: "a", payload: "one" })
      yield* next(1)
      yield* router.ack({ agent_id: "b", message_id: fulfilled.message_id, stage: "FULFILLED" })
      const timedOut = yield* sendTo("b", { producer_id: "a", payload: "two" })
      yield* next(1)
      yield* TestClock.adjust(1000)
      yield* next(1)
      yield* TestClock.adjust(1000)
      yield* router.awaitStage({ message_id: timedOut.message_id, stage: "TIMED_OUT" })
      yield* router.redrive(timedOut.message_id)
      yield* next(1)

      const timelineOf = (agent?: string) =>
        Effect.map(
          Stream.runCollect(Replay.timeline(agent === undefined ? {} : { agent })),
          (entries) => Chunk.toReadonlyArray(entries).filter((entry) => messageOf(entry.record.event) !== undefined).map((entry) => entry.text)
        )
      const all = yield* timelineOf()
      expect(all).toContain(`${fulfilled.message_id} FULFILLED by b`)
      expect(all).toContain(`${timedOut.message_id} queued again for b (ack wait)`)
      expect(all).toContain(`${timedOut.message_id} TIMED_OUT (ACK_TIMEOUT): dead letter`)
      expect(all).toContain(`${timedOut.message_id} redriven to b: RECEIVED`)
      // Both messages are a's to b: everything that happens to them concerns both, and nothing concerns c.
      expect(yield* timelineOf("a")).toEqual(all)
      expect(yield* timelineOf("b")).toEqual(all)
      expect(yield* timelineOf("c")).toEqual([])
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1000, maxAttempts: 2, livenessTimeoutMs: undefined }))))
})

describe("switchboard replay (the command line)", () => {
  const root = fileURLToPath(new URL("..", import.meta.url))
  const dir = mkdtempSync(join(tmpdir(), "switchboard-cli-"))
  const store = join(dir, "store.db")
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  beforeAll(() =>
    Effect.gen(function*() {
      yield* register("a")
      yield* register("b")
      const next = yield* inbox("b")
      const receipt = yield* sendTo("b", { producer_id: "a", payload: "hello" })
      yield* next(1)
      yield* Effect.flatMap(Router, (router) => router.ack({ agent_id: "b", message_id: receipt.message_id, stage: "FULFILLED" }))
    }).pipe(
      Effect.provide(Switchboard.layer({ livenessTimeoutMs: undefined }).pipe(
        Layer.provideMerge(EventLogSqlite.layer({ filename: store })),
        Layer.provideMerge(Ids.layerSequential("m"))
      )),
      Effect.scoped,
      Effect.runPromise
    ))

  const replay = (...args: ReadonlyArray<string>) =>
    new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "replay", ...args], { cwd: root })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk) => (stdout += chunk))
      child.stderr.on("data", (chunk) => (stderr += chunk))
      child.on("error", reject)
      child.on("close", (code) => resolve({ code, stdout, stderr }))
    })

  /**
   * A failure told in exactly `line` on stderr, with no stack trace and no dump
   * of the error after it (runMain's report went to stdout), and no output.
   */
  const expectFailure = (result: Awaited<ReturnType<typeof replay>>, line: string, stdout = "") => {
    expect(result.code).not.toBe(0)
    expect(result.stderr.split("\n").filter((l) => l.trim() !== "")).toEqual([line])
    expect(result.stdout).toBe(stdout)
  }

  it("says in one line that a store file does not exist", async () => {
    const missing = join(dir, "missing.db")
    expectFailure(await replay(missing), `switchboard: ${missing} is not a Switchboard store: no such file`)
  })

  it("says in one line that an empty file holds no store", async () => {
    const empty = join(dir, "empty.db")
    writeFileSync(empty, "")
    expectFailure(
      await replay(empty),
      `switchboard: ${empty} is not a Switchboard store: it holds no store (no switchboard_events_migrations)`
    )
  })

  it("prints @effect/cli's refusal of a directory once", async () => {
    expectFailure(await replay(dir), `Expected path '${dir}' to be a regular file`)
  })

  it("prints @effect/cli's refusal of an --at that is not a number once", async () => {
    expectFailure(await replay(store, "--at", "abc"), "'abc' is not a integer")
  })

  it("names the offset and, shortly, the reason of a record that no longer decodes, after the records before it", async () => {
    const edited = join(dir, "edited.db")
    copyFileSync(store, edited)
    const db = new Database(edited)
    const { payload } = db.prepare("SELECT payload FROM switchboard_events WHERE log_offset = 2").get() as { payload: string }
    const event = JSON.parse(payload)
    event.agent.agent_id = 42
    db.prepare("UPDATE switchboard_events SET payload = ? WHERE log_offset = 2").run(JSON.stringify(event))
    db.close()
    const result = await replay(edited)
    expectFailure(
      result,
      "switchboard: the record at offset 2 cannot be decoded: agent.agent_id: Expected string, actual 42",
      result.stdout.match(/^#1 .* agent a registered\n$/)?.[0]
    )
  })

  it("refuses an --at below 0, and takes 0 as the state before the first record", async () => {
    const negative = await replay(store, "--at", "-1")
    expectFailure(negative, "--at must be an offset, 0 or more")
    const zero = await replay(store, "--at", "0")
    expect(zero).toEqual({ code: 0, stdout: "state at offset 0:\n  messages: none\n", stderr: "" })
  })

  it("prints the state at the last offset of its timeline while another process writes the store", async () => {
    const live = join(dir, "live.db")
    // Two fibers: enough to move the head while replay runs, few enough to keep its timeline short.
    const writer = writeInBackground({ filename: live, run: "live", fibers: 2, timeoutMs: 50_000 })
    try {
      await writer.acknowledged(200)
      const result = await replay(live)
      expect(result).toMatchObject({ code: 0, stderr: "" })
      const lines = result.stdout.split("\n")
      const last = lines.filter((line) => line.startsWith("#")).pop()
      const timelineEnd = Number(/^#(\d+) /.exec(last ?? "")?.[1])
      expect(timelineEnd).toBeGreaterThan(0)
      expect(lines).toContain(`state at offset ${timelineEnd}:`)
    } finally {
      await writer.kill()
    }
  })

  it("says where the store ends when --at is past its head", async () => {
    const db = new Database(store, { readonly: true })
    const { head } = db.prepare("SELECT max(log_offset) AS head FROM switchboard_events").get() as { head: number }
    db.close()
    const result = await replay(store, "--at", "1000")
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`state at offset ${head}:`)
    expect(result.stderr).toBe(`switchboard: the store ends at offset ${head}, before --at 1000\n`)
  })
})
