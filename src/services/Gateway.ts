/**
 * Governance of every agent action (PROTOCOLS.md §2, and the leases and
 * budgets of §3). Every decision is recorded in the hash-chained audit trail.
 */
import { Context, type Effect, type Stream } from "effect"
import type { ChainVerification } from "../model/Audit.js"
import type { BudgetStatus } from "../model/Budgets.js"
import type { GatewayDecision } from "../model/Checks.js"
import type { Approval, PolicyInfo } from "../model/Governance.js"
import type { Action } from "../model/Policy.js"
import type { AuditCheckpoint, AuditContext, AuditRecord } from "../schema/Audit.js"
import type {
  BudgetExhausted,
  InternalError,
  LeaseExpired,
  LeaseSubsetViolation,
  PermissionDenied,
  PersistenceError,
  UndecodableRecord,
  UnknownPlaceholder,
  ValidationError
} from "../schema/Errors.js"
import type { ChargeRequest } from "../schema/GatewayEvents.js"
import type { Lease, LeaseCheck, LeaseJson } from "../schema/Lease.js"
import type { InvalidPolicy } from "../schema/Policy.js"
import type {
  ApprovalAnswer,
  ApprovalsFilter,
  DeniedAccess,
  HaltRequest,
  KillRequest,
  ResumeRequest,
  SuspendRequest,
  UnhaltRequest
} from "../schema/Requests.js"
import type { SecretStore } from "./SecretStore.js"

export type { Approval, ApprovalStatus, PolicyInfo } from "../model/Governance.js"
export type { BudgetStatus } from "../model/Budgets.js"
export type { GatewayDecision } from "../model/Checks.js"

/** What every command of the gateway may fail with besides its own errors. */
type Failure = ValidationError | PersistenceError | InternalError

export type Dispatch =
  | {
    readonly _tag: "Dispatched"
    /** The args to hand to the tool: placeholders resolved, redacted paths masked. */
    readonly args: unknown
    /** The names of the secrets put in (never their values). */
    readonly substituted: ReadonlyArray<string>
    readonly decision: GatewayDecision
  }
  | {
    /** A human must approve: wait with `awaitApproval`, then dispatch again with the approval id. */
    readonly _tag: "AwaitingApproval"
    readonly approval_id: string
    readonly decision: GatewayDecision
  }

export interface AuditEntry {
  readonly offset: number
  readonly record: AuditRecord
}

export class Gateway extends Context.Tag("switchboard/Gateway")<Gateway, {
  /** Loads a policy document (YAML), or replaces the one with its id: each version is an event. */
  readonly loadPolicy: (yaml: string) => Effect.Effect<PolicyInfo, InvalidPolicy | Failure>
  readonly removePolicy: (policy_id: string) => Effect.Effect<void, Failure>
  readonly policies: Effect.Effect<ReadonlyArray<PolicyInfo>, InternalError>

  /**
   * The decision on an action (tool call, message, network call, LLM call),
   * recorded in the audit with its optional context (trace and span ids, call
   * stack). A tool call's args must be JSON (ValidationError).
   */
  readonly check: (action: Action & { readonly context?: AuditContext | undefined }) => Effect.Effect<GatewayDecision, Failure>

  /** The approvals, or those with a status. */
  readonly approvals: (filter?: ApprovalsFilter) => Effect.Effect<ReadonlyArray<Approval>, Failure>
  /**
   * A human's yes. Refused (PermissionDenied) when the call could not go
   * ahead any more: its hourly limit filled up meanwhile, or a policy now
   * denies it. Approved, the call must be made within the approval's window.
   */
  readonly approve: (request: ApprovalAnswer) => Effect.Effect<Approval, PermissionDenied | Failure>
  readonly reject: (request: ApprovalAnswer) => Effect.Effect<Approval, PermissionDenied | Failure>
  /** Waits until a human approves or rejects, or the approval times out into a deny. Interrupted, it leaves nothing behind. */
  readonly awaitApproval: (approval_id: string) => Effect.Effect<Approval, ValidationError | InternalError>

  /** The kill switch. A suspended agent can neither send nor receive; its deliveries wait. */
  readonly suspend: (request: SuspendRequest) => Effect.Effect<void, Failure>
  readonly resume: (request: ResumeRequest) => Effect.Effect<void, Failure>
  /** For good: the agent is deregistered and may not register again. */
  readonly kill: (request: KillRequest) => Effect.Effect<void, Failure>
  readonly halt: (request: HaltRequest) => Effect.Effect<void, Failure>
  readonly unhalt: (request?: UnhaltRequest) => Effect.Effect<void, Failure>

  /** Charges the agent's budget (and its team's) in a currency: all or nothing. */
  readonly charge: (request: typeof ChargeRequest.Type) => Effect.Effect<ReadonlyArray<BudgetStatus>, BudgetExhausted | Failure>
  readonly budgets: (agent_id: string) => Effect.Effect<ReadonlyArray<BudgetStatus>, ValidationError | InternalError>

  readonly grantLease: (lease: LeaseJson) => Effect.Effect<Lease, Failure>
  /** Whether the lease covers the operation: PermissionDenied or LeaseExpired (both final) when not. */
  readonly checkLease: (request: typeof LeaseCheck.Type) => Effect.Effect<void, PermissionDenied | LeaseExpired | Failure>
  /** A child lease, which must be a subset of its parent. */
  readonly delegateLease: (request: {
    readonly parent_lease_id: string
    readonly lease: LeaseJson
  }) => Effect.Effect<Lease, LeaseSubsetViolation | LeaseExpired | Failure>

  /**
   * Checks a tool call against policy, then resolves `${NAME}` placeholders in
   * its args from the SecretStore, just before dispatch. The log, the audit and
   * every error keep the placeholder form.
   */
  readonly dispatchTool: (request: {
    readonly agent_id: string
    readonly tool: string
    readonly args: unknown
    /** An approved approval for this very call, when the policy asked for one. */
    readonly approval_id?: string | undefined
    readonly context?: AuditContext | undefined
  }) => Effect.Effect<Dispatch, PermissionDenied | UnknownPlaceholder | Failure, SecretStore>

  /**
   * Records in the audit a request the network edge refused (403) before it
   * reached any service: an API key acting as another agent, or an agent's
   * key on an operator route. Decision `deny`, rule `api key`, the key's id
   * in the reason (never the key). Texts past their bound are cut, marked
   * `…`; an empty one, or a field it does not know, is a ValidationError.
   */
  readonly recordDenied: (request: DeniedAccess) => Effect.Effect<AuditEntry, Failure>

  /** The audit trail, oldest first. */
  readonly audit: Stream.Stream<AuditEntry, PersistenceError | UndecodableRecord>
  /**
   * Recomputes the hash chain and names the first record that was changed
   * (`verifyChain`). A chain that was cut short, or rewritten from some record
   * on with every hash recomputed, still verifies: see `verifyAuditAgainst`.
   */
  readonly verifyAudit: Effect.Effect<ChainVerification, PersistenceError | UndecodableRecord>
  /**
   * The head of the audit trail now: its number of records and the hash of
   * the last. Kept outside the store, it is what `verifyAuditAgainst` checks.
   */
  readonly auditCheckpoint: Effect.Effect<AuditCheckpoint, InternalError>
  /**
   * As `verifyAudit`, and fails too when the records up to `checkpoint` (taken
   * from this trail earlier) were removed or rewritten since. ValidationError
   * when `checkpoint` is not an AuditCheckpoint.
   */
  readonly verifyAuditAgainst: (
    checkpoint: AuditCheckpoint
  ) => Effect.Effect<ChainVerification, ValidationError | PersistenceError | UndecodableRecord>
}>() {}
