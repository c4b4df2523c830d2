/**
 * `sw4rm.negotiation_room.NegotiationRoomService` over the runtime's
 * Negotiation (PROTOCOLS.md §1, "Coordination"), with the access rules of
 * every edge (`CoordinationAccess.ts`): the producer proposes, each
 * requested critic votes as itself, and the room is read by them and the
 * operator.
 *
 * A room is named by `negotiation_room_id`, or, when that is empty, by
 * `artifact_id` (SW4RM's reference keys rooms by artifact): a proposal
 * without a room id opens the room named after its artifact. An
 * `artifact_id` that is not the room's is NOT_FOUND. `GetDecision` answers
 * an undecided room with no decision, as SW4RM's reference does (HTTP
 * answers FAILED_PRECONDITION). `WaitForDecision` is bounded: by
 * `timeout_seconds` (30 s when 0, at most 600 s) and by the call's own
 * deadline, then DEADLINE_EXCEEDED. A decision escalated to a human says
 * in its `reason` which invocation decides, and, once answered, what the
 * human (or the fallback) resolved: SW4RM's decision has no field for it.
 */
import type * as Grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { inputDecoder } from "../internal/decode.js"
import { NotFound } from "../schema/CoordinationErrors.js"
import { DecisionOutcomeNumber, type DecisionView, type RoomView } from "../schema/Negotiation.js"
import {
  jsonOfBytes,
  protoTime,
  RoomRequest,
  roomIdOf,
  SubmitProposalRequest,
  SubmitVoteRequest,
  WaitForDecisionRequest
} from "../schema/Sw4rmCoordination.js"
import type { Gateway } from "../services/Gateway.js"
import { Negotiation } from "../services/Negotiation.js"
import type { Authenticate } from "./Auth.js"
import * as Access from "./CoordinationAccess.js"
import { remainingMs, type Run, unary } from "./GrpcCalls.js"

const decodeProposal = inputDecoder(SubmitProposalRequest, "request")
const decodeVote = inputDecoder(SubmitVoteRequest, "request")
const decodeRoom = inputDecoder(RoomRequest, "request")
const decodeWait = inputDecoder(WaitForDecisionRequest, "request")

/** The longest wait asked of the service (its own bound). */
const maxWaitMs = 600_000

type Vote = RoomView["votes"][number]

const voteProto = (room_id: string, artifact_id: string) => (vote: Vote) => ({
  artifact_id,
  critic_id: vote.critic_id,
  score: vote.score,
  confidence: vote.confidence,
  passed: vote.passed,
  strengths: vote.strengths,
  weaknesses: vote.weaknesses,
  recommendations: vote.recommendations,
  negotiation_room_id: room_id,
  voted_at: protoTime(vote.voted_at)
})

const reasonOf = (decision: DecisionView) => {
  const { hitl_id, reason, resolution } = decision
  if (resolution !== undefined) {
    return `${reason}; resolved ${resolution.outcome} by ${resolution.by} (${resolution.action}): ${resolution.rationale}`
  }
  return hitl_id === undefined ? reason : `${reason}; a human decides: hitl ${hitl_id}`
}

const decisionProto = (decision: DecisionView) => ({
  artifact_id: decision.artifact_id,
  outcome: DecisionOutcomeNumber[decision.outcome],
  votes: decision.votes.map(voteProto(decision.negotiation_room_id, decision.artifact_id)),
  aggregated_score: {
    mean: decision.aggregated_score.mean,
    min_score: decision.aggregated_score.min_score,
    max_score: decision.aggregated_score.max_score,
    std_dev: decision.aggregated_score.std_dev,
    weighted_mean: decision.aggregated_score.weighted_mean,
    vote_count: decision.aggregated_score.vote_count
  },
  policy_version: "",
  reason: reasonOf(decision),
  negotiation_room_id: decision.negotiation_room_id,
  decided_at: protoTime(decision.decided_at)
})

/** A given artifact id must be the room's: else the room reviews another artifact, and this one is not found. */
const sameArtifact = (room: RoomView, artifact_id: string | undefined) =>
  artifact_id === undefined || artifact_id === room.artifact_id
    ? Effect.succeed(room)
    : Effect.fail(new NotFound({ what: "artifact", id: `${artifact_id} in room ${room.negotiation_room_id}` }))

export const make = (run: Run<Gateway>, authenticate: Authenticate["Type"]) =>
  Effect.gen(function*() {
    const service = yield* Negotiation
    const rooms = Access.negotiation(service)

    /** The room a request names, as the caller may read it. */
    const roomOf = (request: typeof RoomRequest.Type) =>
      Effect.flatMap(roomIdOf(request), (room_id) => Effect.flatMap(rooms.room(room_id), (room) => sameArtifact(room, request.artifact_id)))

    const propose = ({ proposal }: typeof SubmitProposalRequest.Type) =>
      Effect.gen(function*() {
        const artifact = yield* jsonOfBytes(proposal.artifact, proposal.artifact_content_type ?? "", "proposal.artifact")
        const room = yield* rooms.submitProposal({
          negotiation_room_id: proposal.negotiation_room_id ?? proposal.artifact_id,
          artifact_id: proposal.artifact_id,
          artifact_type: proposal.artifact_type,
          artifact,
          artifact_content_type: proposal.artifact_content_type,
          producer_id: proposal.producer_id,
          requested_critics: proposal.requested_critics
        })
        return { artifact_id: room.artifact_id, negotiation_room_id: room.negotiation_room_id }
      })

    const vote = ({ vote }: typeof SubmitVoteRequest.Type) =>
      Effect.gen(function*() {
        const room_id = yield* roomIdOf(vote)
        // Compared only, before the vote counts: a vote for another artifact must not count in this room.
        if (vote.artifact_id !== undefined) yield* Effect.flatMap(service.room(room_id), (room) => sameArtifact(room, vote.artifact_id))
        const room = yield* rooms.submitVote({
          negotiation_room_id: room_id,
          critic_id: vote.critic_id,
          score: vote.score,
          confidence: vote.confidence,
          passed: vote.passed,
          strengths: vote.strengths,
          weaknesses: vote.weaknesses,
          recommendations: vote.recommendations
        })
        return { artifact_id: room.artifact_id, critic_id: vote.critic_id }
      })

    const votes = (request: typeof RoomRequest.Type) =>
      Effect.map(roomOf(request), (room) => ({
        votes: room.votes.map(voteProto(room.negotiation_room_id, room.artifact_id)),
        vote_count: room.votes.length
      }))

    const decision = (request: typeof RoomRequest.Type) =>
      Effect.map(roomOf(request), (room) => ({ decision: room.decision === undefined ? null : decisionProto(room.decision) }))

    const wait = (request: typeof WaitForDecisionRequest.Type, call: Grpc.ServerUnaryCall<unknown, unknown>) =>
      Effect.gen(function*() {
        const room = yield* roomOf(request)
        const bounds = [request.timeout_seconds === 0 ? undefined : request.timeout_seconds * 1000, yield* remainingMs(call)]
          .filter((ms): ms is number => ms !== undefined)
        const timeout_ms = bounds.length === 0 ? undefined : Math.min(maxWaitMs, ...bounds)
        const decided = yield* rooms.waitForDecision({ negotiation_room_id: room.negotiation_room_id, timeout_ms })
        return { decision: decisionProto(decided) }
      })

    return {
      SubmitProposal: unary(run, authenticate, "SubmitProposalRequest", decodeProposal, propose),
      SubmitVote: unary(run, authenticate, "SubmitVoteRequest", decodeVote, vote),
      GetVotes: unary(run, authenticate, "GetVotesRequest", decodeRoom, votes),
      GetDecision: unary(run, authenticate, "GetDecisionRequest", decodeRoom, decision),
      WaitForDecision: unary(run, authenticate, "WaitForDecisionRequest", decodeWait, wait)
    } satisfies Grpc.UntypedServiceImplementation
  })

