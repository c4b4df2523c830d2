/**
 * Who may do what with coordination, for every edge that serves it (the
 * HTTP routes, SW4RM's gRPC services): each operation is the service's
 * method behind its access rule, so that one rule holds whatever the wire.
 *
 * An agent's key acts as its agent only: it submits tasks as their
 * submitter, yields and sections its own tasks, shuts down and reads the
 * activity of its own agent, binds and switches its own worktree, proposes
 * as the producer, votes as the critic, asks a human as itself, and reads
 * only what concerns it. Approving and rejecting switches, revoking them,
 * preempting for a task and answering the HITL queue are the operator's.
 * Refusals, the edge's own and the runtime's, are audited (`Access.ts`).
 */
import { Effect } from "effect"
import { FailedPrecondition } from "../schema/CoordinationErrors.js"
import type { Hitl } from "../services/Hitl.js"
import type { Negotiation } from "../services/Negotiation.js"
import type { Scheduler } from "../services/Scheduler.js"
import type { Worktrees } from "../services/Worktrees.js"
import { actAs, actAsOneOf, auditRefusal, operatorOnly } from "./Access.js"
import { Caller } from "./Api.js"

/** The agent a request acts as: its key's, or for the operator the one it names (or none). */
export const asCaller = (named: string | undefined, action: string) =>
  Effect.flatMap(Caller, (caller) => {
    if (caller._tag === "Operator") return Effect.succeed(named)
    const agent = named ?? caller.agent_id
    return Effect.as(actAs(agent, action), agent)
  })

/** A refusal of the runtime's for an agent's key is audited, as the edge's own are. */
const audited = <A, E, R>(action: string, effect: Effect.Effect<A, E, R>) =>
  Effect.tapError(effect, (error) => auditRefusal(action, error as { readonly _tag: string; readonly reason?: string }))

/** The agent's own, audited. */
const own = <A, E, R>(agent_id: string, action: string, effect: Effect.Effect<A, E, R>) =>
  Effect.zipRight(actAs(agent_id, action), audited(action, effect))

const operator = <A, E, R>(action: string, effect: Effect.Effect<A, E, R>) => Effect.zipRight(operatorOnly(action), effect)

type In<F> = F extends (request: infer A) => unknown ? A : never

/**
 * A list's filter as the caller may ask it: an agent's key lists what
 * concerns its own agent (naming another is refused), the operator what it
 * names. The runtime then selects the page itself, so that a page an agent
 * reads is full and its cursor holds, where thinning a page here would not.
 */
const listed = <F extends { readonly agent_id?: string | undefined }>(filter: F | undefined, action: string) =>
  Effect.map(asCaller(filter?.agent_id, action), (agent_id): F => ({ ...filter, agent_id }) as F)

export const scheduler = (service: Scheduler["Type"]) => {
  /** A task is read by its submitter, the agent running it, the agent it names, and the operator. */
  const concerning = (task_id: string, action: string) =>
    Effect.tap(service.task(task_id), (task) =>
      actAsOneOf([task.submitted_by, task.assigned_to, task.agent_id].flatMap((id) => id === undefined ? [] : [id]), action, `task ${task_id}`))
  return {
    submit: (request: In<typeof service.submit>) =>
      Effect.flatMap(asCaller(request.submitted_by, "tasks.submit"), (submitted_by) => service.submit({ ...request, submitted_by })),
    tasks: (filter: In<typeof service.tasks>) =>
      Effect.gen(function*() {
        const caller = yield* Caller
        if (filter?.agent_id !== undefined) yield* actAs(filter.agent_id, "tasks.list")
        const tasks = yield* service.tasks(filter)
        if (caller._tag === "Operator") return tasks
        const me = caller.agent_id
        return tasks.filter((task) => task.submitted_by === me || task.assigned_to === me || task.agent_id === me)
      }),
    task: (task_id: string) => concerning(task_id, "tasks.read"),
    requestPreemption: (request: In<typeof service.requestPreemption>) =>
      operator("tasks.preempt", service.requestPreemption(request)),
    yieldTask: (request: In<typeof service.yieldTask>) => own(request.agent_id, "tasks.yield", service.yieldTask(request)),
    enterSection: (request: In<typeof service.enterSection>) =>
      own(request.agent_id, "tasks.section", service.enterSection(request)),
    exitSection: (request: In<typeof service.exitSection>) => own(request.agent_id, "tasks.section", service.exitSection(request)),
    shutdownAgent: (request: In<typeof service.shutdownAgent>) =>
      Effect.zipRight(actAs(request.agent_id, "agents.shutdown"), service.shutdownAgent(request)),
    pollActivity: (agent_id: string) => Effect.zipRight(actAs(agent_id, "agents.activity"), service.pollActivity(agent_id)),
    purgeActivity: (request: In<typeof service.purgeActivity>) =>
      Effect.zipRight(actAs(request.agent_id, "agents.activity"), service.purgeActivity(request))
  }
}

export const worktrees = (service: Worktrees["Type"]) => ({
  /** An agent's key lists its own binding only. */
  bindings: (filter: In<typeof service.bindings>) => Effect.flatMap(listed(filter, "worktree.list"), service.bindings),
  status: (agent_id: string) => own(agent_id, "worktree.status", service.status(agent_id)),
  bind: (request: In<typeof service.bind>) => own(request.agent_id, "worktree.bind", service.bind(request)),
  unbind: (request: In<typeof service.unbind>) => own(request.agent_id, "worktree.unbind", service.unbind(request)),
  requestSwitch: (request: In<typeof service.requestSwitch>) =>
    own(request.agent_id, "worktree.switch", service.requestSwitch(request)),
  approveSwitch: (request: In<typeof service.approveSwitch>) => operator("worktree.approve", service.approveSwitch(request)),
  rejectSwitch: (request: In<typeof service.rejectSwitch>) => operator("worktree.reject", service.rejectSwitch(request)),
  revoke: (request: In<typeof service.revoke>) => operator("worktree.revoke", service.revoke(request)),
  reportBindFailure: (request: In<typeof service.reportBindFailure>) =>
    own(request.agent_id, "worktree.failed", service.reportBindFailure(request))
})

export const negotiation = (service: Negotiation["Type"]) => {
  /** A room is read by its producer, its critics and the operator. */
  const room = (room_id: string) =>
    Effect.tap(service.room(room_id), (found) => actAsOneOf([found.producer_id, ...found.requested_critics], "rooms.read", `room ${room_id}`))
  return {
    submitProposal: (request: In<typeof service.submitProposal>) =>
      Effect.zipRight(actAs(request.producer_id, "rooms.propose"), service.submitProposal(request)),
    submitVote: (request: In<typeof service.submitVote>) => own(request.critic_id, "rooms.vote", service.submitVote(request)),
    /** An agent's key lists the rooms it produces or is a critic of. */
    rooms: (filter: In<typeof service.rooms>) => Effect.flatMap(listed(filter, "rooms.list"), service.rooms),
    room,
    /** The decision, once taken; FailedPrecondition before. */
    decision: (room_id: string) =>
      Effect.flatMap(room(room_id), (found) =>
        found.decision === undefined
          ? Effect.fail(new FailedPrecondition({ reason: `room ${room_id} is not decided yet` }))
          : Effect.succeed(found.decision)),
    waitForDecision: (request: In<typeof service.waitForDecision>) =>
      Effect.zipRight(room(request.negotiation_room_id), service.waitForDecision(request))
  }
}

export const hitl = (service: Hitl["Type"]) => {
  /** An invocation is read by the agent that asked and the operator. */
  const invocation = (id: string) =>
    Effect.tap(service.invocation(id), (found) =>
      actAsOneOf(found.invoked_by === undefined ? [] : [found.invoked_by], "hitl.read", `invocation ${id}`))
  return {
    invoke: (request: In<typeof service.invoke>) =>
      Effect.flatMap(asCaller(request.invoked_by, "hitl.invoke"), (invoked_by) => service.invoke({ ...request, invoked_by })),
    queue: (filter: In<typeof service.queue>) => operator("hitl.queue", service.queue(filter)),
    invocation,
    decide: (request: In<typeof service.decide>) =>
      operator("hitl.decide", service.decide({ ...request, by: request.by ?? "operator" })),
    awaitDecision: (request: In<typeof service.awaitDecision>) =>
      Effect.zipRight(invocation(request.id), service.awaitDecision(request))
  }
}
