/**
 * Reading a log as a story: which events concern an agent or a message, and
 * one line describing each.
 */
import type { Event } from "../schema/Event.js"
import { coordinationAgents, describeCoordination, isCoordinationEvent } from "./CoordinationTimeline.js"

/** The message an event is about, if any. */
export const messageOf = (event: Event): string | undefined =>
  event._tag === "MessageAccepted" || event._tag === "MessageRefused"
    ? event.envelope.message_id
    : "message_id" in event
    ? event.message_id
    : undefined

/** The agents an event concerns. */
export const agentsOf = (event: Event): ReadonlyArray<string> => {
  if (isCoordinationEvent(event)) return coordinationAgents(event)
  switch (event._tag) {
    case "AgentRegistered":
      return [event.agent.agent_id]
    case "AgentHeartbeat":
    case "AgentDeregistered":
    case "AgentLivenessLost":
      return [event.agent_id]
    case "TopologyEdgeAdded":
      return [event.from, event.to]
    case "MessageAccepted":
    case "MessageRefused":
      return [event.envelope.producer_id, event.to]
    case "MessageDelivered":
    case "MessageRequeued":
    case "MessageRedriven":
      return [event.to]
    case "MessageAcked":
      return [event.agent_id]
    case "MessageTimedOut":
      return []
    case "AuditRecorded":
      return [event.record.agent_id]
    case "ApprovalOpened":
      return [event.action.agent_id]
    case "AgentSuspended":
    case "AgentResumed":
    case "AgentKilled":
      return [event.agent_id]
    case "BudgetCharged":
    case "BudgetExhaustedRecorded":
      return event.scope === "agent" ? [event.scope_id] : []
    case "LeaseGranted":
      return [event.lease.agent_id]
    case "PolicyLoaded":
    case "PolicyRemoved":
    case "ApprovalResolved":
    case "ApprovalUsed":
    case "ApprovalLapsed":
    case "GatewayHalted":
    case "GatewayUnhalted":
      return []
    case "ArcpJobAccepted":
      return [event.agent]
    case "ArcpSessionOpened":
    case "ArcpSessionResumed":
    case "ArcpSessionDetached":
    case "ArcpSessionExpired":
    case "ArcpSessionAcked":
    case "ArcpJobRejected":
    case "ArcpJobEvent":
    case "ArcpJobCancelRequested":
    case "ArcpJobFinished":
    case "ArcpJobSubscribed":
    case "ArcpJobUnsubscribed":
      return []
  }
}

/**
 * A test for the events of one log, read in order from its start, that concern
 * `agent`: those naming it, and every event of a message it produced or was
 * sent, delivered or redriven to. The events that finish a message (an ack, a
 * time-out, a requeue) name one of its agents or none, yet matter to all of
 * them. It remembers the agents of each message: take a new one for each read.
 */
export const concerning = (agent: string): (event: Event) => boolean => {
  const agentsOfMessage = new Map<string, Set<string>>()
  return (event) => {
    const named = agentsOf(event)
    const message = messageOf(event)
    if (message === undefined) return named.includes(agent)
    let agents = agentsOfMessage.get(message)
    if (agents === undefined) agentsOfMessage.set(message, agents = new Set())
    for (const id of named) agents.add(id)
    return agents.has(agent)
  }
}

export const describe = (event: Event): string => {
  if (isCoordinationEvent(event)) return describeCoordination(event)
  switch (event._tag) {
    case "AgentRegistered":
      return `agent ${event.agent.agent_id} registered` +
        (event.agent.capabilities.length > 0 ? ` (${event.agent.capabilities.join(", ")})` : "") +
        (event.agent.parent_agent_id ? `, spawned by ${event.agent.parent_agent_id}` : "")
    case "AgentHeartbeat":
      return `agent ${event.agent_id} heartbeat: ${event.state}`
    case "AgentDeregistered":
      return `agent ${event.agent_id} deregistered: ${event.reason}`
    case "AgentLivenessLost":
      return `agent ${event.agent_id} lost: no heartbeat in time`
    case "TopologyEdgeAdded":
      return `edge ${event.from} ${event.edge_type} ${event.to}`
    case "MessageAccepted":
      return `${event.envelope.message_id} ${event.envelope.message_type} from ${event.envelope.producer_id} ` +
        `accepted for ${event.to}` + (event.route._tag === "Capability" ? ` (capability ${event.route.capability})` : "") +
        `, lane ${event.lane}: RECEIVED`
    case "MessageDelivered":
      return `${event.message_id} delivered to ${event.to}, attempt ${event.attempt}, delivery_seq ${event.delivery_seq}`
    case "MessageAcked":
      return `${event.message_id} ${event.stage} by ${event.agent_id}` +
        (event.error_code ? ` (${event.error_code})` : "") + (event.dead_letter ? ", dead letter" : "") +
        (event.note ? `: ${event.note}` : "")
    case "MessageRequeued":
      return `${event.message_id} queued again for ${event.to} (${event.reason.replace("_", " ")})`
    case "MessageTimedOut":
      return `${event.message_id} TIMED_OUT (${event.error_code}): dead letter`
    case "MessageRedriven":
      return `${event.message_id} redriven to ${event.to}: RECEIVED`
    case "MessageRefused":
      return `${event.envelope.message_id} ${event.envelope.message_type} from ${event.envelope.producer_id} to ${event.to} ` +
        `REJECTED (${event.error_code}): ${event.reason}`
    case "AuditRecorded": {
      const record = event.record
      return `audit: ${record.agent_id} ${record.action} → ${record.decision}` +
        (record.dry_run ? ` (observed; enforce would ${record.shadow_decision})` : "") + `: ${record.reason}`
    }
    case "PolicyLoaded":
      return `policy ${event.document.id} v${event.version} loaded (${event.document.scope.kind}` +
        (event.document.scope.kind === "global" ? ")" : ` ${event.document.scope.id})`)
    case "PolicyRemoved":
      return `policy ${event.policy_id} removed`
    case "ApprovalOpened":
      return `${event.approval_id} opened for ${event.action.agent_id} (${event.action.kind}): ${event.reason}`
    case "ApprovalResolved":
      return `${event.approval_id} ${event.outcome}${event.by ? ` by ${event.by}` : ""}`
    case "ApprovalUsed":
      return `${event.approval_id} used`
    case "ApprovalLapsed":
      return `${event.approval_id} lapsed unused`
    case "AgentSuspended":
      return `agent ${event.agent_id} suspended: ${event.reason}`
    case "AgentResumed":
      return `agent ${event.agent_id} resumed`
    case "AgentKilled":
      return `agent ${event.agent_id} killed: ${event.reason}`
    case "GatewayHalted":
      return `all agents halted: ${event.reason}`
    case "GatewayUnhalted":
      return `halt lifted`
    case "BudgetCharged":
      return `${event.scope} ${event.scope_id} charged ${event.amount} ${event.currency}: ${event.spent} spent`
    case "BudgetExhaustedRecorded":
      return `${event.scope} ${event.scope_id} refused ${event.amount} ${event.currency}: ${event.spent} of ${event.limit} spent`
    case "LeaseGranted":
      return `lease ${event.lease.lease_id} granted to ${event.lease.agent_id}` +
        (event.lease.parent_lease_id ? ` (delegated from ${event.lease.parent_lease_id})` : "")
    case "ArcpSessionOpened":
      return `ARCP session ${event.session_id} opened by key ${event.key_id} (${event.client.name} ${event.client.version})`
    case "ArcpSessionResumed":
      return `ARCP session ${event.session_id} resumed after event ${event.last_event_seq}`
    case "ArcpSessionDetached":
      return `ARCP session ${event.session_id} detached: ${event.reason}`
    case "ArcpSessionExpired":
      return `ARCP session ${event.session_id} expired`
    case "ArcpSessionAcked":
      return `ARCP session ${event.session_id} acknowledged up to ${event.seq}`
    case "ArcpJobAccepted":
      return `ARCP job ${event.job_id} accepted for ${event.agent}@${event.version}` +
        (event.parent_job_id ? `, delegated by ${event.parent_job_id}` : "")
    case "ArcpJobRejected":
      return `ARCP job ${event.job_id} for ${event.agent} rejected: ${event.code}`
    case "ArcpJobEvent":
      return `ARCP job ${event.job_id} ${event.kind}`
    case "ArcpJobCancelRequested":
      return `ARCP job ${event.job_id} cancel requested`
    case "ArcpJobFinished":
      return `ARCP job ${event.job_id} ${event.outcome.final_status}` +
        (event.outcome.final_status === "success" ? "" : `: ${event.outcome.code}`)
    case "ArcpJobSubscribed":
      return `ARCP session ${event.session_id} subscribed to job ${event.job_id}`
    case "ArcpJobUnsubscribed":
      return `ARCP session ${event.session_id} unsubscribed from job ${event.job_id}`
  }
}

/** The paths where two plain values differ; empty when they are equal. */
export const differences = (a: unknown, b: unknown, path = ""): ReadonlyArray<string> => {
  if (Object.is(a, b)) return []
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return [`${path || "(root)"}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`]
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  return [...keys].flatMap((key) =>
    differences((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], path ? `${path}.${key}` : key)
  )
}
