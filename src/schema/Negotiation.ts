/**
 * Negotiation rooms on the wire (PROTOCOLS.md §1 "Coordination", SW4RM's
 * `NegotiationRoomService`): a proposal that critics vote on, the decision
 * the runtime takes from their votes, and the facts of the log. Field names
 * and enum numbers are SW4RM's `negotiation_room.proto`.
 */
import { Schema } from "effect"
import { Id } from "./Envelope.js"
import { maxDurationMs } from "./Config.js"
import { Json } from "./Json.js"
import { HitlFallback } from "./Hitl.js"

const At = Schema.Int
const Millis = Schema.Number.annotations({ description: "epoch milliseconds" })

export const ArtifactType = Schema.Literal("REQUIREMENTS", "PLAN", "CODE", "DEPLOYMENT")
export type ArtifactType = typeof ArtifactType.Type
export const ArtifactTypeNumber = { REQUIREMENTS: 1, PLAN: 2, CODE: 3, DEPLOYMENT: 4 } as const

export const DecisionOutcome = Schema.Literal("APPROVED", "REVISION_REQUESTED", "ESCALATED_TO_HITL")
export type DecisionOutcome = typeof DecisionOutcome.Type
export const DecisionOutcomeNumber = { APPROVED: 1, REVISION_REQUESTED: 2, ESCALATED_TO_HITL: 3 } as const

/** A room id: at most 128 characters, so that the ids of the room's envelopes stay ids. */
export const RoomId = Id.pipe(Schema.maxLength(128, { message: () => "must be at most 128 characters" }))

const Unit = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1))
const Score = Schema.Number.pipe(Schema.finite(), Schema.between(0, 10))
/** A standard deviation of scores from 0 to 10 is at most 5. */
const Spread = Schema.Number.pipe(Schema.finite(), Schema.between(0, 5))

/**
 * The decision rule's thresholds (PROTOCOLS.md §1): APPROVED when the
 * confidence-weighted mean score, the mean confidence and the pass ratio
 * reach their minimums and the standard deviation of scores stays within
 * its maximum; ESCALATED_TO_HITL when any confidence is below
 * `escalate_confidence_below` or the deviation above `escalate_std_dev_above`.
 */
export const Thresholds = Schema.Struct({
  approve_weighted_mean_min: Score,
  approve_mean_confidence_min: Unit,
  approve_pass_ratio_min: Unit,
  approve_std_dev_max: Spread,
  escalate_confidence_below: Unit,
  escalate_std_dev_above: Spread
}).annotations({ identifier: "Thresholds" })
export type Thresholds = typeof Thresholds.Type

export const defaultThresholds: Thresholds = {
  approve_weighted_mean_min: 7.0,
  approve_mean_confidence_min: 0.7,
  approve_pass_ratio_min: 0.8,
  approve_std_dev_max: 2.0,
  escalate_confidence_below: 0.3,
  escalate_std_dev_above: 3.0
}

const Texts = Schema.Array(Schema.String.pipe(Schema.maxLength(4096))).pipe(Schema.maxItems(64))

// ---------------------------------------------------------------------------
// Requests

export const ProposalRequest = Schema.Struct({
  /** Given, it must be new; left out, the runtime names it `room-N`. */
  negotiation_room_id: Schema.optional(RoomId),
  /** The artifact's id; the room's id when absent. */
  artifact_id: Schema.optional(Id),
  artifact_type: ArtifactType,
  artifact: Schema.optional(Json),
  artifact_content_type: Schema.optional(Id),
  producer_id: Id,
  requested_critics: Schema.Array(Id).pipe(Schema.minItems(1), Schema.maxItems(64)),
  /** How long the critics have; the runtime's default when absent. */
  deadline_ms: Schema.optional(Schema.Int.pipe(Schema.between(1, maxDurationMs))),
  /** Overrides of the default thresholds for this room. */
  thresholds: Schema.optional(Schema.partial(Thresholds)),
  /** What happens when the human asked after an escalation does not answer in time. */
  hitl_fallback: Schema.optional(HitlFallback)
})
export type ProposalRequest = typeof ProposalRequest.Type

export const Vote = Schema.Struct({
  critic_id: Id,
  score: Score,
  confidence: Unit,
  passed: Schema.Boolean,
  strengths: Schema.optionalWith(Texts, { default: () => [] }),
  weaknesses: Schema.optionalWith(Texts, { default: () => [] }),
  recommendations: Schema.optionalWith(Texts, { default: () => [] })
})
export type Vote = typeof Vote.Type

export const VoteRequest = Schema.extend(Vote, Schema.Struct({ negotiation_room_id: RoomId }))
export type VoteRequest = typeof VoteRequest.Type
/** A vote as a caller gives it: strengths, weaknesses and recommendations may be left out. */
export type VoteInput = typeof VoteRequest.Encoded

export const RoomRef = Schema.Struct({ negotiation_room_id: RoomId })

export const WaitRequest = Schema.Struct({
  negotiation_room_id: RoomId,
  /** At most this long (default 30 s, at most 10 minutes); then DEADLINE_EXCEEDED. */
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(0, 600_000)))
})
export type WaitRequest = typeof WaitRequest.Type

// ---------------------------------------------------------------------------
// Views

// Finite: it is stored in RoomDecided, and JSON would write NaN or Infinity as null.
export const AggregatedScore = Schema.Struct({
  mean: Schema.Finite,
  min_score: Schema.Finite,
  max_score: Schema.Finite,
  std_dev: Schema.Finite,
  weighted_mean: Schema.Finite,
  vote_count: Schema.Finite,
  mean_confidence: Schema.Finite,
  pass_ratio: Schema.Finite
}).annotations({ identifier: "AggregatedScore" })
export type AggregatedScore = typeof AggregatedScore.Type

export const VoteView = Schema.extend(Vote, Schema.Struct({ voted_at: Millis })).annotations({ identifier: "Vote" })

export const DecisionView = Schema.Struct({
  negotiation_room_id: Schema.String,
  artifact_id: Schema.String,
  outcome: DecisionOutcome,
  votes: Schema.Array(VoteView),
  aggregated_score: AggregatedScore,
  reason: Schema.String,
  decided_at: Millis,
  /** The human asked, when escalated. */
  hitl_id: Schema.optional(Schema.String),
  /** What the human (or the fallback) answered: the room's final word. */
  resolution: Schema.optional(Schema.Struct({
    outcome: Schema.Literal("APPROVED", "REVISION_REQUESTED"),
    action: Schema.String,
    by: Schema.String,
    rationale: Schema.String,
    at: Millis
  }))
}).annotations({ identifier: "NegotiationDecision" })
export type DecisionView = typeof DecisionView.Type

export const RoomView = Schema.Struct({
  negotiation_room_id: Schema.String,
  artifact_id: Schema.String,
  artifact_type: ArtifactType,
  artifact: Json,
  artifact_content_type: Schema.optional(Schema.String),
  producer_id: Schema.String,
  requested_critics: Schema.Array(Schema.String),
  thresholds: Thresholds,
  opened_at: Millis,
  deadline: Millis,
  votes: Schema.Array(VoteView),
  decision: Schema.optional(DecisionView)
}).annotations({ identifier: "NegotiationRoom" })
export type RoomView = typeof RoomView.Type

/** Which rooms `Negotiation.rooms` lists: a page of them, in the order they were opened. */
export const RoomsFilter = Schema.Struct({
  /** `open`: no decision yet; `decided`: decided (an escalated room is decided; a human's answer is its resolution). */
  status: Schema.optional(Schema.Literal("open", "decided")),
  /** The rooms this agent produces or is a requested critic of. */
  agent_id: Schema.optional(Id),
  /** The page starts after this room (a page's `next`). */
  after: Schema.optional(RoomId),
  /** At most this many rooms (default 100, at most 1,000). */
  limit: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000)))
})
export type RoomsFilter = typeof RoomsFilter.Type

export const RoomPage = Schema.Struct({
  rooms: Schema.Array(RoomView),
  /** Pass as `after` for the next page; absent on the last one. */
  next: Schema.optional(Schema.String)
}).annotations({ identifier: "NegotiationRoomPage" })
export type RoomPage = typeof RoomPage.Type

// ---------------------------------------------------------------------------
// Events

export const RoomOpened = Schema.TaggedStruct("RoomOpened", {
  room_id: Id,
  artifact_id: Id,
  artifact_type: ArtifactType,
  artifact: Json,
  artifact_content_type: Schema.optional(Id),
  producer_id: Id,
  critics: Schema.Array(Id),
  deadline: At,
  thresholds: Thresholds,
  hitl_fallback: HitlFallback,
  at: At
})
export type RoomOpened = typeof RoomOpened.Type

export const VoteCast = Schema.TaggedStruct("VoteCast", {
  room_id: Id,
  vote: Vote,
  at: At
})
export type VoteCast = typeof VoteCast.Type

export const RoomDecided = Schema.TaggedStruct("RoomDecided", {
  room_id: Id,
  outcome: DecisionOutcome,
  aggregated_score: AggregatedScore,
  reason: Schema.String,
  hitl_id: Schema.optional(Id),
  at: At
})
export type RoomDecided = typeof RoomDecided.Type

/** A human (or the fallback) answered the escalation of a room. */
export const RoomResolved = Schema.TaggedStruct("RoomResolved", {
  room_id: Id,
  outcome: Schema.Literal("APPROVED", "REVISION_REQUESTED"),
  action: Schema.String,
  by: Schema.String,
  rationale: Schema.String,
  at: At
})
export type RoomResolved = typeof RoomResolved.Type

export const NegotiationEvent = Schema.Union(RoomOpened, VoteCast, RoomDecided, RoomResolved)
export type NegotiationEvent = typeof NegotiationEvent.Type
