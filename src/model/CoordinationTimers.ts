/**
 * Coordination's deadlines, in the runtime's one heap (`Timers.ts`): a
 * task's grace, section or wait; an agent's state timeout and shutdown
 * grace; a binding's TTL, retry or escalation; a room's deadline; a human's
 * deadline. Each entity keeps its next deadline in its own state; a heap
 * entry still matters only while it equals that (lazy deletion, as for the
 * router's). Driven by the Clock, so TestClock moves them, and rebuilt by
 * the fold after a restart.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type { Event } from "../schema/Event.js"
import type { Deadline } from "./Deadlines.js"
import { type Audit, deciding } from "./Hitl.js"
import { decideHitlDeadline } from "./HitlDecide.js"
import { decideRoomDeadline } from "./Negotiation.js"
import { decideAgentStateDeadline, decideShutdownDeadline, decideTaskDeadline } from "./SchedulerDecide.js"
import type { RuntimeState } from "./State.js"
import { decideWorktreeDeadline } from "./Worktrees.js"

export type CoordinationTimer = "task" | "agent_state" | "agent_shutdown" | "worktree" | "room" | "hitl"

const kinds: ReadonlySet<string> = new Set<CoordinationTimer>(["task", "agent_state", "agent_shutdown", "worktree", "room", "hitl"])

export const isCoordinationTimer = (kind: string): kind is CoordinationTimer => kinds.has(kind)

/** The entity's deadline now, for a deadline of its kind. */
const current = (state: RuntimeState, kind: CoordinationTimer, id: string): number | undefined => {
  switch (kind) {
    case "task":
      return state.tasks.get(id)?.deadline
    case "agent_state":
      return state.agentStates.get(id)?.deadline
    case "agent_shutdown":
      return state.shutdowns.get(id)
    case "worktree":
      return state.worktrees.get(id)?.deadline
    case "room": {
      const room = state.rooms.get(id)
      return room === undefined || room.decision !== undefined ? undefined : room.deadline
    }
    case "hitl": {
      const invocation = state.hitl.get(id)
      return invocation?.status === "open" ? invocation.deadline : undefined
    }
  }
}

export const isCoordinationPending = (state: RuntimeState, deadline: Deadline<CoordinationTimer>) =>
  current(state, deadline.kind, deadline.id) === deadline.at

/**
 * The events of coordination's deadlines due in one tick, each decided
 * against the state before the tick, in one audit chain with the rest of
 * the tick (`audit`).
 */
export const decideCoordinationDeadlines = (
  state: RuntimeState,
  config: RuntimeConfig,
  due: ReadonlyArray<Deadline<CoordinationTimer>>,
  now: number,
  audit: Audit
): ReadonlyArray<Event> => {
  if (due.length === 0) return []
  const d = deciding(state, config, now, audit)
  return due.flatMap((deadline): ReadonlyArray<Event> => {
    switch (deadline.kind) {
      case "task":
        return decideTaskDeadline(d, deadline.id)
      case "agent_state":
        // A shutdown's grace, not the state's timeout, ends an agent being shut down.
        return state.shutdowns.has(deadline.id) ? [] : decideAgentStateDeadline(d, deadline.id)
      case "agent_shutdown":
        return decideShutdownDeadline(d, deadline.id)
      case "worktree":
        return decideWorktreeDeadline(d, deadline.id)
      case "room":
        return decideRoomDeadline(d, deadline.id)
      case "hitl":
        return decideHitlDeadline(d, deadline.id)
    }
  })
}

/** The entity an event touched, whose next deadline goes into the heap. */
const touched = (state: RuntimeState, event: Event): readonly [CoordinationTimer, string] | undefined => {
  switch (event._tag) {
    case "TaskSubmitted":
    case "TaskDispatched":
    case "TaskPreemptionRequested":
    case "TaskSectionEntered":
    case "TaskSectionExited":
    case "TaskRequeued":
    case "TaskModified":
      return ["task", event.task_id]
    case "MessageAcked":
    case "MessageTimedOut": {
      const task = state.taskMessages.get(event.message_id)
      return task === undefined ? undefined : ["task", task]
    }
    case "AgentRegistered":
      return ["agent_state", event.agent.agent_id]
    case "AgentHeartbeat":
      // Only a new state has a new deadline: heartbeats are many, and the heap must not grow with them.
      return state.agentStates.get(event.agent_id)?.since === event.at ? ["agent_state", event.agent_id] : undefined
    case "AgentShutdownRequested":
      return ["agent_shutdown", event.agent_id]
    case "WorktreeBound":
    case "WorktreeSwitchRequested":
    case "WorktreeSwitchApproved":
    case "WorktreeReturnedHome":
    case "WorktreeBindFailed":
    case "WorktreeBindRetried":
      return ["worktree", event.agent_id]
    case "RoomOpened":
      return ["room", event.room_id]
    case "HitlInvoked":
    case "HitlExtended":
      return ["hitl", event.hitl_id]
    default:
      return undefined
  }
}

/** The deadline to push after `event`, if it set one. */
export const coordinationDeadline = (state: RuntimeState, event: Event): Deadline<CoordinationTimer> | undefined => {
  const entity = touched(state, event)
  if (entity === undefined) return undefined
  const at = current(state, entity[0], entity[1])
  return at === undefined ? undefined : { at, kind: entity[0], id: entity[1] }
}
