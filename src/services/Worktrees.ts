/**
 * Worktree bindings (PROTOCOLS.md §1 "Coordination", SW4RM's
 * `WorktreeService` plus Revoke and a bind failure report): which
 * repository and worktree each agent works in. Every answer is the agent's
 * status after the command; a request that needs a human answers with the
 * invocation's id in the status (`hitl_id`, or `pending.hitl_id`).
 */
import { Context, type Effect } from "effect"
import type { FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import type { InternalError, NoRoute, PermissionDenied, PersistenceError, ValidationError } from "../schema/Errors.js"
import type {
  BindFailure,
  BindingPage,
  BindingsFilter,
  BindRequest,
  SwitchApprove,
  SwitchReject,
  SwitchRequest,
  WorktreeStatus
} from "../schema/Worktree.js"

export type {
  BindFailure,
  BindingPage,
  BindingsFilter,
  BindRequest,
  SwitchApprove,
  SwitchReject,
  SwitchRequest,
  WorktreeStatus
} from "../schema/Worktree.js"

type Failure = ValidationError | PersistenceError | InternalError

export class Worktrees extends Context.Tag("switchboard/Worktrees")<Worktrees, {
  /**
   * Binds the agent's home worktree (BOUND_HOME), if the gateway's policies
   * allow the tool `worktree.bind` with these args: denied, PermissionDenied;
   * pending, a human is asked (the status carries `hitl_id`).
   */
  readonly bind: (request: BindRequest) => Effect.Effect<WorktreeStatus, NoRoute | PermissionDenied | FailedPrecondition | Failure>
  readonly unbind: (request: SwitchReject) => Effect.Effect<WorktreeStatus, Failure>
  /** SWITCH_PENDING until approved (BOUND_NON_HOME for a TTL), rejected or timed out (home). */
  readonly requestSwitch: (request: SwitchRequest) => Effect.Effect<WorktreeStatus, PermissionDenied | FailedPrecondition | Failure>
  readonly approveSwitch: (request: SwitchApprove) => Effect.Effect<WorktreeStatus, FailedPrecondition | Failure>
  readonly rejectSwitch: (request: SwitchReject) => Effect.Effect<WorktreeStatus, FailedPrecondition | Failure>
  /** Ends a switch early (or a pending one): the agent goes home. Not in SW4RM's proto. */
  readonly revoke: (request: SwitchReject) => Effect.Effect<WorktreeStatus, FailedPrecondition | Failure>
  /** The agent could not set up its worktree: BIND_FAILED, retried at most 3 times, then a human is asked. */
  readonly reportBindFailure: (request: BindFailure) => Effect.Effect<WorktreeStatus, NotFound | FailedPrecondition | Failure>
  /**
   * A page of the bindings, agents in the order they were first bound (at
   * most `limit`, default 100), optionally in one state or of one agent; an
   * agent never bound has none (its `status` is UNBOUND). `next` is the
   * `after` of the next page.
   */
  readonly bindings: (filter?: BindingsFilter) => Effect.Effect<BindingPage, ValidationError | InternalError>
  readonly status: (agent_id: string) => Effect.Effect<WorktreeStatus, ValidationError | InternalError>
}>() {}
