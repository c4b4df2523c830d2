/**
 * Negotiation rooms (PROTOCOLS.md §1 "Coordination", SW4RM's
 * `NegotiationRoomService`): a proposal, one vote per requested critic, and
 * the decision the runtime takes from them. Waiting for a decision is
 * bounded (DEADLINE_EXCEEDED), never unbounded.
 */
import { Context, type Effect } from "effect"
import type { AlreadyExists, DeadlineExceeded, FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import type { InternalError, NoRoute, PermissionDenied, PersistenceError, ValidationError } from "../schema/Errors.js"
import type { DecisionView, ProposalRequest, RoomPage, RoomsFilter, RoomView, VoteInput, WaitRequest } from "../schema/Negotiation.js"

export type { DecisionView, ProposalRequest, RoomPage, RoomsFilter, RoomView, VoteInput, WaitRequest } from "../schema/Negotiation.js"

type Failure = ValidationError | PersistenceError | InternalError

export class Negotiation extends Context.Tag("switchboard/Negotiation")<Negotiation, {
  /** Opens a room; each requested critic (a registered agent) is sent the proposal (NEGOTIATION, correlation_id the room's id). */
  readonly submitProposal: (request: ProposalRequest) => Effect.Effect<RoomView, AlreadyExists | NoRoute | FailedPrecondition | Failure>
  /** One vote per requested critic (a second: ALREADY_EXISTS); the last one decides the room. */
  readonly submitVote: (request: VoteInput) => Effect.Effect<RoomView, NotFound | PermissionDenied | AlreadyExists | FailedPrecondition | Failure>
  /**
   * A page of the rooms, in the order they were opened (at most `limit`,
   * default 100), optionally decided or not, or those an agent produces or
   * is a critic of; `next` is the `after` of the next page.
   */
  readonly rooms: (filter?: RoomsFilter) => Effect.Effect<RoomPage, ValidationError | InternalError>
  readonly room: (room_id: string) => Effect.Effect<RoomView, NotFound | ValidationError | InternalError>
  /** The decision, once taken (None before). */
  readonly decision: (room_id: string) => Effect.Effect<DecisionView | undefined, NotFound | ValidationError | InternalError>
  /** Waits for the decision, at most `timeout_ms` (default 30 s): then DEADLINE_EXCEEDED. */
  readonly waitForDecision: (request: WaitRequest) => Effect.Effect<DecisionView, NotFound | DeadlineExceeded | ValidationError | InternalError>
}>() {}
