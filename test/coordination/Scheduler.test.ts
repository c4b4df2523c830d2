/**
 * The scheduler's rules on the pure model (PROTOCOLS.md §1 "Coordination"):
 * priority order and FIFO, dispatch through the router, preemption only for
 * a strictly more urgent task (cooperative, sections, forced), scope
 * conflicts and the human asked when a task cannot wait,
 * max_parallel_instances, agent state timeouts, ShutdownAgent, the activity
 * buffer. The clock is the test's; every test ends by folding its log again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  decideEnterSection,
  decideExitSection,
  decidePurgeActivity,
  decideRequestPreemption,
  decideShutdown,
  decideSubmit,
  decideYield
} from "../../src/model/SchedulerDecide.js"
import { decideHitl } from "../../src/model/HitlDecide.js"
import { activityEntry, scopesConflict, taskView } from "../../src/model/Scheduler.js"
import type { SubmitTaskRequest } from "../../src/schema/Scheduler.js"
import { verifyChain } from "../../src/model/Audit.js"
import { decideLoadPolicy } from "../../src/model/Governance.js"
import { accept } from "../../src/model/State.js"
import type { AuditRecorded } from "../../src/schema/GatewayEvents.js"
import { parsePolicy } from "../../src/schema/Policy.js"
import { sameReplay, type World, world } from "../support/coordination.js"

const submit = (w: World, request: SubmitTaskRequest) => w.ok((d) => decideSubmit(d, request))
const task = (w: World, id: string) => taskView(w.state, w.state.tasks.get(id)!)
const status = (w: World, ...ids: ReadonlyArray<string>) => ids.map((id) => w.state.tasks.get(id)!.status)
/** The task message the agent holds now (delivered, not finished). */
const held = (w: World, agent: string) => w.inbox(agent).filter((m) => m.type === "DATA" && m.location === "in_flight")
const finish = (w: World, agent: string) => {
  for (const message of held(w, agent)) w.ack(agent, message.id, "FULFILLED")
}
const expectReplay = (w: World) => {
  const { live, replayed } = sameReplay(w)
  expect(replayed).toEqual(live)
}

describe("dispatch", () => {
  it("by priority (−19 first), FIFO within a priority, one task per agent, through the router", () => {
    const w = world()
    submit(w, { task_id: "late", capability: "work", priority: 5 })
    submit(w, { task_id: "a", capability: "work" })
    submit(w, { task_id: "b", capability: "work" })
    submit(w, { task_id: "urgent", capability: "work", priority: -19, input: { x: 1 } })
    w.register("w", ["work"])
    const order: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const [message] = held(w, "w")
      order.push(message.payload.task_id)
      expect(message).toMatchObject({ correlation: message.payload.task_id, payload: { type: "task" } })
      w.ack("w", message.id, "FULFILLED")
    }
    expect(order).toEqual(["urgent", "a", "b", "late"])
    expect(status(w, "urgent", "a", "b", "late")).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"])
    expect(task(w, "urgent")).toMatchObject({ status: "COMPLETED", attempts: 0, preemptions: 0 })
    expect(w.events("TaskDispatched").map((e: any) => e.message_id)).toEqual(["urgent/1", "a/1", "b/1", "late/1"])
    expectReplay(w)
  })

  it("refuses a task for an unknown agent, a taken id, and one that names neither or both targets", () => {
    const w = world()
    w.register("w")
    submit(w, { task_id: "t", agent_id: "w" })
    expect(w.run((d) => decideSubmit(d, { task_id: "t", agent_id: "w" }))).toMatchObject(Either.left({ _tag: "AlreadyExists" }))
    expect(w.run((d) => decideSubmit(d, { agent_id: "nobody" }))).toMatchObject(Either.left({ _tag: "NoRoute" }))
    expect(w.run((d) => decideSubmit(d, {}))).toMatchObject(Either.left({ _tag: "ValidationError" }))
    expect(w.run((d) => decideSubmit(d, { agent_id: "w", capability: "x" }))).toMatchObject(Either.left({ _tag: "ValidationError" }))
    // Named by the runtime: the next free `task-N`.
    expect(submit(w, { agent_id: "w" }).task_id).toBe("task-2")
  })

  it("a retryable failure requeues the task while attempts are left; then it fails; a non-retryable one fails it at once", () => {
    const w = world({ maxTaskAttempts: 2 })
    w.register("w")
    submit(w, { task_id: "t", agent_id: "w" })
    w.ack("w", "t/1", "FAILED", "INTERNAL_ERROR")
    expect(task(w, "t")).toMatchObject({ status: "DISPATCHED", attempts: 1, message_id: "t/2" })
    w.ack("w", "t/2", "FAILED", "TOOL_TIMEOUT")
    expect(task(w, "t")).toMatchObject({ status: "FAILED", attempts: 2, error_code: "TOOL_TIMEOUT" })
    submit(w, { task_id: "u", agent_id: "w" })
    w.ack("w", "u/1", "REJECTED", "VALIDATION_ERROR")
    expect(task(w, "u")).toMatchObject({ status: "FAILED", error_code: "VALIDATION_ERROR" })
    expectReplay(w)
  })

  it("a task whose message is never acknowledged is delivered again, then dead-lettered and requeued (ACK_TIMEOUT is retryable)", () => {
    const w = world({ ackWaitMs: 1_000, maxAttempts: 2, maxTaskAttempts: 2 })
    w.register("w")
    submit(w, { task_id: "t", agent_id: "w" })
    w.at(1_000)
    expect(w.state.messages.get("t/1")).toMatchObject({ attempts: 2, stage: "RECEIVED" })
    w.at(2_000)
    expect(w.state.messages.get("t/1")).toMatchObject({ stage: "TIMED_OUT", deadLetter: true, errorCode: "ACK_TIMEOUT" })
    expect(task(w, "t")).toMatchObject({ status: "DISPATCHED", attempts: 1, message_id: "t/2" })
    w.at(4_000)
    expect(task(w, "t")).toMatchObject({ status: "FAILED", attempts: 2, error_code: "ACK_TIMEOUT" })
    expectReplay(w)
  })

  it("tasks whose scopes conflict never run at once; others do", () => {
    const w = world()
    w.register("w1", ["work"])
    w.register("w2", ["work"])
    w.register("w3", ["work"])
    expect([scopesConflict("repo", "repo/src"), scopesConflict("repo", "repo:main"), scopesConflict("repo", "repository"), scopesConflict("", "repo")])
      .toEqual([true, true, false, false])
    submit(w, { task_id: "src", capability: "work", scope: "repo/src" })
    submit(w, { task_id: "whole", capability: "work", scope: "repo" })
    submit(w, { task_id: "other", capability: "work", scope: "elsewhere" })
    expect(status(w, "src", "whole", "other")).toEqual(["DISPATCHED", "QUEUED", "DISPATCHED"])
    finish(w, task(w, "src").assigned_to!)
    expect(status(w, "src", "whole")).toEqual(["COMPLETED", "DISPATCHED"])
    expectReplay(w)
  })

  it("max_parallel_instances bounds the running tasks of a kind", () => {
    const w = world()
    for (const id of ["w1", "w2", "w3"]) w.register(id, ["work"])
    for (const id of ["k1", "k2", "k3"]) submit(w, { task_id: id, capability: "work", kind: "k", max_parallel_instances: 2 })
    submit(w, { task_id: "free", capability: "work" })
    expect(status(w, "k1", "k2", "k3", "free")).toEqual(["DISPATCHED", "DISPATCHED", "QUEUED", "DISPATCHED"])
    finish(w, task(w, "k1").assigned_to!)
    expect(status(w, "k3")).toEqual(["DISPATCHED"])
  })

  it("dispatches in one pass that a message policy audits keep the audit chain whole", () => {
    const w = world()
    const yaml = `
id: messages
scope: { kind: global }
messages:
  - { from: "*", to: "*", allow: true }
`
    w.ok((d) => decideLoadPolicy(d.state, Either.getOrThrow(parsePolicy(yaml)), yaml, d.now))
    for (const id of ["planner", "w1", "w2"]) w.register(id, ["work"])
    // Two tasks in one decision: the next pass dispatches both, each send audited.
    w.ok((d) => {
      const first = decideSubmit(d, { task_id: "t1", capability: "work", submitted_by: "planner" })
      const second = decideSubmit(d, { task_id: "t2", capability: "work", submitted_by: "planner" })
      return accept([...first.events, ...second.events])
    })
    expect(status(w, "t1", "t2")).toEqual(["DISPATCHED", "DISPATCHED"])
    const records = (w.events("AuditRecorded") as Array<AuditRecorded>).map((event, i) => ({ offset: i + 1, record: event.record }))
    expect(records.filter((entry) => entry.record.action.startsWith("message")).length).toBe(2)
    expect(verifyChain(records)).toMatchObject({ ok: true })
  })

  it("a task submitted by an agent is sent as that agent's message, governed as it", () => {
    const w = world()
    w.register("planner")
    w.register("w")
    submit(w, { task_id: "t", agent_id: "w", submitted_by: "planner" })
    expect(w.state.messages.get("t/1")).toMatchObject({ producerId: "planner", correlationId: "t" })
  })
})

describe("preemption", () => {
  const busy = (options = {}) => {
    const w = world(options)
    w.register("w", ["work"])
    submit(w, { task_id: "low", capability: "work", priority: 5 })
    w.ack("w", "low/1", "READ")
    return w
  }

  it("only for a strictly more urgent task: an equal one waits", () => {
    const w = busy()
    submit(w, { task_id: "same", capability: "work", priority: 5 })
    expect(task(w, "low").preemption).toBeUndefined()
    expect(w.run((d) => decideRequestPreemption(d, { agent_id: "w", task_id: "same" }))).toEqual(Either.right({
      enqueued: false,
      reason: "only a strictly more urgent task preempts: low has priority 5, same 5"
    }))
    submit(w, { task_id: "urgent", capability: "work", priority: 4 })
    expect(task(w, "low").preemption).toMatchObject({ for_task_id: "urgent", asks: 1, grace_deadline: 10_000 })
    // The agent is asked by a CONTROL envelope on the urgent lane, in the task's conversation.
    const [control] = w.inbox("w").filter((m) => m.type === "CONTROL")
    expect(control).toMatchObject({ id: "low/1/preempt/1", correlation: "low", payload: { type: "preempt", task_id: "low", for_task_id: "urgent", ask: 1 } })
    expect(w.state.messages.get(control.id)!.lane).toBe("PRIVILEGED")
    expectReplay(w)
  })

  it("cooperative: the agent yields at a safe point; the urgent task runs, then the preempted one again", () => {
    const w = busy()
    submit(w, { task_id: "urgent", capability: "work", priority: -1 })
    const yielded = w.ok((d) => decideYield(d, { agent_id: "w", task_id: "low" }))
    expect(yielded.status).toBe("QUEUED")
    expect(w.state.messages.get("low/1")).toMatchObject({ stage: "FAILED", errorCode: "FORCED_PREEMPTION" })
    expect(task(w, "urgent")).toMatchObject({ status: "DISPATCHED", assigned_to: "w" })
    expect(task(w, "low")).toMatchObject({ status: "QUEUED", preemptions: 1, attempts: 0 })
    finish(w, "w")
    expect(task(w, "low")).toMatchObject({ status: "DISPATCHED", message_id: "low/2" })
    expectReplay(w)
  })

  it("cooperative, by an ACK: FAILED with FORCED_PREEMPTION requeues the task as a yield", () => {
    const w = busy()
    submit(w, { task_id: "urgent", capability: "work", priority: -1 })
    w.ack("w", "low/1", "FAILED", "FORCED_PREEMPTION")
    expect(task(w, "low")).toMatchObject({ status: "QUEUED", preemptions: 1, attempts: 0 })
    expect(task(w, "urgent").status).toBe("DISPATCHED")
  })

  it("forced: after the grace the task is taken back, its message FAILED with FORCED_PREEMPTION, and requeued", () => {
    const w = busy({ preemptionGraceMs: 2_000 })
    submit(w, { task_id: "urgent", capability: "work", priority: -1 })
    w.at(1_999)
    expect(task(w, "low").status).toBe("DISPATCHED")
    w.at(2_000)
    expect(w.events("TaskRequeued")).toMatchObject([{ task_id: "low", reason: "forced_preemption", at: 2_000 }])
    expect(w.state.messages.get("low/1")).toMatchObject({ stage: "FAILED", errorCode: "FORCED_PREEMPTION" })
    expect(task(w, "urgent")).toMatchObject({ status: "DISPATCHED", assigned_to: "w" })
    // The agent's late FULFILLED changes nothing.
    w.ack("w", "low/1", "FULFILLED")
    expect(task(w, "low")).toMatchObject({ status: "QUEUED", preemptions: 1 })
    expectReplay(w)
  })

  it("a task not delivered yet is simply taken back", () => {
    const w = world()
    w.register("w", ["work"])
    w.heartbeat("w")
    submit(w, { task_id: "low", capability: "work", priority: 5 })
    // Not delivered: the harness below holds deliveries back.
    const held = world({}, false)
    held.register("w", ["work"])
    submit(held, { task_id: "low", capability: "work", priority: 5 })
    submit(held, { task_id: "urgent", capability: "work", priority: 0 })
    expect(held.events("TaskRequeued")).toMatchObject([{ task_id: "low", reason: "preempted" }])
    expect(task(held, "urgent").status).toBe("DISPATCHED")
    expect(held.state.messages.get("low/1")).toMatchObject({ stage: "FAILED", errorCode: "FORCED_PREEMPTION" })
  })

  it("a non-preemptible section: the ask waits for its end (or its declared maximum), then the grace runs", () => {
    const w = busy({ preemptionGraceMs: 1_000 })
    w.ok((d) => decideEnterSection(d, { agent_id: "w", task_id: "low", max_ms: 5_000 }))
    submit(w, { task_id: "urgent", capability: "work", priority: -1 })
    expect(task(w, "low").preemption).toMatchObject({ asks: 1, grace_deadline: undefined })
    // A second section while asked to yield: no.
    w.ok((d) => decideExitSection(d, { agent_id: "w", task_id: "low" }))
    expect(task(w, "low").preemption).toMatchObject({ asks: 2, grace_deadline: 1_000 })
    expect(w.run((d) => decideEnterSection(d, { agent_id: "w", task_id: "low", max_ms: 5_000 }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.at(1_000)
    expect(task(w, "urgent").assigned_to).toBe("w")
  })

  it("a section that outlives its declared maximum ends there, and the ask is made again", () => {
    const w = busy({ preemptionGraceMs: 1_000, maxSectionMs: 3_000 })
    // Declared 10 s, cut to the runtime's maximum of 3 s.
    expect(w.ok((d) => decideEnterSection(d, { agent_id: "w", task_id: "low", max_ms: 10_000 })).section_until).toBe(3_000)
    submit(w, { task_id: "urgent", capability: "work", priority: -1 })
    w.at(3_000)
    expect(w.events("TaskSectionExited")).toMatchObject([{ task_id: "low", expired: true }])
    expect(task(w, "low").preemption).toMatchObject({ asks: 2, grace_deadline: 4_000 })
    expect(w.inbox("w").filter((m) => m.type === "CONTROL").map((m) => m.id)).toEqual(["low/1/preempt/1", "low/1/preempt/2"])
    w.at(4_000)
    expect(task(w, "urgent").assigned_to).toBe("w")
    expectReplay(w)
  })

  it("yield, sections and requests are refused for a task that is not the agent's, not running, or unknown", () => {
    const w = busy()
    w.register("x")
    expect(w.run((d) => decideYield(d, { agent_id: "x", task_id: "low" }))).toMatchObject(Either.left({ _tag: "PermissionDenied" }))
    expect(w.run((d) => decideYield(d, { agent_id: "w", task_id: "nope" }))).toMatchObject(Either.left({ _tag: "NotFound" }))
    expect(w.run((d) => decideRequestPreemption(d, { agent_id: "w", task_id: "nope" }))).toMatchObject(Either.left({ _tag: "NotFound" }))
    expect(w.run((d) => decideRequestPreemption(d, { agent_id: "ghost", task_id: "low" }))).toMatchObject(Either.left({ _tag: "NoRoute" }))
    expect(w.run((d) => decideRequestPreemption(d, { agent_id: "w", task_id: "low" }))).toMatchObject(Either.right({ enqueued: false }))
    finish(w, "w")
    expect(w.run((d) => decideEnterSection(d, { agent_id: "w", task_id: "low", max_ms: 1 }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
  })

  it("RequestPreemption for a more urgent task asks the agent's task to yield", () => {
    const w = world({}, false)
    w.register("w", ["work"])
    w.register("v", ["other"])
    submit(w, { task_id: "low", agent_id: "w", priority: 3 })
    w.deliver("w")
    // Pinned to v, which cannot run it: no automatic preemption of w; the request says w may not run it.
    submit(w, { task_id: "pinned", agent_id: "v", priority: -5, scope: "s" })
    expect(w.run((d) => decideRequestPreemption(d, { agent_id: "w", task_id: "pinned" }))).toMatchObject(Either.right({ enqueued: false }))
  })
})

describe("a task that cannot wait", () => {
  it("a conflict past max_wait_ms goes to a human (CONFLICT); deny cancels the task", () => {
    const w = world()
    w.register("w1", ["work"])
    w.register("w2", ["work"])
    submit(w, { task_id: "holder", capability: "work", scope: "repo", priority: -5 })
    submit(w, { task_id: "waiter", capability: "work", scope: "repo/docs", max_wait_ms: 1_000 })
    w.at(1_000)
    const [invoked] = w.events("HitlInvoked") as Array<any>
    expect(invoked).toMatchObject({ reason: "CONFLICT", subject: { _tag: "Task", task_id: "waiter" }, context: { conflicts_with: [{ task_id: "holder" }] } })
    expect(task(w, "waiter").hitl_id).toBe(invoked.hitl_id)
    w.ok((d) => decideHitl(d, { id: invoked.hitl_id, action: "deny", rationale: "not now" }))
    expect(task(w, "waiter")).toMatchObject({ status: "CANCELLED" })
    expectReplay(w)
  })

  it("approved, the tasks in its way are asked to yield whatever their priority; modify changes it; 0 means it cannot wait at all", () => {
    const w = world({ preemptionGraceMs: 500 })
    w.register("w1", ["work"])
    w.register("w2", ["work"])
    submit(w, { task_id: "holder", capability: "work", scope: "repo", priority: -19 })
    submit(w, { task_id: "waiter", capability: "work", scope: "repo", priority: 20, max_wait_ms: 0 })
    const [invoked] = w.events("HitlInvoked") as Array<any>
    expect(invoked.at).toBe(0)
    w.ok((d) => decideHitl(d, { id: invoked.hitl_id, action: "approve", rationale: "the docs first" }))
    expect(task(w, "holder").preemption).toMatchObject({ for_task_id: "waiter" })
    w.at(500)
    expect(status(w, "holder", "waiter")).toEqual(["QUEUED", "DISPATCHED"])
    // The conflict cleared with the task running: nothing was left open for the human.
    expect(w.state.hitl.get(invoked.hitl_id)!.status).toBe("decided")

    const m = world()
    m.register("w1", ["work"])
    m.register("w2", ["work"])
    submit(m, { task_id: "holder", capability: "work", scope: "repo" })
    submit(m, { task_id: "waiter", capability: "work", scope: "repo", max_wait_ms: 0 })
    const [asked] = m.events("HitlInvoked") as Array<any>
    expect(m.run((d) => decideHitl(d, { id: asked.hitl_id, action: "modify", rationale: "x", args: { scope: 5 } }))).toMatchObject(Either.left({ _tag: "ValidationError" }))
    m.ok((d) => decideHitl(d, { id: asked.hitl_id, action: "modify", rationale: "elsewhere", args: { scope: "other" } }))
    expect(task(m, "waiter")).toMatchObject({ status: "DISPATCHED", scope: "other" })
  })

  it("with nothing in its way but no agent free, past max_wait_ms a human is asked (TASK_ESCALATION); the conflict clearing withdraws a question", () => {
    const w = world()
    w.register("w", ["work"])
    submit(w, { task_id: "first", capability: "work" })
    submit(w, { task_id: "second", capability: "work", max_wait_ms: 100 })
    w.at(100)
    const [invoked] = w.events("HitlInvoked") as Array<any>
    expect(invoked).toMatchObject({ reason: "TASK_ESCALATION", subject: { task_id: "second" } })
    finish(w, "w")
    expect(task(w, "second").status).toBe("DISPATCHED")
    expect(w.state.hitl.get(invoked.hitl_id)).toMatchObject({ status: "withdrawn" })
    expectReplay(w)
  })
})

describe("agents", () => {
  for (const [state, ms] of [["INITIALIZING", 60_000], ["WAITING_RESOURCES", 300_000], ["SUSPENDED", 3_600_000], ["RECOVERING", 120_000], ["SHUTTING_DOWN", 30_000]] as const) {
    it(`past ${ms / 1000} s in ${state} an agent is FAILED (an event), its tasks requeued elsewhere`, () => {
      // Its message waits in flight (no ack wait runs out meanwhile).
      const w = world({ livenessTimeoutMs: undefined, ackWaitMs: 10 * 3_600_000 })
      w.register("a", ["work"])
      submit(w, { task_id: "t", capability: "work" })
      expect(task(w, "t").assigned_to).toBe("a")
      w.heartbeat("a", state)
      w.register("b", ["work"])
      w.at(ms - 1)
      expect(w.state.agents.get("a")!.state).toBe(state)
      w.at(ms)
      expect(w.events("AgentStateTimedOut")).toMatchObject([{ agent_id: "a", state, since: 0, at: ms }])
      expect(w.state.agents.get("a")!.state).toBe("FAILED")
      expect(task(w, "t")).toMatchObject({ status: "DISPATCHED", assigned_to: "b" })
      expect(w.state.messages.get("t/1")).toMatchObject({ stage: "FAILED", errorCode: "AGENT_UNAVAILABLE" })
      // FAILED, it takes no messages until it reports another state.
      w.heartbeat("a", "RUNNABLE")
      expect(w.state.agents.get("a")!.state).toBe("RUNNABLE")
      expectReplay(w)
    })
  }

  it("a state reported again does not restart its timeout; another state does", () => {
    const w = world({ livenessTimeoutMs: undefined })
    w.register("a")
    w.heartbeat("a", "INITIALIZING")
    w.at(50_000)
    w.heartbeat("a", "INITIALIZING")
    w.at(60_000)
    expect(w.state.agents.get("a")!.state).toBe("FAILED")
    w.heartbeat("a", "INITIALIZING")
    w.at(100_000)
    w.heartbeat("a", "RUNNING")
    w.at(500_000)
    expect(w.state.agents.get("a")!.state).toBe("RUNNING")
  })

  it("a task whose agent is lost (no heartbeat) is requeued to another", () => {
    const w = world({ livenessTimeoutMs: 1_000 })
    w.register("a", ["work"])
    submit(w, { task_id: "t", capability: "work" })
    w.at(500)
    w.register("b", ["work"])
    w.at(1_000)
    expect(task(w, "t")).toMatchObject({ status: "DISPATCHED", assigned_to: "b" })
    expect(w.events("TaskRequeued")).toMatchObject([{ task_id: "t", reason: "agent_lost" }])
  })

  it("ShutdownAgent: no new work; in-flight work finishes, then the agent is deregistered", () => {
    const w = world({ livenessTimeoutMs: undefined })
    w.register("a", ["work"])
    submit(w, { task_id: "t", capability: "work" })
    expect(w.ok((d) => decideShutdown(d, { agent_id: "a", grace_ms: 10_000 }))).toEqual({ ok: true, deadline: 10_000, deregistered: false })
    expect(w.state.agents.get("a")!.state).toBe("SHUTTING_DOWN")
    submit(w, { task_id: "u", capability: "work" })
    expect(task(w, "u").status).toBe("QUEUED")
    // Asked again: the same deadline. What it reports does not lift it.
    expect(w.ok((d) => decideShutdown(d, { agent_id: "a", grace_ms: 99 })).deadline).toBe(10_000)
    w.heartbeat("a", "RUNNING")
    expect(w.state.agents.get("a")!.state).toBe("SHUTTING_DOWN")
    // Its state's own timeout (30 s) does not apply: the grace does.
    finish(w, "a")
    expect(w.state.agents.get("a")!.registered).toBe(false)
    expect(w.events("AgentDeregistered")).toMatchObject([{ agent_id: "a", reason: "shut down: its work is done" }])
    expect(w.run((d) => decideShutdown(d, { agent_id: "a" }))).toMatchObject(Either.left({ _tag: "NoRoute" }))
    expectReplay(w)
  })

  it("ShutdownAgent: past the grace, its tasks are requeued (AGENT_SHUTDOWN) and it is deregistered; idle, it goes at once", () => {
    const w = world({ livenessTimeoutMs: undefined })
    w.register("a", ["work"])
    w.register("idle")
    submit(w, { task_id: "t", capability: "work" })
    w.ok((d) => decideShutdown(d, { agent_id: "a", grace_ms: 40_000 }))
    w.at(39_999)
    expect(w.state.agents.get("a")!.registered).toBe(true)
    w.register("b", ["work"])
    w.at(40_000)
    expect(w.state.agents.get("a")!.registered).toBe(false)
    expect(w.state.messages.get("t/1")).toMatchObject({ stage: "FAILED", errorCode: "AGENT_SHUTDOWN" })
    expect(task(w, "t")).toMatchObject({ status: "DISPATCHED", assigned_to: "b" })
    expect(w.ok((d) => decideShutdown(d, { agent_id: "idle" }))).toEqual({ ok: true, deadline: 70_000, deregistered: true })
    expectReplay(w)
  })
})

describe("memory", () => {
  it("a finished task is forgotten retentionMs after it finished, as a finished message is", () => {
    const w = world({ retentionMs: 1_000, dedupWindowMs: 1_000 })
    w.register("w")
    submit(w, { task_id: "t", agent_id: "w" })
    finish(w, "w")
    w.at(999)
    w.heartbeat("w")
    expect(w.state.tasks.has("t")).toBe(true)
    w.at(1_000)
    w.heartbeat("w")
    expect(w.state.tasks.has("t")).toBe(false)
    // Its id is free again.
    submit(w, { task_id: "t", agent_id: "w" })
    expectReplay(w)
  })
})

describe("the activity buffer", () => {
  it("records what each agent's tasks did; PurgeActivity forgets the lines of some", () => {
    const w = world()
    w.register("w")
    submit(w, { task_id: "t1", agent_id: "w" })
    finish(w, "w")
    submit(w, { task_id: "t2", agent_id: "w" })
    const lines = () => [...(w.state.activity.get("w") ?? [])].map(activityEntry)
    expect(lines().map((line) => [line.task_id, line.description])).toEqual([
      ["t1", "dispatched (message t1/1)"],
      ["t1", "completed"],
      ["t2", "dispatched (message t2/1)"]
    ])
    expect(lines()[0]).toMatchObject({ repo_id: "", worktree_id: "", branch: "", timestamp: "1970-01-01T00:00:00.000Z" })
    expect(w.ok((d) => decidePurgeActivity(d, { agent_id: "w", task_ids: ["t1", "nope"] }))).toEqual({ purged: 2 })
    expect(lines().map((line) => line.task_id)).toEqual(["t2"])
    expect(w.ok((d) => decidePurgeActivity(d, { agent_id: "nobody", task_ids: ["t2"] }))).toEqual({ purged: 0 })
    expectReplay(w)
  })
})
