/**
 * The coordination events (scheduler, worktrees, negotiation rooms, HITL) in
 * a timeline: which agents each concerns, and one line describing it.
 * `Timeline.ts` hands them here.
 */
import type { Event } from "../schema/Event.js"
import type { HitlEvent, HitlSubject } from "../schema/Hitl.js"
import type { NegotiationEvent } from "../schema/Negotiation.js"
import type { SchedulerEvent } from "../schema/SchedulerEvents.js"
import type { WorktreeEvent } from "../schema/Worktree.js"

export type CoordinationEvent = SchedulerEvent | WorktreeEvent | NegotiationEvent | HitlEvent

const tags: ReadonlySet<string> = new Set<CoordinationEvent["_tag"]>([
  "TaskSubmitted",
  "TaskDispatched",
  "TaskPreemptionRequested",
  "TaskSectionEntered",
  "TaskSectionExited",
  "TaskRequeued",
  "TaskFinished",
  "TaskModified",
  "AgentStateTimedOut",
  "AgentShutdownRequested",
  "ActivityPurged",
  "WorktreeBound",
  "WorktreeUnbound",
  "WorktreeSwitchRequested",
  "WorktreeSwitchApproved",
  "WorktreeReturnedHome",
  "WorktreeBindFailed",
  "WorktreeBindRetried",
  "RoomOpened",
  "VoteCast",
  "RoomDecided",
  "RoomResolved",
  "HitlInvoked",
  "HitlDecided",
  "HitlExtended",
  "HitlWithdrawn"
])

export const isCoordinationEvent = (event: Event): event is CoordinationEvent => tags.has(event._tag)

const subjectAgents = (subject: HitlSubject): ReadonlyArray<string> =>
  subject._tag === "WorktreeBind" || subject._tag === "WorktreeSwitch" || subject._tag === "WorktreeBindFailed"
    ? [subject.agent_id]
    : []

/** The agents a coordination event names. */
export const coordinationAgents = (event: CoordinationEvent): ReadonlyArray<string> => {
  switch (event._tag) {
    case "TaskSubmitted":
      return [
        ...(event.submitted_by === undefined ? [] : [event.submitted_by]),
        ...(event.target._tag === "Agent" ? [event.target.agent_id] : [])
      ]
    case "TaskDispatched":
    case "TaskPreemptionRequested":
    case "TaskSectionEntered":
    case "TaskSectionExited":
    case "AgentStateTimedOut":
    case "AgentShutdownRequested":
    case "ActivityPurged":
    case "WorktreeBound":
    case "WorktreeUnbound":
    case "WorktreeSwitchRequested":
    case "WorktreeSwitchApproved":
    case "WorktreeReturnedHome":
    case "WorktreeBindFailed":
    case "WorktreeBindRetried":
      return [event.agent_id]
    case "RoomOpened":
      return [event.producer_id, ...event.critics]
    case "VoteCast":
      return [event.vote.critic_id]
    case "HitlInvoked":
      return [...(event.invoked_by === undefined ? [] : [event.invoked_by]), ...subjectAgents(event.subject)]
    case "TaskRequeued":
    case "TaskFinished":
    case "TaskModified":
    case "RoomDecided":
    case "RoomResolved":
    case "HitlDecided":
    case "HitlExtended":
    case "HitlWithdrawn":
      return []
  }
}

export const describeCoordination = (event: CoordinationEvent): string => {
  switch (event._tag) {
    case "TaskSubmitted":
      return `task ${event.task_id} submitted for ` +
        (event.target._tag === "Agent" ? event.target.agent_id : `capability ${event.target.capability}`) +
        `, priority ${event.priority}` + (event.scope ? `, scope ${event.scope}` : "")
    case "TaskDispatched":
      return `task ${event.task_id} dispatched to ${event.agent_id} as ${event.message_id}`
    case "TaskPreemptionRequested":
      return `task ${event.task_id} on ${event.agent_id}: asked to yield (ask ${event.ask})` +
        (event.for_task_id ? ` for ${event.for_task_id}` : "") +
        (event.grace_deadline === undefined ? ", after its non-preemptible section" : "") + `: ${event.reason}`
    case "TaskSectionEntered":
      return `task ${event.task_id} on ${event.agent_id}: non-preemptible section`
    case "TaskSectionExited":
      return `task ${event.task_id} on ${event.agent_id}: section ${event.expired ? "past its maximum" : "ended"}`
    case "TaskRequeued":
      return `task ${event.task_id} queued again (${event.reason.replace("_", " ")})`
    case "TaskFinished":
      return `task ${event.task_id} ${event.status}` + (event.error_code ? ` (${event.error_code})` : "") + `: ${event.reason}`
    case "TaskModified":
      return `task ${event.task_id} changed` + (event.priority === undefined ? "" : `: priority ${event.priority}`) +
        (event.scope === undefined ? "" : `, scope ${event.scope || "(none)"}`)
    case "AgentStateTimedOut":
      return `agent ${event.agent_id} FAILED: ${event.state} for too long`
    case "AgentShutdownRequested":
      return `agent ${event.agent_id} shutting down`
    case "ActivityPurged":
      return `activity of ${event.agent_id} purged (${event.task_ids.length} tasks)`
    case "WorktreeBound":
      return `agent ${event.agent_id} bound to ${event.repo_id}/${event.worktree_id} (home)`
    case "WorktreeUnbound":
      return `agent ${event.agent_id} unbound: ${event.reason}`
    case "WorktreeSwitchRequested":
      return `agent ${event.agent_id} asks to switch to ${event.repo_id}/${event.worktree_id}`
    case "WorktreeSwitchApproved":
      return `agent ${event.agent_id} switch approved by ${event.by}`
    case "WorktreeReturnedHome":
      return `agent ${event.agent_id} back home (${event.reason.replace("_", " ")})`
    case "WorktreeBindFailed":
      return `agent ${event.agent_id} bind failed (${event.failures}): ${event.reason}`
    case "WorktreeBindRetried":
      return `agent ${event.agent_id} bind tried again`
    case "RoomOpened":
      return `room ${event.room_id} opened for ${event.artifact_type} ${event.artifact_id} by ${event.producer_id}, ` +
        `critics ${event.critics.join(", ")}`
    case "VoteCast":
      return `room ${event.room_id}: ${event.vote.critic_id} votes ${event.vote.score} ` +
        `(confidence ${event.vote.confidence}, ${event.vote.passed ? "passed" : "not passed"})`
    case "RoomDecided":
      return `room ${event.room_id} decided: ${event.outcome}: ${event.reason}`
    case "RoomResolved":
      return `room ${event.room_id} resolved by ${event.by}: ${event.outcome}`
    case "HitlInvoked":
      return `${event.hitl_id} asks a human (${event.reason})` + (event.invoked_by ? ` for ${event.invoked_by}` : "")
    case "HitlDecided":
      return `${event.hitl_id} ${event.action} by ${event.by}${event.automatic ? " (fallback)" : ""}: ${event.rationale}`
    case "HitlExtended":
      return `${event.hitl_id} ${event.cause === "deferred" ? "deferred" : "extended"} by ${event.by}`
    case "HitlWithdrawn":
      return `${event.hitl_id} withdrawn: ${event.reason}`
  }
}
