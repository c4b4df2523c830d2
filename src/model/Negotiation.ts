/**
 * Negotiation rooms (PROTOCOLS.md §1 "Coordination"): a producer proposes an
 * artifact, the critics it names vote once each, and the room decides by a
 * rule with thresholds of its own: as soon as the last requested vote
 * arrives, or at the deadline. An escalation asks a human (reason
 * DEBATE_DEADLOCK), whose answer (or the fallback's) is the room's final
 * word. Every envelope of a room carries the room's id as its
 * `correlation_id`: the proposal each critic is sent, the decision the
 * producer is sent.
 */
import { AlreadyExists, FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import { NoRoute, PermissionDenied } from "../schema/Errors.js"
import type { Event } from "../schema/Event.js"
import type { Json } from "../schema/Json.js"
import {
  type AggregatedScore,
  type ArtifactType,
  type DecisionOutcome,
  type DecisionView,
  defaultThresholds,
  type ProposalRequest,
  RoomDecided,
  RoomOpened,
  RoomResolved,
  type RoomPage,
  type RoomsFilter,
  type RoomView,
  type Thresholds,
  type Vote,
  VoteCast,
  type VoteRequest
} from "../schema/Negotiation.js"
import type { HitlFallback } from "../schema/Hitl.js"
import { later } from "./Deadlines.js"
import { type Deciding, openInvocation } from "./Hitl.js"
import { bestEffortNotice } from "./Notices.js"
import { accept, type Decision, pageOf, refuse, type RuntimeState, type Slice, sortedRecord } from "./State.js"

export interface Room {
  readonly room_id: string
  readonly artifact_id: string
  readonly artifact_type: ArtifactType
  readonly artifact: Json
  readonly artifact_content_type: string | undefined
  readonly producer_id: string
  readonly critics: ReadonlyArray<string>
  readonly thresholds: Thresholds
  readonly fallback: HitlFallback
  readonly opened_at: number
  readonly deadline: number
  /** In the order they were cast. */
  readonly votes: Map<string, Vote & { readonly voted_at: number }>
  decision:
    | {
      readonly outcome: DecisionOutcome
      readonly aggregated_score: AggregatedScore
      readonly reason: string
      readonly decided_at: number
      readonly hitl_id: string | undefined
    }
    | undefined
  resolution:
    | { readonly outcome: "APPROVED" | "REVISION_REQUESTED"; readonly action: string; readonly by: string; readonly rationale: string; readonly at: number }
    | undefined
}

export interface NegotiationState {
  readonly rooms: Map<string, Room>
}

// ---------------------------------------------------------------------------
// The rule

/**
 * The statistics the rule reads: the mean and the confidence-weighted mean
 * of scores, their population standard deviation, the mean confidence and
 * the share of votes that passed. No votes: all zero.
 */
export const aggregate = (votes: ReadonlyArray<Vote>): AggregatedScore => {
  const n = votes.length
  if (n === 0) {
    return { mean: 0, min_score: 0, max_score: 0, std_dev: 0, weighted_mean: 0, vote_count: 0, mean_confidence: 0, pass_ratio: 0 }
  }
  let sum = 0
  let weighted = 0
  let confidence = 0
  let passed = 0
  let min = Infinity
  let max = -Infinity
  for (const vote of votes) {
    sum += vote.score
    weighted += vote.score * vote.confidence
    confidence += vote.confidence
    if (vote.passed) passed++
    min = Math.min(min, vote.score)
    max = Math.max(max, vote.score)
  }
  const mean = sum / n
  let squares = 0
  for (const vote of votes) squares += (vote.score - mean) ** 2
  return {
    mean,
    min_score: min,
    max_score: max,
    std_dev: Math.sqrt(squares / n),
    // With no confidence at all nothing is weighted: the mean counts for nothing either.
    weighted_mean: confidence === 0 ? 0 : weighted / confidence,
    vote_count: n,
    mean_confidence: confidence / n,
    pass_ratio: passed / n
  }
}

/** Whether the votes meet every approval threshold. */
export const meetsApproval = (score: AggregatedScore, thresholds: Thresholds) =>
  score.vote_count > 0 &&
  score.weighted_mean >= thresholds.approve_weighted_mean_min &&
  score.mean_confidence >= thresholds.approve_mean_confidence_min &&
  score.pass_ratio >= thresholds.approve_pass_ratio_min &&
  score.std_dev <= thresholds.approve_std_dev_max

/**
 * The decision rule (PROTOCOLS.md §1). An escalation wins over an approval:
 * a critic too unsure of its own vote, or critics too far apart, is a
 * question for a human even when the numbers would pass.
 */
export const decideOutcome = (
  votes: ReadonlyArray<Vote>,
  thresholds: Thresholds,
  complete: boolean
): { readonly outcome: DecisionOutcome; readonly aggregated_score: AggregatedScore; readonly reason: string } => {
  const score = aggregate(votes)
  const outcome = (o: DecisionOutcome, reason: string) => ({ outcome: o, aggregated_score: score, reason })
  if (!complete) return outcome("ESCALATED_TO_HITL", `the deadline passed with ${votes.length} of the requested votes`)
  const unsure = votes.find((vote) => vote.confidence < thresholds.escalate_confidence_below)
  if (unsure !== undefined) {
    return outcome("ESCALATED_TO_HITL", `${unsure.critic_id}'s confidence ${unsure.confidence} is below ${thresholds.escalate_confidence_below}`)
  }
  if (score.std_dev > thresholds.escalate_std_dev_above) {
    return outcome("ESCALATED_TO_HITL", `the critics disagree: standard deviation ${round(score.std_dev)} above ${thresholds.escalate_std_dev_above}`)
  }
  if (meetsApproval(score, thresholds)) {
    return outcome("APPROVED", `weighted mean ${round(score.weighted_mean)}, mean confidence ${round(score.mean_confidence)}, ` +
      `pass ratio ${round(score.pass_ratio)}, standard deviation ${round(score.std_dev)}`)
  }
  return outcome("REVISION_REQUESTED", `weighted mean ${round(score.weighted_mean)} (needs ${thresholds.approve_weighted_mean_min}), ` +
    `mean confidence ${round(score.mean_confidence)} (${thresholds.approve_mean_confidence_min}), pass ratio ${round(score.pass_ratio)} ` +
    `(${thresholds.approve_pass_ratio_min}), standard deviation ${round(score.std_dev)} (at most ${thresholds.approve_std_dev_max})`)
}

const round = (x: number) => Math.round(x * 100) / 100

// ---------------------------------------------------------------------------
// Views

const votesOf = (room: Room) => [...room.votes.values()].map((vote) => ({ ...vote }))

export const decisionView = (room: Room): DecisionView | undefined =>
  room.decision === undefined ? undefined : {
    negotiation_room_id: room.room_id,
    artifact_id: room.artifact_id,
    outcome: room.decision.outcome,
    votes: votesOf(room),
    aggregated_score: room.decision.aggregated_score,
    reason: room.decision.reason,
    decided_at: room.decision.decided_at,
    hitl_id: room.decision.hitl_id,
    resolution: room.resolution === undefined ? undefined : { ...room.resolution }
  }

export const roomView = (room: Room): RoomView => ({
  negotiation_room_id: room.room_id,
  artifact_id: room.artifact_id,
  artifact_type: room.artifact_type,
  artifact: room.artifact,
  artifact_content_type: room.artifact_content_type,
  producer_id: room.producer_id,
  requested_critics: room.critics,
  thresholds: room.thresholds,
  opened_at: room.opened_at,
  deadline: room.deadline,
  votes: votesOf(room),
  decision: decisionView(room)
})

/** A page of the rooms, in the order opened: decided or not, and those an agent produces or criticises. */
export const selectRooms = (state: RuntimeState, filter: RoomsFilter): RoomPage => {
  const { entries, next } = pageOf(state.rooms, filter, (room) =>
    (filter.status === undefined || (filter.status === "decided") === (room.decision !== undefined)) &&
    (filter.agent_id === undefined || room.producer_id === filter.agent_id || room.critics.includes(filter.agent_id)))
  return { rooms: entries.map(([, room]) => roomView(room)), next }
}

// ---------------------------------------------------------------------------
// Decisions

/** A NEGOTIATION envelope of the room, its `correlation_id` the room's id. */
const roomNotice = (d: Deciding, roomId: string, to: string, suffix: string, payload: Json) =>
  bestEffortNotice(d.state, d.config, {
    to,
    message_id: `${roomId}/${suffix}`,
    message_type: "NEGOTIATION",
    correlation_id: roomId,
    payload
  }, d.now)

export const decideProposal = (d: Deciding, request: ProposalRequest): Decision<RoomView, AlreadyExists | NoRoute | FailedPrecondition> => {
  const room_id = request.negotiation_room_id ?? `room-${d.state.rooms.size + 1}`
  if (d.state.rooms.has(room_id)) return refuse(new AlreadyExists({ what: "room", id: room_id }))
  const critics = [...new Set(request.requested_critics)]
  if (critics.length !== request.requested_critics.length) {
    return refuse(new FailedPrecondition({ reason: "each critic may be requested once" }))
  }
  for (const critic of critics) {
    const agent = d.state.agents.get(critic)
    if (agent === undefined || !agent.registered) return refuse(new NoRoute({ to: critic }))
  }
  const opened = RoomOpened.make({
    room_id,
    artifact_id: request.artifact_id ?? room_id,
    artifact_type: request.artifact_type,
    artifact: request.artifact ?? null,
    artifact_content_type: request.artifact_content_type,
    producer_id: request.producer_id,
    critics,
    deadline: later(d.now, request.deadline_ms ?? d.config.roomDeadlineMs),
    thresholds: { ...defaultThresholds, ...request.thresholds },
    hitl_fallback: request.hitl_fallback ?? "DENY_BY_DEFAULT",
    at: d.now
  }, true)
  const proposal: Json = {
    type: "proposal",
    negotiation_room_id: room_id,
    artifact_id: opened.artifact_id,
    artifact_type: opened.artifact_type,
    artifact: opened.artifact,
    producer_id: opened.producer_id,
    deadline: opened.deadline
  }
  return accept(
    [opened, ...critics.flatMap((critic, i) => roomNotice(d, room_id, critic, `proposal/${i + 1}`, proposal))],
    roomView(newRoom(opened))
  )
}

const findRoom = (state: RuntimeState, roomId: string) => state.rooms.get(roomId)

/** The room decided: its event, the producer told, and when it escalates, a human asked. */
const decided = (d: Deciding, room: Room, votes: ReadonlyArray<Vote>, complete: boolean): ReadonlyArray<Event> => {
  const outcome = decideOutcome(votes, room.thresholds, complete)
  const escalation = outcome.outcome === "ESCALATED_TO_HITL"
    ? openInvocation(d, {
      reason: "DEBATE_DEADLOCK",
      subject: { _tag: "Room", room_id: room.room_id },
      context: {
        negotiation_room_id: room.room_id,
        artifact_id: room.artifact_id,
        artifact_type: room.artifact_type,
        reason: outcome.reason,
        aggregated_score: { ...outcome.aggregated_score }
      },
      proposed_actions: ["approve: APPROVED", "deny: REVISION_REQUESTED"],
      invoked_by: room.producer_id,
      fallback: room.fallback
    })
    : undefined
  return [
    ...(escalation?.events ?? []),
    RoomDecided.make({ room_id: room.room_id, ...outcome, hitl_id: escalation?.hitl_id, at: d.now }, true),
    ...roomNotice(d, room.room_id, room.producer_id, "decision", {
      type: "decision",
      negotiation_room_id: room.room_id,
      outcome: outcome.outcome,
      reason: outcome.reason,
      ...(escalation === undefined ? {} : { hitl_id: escalation.hitl_id })
    })
  ]
}

export const decideVote = (d: Deciding, request: VoteRequest): Decision<RoomView, NotFound | PermissionDenied | AlreadyExists | FailedPrecondition> => {
  const room = findRoom(d.state, request.negotiation_room_id)
  if (room === undefined) return refuse(new NotFound({ what: "room", id: request.negotiation_room_id }))
  if (!room.critics.includes(request.critic_id)) {
    return refuse(new PermissionDenied({ reason: `${request.critic_id} is not a requested critic of room ${room.room_id}` }))
  }
  if (room.votes.has(request.critic_id)) return refuse(new AlreadyExists({ what: `vote of ${request.critic_id} in room`, id: room.room_id }))
  if (room.decision !== undefined || d.now >= room.deadline) {
    return refuse(new FailedPrecondition({ reason: `room ${room.room_id} is ${room.decision === undefined ? "past its deadline" : "decided"}` }))
  }
  const { negotiation_room_id: _, ...vote } = request
  const cast = VoteCast.make({ room_id: room.room_id, vote, at: d.now }, true)
  const votes = [...room.votes.values(), vote]
  const complete = room.critics.every((critic) => critic === vote.critic_id || room.votes.has(critic))
  const view = roomView(room)
  return accept(
    [cast, ...(complete ? decided(d, room, votes, true) : [])],
    { ...view, votes: [...view.votes, { ...vote, voted_at: d.now }] }
  )
}

/** At the deadline, a room still waiting for votes escalates. */
export const decideRoomDeadline = (d: Deciding, roomId: string): ReadonlyArray<Event> => {
  const room = findRoom(d.state, roomId)
  if (room === undefined || room.decision !== undefined) return []
  return decided(d, room, [...room.votes.values()], false)
}

/** A human's answer to an escalated room (or the fallback's): its final outcome. */
export const resolveRoom = (
  d: Deciding,
  roomId: string,
  answer: { readonly outcome: "APPROVED" | "REVISION_REQUESTED"; readonly action: string; readonly by: string; readonly rationale: string }
): ReadonlyArray<Event> => {
  const room = findRoom(d.state, roomId)
  if (room === undefined || room.resolution !== undefined) return []
  return [
    RoomResolved.make({ room_id: roomId, ...answer, at: d.now }, true),
    ...roomNotice(d, roomId, room.producer_id, "resolution", {
      type: "resolution",
      negotiation_room_id: roomId,
      outcome: answer.outcome,
      by: answer.by,
      rationale: answer.rationale
    })
  ]
}

/** AUTO_DECIDE_THRESHOLD for a room: its approval thresholds alone decide, over the votes it has. */
export const roomByThreshold = (state: RuntimeState, roomId: string): "APPROVED" | "REVISION_REQUESTED" => {
  const room = findRoom(state, roomId)
  return room !== undefined && meetsApproval(aggregate([...room.votes.values()]), room.thresholds) ? "APPROVED" : "REVISION_REQUESTED"
}

// ---------------------------------------------------------------------------
// Evolve

const newRoom = (event: RoomOpened): Room => ({
  room_id: event.room_id,
  artifact_id: event.artifact_id,
  artifact_type: event.artifact_type,
  artifact: event.artifact,
  artifact_content_type: event.artifact_content_type,
  producer_id: event.producer_id,
  critics: event.critics,
  thresholds: event.thresholds,
  fallback: event.hitl_fallback,
  opened_at: event.at,
  deadline: event.deadline,
  votes: new Map(),
  decision: undefined,
  resolution: undefined
})

export const negotiationSlice: Slice<NegotiationState> = {
  initial: () => ({ rooms: new Map() }),
  evolve: {
    RoomOpened: (state, event) => {
      state.rooms.set(event.room_id, newRoom(event))
    },
    VoteCast: (state, event) => {
      state.rooms.get(event.room_id)?.votes.set(event.vote.critic_id, { ...event.vote, voted_at: event.at })
    },
    RoomDecided: (state, event) => {
      const room = state.rooms.get(event.room_id)
      if (room === undefined) return
      room.decision = {
        outcome: event.outcome,
        aggregated_score: event.aggregated_score,
        reason: event.reason,
        decided_at: event.at,
        hitl_id: event.hitl_id
      }
    },
    RoomResolved: (state, event) => {
      const room = state.rooms.get(event.room_id)
      if (room === undefined) return
      room.resolution = { outcome: event.outcome, action: event.action, by: event.by, rationale: event.rationale, at: event.at }
    }
  },
  // Not in the runtime's snapshot, whose shape the HTTP API serves: `coordinationSnapshot` has it.
  snapshot: () => ({})
}

export const negotiationSnapshot = (state: RuntimeState) => ({
  rooms: sortedRecord(state.rooms, roomView)
})
