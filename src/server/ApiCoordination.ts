/**
 * Coordination's routes in the HTTP API (PROTOCOLS.md §1 "Coordination"):
 * the scheduler, worktree bindings, negotiation rooms and the HITL queue,
 * one group each, added to `SwitchboardApi` (`Api.ts`). Bodies are the
 * services' own request Schemas, less what the path names; answers are
 * their views. Waits are long polls bounded by a minute.
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { Id } from "../schema/Envelope.js"
import { DecideRequest, InvocationView, InvokeRequest, QueueFilter, QueueItem } from "../schema/Hitl.js"
import { DecisionView, ProposalRequest, RoomId, RoomPage, RoomsFilter, RoomView, Vote, VoteView } from "../schema/Negotiation.js"
import {
  ActivityAnswer,
  EnterSection,
  PreemptAnswer,
  PreemptRequest,
  PurgeActivityRequest,
  PurgeAnswer,
  ShutdownAgentRequest,
  ShutdownAnswer,
  SubmitTaskRequest,
  TaskId,
  TasksFilter,
  TaskView
} from "../schema/Scheduler.js"
import {
  BindFailure,
  BindingPage,
  BindingsFilter,
  BindRequest,
  SwitchApprove,
  SwitchReject,
  SwitchRequest,
  WorktreeStatus
} from "../schema/Worktree.js"
import { PageSize } from "./ApiInspect.js"
import * as P from "./Problem.js"

const AgentPath = Schema.Struct({ agent_id: Id })
const TaskPath = Schema.Struct({ task_id: TaskId })
const RoomPath = Schema.Struct({ room_id: RoomId })
const HitlPath = Schema.Struct({ id: Id })
/** A list's filter in a query string: its page size is text there. */
const Query = <F extends Schema.Struct.Fields>(filter: Schema.Struct<F>) => Schema.Struct({ ...filter.fields, limit: Schema.optional(PageSize(1000)) })
/** A long poll's bound, in milliseconds: at most a minute, 30 s when absent. */
const Wait = Schema.Struct({ timeout_ms: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 60_000))) })

// ---------------------------------------------------------------------------
// The scheduler

const OfAgent = Schema.Struct({ agent_id: Id })

export const scheduler = HttpApiGroup.make("scheduler")
  .add(
    HttpApiEndpoint.post("submit", "/tasks").setPayload(SubmitTaskRequest).addSuccess(TaskView)
      .addError(P.NoAgent).addError(P.Exists)
      .annotate(OpenApi.Description, "Queues a task; dispatched by priority (−19 first), FIFO within a priority, as a message to an agent")
  )
  .add(HttpApiEndpoint.get("tasks", "/tasks").setUrlParams(TasksFilter).addSuccess(Schema.Array(TaskView)))
  .add(HttpApiEndpoint.get("task", "/tasks/:task_id").setPath(TaskPath).addSuccess(TaskView).addError(P.Unknown))
  .add(
    HttpApiEndpoint.post("preempt", "/tasks/:task_id/preempt").setPath(TaskPath).setPayload(PreemptRequest.omit("task_id"))
      .addSuccess(PreemptAnswer).addError(P.Unknown).addError(P.NoAgent)
      .annotate(OpenApi.Description, "RequestPreemption: the agent yields its task to this queued one, if this one is strictly more urgent")
  )
  .add(
    HttpApiEndpoint.post("yield", "/tasks/:task_id/yield").setPath(TaskPath).setPayload(OfAgent)
      .addSuccess(TaskView).addError(P.Unknown).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("enterSection", "/tasks/:task_id/section").setPath(TaskPath).setPayload(EnterSection.omit("task_id"))
      .addSuccess(TaskView).addError(P.Unknown).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("exitSection", "/tasks/:task_id/section/exit").setPath(TaskPath).setPayload(OfAgent)
      .addSuccess(TaskView).addError(P.Unknown).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("shutdown", "/agents/:agent_id/shutdown").setPath(AgentPath).setPayload(ShutdownAgentRequest.omit("agent_id"))
      .addSuccess(ShutdownAnswer).addError(P.NoAgent)
  )
  .add(HttpApiEndpoint.get("activity", "/agents/:agent_id/activity").setPath(AgentPath).addSuccess(ActivityAnswer))
  .add(
    HttpApiEndpoint.post("purgeActivity", "/agents/:agent_id/activity/purge").setPath(AgentPath)
      .setPayload(PurgeActivityRequest.omit("agent_id")).addSuccess(PurgeAnswer)
  )
  .annotate(OpenApi.Description, "Scheduler: tasks by priority, preemption, sections, shutdown, activity")

// ---------------------------------------------------------------------------
// Worktree bindings

export const worktrees = HttpApiGroup.make("worktrees")
  .add(
    HttpApiEndpoint.get("bindings", "/worktrees").setUrlParams(Query(BindingsFilter)).addSuccess(BindingPage)
      .annotate(OpenApi.Description, "The bindings, a page at a time, agents in the order first bound; an agent's key sees its own only")
  )
  .add(HttpApiEndpoint.get("status", "/agents/:agent_id/worktree").setPath(AgentPath).addSuccess(WorktreeStatus))
  .add(
    HttpApiEndpoint.post("bind", "/agents/:agent_id/worktree/bind").setPath(AgentPath).setPayload(BindRequest.omit("agent_id"))
      .addSuccess(WorktreeStatus).addError(P.NoAgent).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("unbind", "/agents/:agent_id/worktree/unbind").setPath(AgentPath).setPayload(SwitchReject.omit("agent_id"))
      .addSuccess(WorktreeStatus)
  )
  .add(
    HttpApiEndpoint.post("requestSwitch", "/agents/:agent_id/worktree/switch").setPath(AgentPath)
      .setPayload(SwitchRequest.omit("agent_id")).addSuccess(WorktreeStatus).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("approveSwitch", "/agents/:agent_id/worktree/approve").setPath(AgentPath)
      .setPayload(SwitchApprove.omit("agent_id")).addSuccess(WorktreeStatus).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("rejectSwitch", "/agents/:agent_id/worktree/reject").setPath(AgentPath)
      .setPayload(SwitchReject.omit("agent_id")).addSuccess(WorktreeStatus).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("revoke", "/agents/:agent_id/worktree/revoke").setPath(AgentPath)
      .setPayload(SwitchReject.omit("agent_id")).addSuccess(WorktreeStatus).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.post("bindFailed", "/agents/:agent_id/worktree/failed").setPath(AgentPath)
      .setPayload(BindFailure.omit("agent_id")).addSuccess(WorktreeStatus).addError(P.Unknown).addError(P.Precondition)
  )
  .annotate(OpenApi.Description, "Worktree bindings: bind, switch (approve, reject, revoke), failures, status")

// ---------------------------------------------------------------------------
// Negotiation rooms

export const Votes = Schema.Struct({ votes: Schema.Array(VoteView), vote_count: Schema.Number }).annotations({ identifier: "Votes" })

export const negotiation = HttpApiGroup.make("negotiation")
  .add(
    HttpApiEndpoint.post("propose", "/rooms").setPayload(ProposalRequest).addSuccess(RoomView)
      .addError(P.Exists).addError(P.NoAgent).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.get("rooms", "/rooms").setUrlParams(Query(RoomsFilter)).addSuccess(RoomPage)
      .annotate(OpenApi.Description, "The rooms, a page at a time in the order opened; an agent's key sees those it produces or is a critic of")
  )
  .add(HttpApiEndpoint.get("room", "/rooms/:room_id").setPath(RoomPath).addSuccess(RoomView).addError(P.Unknown))
  .add(
    HttpApiEndpoint.post("vote", "/rooms/:room_id/votes").setPath(RoomPath).setPayload(Vote).addSuccess(RoomView)
      .addError(P.Unknown).addError(P.Exists).addError(P.Precondition)
  )
  .add(HttpApiEndpoint.get("votes", "/rooms/:room_id/votes").setPath(RoomPath).addSuccess(Votes).addError(P.Unknown))
  .add(
    HttpApiEndpoint.get("decision", "/rooms/:room_id/decision").setPath(RoomPath).addSuccess(DecisionView)
      .addError(P.Unknown).addError(P.Precondition)
  )
  .add(
    HttpApiEndpoint.get("waitForDecision", "/rooms/:room_id/decision/wait").setPath(RoomPath).setUrlParams(Wait)
      .addSuccess(DecisionView).addError(P.Unknown).addError(P.WaitedOut)
      .annotate(OpenApi.Description, "Waits for the decision, at most timeout_ms (30 s by default, a minute at most): then 504 DEADLINE_EXCEEDED")
  )
  .annotate(OpenApi.Description, "Negotiation rooms: proposals, votes, decisions")

// ---------------------------------------------------------------------------
// Human in the loop

export const hitl = HttpApiGroup.make("hitl")
  .add(HttpApiEndpoint.post("invoke", "/hitl").setPayload(InvokeRequest).addSuccess(InvocationView))
  .add(
    HttpApiEndpoint.get("queue", "/hitl").setUrlParams(QueueFilter).addSuccess(Schema.Array(QueueItem))
      .annotate(OpenApi.Description, "The one queue a human works through: invocations and the gateway's approvals")
  )
  .add(HttpApiEndpoint.get("invocation", "/hitl/:id").setPath(HitlPath).addSuccess(InvocationView).addError(P.Unknown))
  .add(
    HttpApiEndpoint.post("decide", "/hitl/:id/decide").setPath(HitlPath).setPayload(DecideRequest.omit("id"))
      .addSuccess(Schema.Union(InvocationView, QueueItem)).addError(P.Unknown).addError(P.Precondition)
      .annotate(OpenApi.Description, "approve, deny, modify (with args) or defer an invocation; approve or deny a gateway approval")
  )
  .add(
    HttpApiEndpoint.get("wait", "/hitl/:id/wait").setPath(HitlPath).setUrlParams(Wait).addSuccess(InvocationView)
      .addError(P.Unknown).addError(P.WaitedOut)
  )
  .annotate(OpenApi.Description, "Human in the loop: invocations, the queue, decisions")
