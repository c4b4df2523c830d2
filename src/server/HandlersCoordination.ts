/**
 * Coordination over HTTP: the scheduler, worktree bindings, negotiation
 * rooms and the HITL queue. As everywhere in the server, a handler names
 * what the request asks, and the operation checks who calls and calls the
 * service (`CoordinationAccess.ts`, shared with SW4RM's gRPC services, so
 * the rules are one whatever the wire).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { Hitl } from "../services/Hitl.js"
import { Negotiation } from "../services/Negotiation.js"
import { Scheduler } from "../services/Scheduler.js"
import { Worktrees } from "../services/Worktrees.js"
import { SwitchboardApi } from "./Api.js"
import * as Access from "./CoordinationAccess.js"

export const scheduler = HttpApiBuilder.group(SwitchboardApi, "scheduler", (handlers) =>
  Effect.map(Scheduler, (service) => {
    const scheduler = Access.scheduler(service)
    return handlers
      .handle("submit", ({ payload }) => scheduler.submit(payload))
      .handle("tasks", ({ urlParams }) => scheduler.tasks(urlParams))
      .handle("task", ({ path }) => scheduler.task(path.task_id))
      .handle("preempt", ({ path, payload }) => scheduler.requestPreemption({ ...payload, task_id: path.task_id }))
      .handle("yield", ({ path, payload }) => scheduler.yieldTask({ agent_id: payload.agent_id, task_id: path.task_id }))
      .handle("enterSection", ({ path, payload }) => scheduler.enterSection({ ...payload, task_id: path.task_id }))
      .handle("exitSection", ({ path, payload }) => scheduler.exitSection({ agent_id: payload.agent_id, task_id: path.task_id }))
      .handle("shutdown", ({ path, payload }) => scheduler.shutdownAgent({ ...payload, agent_id: path.agent_id }))
      .handle("activity", ({ path }) => scheduler.pollActivity(path.agent_id))
      .handle("purgeActivity", ({ path, payload }) => scheduler.purgeActivity({ ...payload, agent_id: path.agent_id }))
  }))

export const worktrees = HttpApiBuilder.group(SwitchboardApi, "worktrees", (handlers) =>
  Effect.map(Worktrees, (service) => {
    const worktrees = Access.worktrees(service)
    return handlers
      .handle("bindings", ({ urlParams }) => worktrees.bindings(urlParams))
      .handle("status", ({ path }) => worktrees.status(path.agent_id))
      .handle("bind", ({ path, payload }) => worktrees.bind({ ...payload, agent_id: path.agent_id }))
      .handle("unbind", ({ path, payload }) => worktrees.unbind({ ...payload, agent_id: path.agent_id }))
      .handle("requestSwitch", ({ path, payload }) => worktrees.requestSwitch({ ...payload, agent_id: path.agent_id }))
      .handle("approveSwitch", ({ path, payload }) => worktrees.approveSwitch({ ...payload, agent_id: path.agent_id }))
      .handle("rejectSwitch", ({ path, payload }) => worktrees.rejectSwitch({ ...payload, agent_id: path.agent_id }))
      .handle("revoke", ({ path, payload }) => worktrees.revoke({ ...payload, agent_id: path.agent_id }))
      .handle("bindFailed", ({ path, payload }) => worktrees.reportBindFailure({ ...payload, agent_id: path.agent_id }))
  }))

export const negotiation = HttpApiBuilder.group(SwitchboardApi, "negotiation", (handlers) =>
  Effect.map(Negotiation, (service) => {
    const rooms = Access.negotiation(service)
    return handlers
      .handle("propose", ({ payload }) => rooms.submitProposal(payload))
      .handle("rooms", ({ urlParams }) => rooms.rooms(urlParams))
      .handle("room", ({ path }) => rooms.room(path.room_id))
      .handle("vote", ({ path, payload }) => rooms.submitVote({ ...payload, negotiation_room_id: path.room_id }))
      .handle("votes", ({ path }) =>
        Effect.map(rooms.room(path.room_id), (found) => ({ votes: found.votes, vote_count: found.votes.length })))
      .handle("decision", ({ path }) => rooms.decision(path.room_id))
      .handle("waitForDecision", ({ path, urlParams }) =>
        rooms.waitForDecision({ negotiation_room_id: path.room_id, timeout_ms: urlParams.timeout_ms }))
  }))

export const hitl = HttpApiBuilder.group(SwitchboardApi, "hitl", (handlers) =>
  Effect.map(Hitl, (service) => {
    const hitl = Access.hitl(service)
    return handlers
      .handle("invoke", ({ payload }) => hitl.invoke(payload))
      .handle("queue", ({ urlParams }) => hitl.queue(urlParams))
      .handle("invocation", ({ path }) => hitl.invocation(path.id))
      .handle("decide", ({ path, payload }) => hitl.decide({ ...payload, id: path.id }))
      .handle("wait", ({ path, urlParams }) => hitl.awaitDecision({ id: path.id, timeout_ms: urlParams.timeout_ms }))
  }))
