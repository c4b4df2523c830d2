/**
 * Governance of every agent action (PROTOCOLS.md §2, and the leases and
 * budgets of §3). Every decision is recorded in the hash-chained audit trail.
 */
import { Context, type Effect, type Stream } from "effect"
import type { Approval, ApprovalStatus, AuditContext, GatewayDecision } from "../model/Gateway.js"
import type { ChainVerification } from "../model/Audit.js"
import type { Action } from "../model/Policy.js"
import type { AuditCheckpoint, AuditRecord } from "../schema/Audit.js"
import type {
  BudgetExhausted,
  LeaseExpired,
  LeaseSubsetViolation,
  PermissionDenied,
  PersistenceError,
  UndecodableRecord,
  UnknownPlaceholder,
  ValidationError
} from "../schema/Errors.js"
import type { Lease, LeaseJson, LeaseNamespace } from "../schema/Lease.js"
import type { InvalidPolicy, Scope } from "../schema/Policy.js"
import type { SecretStore } from "./SecretStore.js"

export interface PolicyInfo {
  readonly policy_id: string
  readonly version: number
  readonly scope: Scope
}

export interface BudgetStatus {
  readonly scope: "agent" | "team"
  readonly scope_id: string
  readonly currency: string
  readonly spent: number
  /** The smallest limit the policies in force set; undefined when none does. */
  readonly limit: number | undefined
}

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
  readonly loadPolicy: (yaml: string) => Effect.Effect<PolicyInfo, InvalidPolicy | PersistenceError>
  readonly removePolicy: (policy_id: string) => Effect.Effect<void, ValidationError | PersistenceError>
  readonly policies: Effect.Effect<ReadonlyArray<PolicyInfo>>

  /**
   * The decision on an action (tool call, message, network call, LLM call),
   * recorded in the audit. A tool call's args must be JSON (ValidationError).
   */
  readonly check: (
    action: Action,
    context?: AuditContext
  ) => Effect.Effect<GatewayDecision, ValidationError | PersistenceError>

  readonly approvals: (status?: ApprovalStatus) => Effect.Effect<ReadonlyArray<Approval>>
  readonly approve: (
    approval_id: string,
    by: string,
    note?: string
  ) => Effect.Effect<Approval, ValidationError | PersistenceError>
  readonly reject: (
    approval_id: string,
    by: string,
    note?: string
  ) => Effect.Effect<Approval, ValidationError | PersistenceError>
  /** Waits until a human approves or rejects, or the approval times out into a deny. */
  readonly awaitApproval: (approval_id: string) => Effect.Effect<Approval, ValidationError>

  /** The kill switch. A suspended agent can neither send nor receive; its deliveries wait. */
  readonly suspend: (agent_id: string, reason: string, by?: string) => Effect.Effect<void, ValidationError | PersistenceError>
  readonly resume: (agent_id: string, by?: string) => Effect.Effect<void, ValidationError | PersistenceError>
  /** For good: the agent is deregistered and may not register again. */
  readonly kill: (agent_id: string, reason: string, by?: string) => Effect.Effect<void, ValidationError | PersistenceError>
  readonly halt: (reason: string, by?: string) => Effect.Effect<void, ValidationError | PersistenceError>
  readonly unhalt: (by?: string) => Effect.Effect<void, ValidationError | PersistenceError>

  /** Charges the agent's budget (and its team's) in a currency: all or nothing. */
  readonly charge: (request: {
    readonly agent_id: string
    readonly currency: string
    readonly amount: number
  }) => Effect.Effect<ReadonlyArray<BudgetStatus>, BudgetExhausted | ValidationError | PersistenceError>
  readonly budgets: (agent_id: string) => Effect.Effect<ReadonlyArray<BudgetStatus>>

  readonly grantLease: (lease: LeaseJson) => Effect.Effect<Lease, ValidationError | PersistenceError>
  /** Whether the lease covers the operation: PermissionDenied or LeaseExpired (both final) when not. */
  readonly checkLease: (request: {
    readonly lease_id: string
    readonly namespace: LeaseNamespace
    readonly resource: string
  }) => Effect.Effect<void, PermissionDenied | LeaseExpired | ValidationError | PersistenceError>
  /** A child lease, which must be a subset of its parent. */
  readonly delegateLease: (request: {
    readonly parent_lease_id: string
    readonly lease: LeaseJson
  }) => Effect.Effect<Lease, LeaseSubsetViolation | LeaseExpired | ValidationError | PersistenceError>

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
  }) => Effect.Effect<Dispatch, PermissionDenied | UnknownPlaceholder | ValidationError | PersistenceError, SecretStore>

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
  readonly auditCheckpoint: Effect.Effect<AuditCheckpoint>
  /**
   * As `verifyAudit`, and fails too when the records up to `checkpoint` (taken
   * from this trail earlier) were removed or rewritten since. ValidationError
   * when `checkpoint` is not an AuditCheckpoint.
   */
  readonly verifyAuditAgainst: (
    checkpoint: AuditCheckpoint
  ) => Effect.Effect<ChainVerification, ValidationError | PersistenceError | UndecodableRecord>
}>() {}
