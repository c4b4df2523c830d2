/**
 * What the services answer, as Schemas: the bodies the HTTP API returns and
 * its typed client decodes, and what the OpenAPI document describes. The
 * services build these answers as plain objects of the same shape
 * (`AgentInfo`, `MessageStatus`, ...); the API's handlers hand them over as
 * they are, so a field added to one and not the other fails the typecheck.
 *
 * Times are epoch milliseconds. A field the runtime leaves undefined is
 * absent from the JSON.
 */
import { Schema } from "effect"
import { AgentDescriptor, AgentHealth, EdgeType } from "./Agent.js"
import { AuditRecord } from "./Audit.js"
import { AgentState, CommunicationClass, EnvelopeState, ErrorCode } from "./Envelope.js"
import { BudgetScope, GatedAction } from "./GatewayEvents.js"
import { Json } from "./Json.js"
import { Scope } from "./Policy.js"
import { ApprovalStatus } from "./Requests.js"

const Millis = Schema.Number.annotations({ description: "epoch milliseconds" })

export const AgentView = Schema.Struct({
  descriptor: AgentDescriptor,
  state: AgentState,
  health: AgentHealth,
  /** Registered, heartbeating in time, and not shutting down: messages can be routed to it. */
  available: Schema.Boolean,
  registered_at: Millis
}).annotations({ identifier: "Agent" })

export const EdgeView = Schema.Struct({
  from: Schema.String,
  to: Schema.String,
  edge_type: EdgeType,
  at: Millis
}).annotations({ identifier: "Edge" })

export const SendReceiptView = Schema.Struct({
  message_id: Schema.String,
  /** The agent the message was admitted for. */
  to: Schema.String,
  stage: EnvelopeState,
  /** The offset of the event that made it durable. */
  offset: Schema.Number
}).annotations({ identifier: "SendReceipt" })

export const AckReceiptView = Schema.Struct({
  message_id: Schema.String,
  /** The message's stage after this ACK: unchanged for a late ACK. */
  stage: EnvelopeState,
  /** True when the message had already reached a terminal stage: recorded, changes nothing. */
  late: Schema.Boolean,
  offset: Schema.Number
}).annotations({ identifier: "AckReceipt" })

export const MessageStatusView = Schema.Struct({
  message_id: Schema.String,
  producer_id: Schema.String,
  to: Schema.String,
  stage: EnvelopeState,
  attempts: Schema.Number,
  delivery_seq: Schema.optional(Schema.Number),
  error_code: Schema.optional(ErrorCode),
  dead_letter: Schema.Boolean,
  accepted_at: Millis,
  finished_at: Schema.optional(Millis)
}).annotations({ identifier: "MessageStatus" })

export const PolicyInfoView = Schema.Struct({
  policy_id: Schema.String,
  version: Schema.Number,
  scope: Scope
}).annotations({ identifier: "PolicyInfo" })

export const Verdict = Schema.Literal("allow", "deny", "pending", "redact")

export const DecisionView = Schema.Struct({
  /** What is applied: in observe mode always allow. */
  decision: Verdict,
  reason: Schema.String,
  rule: Schema.String,
  /** In observe mode, what enforce would have decided. */
  shadow_decision: Schema.optional(Verdict),
  dry_run: Schema.Boolean,
  /** Set when the decision is pending: a human must approve or reject it. */
  approval_id: Schema.optional(Schema.String),
  redact: Schema.optional(Schema.Array(Schema.String))
}).annotations({ identifier: "GatewayDecision" })

export const ApprovalView = Schema.Struct({
  approval_id: Schema.String,
  action: GatedAction,
  reason: Schema.String,
  rule: Schema.String,
  opened_at: Millis,
  /** Until when a human may answer; once approved, until when the call may be made. */
  expires_at: Millis,
  redact: Schema.optional(Schema.Array(Schema.String)),
  status: ApprovalStatus,
  resolved_at: Schema.optional(Millis),
  by: Schema.optional(Schema.String),
  note: Schema.optional(Schema.String)
}).annotations({ identifier: "Approval" })

export const BudgetStatusView = Schema.Struct({
  scope: BudgetScope,
  scope_id: Schema.String,
  currency: Schema.String,
  spent: Schema.Number,
  /** The smallest limit the policies in force set; absent when none does. */
  limit: Schema.optional(Schema.Number)
}).annotations({ identifier: "BudgetStatus" })

export const DispatchView = Schema.Union(
  Schema.Struct({
    _tag: Schema.Literal("Dispatched"),
    /** The args to hand to the tool: placeholders resolved, redacted paths masked. */
    args: Json,
    /** The names of the secrets put in (never their values). */
    substituted: Schema.Array(Schema.String),
    decision: DecisionView
  }),
  Schema.Struct({
    /** A human must approve: wait for the approval, then dispatch again with its id. */
    _tag: Schema.Literal("AwaitingApproval"),
    approval_id: Schema.String,
    decision: DecisionView
  })
).annotations({ identifier: "Dispatch" })

export const AuditEntryView = Schema.Struct({
  offset: Schema.Number,
  record: AuditRecord
}).annotations({ identifier: "AuditEntry" })

export const ChainVerificationView = Schema.Union(
  Schema.Struct({ ok: Schema.Literal(true), count: Schema.Number }),
  Schema.Struct({
    ok: Schema.Literal(false),
    /** The offset of the record reported; absent when there is none. */
    offset: Schema.optional(Schema.Number),
    reason: Schema.String
  })
).annotations({ identifier: "ChainVerification" })

const Ids = Schema.Array(Schema.String)

/** The whole state as plain data (`Router.snapshot`, `Replay.stateAt`). */
export const SnapshotView = Schema.Struct({
  agents: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      registered: Schema.Boolean,
      live: Schema.Boolean,
      state: AgentState,
      capabilities: Ids,
      liveness_deadline: Schema.optional(Millis)
    })
  }),
  messages: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      to: Schema.String,
      producer_id: Schema.String,
      stage: EnvelopeState,
      location: Schema.Literal("queued", "in_flight", "done"),
      lane: CommunicationClass,
      attempts: Schema.Number,
      delivery_seq: Schema.optional(Schema.Number),
      ack_deadline: Schema.optional(Millis),
      expires_at: Schema.optional(Millis),
      error_code: Schema.optional(ErrorCode),
      dead_letter: Schema.Boolean,
      recipients: Ids,
      late_acks: Schema.Number
    })
  }),
  mailboxes: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      queued: Schema.Struct({ PRIVILEGED: Ids, STANDARD: Ids, BULK: Ids }),
      in_flight: Schema.Number,
      next_delivery_seq: Schema.Number,
      dead_letters: Ids
    })
  }),
  dedup: Schema.Record({ key: Schema.String, value: Schema.String }),
  edges: Schema.Array(EdgeView),
  gateway: Schema.Struct({
    policies: Schema.Record({ key: Schema.String, value: Schema.Number }),
    approvals: Schema.Record({ key: Schema.String, value: Schema.Struct({ status: ApprovalStatus }) }),
    suspended: Schema.Record({ key: Schema.String, value: Schema.String }),
    killed: Ids,
    halted: Schema.optional(Schema.String),
    spent: Schema.Record({ key: Schema.String, value: Schema.Number }),
    leases: Ids,
    audit_head: Schema.String,
    audits: Schema.Number
  })
}).annotations({ identifier: "RuntimeSnapshot" })

export const StateView = Schema.Struct({
  /** The offset the state reflects: every record up to it, none after. */
  offset: Schema.Number,
  state: SnapshotView
}).annotations({ identifier: "StateAt" })
