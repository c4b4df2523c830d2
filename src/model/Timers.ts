/**
 * What the runtime waits for: ack waits, TTLs, heartbeats, and humans
 * answering or using approvals. One heap holds every deadline; `decideTick`
 * turns those due into events, each decided against the state before the
 * tick.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type { Event } from "../schema/Event.js"
import { AgentLivenessLost, MessageTimedOut } from "../schema/RouterEvents.js"
import { decideApprovalDeadline, isWaiting } from "./Approvals.js"
import {
  coordinationDeadline,
  type CoordinationTimer,
  decideCoordinationDeadlines,
  isCoordinationPending,
  isCoordinationTimer
} from "./CoordinationTimers.js"
import { type Deadline, Deadlines } from "./Deadlines.js"
import { auditor } from "./Governance.js"
import { moveQueuedCapabilityMessages, type Move, placement, requeueAll, reroute } from "./Placement.js"
import type { RuntimeState, Slice } from "./State.js"

export type TimerKind = "ack_wait" | "ttl" | "liveness" | "approval" | CoordinationTimer

export interface TimersState {
  readonly deadlines: Deadlines<TimerKind>
}

/** Whether a deadline still matters: its message, agent or approval has not moved on since it was set. */
const isPending = (state: RuntimeState, deadline: Deadline<TimerKind>): boolean => {
  switch (deadline.kind) {
    case "ack_wait": {
      const message = state.messages.get(deadline.id)
      return message !== undefined && message.location === "in_flight" && message.ackDeadline === deadline.at
    }
    case "ttl": {
      const message = state.messages.get(deadline.id)
      return message !== undefined && message.location !== "done" && message.expiresAt === deadline.at
    }
    case "liveness": {
      const agent = state.agents.get(deadline.id)
      return agent !== undefined && agent.registered && agent.live && agent.livenessDeadline === deadline.at
    }
    case "approval":
      return isWaiting(state.approvals.get(deadline.id), deadline.at)
    default:
      return isCoordinationPending(state, deadline as Deadline<CoordinationTimer>)
  }
}

/** The next time `decideTick` has something to do. */
export const nextDeadline = (state: RuntimeState): number | undefined => state.deadlines.peek()?.at

/** The events that the deadlines due at `now` call for. */
export const decideTick = (state: RuntimeState, config: RuntimeConfig, now: number): ReadonlyArray<Event> => {
  // Most turns have nothing due: they need not build anything to find that out.
  const next = nextDeadline(state)
  if (next === undefined || next > now) return []
  // One deadline may be in the heap twice (an approval approved at the very
  // time it was opened keeps the same deadline): each is handled once.
  const seen = new Set<string>()
  const due = state.deadlines.due(now).filter((deadline) => {
    const key = `${deadline.kind}\u0000${deadline.id}`
    if (seen.has(key) || !isPending(state, deadline)) return false
    seen.add(key)
    return true
  })
  const audit = auditor(state, now)
  const events: Array<Event> = due.flatMap((deadline) =>
    deadline.kind === "approval" ? decideApprovalDeadline(state.approvals.get(deadline.id)!, audit, now) : []
  )
  const coordination = due.filter((deadline): deadline is Deadline<CoordinationTimer> => isCoordinationTimer(deadline.kind))
  events.push(...decideCoordinationDeadlines(state, config, coordination, now, audit))
  // Every event of the tick is decided against the state before it: an agent
  // lost later in the tick must not take work moved earlier in it.
  const moving = placement(due.flatMap((deadline) => deadline.kind === "liveness" ? [deadline.id] : []))
  const moves: Array<Move> = []
  const requeues: Array<Move> = []
  const handled = new Set<string>()
  for (const deadline of due) {
    if (deadline.kind === "approval" || isCoordinationTimer(deadline.kind) || handled.has(deadline.id)) continue
    handled.add(deadline.id)
    if (deadline.kind === "liveness") {
      events.push(AgentLivenessLost.make({ agent_id: deadline.id, at: now }, true))
      moves.push(...moveQueuedCapabilityMessages(state, deadline.id, moving))
      continue
    }
    const message = state.messages.get(deadline.id)!
    if (deadline.kind === "ttl" || (message.expiresAt !== undefined && message.expiresAt <= now)) {
      events.push(MessageTimedOut.make({ message_id: deadline.id, error_code: "TTL_EXPIRED", at: now }, true))
    } else if (message.attempts >= config.maxAttempts) {
      events.push(MessageTimedOut.make({ message_id: deadline.id, error_code: "ACK_TIMEOUT", at: now }, true))
    } else {
      requeues.push({ message, to: reroute(state, message, moving) })
    }
  }
  return [...events, ...requeueAll(moves, "recipient_lost", now), ...requeueAll(requeues, "ack_wait", now)]
}

const push = (state: RuntimeState, kind: TimerKind, id: string, at: number | undefined) => {
  if (at !== undefined) state.deadlines.push({ at, kind, id })
}

export const timersSlice: Slice<TimersState> = {
  initial: () => ({ deadlines: new Deadlines() }),
  evolve: {
    AgentRegistered: (state, event) => push(state, "liveness", event.agent.agent_id, event.liveness_deadline),
    AgentHeartbeat: (state, event) => push(state, "liveness", event.agent_id, event.liveness_deadline),
    MessageAccepted: (state, event) => push(state, "ttl", event.envelope.message_id, event.expires_at),
    MessageRedriven: (state, event) => push(state, "ttl", event.message_id, event.expires_at),
    MessageDelivered: (state, event) => push(state, "ack_wait", event.message_id, event.ack_deadline),
    MessageAcked: (state, event) => push(state, "ack_wait", event.message_id, event.ack_deadline),
    ApprovalOpened: (state, event) => push(state, "approval", event.approval_id, event.expires_at),
    // Approved, it waits to be used: until the deadline the governance slice has just set.
    ApprovalResolved: (state, event) => {
      if (event.outcome === "approved") push(state, "approval", event.approval_id, state.approvals.get(event.approval_id)?.expires_at)
    }
  },
  // Deadlines that no longer matter leave the top of the heap, so that its top is the next one due.
  after: (state, event) => {
    const coordination = coordinationDeadline(state, event)
    if (coordination !== undefined) state.deadlines.push(coordination)
    for (let top = state.deadlines.peek(); top !== undefined && !isPending(state, top); top = state.deadlines.peek()) {
      state.deadlines.pop()
    }
  },
  snapshot: () => ({})
}
