/**
 * A replay of any history yields the live state (DESIGN.md rule 5), for
 * coordination: random scenarios of tasks, preemptions, sections, agent
 * states and shutdowns, bindings, rooms and human decisions, with clock
 * jumps and restarts, run through the services on the live runtime. After
 * every step the state the live runtime holds (the runtime's snapshot and
 * coordination's) equals the one the log folds to at the same offset.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, ExecutionStrategy, Exit, FastCheck as fc, Layer, Scope, Stream, TestClock, TestContext } from "effect"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import * as Replay from "../../src/layers/Replay.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import { coordinationSnapshot } from "../../src/model/Coordination.js"
import { snapshot } from "../../src/model/Runtime.js"
import { differences } from "../../src/model/Timeline.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { EventLog } from "../../src/services/EventLog.js"
import { Gateway } from "../../src/services/Gateway.js"
import { Hitl } from "../../src/services/Hitl.js"
import { Negotiation } from "../../src/services/Negotiation.js"
import { Registry } from "../../src/services/Registry.js"
import { Router } from "../../src/services/Router.js"
import { Runtime } from "../../src/services/Runtime.js"
import { Scheduler } from "../../src/services/Scheduler.js"
import { Worktrees } from "../../src/services/Worktrees.js"

const config: RuntimeOptions = {
  ackWaitMs: 1_000,
  maxAttempts: 2,
  livenessTimeoutMs: 5_000,
  preemptionGraceMs: 700,
  maxSectionMs: 1_500,
  maxTaskAttempts: 2,
  agentStateTimeoutsMs: { INITIALIZING: 1_200, WAITING_RESOURCES: 1_500, SUSPENDED: 2_000, RECOVERING: 1_000, SHUTTING_DOWN: 900 },
  hitlTimeoutMs: 1_500,
  worktreeTtlMs: 1_200,
  bindRetryDelayMs: 300,
  bindEscalateAfterMs: 600,
  roomDeadlineMs: 1_800
}

/** Messages are checked (and audited); binding w2 needs a human. */
const policy = `
id: coordination
scope: { kind: global }
messages:
  - { from: "*", to: "*", allow: true }
tools:
  worktree.bind: { allow: true, requires_approval_if: "args.worktree_id == 'w2'" }
`

const agents = ["a", "b", "c"] as const
const agent = fc.constantFrom(...agents)
const pick = fc.nat()

const command = fc.oneof(
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("submit" as const), by: fc.boolean(), to: fc.oneof(agent, fc.constant("work")), priority: fc.constantFrom(-5, 0, 5), scope: fc.constantFrom(undefined, "repo", "repo/a", "other"), wait: fc.constantFrom(undefined, undefined, 0, 400), parallel: fc.constantFrom(undefined, 1) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("subscribe" as const), agent }) },
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("ack" as const), agent, pick, stage: fc.constantFrom("READ" as const, "FULFILLED" as const, "FAILED" as const), preempted: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("yield" as const), pick }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("section" as const), pick, enter: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("heartbeat" as const), agent, state: fc.constantFrom(undefined, "RUNNING" as const, "INITIALIZING" as const, "SUSPENDED" as const, "RECOVERING" as const) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("shutdown" as const), agent, grace: fc.constantFrom(0, 500, 3_000) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("register" as const), agent }) },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("worktree" as const), agent: fc.constantFrom("a", "b"), op: fc.constantFrom("bind", "switch", "approve", "reject", "revoke", "fail", "fail", "unbind", "away", "away"), target: fc.constantFrom("w1", "w2"), hitl: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("propose" as const), critics: fc.subarray([...agents], { minLength: 1 }) }) },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("vote" as const), pick, agent, score: fc.constantFrom(1, 5, 8, 10), confidence: fc.constantFrom(0.1, 0.6, 0.9) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("invoke" as const), fallback: fc.constantFrom("DENY_BY_DEFAULT" as const, "AUTO_DECIDE_THRESHOLD" as const, "EXTEND_TIMEOUT" as const) }) },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("decide" as const), pick, action: fc.constantFrom("approve" as const, "deny" as const, "defer" as const, "modify" as const) }) },
  { weight: 4, arbitrary: fc.record({ _tag: fc.constant("tick" as const), ms: fc.constantFrom(100, 350, 800, 2_100) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("crash" as const) }) }
)
type Command = typeof command extends fc.Arbitrary<infer A> ? A : never

type Services = Router | Registry | Scheduler | Worktrees | Negotiation | Hitl | Runtime | EventLog | Gateway

/** The live state equals the one its log folds to at the same offset. */
const checkReplay = Effect.gen(function*() {
  const runtime = yield* Runtime
  const live = yield* runtime.query((state, offset) => ({ offset, state: { ...snapshot(state), ...coordinationSnapshot(state) } }))
  const replayed = yield* Replay.stateAt(live.offset, config)
  expect(replayed.offset).toBe(live.offset)
  const differ = differences(live.state, { ...snapshot(replayed.state), ...coordinationSnapshot(replayed.state) })
  if (differ.length > 0) throw new Error(`replay differs at offset ${live.offset}: ${differ.slice(0, 5).join("; ")}`)
})

const scenario = (commands: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    const logContext = yield* Layer.build(EventLogMemory.layer())
    let scope = yield* Scope.make()
    // Built in the scope of the moment: after a crash, the new one.
    const start = Effect.suspend(() =>
      Effect.map(
        Layer.buildWithScope(Switchboard.layer(config), scope).pipe(Effect.provide(logContext)),
        (context) => Context.merge(logContext, context)
      )
    )
    let context = yield* start
    let n = 0
    const run = <A, E>(effect: Effect.Effect<A, E, Services | Scope.Scope>) =>
      Effect.either(effect.pipe(Effect.provide(context), Scope.extend(scope)))
    const register = (id: string) =>
      Effect.flatMap(Registry, (registry) => registry.register({ agent_id: id, name: id, capabilities: ["work"] }))
    /** A consumer that takes every delivery (and acknowledges nothing itself), until the next crash. */
    const subscribe = (agent: string) =>
      Effect.gen(function*() {
        const sub = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        yield* Effect.either(Effect.gen(function*() {
          const stream = yield* (yield* Router).subscription(agent)
          yield* Effect.forkIn(Stream.runDrain(stream), sub)
        }).pipe(Effect.provide(context), Scope.extend(sub)))
      })
    yield* run(Effect.forEach(["p", ...agents], register))
    yield* run(Effect.flatMap(Gateway, (gateway) => gateway.loadPolicy(policy)))
    yield* Effect.forEach(agents, subscribe)
    const pickOf = <A>(items: ReadonlyArray<A>, i: number) => items.length === 0 ? undefined : items[i % items.length]
    const tasks = (status: string) =>
      Effect.map(Effect.flatMap(Scheduler, (s) => s.tasks({ status: status as never })), (list) => list)
    for (const step of commands) {
      switch (step._tag) {
        case "submit":
          yield* run(Effect.flatMap(Scheduler, (s) =>
            s.submit({
              ...(step.to === "work" ? { capability: "work" } : { agent_id: step.to }),
              priority: step.priority,
              scope: step.scope,
              max_wait_ms: step.wait,
              ...(step.parallel === undefined ? {} : { kind: "k", max_parallel_instances: step.parallel }),
              input: { n: n++ },
              // Sent as p's messages, its sends are checked (and audited) by the message policy.
              submitted_by: step.by ? "p" : undefined
            })))
          break
        case "subscribe":
          yield* subscribe(step.agent)
          break
        case "ack":
          yield* run(Effect.gen(function*() {
            const router = yield* Router
            const { state } = yield* router.snapshot
            const mine = Object.entries(state.messages).filter(([, m]) => m.recipients.includes(step.agent) && m.location === "in_flight")
            const chosen = pickOf(mine, step.pick)
            if (chosen === undefined) return
            yield* router.ack({
              agent_id: step.agent,
              message_id: chosen[0],
              stage: step.stage,
              error_code: step.stage === "FAILED" ? (step.preempted ? "FORCED_PREEMPTION" : "INTERNAL_ERROR") : undefined
            })
          }))
          break
        case "yield":
        case "section":
          yield* run(Effect.gen(function*() {
            const scheduler = yield* Scheduler
            const task = pickOf(yield* tasks("DISPATCHED"), step.pick)
            if (task === undefined) return
            const request = { agent_id: task.assigned_to!, task_id: task.task_id }
            if (step._tag === "yield") yield* scheduler.yieldTask(request)
            else if (step.enter) yield* scheduler.enterSection({ ...request, max_ms: 1_000 })
            else yield* scheduler.exitSection(request)
          }))
          break
        case "heartbeat":
          yield* run(Effect.flatMap(Registry, (registry) => registry.heartbeat({ agent_id: step.agent, state: step.state })))
          break
        case "shutdown":
          yield* run(Effect.flatMap(Scheduler, (s) => s.shutdownAgent({ agent_id: step.agent, grace_ms: step.grace })))
          break
        case "register":
          yield* run(register(step.agent))
          break
        case "worktree":
          yield* run(Effect.gen(function*() {
            const worktrees = yield* Worktrees
            const agent_id = step.agent
            switch (step.op) {
              case "bind":
                return yield* worktrees.bind({ agent_id, repo_id: "repo", worktree_id: step.target })
              case "switch":
                return yield* worktrees.requestSwitch({ agent_id, target_worktree_id: step.target, requires_hitl: step.hitl })
              case "approve":
                return yield* worktrees.approveSwitch({ agent_id })
              case "reject":
                return yield* worktrees.rejectSwitch({ agent_id })
              case "revoke":
                return yield* worktrees.revoke({ agent_id })
              case "fail":
                return yield* worktrees.reportBindFailure({ agent_id, reason: "random" })
              case "unbind":
                return yield* worktrees.unbind({ agent_id })
              case "away":
                // Bound, then away from home: each step may be refused by what came before.
                yield* Effect.either(worktrees.bind({ agent_id, repo_id: "repo", worktree_id: "w1" }))
                yield* Effect.either(worktrees.requestSwitch({ agent_id, target_worktree_id: step.target === "w1" ? "w3" : step.target }))
                return yield* worktrees.approveSwitch({ agent_id })
            }
          }))
          break
        case "propose":
          yield* run(Effect.flatMap(Negotiation, (rooms) =>
            rooms.submitProposal({ artifact_type: "CODE", producer_id: "p", requested_critics: step.critics, artifact: { n: n++ } })))
          break
        case "vote":
          yield* run(Effect.gen(function*() {
            const rooms = yield* Negotiation
            const runtime = yield* Runtime
            const ids = yield* runtime.query((state) => [...state.rooms.keys()])
            const room = pickOf(ids, step.pick)
            if (room === undefined) return
            yield* rooms.submitVote({ negotiation_room_id: room, critic_id: step.agent, score: step.score, confidence: step.confidence, passed: step.score >= 7 })
          }))
          break
        case "invoke":
          yield* run(Effect.flatMap(Hitl, (hitl) => hitl.invoke({ reason: "MANUAL_OVERRIDE", fallback: step.fallback, context: { n: n++ } })))
          break
        case "decide":
          yield* run(Effect.gen(function*() {
            const hitl = yield* Hitl
            const item = pickOf(yield* hitl.queue(), step.pick)
            if (item === undefined) return
            yield* hitl.decide({ id: item.id, action: step.action, rationale: "random", args: step.action === "modify" ? {} : undefined })
          }))
          break
        case "tick":
          yield* TestClock.adjust(step.ms)
          break
        case "crash":
          yield* Scope.close(scope, Exit.void)
          scope = yield* Scope.make()
          context = yield* start
          yield* Effect.forEach(agents, subscribe)
          break
      }
      const checked = yield* run(checkReplay)
      if (Either.isLeft(checked)) return yield* Effect.die(checked.left)
    }
    yield* run(Effect.flatMap(EventLog, (log) => Stream.runForEach(log.read(), (record) => Effect.sync(() => seen.add(record.event._tag)))))
    // Every audit record of the run (invocations, decisions, checks of binds and sends) chains to the one before it.
    const verified = yield* run(Effect.flatMap(Gateway, (gateway) => gateway.verifyAudit))
    if (Either.isLeft(verified) || !verified.right.ok) return yield* Effect.die(new Error(`the audit chain breaks: ${JSON.stringify(verified)}`))
    yield* Scope.close(scope, Exit.void)
  }).pipe(Effect.scoped, Effect.provide(TestContext.TestContext))

/** The event types the scenarios made: they must reach every corner of coordination. */
const seen = new Set<string>()

/** A hand-written history that reaches every corner, run before the random ones. */
const tour: Array<Command> = [
  { _tag: "submit", by: true, to: "a", priority: 5, scope: "repo", wait: undefined, parallel: undefined },
  { _tag: "section", pick: 0, enter: true },
  { _tag: "submit", by: false, to: "a", priority: -5, scope: undefined, wait: undefined, parallel: undefined },
  { _tag: "worktree", agent: "a", op: "away", target: "w2", hitl: false },
  { _tag: "worktree", agent: "b", op: "bind", target: "w1", hitl: false },
  { _tag: "worktree", agent: "b", op: "fail", target: "w1", hitl: false },
  { _tag: "propose", critics: ["a"] },
  { _tag: "vote", pick: 0, agent: "a", score: 8, confidence: 0.9 },
  { _tag: "invoke", fallback: "EXTEND_TIMEOUT" },
  { _tag: "heartbeat", agent: "b", state: "INITIALIZING" },
  { _tag: "shutdown", agent: "c", grace: 500 },
  { _tag: "crash" },
  { _tag: "tick", ms: 2_100 },
  { _tag: "decide", pick: 0, action: "approve" },
  { _tag: "tick", ms: 2_100 }
]

describe("Coordination replay", () => {
  it.effect("a live runtime's state always equals the state replayed from its log (random scenarios of coordination, with restarts and clock jumps)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 40 }), (commands) => Effect.runPromise(scenario(commands))),
        { numRuns: 60, examples: [[tour]] }
      )
    ).pipe(Effect.tap(() =>
      expect([
        "TaskDispatched", "TaskPreemptionRequested", "TaskRequeued", "TaskSectionEntered", "AgentStateTimedOut",
        "AgentShutdownRequested", "WorktreeSwitchApproved", "WorktreeBindFailed", "RoomDecided", "HitlDecided", "HitlExtended"
      ].filter((tag) => !seen.has(tag))).toEqual([])
    )))
})
