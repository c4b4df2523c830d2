/**
 * Coordination over HTTP: the scheduler, worktree bindings, negotiation
 * rooms and the HITL queue. As everywhere in the server, a handler checks
 * who calls (`Access.ts`), calls the service, and hands back its answer. An
 * agent's key acts as its agent only: it submits tasks as their submitter,
 * yields and sections its own tasks, binds and switches its own worktree,
 * proposes as the producer, votes as the critic, asks a human as itself,
 * and reads only what concerns it. Approving switches, preempting for a
 * task and answering the HITL queue are the operator's.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { FailedPrecondition } from "../schema/CoordinationErrors.js"
import { Hitl } from "../services/Hitl.js"
import { Negotiation } from "../services/Negotiation.js"
import { Scheduler } from "../services/Scheduler.js"
import { Worktrees } from "../services/Worktrees.js"
import { actAs, actAsOneOf, auditRefusal, operatorOnly } from "./Access.js"
import { Caller, SwitchboardApi } from "./Api.js"

/** The agent a request acts as: its key's, or for the operator the one it names (or none). */
const asCaller = (named: string | undefined, action: string) =>
  Effect.flatMap(Caller, (caller) => {
    if (caller._tag === "Operator") return Effect.succeed(named)
    const agent = named ?? caller.agent_id
    return Effect.as(actAs(agent, action), agent)
  })

/** A refusal of the runtime's for an agent's key is audited, as the edge's own are. */
const audited = <A, E, R>(action: string, effect: Effect.Effect<A, E, R>) =>
  Effect.tapError(effect, (error) => auditRefusal(action, error as { readonly _tag: string; readonly reason?: string }))

export const scheduler = HttpApiBuilder.group(SwitchboardApi, "scheduler", (handlers) =>
  Effect.gen(function*() {
    const scheduler = yield* Scheduler
    /** A task is read by its submitter, the agent running it, the agent it names, and the operator. */
    const concerning = (task_id: string, action: string) =>
      Effect.tap(scheduler.task(task_id), (task) =>
        actAsOneOf([task.submitted_by, task.assigned_to, task.agent_id].flatMap((id) => id === undefined ? [] : [id]), action, `task ${task_id}`))
    return handlers
      .handle("submit", ({ payload }) =>
        Effect.flatMap(asCaller(payload.submitted_by, "tasks.submit"), (submitted_by) => scheduler.submit({ ...payload, submitted_by })))
      .handle("tasks", ({ urlParams }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          if (urlParams.agent_id !== undefined) yield* actAs(urlParams.agent_id, "tasks.list")
          const tasks = yield* scheduler.tasks(urlParams)
          if (caller._tag === "Operator") return tasks
          const me = caller.agent_id
          return tasks.filter((task) => task.submitted_by === me || task.assigned_to === me || task.agent_id === me)
        }))
      .handle("task", ({ path }) => concerning(path.task_id, "tasks.read"))
      .handle("preempt", ({ path, payload }) =>
        Effect.zipRight(operatorOnly("tasks.preempt"), scheduler.requestPreemption({ ...payload, task_id: path.task_id })))
      .handle("yield", ({ path, payload }) =>
        Effect.zipRight(
          actAs(payload.agent_id, "tasks.yield"),
          audited("tasks.yield", scheduler.yieldTask({ agent_id: payload.agent_id, task_id: path.task_id }))
        ))
      .handle("enterSection", ({ path, payload }) =>
        Effect.zipRight(
          actAs(payload.agent_id, "tasks.section"),
          audited("tasks.section", scheduler.enterSection({ ...payload, task_id: path.task_id }))
        ))
      .handle("exitSection", ({ path, payload }) =>
        Effect.zipRight(
          actAs(payload.agent_id, "tasks.section"),
          audited("tasks.section", scheduler.exitSection({ agent_id: payload.agent_id, task_id: path.task_id }))
        ))
      .handle("shutdown", ({ path, payload }) =>
        Effect.zipRight(actAs(path.agent_id, "agents.shutdown"), scheduler.shutdownAgent({ ...payload, agent_id: path.agent_id })))
      .handle("activity", ({ path }) => Effect.zipRight(actAs(path.agent_id, "agents.activity"), scheduler.pollActivity(path.agent_id)))
      .handle("purgeActivity", ({ path, payload }) =>
        Effect.zipRight(actAs(path.agent_id, "agents.activity"), scheduler.purgeActivity({ ...payload, agent_id: path.agent_id })))
  }))

export const worktrees = HttpApiBuilder.group(SwitchboardApi, "worktrees", (handlers) =>
  Effect.gen(function*() {
    const worktrees = yield* Worktrees
    const own = <A, E, R>(agent_id: string, action: string, effect: Effect.Effect<A, E, R>) =>
      Effect.zipRight(actAs(agent_id, action), audited(action, effect))
    const operator = <A, E, R>(action: string, effect: Effect.Effect<A, E, R>) => Effect.zipRight(operatorOnly(action), effect)
    return handlers
      .handle("status", ({ path }) => own(path.agent_id, "worktree.status", worktrees.status(path.agent_id)))
      .handle("bind", ({ path, payload }) => own(path.agent_id, "worktree.bind", worktrees.bind({ ...payload, agent_id: path.agent_id })))
      .handle("unbind", ({ path, payload }) => own(path.agent_id, "worktree.unbind", worktrees.unbind({ ...payload, agent_id: path.agent_id })))
      .handle("requestSwitch", ({ path, payload }) =>
        own(path.agent_id, "worktree.switch", worktrees.requestSwitch({ ...payload, agent_id: path.agent_id })))
      .handle("approveSwitch", ({ path, payload }) =>
        operator("worktree.approve", worktrees.approveSwitch({ ...payload, agent_id: path.agent_id })))
      .handle("rejectSwitch", ({ path, payload }) =>
        operator("worktree.reject", worktrees.rejectSwitch({ ...payload, agent_id: path.agent_id })))
      .handle("revoke", ({ path, payload }) => operator("worktree.revoke", worktrees.revoke({ ...payload, agent_id: path.agent_id })))
      .handle("bindFailed", ({ path, payload }) =>
        own(path.agent_id, "worktree.failed", worktrees.reportBindFailure({ ...payload, agent_id: path.agent_id })))
  }))

export const negotiation = HttpApiBuilder.group(SwitchboardApi, "negotiation", (handlers) =>
  Effect.gen(function*() {
    const rooms = yield* Negotiation
    /** A room is read by its producer, its critics and the operator. */
    const room = (room_id: string, action: string) =>
      Effect.tap(rooms.room(room_id), (found) => actAsOneOf([found.producer_id, ...found.requested_critics], action, `room ${room_id}`))
    return handlers
      .handle("propose", ({ payload }) => Effect.zipRight(actAs(payload.producer_id, "rooms.propose"), rooms.submitProposal(payload)))
      .handle("room", ({ path }) => room(path.room_id, "rooms.read"))
      .handle("vote", ({ path, payload }) =>
        Effect.zipRight(
          actAs(payload.critic_id, "rooms.vote"),
          audited("rooms.vote", rooms.submitVote({ ...payload, negotiation_room_id: path.room_id }))
        ))
      .handle("votes", ({ path }) =>
        Effect.map(room(path.room_id, "rooms.read"), (found) => ({ votes: found.votes, vote_count: found.votes.length })))
      .handle("decision", ({ path }) =>
        Effect.flatMap(room(path.room_id, "rooms.read"), (found) =>
          found.decision === undefined
            ? Effect.fail(new FailedPrecondition({ reason: `room ${path.room_id} is not decided yet` }))
            : Effect.succeed(found.decision)))
      .handle("waitForDecision", ({ path, urlParams }) =>
        Effect.zipRight(
          room(path.room_id, "rooms.read"),
          rooms.waitForDecision({ negotiation_room_id: path.room_id, timeout_ms: urlParams.timeout_ms })
        ))
  }))

export const hitl = HttpApiBuilder.group(SwitchboardApi, "hitl", (handlers) =>
  Effect.gen(function*() {
    const hitl = yield* Hitl
    /** An invocation is read by the agent that asked and the operator. */
    const invocation = (id: string, action: string) =>
      Effect.tap(hitl.invocation(id), (found) =>
        actAsOneOf(found.invoked_by === undefined ? [] : [found.invoked_by], action, `invocation ${id}`))
    return handlers
      .handle("invoke", ({ payload }) =>
        Effect.flatMap(asCaller(payload.invoked_by, "hitl.invoke"), (invoked_by) => hitl.invoke({ ...payload, invoked_by })))
      .handle("queue", ({ urlParams }) => Effect.zipRight(operatorOnly("hitl.queue"), hitl.queue(urlParams)))
      .handle("invocation", ({ path }) => invocation(path.id, "hitl.read"))
      .handle("decide", ({ path, payload }) =>
        Effect.zipRight(operatorOnly("hitl.decide"), hitl.decide({ ...payload, id: path.id, by: payload.by ?? "operator" })))
      .handle("wait", ({ path, urlParams }) =>
        Effect.zipRight(invocation(path.id, "hitl.read"), hitl.awaitDecision({ id: path.id, timeout_ms: urlParams.timeout_ms })))
  }))
