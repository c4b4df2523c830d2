/**
 * Human in the loop (PROTOCOLS.md §1 "Coordination", SW4RM's `HitlService`):
 * invocations with a reason, a deadline and a fallback, answered by a human
 * with approve, deny, modify or defer and a rationale. One queue: the
 * gateway's approvals are in it too, and are answered through `decide`.
 */
import { Context, type Effect } from "effect"
import type { DeadlineExceeded, FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import type { InternalError, PermissionDenied, PersistenceError, ValidationError } from "../schema/Errors.js"
import type { AwaitHitl, DecideRequest, InvocationView, InvokeRequest, QueueFilter, QueueItem } from "../schema/Hitl.js"

export type { AwaitHitl, DecideRequest, InvocationView, InvokeRequest, QueueFilter, QueueItem } from "../schema/Hitl.js"

type Failure = ValidationError | PersistenceError | InternalError

export class Hitl extends Context.Tag("switchboard/Hitl")<Hitl, {
  /** Asks a human (subject Manual): the answer is for whoever waits on it (`awaitDecision`). */
  readonly invoke: (request: InvokeRequest) => Effect.Effect<InvocationView, Failure>
  /**
   * A human's answer to an item of the queue: an invocation (its subject
   * acts on it), or a gateway approval (approve or deny only; PermissionDenied
   * when the call could not go ahead any more).
   */
  readonly decide: (request: DecideRequest) => Effect.Effect<InvocationView | QueueItem, NotFound | FailedPrecondition | PermissionDenied | Failure>
  /** The one queue: invocations and gateway approvals, open ones by default, oldest first. */
  readonly queue: (filter?: QueueFilter) => Effect.Effect<ReadonlyArray<QueueItem>, ValidationError | InternalError>
  readonly invocation: (hitl_id: string) => Effect.Effect<InvocationView, NotFound | ValidationError | InternalError>
  /** Waits until the invocation is decided or withdrawn, at most `timeout_ms` (default 30 s): then DEADLINE_EXCEEDED. */
  readonly awaitDecision: (request: AwaitHitl) => Effect.Effect<InvocationView, NotFound | DeadlineExceeded | ValidationError | InternalError>
}>() {}
