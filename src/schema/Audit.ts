/**
 * The audit trail's records (PROTOCOLS.md §2, "Audit"). Every record is
 * sealed into a hash chain (`src/model/Audit.ts`): `hash` covers `prev_hash`
 * and the canonical JSON of every other field.
 *
 * These schemas are transformation-free (Type and Encoded are the same JSON
 * value) so a record hashes the same in memory, on the wire and in the log.
 * Keep it that way: a field whose decoded form differs from its encoded form
 * would make the hash depend on where it is computed.
 */
import { Schema } from "effect"

/**
 * The decisions the gateway records today. `AuditRecord.decision` accepts any
 * string so that a trail written by a newer version still decodes and
 * verifies; these are the values to expect:
 *
 * - policy outcomes: `allow`, `deny` (also a request refused at the network
 *   edge, rule `api key`), `pending` (waits for a human), `redact`;
 * - approvals: `approved`, `rejected`, `timed_out`;
 * - budgets: `charged`, `budget_exhausted`;
 * - leases: `lease_denied`, `lease_expired`;
 * - kill switch: `suspended`, `resumed`, `killed`, `halted`;
 * - dispatch: `dispatched` (the tool call left the gateway).
 */
export const knownAuditDecisions = [
  "allow",
  "deny",
  "pending",
  "redact",
  "approved",
  "rejected",
  "timed_out",
  "charged",
  "budget_exhausted",
  "lease_denied",
  "lease_expired",
  "suspended",
  "resumed",
  "killed",
  "halted",
  "dispatched"
] as const
export const KnownAuditDecision = Schema.Literal(...knownAuditDecisions)
export type KnownAuditDecision = typeof KnownAuditDecision.Type

/** Open-ended on purpose: see `knownAuditDecisions`. */
export const AuditDecision = Schema.String.annotations({
  identifier: "AuditDecision",
  description: `one of ${knownAuditDecisions.join(", ")}, or a value added by a later version`
})

/** A lowercase SHA-256 digest in hex. */
export const Sha256Hex = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{64}$/, { message: () => "must be 64 lowercase hex digits" })
)

export const CallStackKind = Schema.Literal("llm", "tool", "result")
export type CallStackKind = typeof CallStackKind.Type

/** One step of the work behind a decision: an LLM turn, a tool call, a result, with what it called. */
export interface CallStackNode {
  readonly id: string
  readonly kind: CallStackKind
  readonly label: string
  readonly latency_ms: number
  readonly children: ReadonlyArray<CallStackNode>
}

export const CallStackNode: Schema.Schema<CallStackNode> = Schema.Struct({
  id: Schema.String,
  kind: CallStackKind,
  label: Schema.String,
  latency_ms: Schema.NonNegative.pipe(Schema.finite()),
  children: Schema.Array(Schema.suspend((): Schema.Schema<CallStackNode> => CallStackNode))
}).annotations({ identifier: "CallStackNode" })

export const AuditRecord = Schema.Struct({
  agent_id: Schema.String,
  /** What was attempted, e.g. `tool.call:search` or `agent.kill`. */
  action: Schema.String,
  decision: AuditDecision,
  reason: Schema.String,
  /** The policy rule that matched, if any. */
  rule: Schema.optional(Schema.String),
  trace_id: Schema.optional(Schema.String),
  span_id: Schema.optional(Schema.String),
  /** The agent and its ancestors: self first, root last. */
  lineage: Schema.Array(Schema.String),
  /** True in observe mode: `decision` was applied as allow, `shadow_decision` is what enforce would have done. */
  dry_run: Schema.Boolean,
  shadow_decision: Schema.optional(AuditDecision),
  /** Epoch milliseconds. */
  at: Schema.NonNegativeInt,
  call_stack: Schema.optional(CallStackNode),
  /** The previous record's `hash`; `GENESIS_HASH` for the first record. */
  prev_hash: Sha256Hex,
  /** SHA-256 over `prev_hash` and the canonical JSON of every field but these two. */
  hash: Sha256Hex
}).annotations({ identifier: "AuditRecord" })
export type AuditRecord = typeof AuditRecord.Type
export type AuditRecordJson = typeof AuditRecord.Encoded

/**
 * What a caller may add to the audit record of its decision. Decoded before
 * it reaches the record: the record is hashed as it is, so a value its schema
 * would not keep (an extra field, a NaN latency) would break the chain.
 */
export const AuditContext = Schema.Struct({
  trace_id: Schema.optional(Schema.String),
  span_id: Schema.optional(Schema.String),
  call_stack: Schema.optional(CallStackNode)
}).annotations({ identifier: "AuditContext" })
export type AuditContext = typeof AuditContext.Type

/**
 * The head of an audit trail at one moment: how many records it had, and the
 * `hash` of the last one (`GENESIS_HASH`, 64 zeros, when it had none). The
 * chain alone cannot show that records were cut off its end, or that a tail
 * was rewritten with every hash recomputed; a checkpoint kept outside the
 * store (a file, a ticket, another system) can, for the records up to it.
 * Plain JSON, to be decoded from wherever it was kept.
 */
export const AuditCheckpoint = Schema.Struct({
  /** The number of audit records, from the first. */
  records: Schema.NonNegativeInt,
  /** The `hash` of the last of them. */
  head: Sha256Hex
}).annotations({ identifier: "AuditCheckpoint" })
export type AuditCheckpoint = typeof AuditCheckpoint.Type

/** A record before it is sealed into the chain. */
export type UnsealedAuditRecord = Omit<AuditRecord, "hash" | "prev_hash">
