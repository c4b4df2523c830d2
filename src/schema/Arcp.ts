/**
 * The ARCP v1.1 wire (PROTOCOLS.md §3): the envelope, the payload of every
 * message a client sends, the event kinds an agent emits, the error object
 * and its codes. Every frame that comes in is decoded with these at the edge
 * (`server/Arcp.ts`); what the runtime sends is built from the log's events
 * (`model/ArcpJobs.ts`) and typed here as plain interfaces.
 *
 * Where the spec's prose and the reference SDK differ, both forms are
 * accepted (`session.resume` beside `session.hello` + `resume`,
 * `session.close` beside `session.bye`, a metric's `dimensions` beside
 * `dims`); the SDK's form is sent.
 */
import { Schema } from "effect"
import { Json } from "./Json.js"

export const protocolVersion = "1.1"

/** W3C trace id: 32 lowercase hex digits. */
export const TraceId = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{32}$/, { message: () => "must be 32 lowercase hex digits" }))

const Text = Schema.String.pipe(Schema.maxLength(4096))
const Name = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))
const Seq = Schema.Int.pipe(Schema.greaterThanOrEqualTo(0))

/**
 * The envelope, decoded before its payload. Unknown top-level fields are
 * ignored (the spec's forward compatibility); `arcp` is checked apart, so that
 * another version gets its own answer.
 */
export const Envelope = Schema.Struct({
  arcp: Schema.Literal(protocolVersion),
  id: Name,
  type: Name,
  session_id: Schema.optional(Name),
  job_id: Schema.optional(Name),
  trace_id: Schema.optional(TraceId),
  event_seq: Schema.optional(Seq),
  extensions: Schema.optional(Schema.Struct({ optional: Schema.optional(Schema.Boolean) })),
  payload: Schema.optional(Schema.Unknown)
})
export type Envelope = typeof Envelope.Type

// ---------------------------------------------------------------------------
// Features and codes

export const allFeatures = [
  "heartbeat",
  "ack",
  "list_jobs",
  "subscribe",
  "lease_expires_at",
  "cost.budget",
  "progress",
  "result_chunk",
  "agent_versions"
] as const
export type Feature = (typeof allFeatures)[number]

export const errorCodes = [
  "PERMISSION_DENIED",
  "LEASE_SUBSET_VIOLATION",
  "JOB_NOT_FOUND",
  "DUPLICATE_KEY",
  "AGENT_NOT_AVAILABLE",
  "AGENT_VERSION_NOT_AVAILABLE",
  "CANCELLED",
  "TIMEOUT",
  "RESUME_WINDOW_EXPIRED",
  "HEARTBEAT_LOST",
  "LEASE_EXPIRED",
  "BUDGET_EXHAUSTED",
  "INVALID_REQUEST",
  "UNAUTHENTICATED",
  "INTERNAL_ERROR"
] as const
export const ErrorCode = Schema.Literal(...errorCodes)
export type ErrorCode = typeof ErrorCode.Type

/** The retry class of each code: INTERNAL_ERROR and TIMEOUT may be retried, nothing else. */
export const retryableCode = (code: ErrorCode): boolean => code === "INTERNAL_ERROR" || code === "TIMEOUT"

/** The error object of `session.error` and `job.error`. */
export const ErrorObject = Schema.Struct({
  code: ErrorCode,
  message: Schema.String,
  retryable: Schema.Boolean,
  details: Schema.optional(Json)
})
export type ErrorObject = typeof ErrorObject.Type

export const errorObject = (code: ErrorCode, message: string, details?: Json): ErrorObject =>
  details === undefined ? { code, message, retryable: retryableCode(code) } : { code, message, retryable: retryableCode(code), details }

// ---------------------------------------------------------------------------
// Client messages

export const Hello = Schema.Struct({
  client: Schema.Struct({
    name: Name,
    version: Text,
    fingerprint: Schema.optional(Text),
    principal: Schema.optional(Text)
  }),
  auth: Schema.Struct({ scheme: Text, token: Schema.String.pipe(Schema.maxLength(4096)) }),
  capabilities: Schema.optional(Schema.Struct({
    encodings: Schema.optional(Schema.Array(Text)),
    features: Schema.optional(Schema.Array(Text))
  })),
  resume: Schema.optional(Schema.Struct({
    session_id: Name,
    resume_token: Text,
    last_event_seq: Seq
  }))
})
export type Hello = typeof Hello.Type

/** The spec prose's `session.resume`: the resume fields at the top of the payload. */
export const Resume = Schema.Struct({
  session_id: Schema.optional(Name),
  resume_token: Text,
  last_event_seq: Seq,
  auth: Schema.optional(Schema.Struct({ scheme: Text, token: Schema.String.pipe(Schema.maxLength(4096)) })),
  client: Schema.optional(Schema.Struct({ name: Name, version: Text })),
  capabilities: Schema.optional(Schema.Struct({ features: Schema.optional(Schema.Array(Text)) }))
})

export const Ping = Schema.Struct({ nonce: Text, sent_at: Schema.optional(Text) })
export const Pong = Schema.Struct({ ping_nonce: Text, received_at: Schema.optional(Text) })
export const Ack = Schema.Struct({ last_processed_seq: Seq })
export const Bye = Schema.Struct({ reason: Schema.optional(Text) })

export const jobStatuses = ["pending", "running", "success", "error", "cancelled", "timed_out"] as const
export const JobStatus = Schema.Literal(...jobStatuses)
export type JobStatus = typeof JobStatus.Type
export const isTerminal = (status: JobStatus) => status !== "pending" && status !== "running"

/** UTC, ending in `Z`, as ISO 8601. */
export const UtcTime = Schema.String.pipe(
  Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, { message: () => "must be an ISO 8601 UTC time ending in Z" }),
  Schema.filter((text) => Number.isFinite(Date.parse(text)) || "must be a real time")
)

export const ListJobs = Schema.Struct({
  filter: Schema.optional(Schema.NullOr(Schema.Struct({
    status: Schema.optional(Schema.Array(JobStatus)),
    agent: Schema.optional(Name),
    created_after: Schema.optional(UtcTime),
    created_before: Schema.optional(UtcTime)
  }))),
  limit: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000))),
  cursor: Schema.optional(Schema.NullOr(Text))
})
export type ListJobs = typeof ListJobs.Type

/** `name` or `name@version` (spec §7.5). */
export const AgentRef = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9._-]*(@[a-zA-Z0-9.+_-]+)?$/, { message: () => "must be name or name@version" }),
  Schema.maxLength(256)
)

/** Capability → globs. Unknown capabilities are refused: a lease must say only what Switchboard enforces. */
export const LeaseRequest = Schema.Record({ key: Name, value: Schema.Array(Text) })
export type LeaseRequest = typeof LeaseRequest.Type

export const LeaseConstraints = Schema.Struct({ expires_at: Schema.optional(UtcTime) })
export type LeaseConstraints = typeof LeaseConstraints.Type

export const Submit = Schema.Struct({
  agent: AgentRef,
  input: Schema.optionalWith(Json, { default: () => null }),
  lease_request: Schema.optional(LeaseRequest),
  lease_constraints: Schema.optional(LeaseConstraints),
  idempotency_key: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))),
  max_runtime_sec: Schema.optional(Schema.Number.pipe(Schema.positive(), Schema.finite()))
})
export type Submit = typeof Submit.Type

export const Cancel = Schema.Struct({ reason: Schema.optional(Text), job_id: Schema.optional(Name) })
export const Subscribe = Schema.Struct({
  job_id: Name,
  from_event_seq: Schema.optional(Seq),
  history: Schema.optional(Schema.Boolean)
})
export const Unsubscribe = Schema.Struct({ job_id: Name })

// ---------------------------------------------------------------------------
// Event kinds

const Level = Schema.Literal("trace", "debug", "info", "warn", "error", "critical")

/** The body of each event kind an agent may emit; `x-vendor.*` kinds carry any JSON. */
export const eventBodies = {
  log: Schema.Struct({ level: Level, message: Schema.String, attributes: Schema.optional(Json) }),
  thought: Schema.Struct({ text: Schema.String }),
  tool_call: Schema.Struct({ tool: Name, args: Schema.optional(Json), call_id: Name }),
  tool_result: Schema.Struct({ call_id: Name, result: Schema.optional(Json), error: Schema.optional(Json) }),
  status: Schema.Struct({ phase: Name, message: Schema.optional(Schema.String) }),
  metric: Schema.Struct({
    name: Name,
    value: Schema.Number.pipe(Schema.finite()),
    unit: Schema.optional(Name),
    dims: Schema.optional(Json),
    dimensions: Schema.optional(Json)
  }),
  artifact_ref: Schema.Struct({
    uri: Schema.String,
    content_type: Name,
    byte_size: Schema.optional(Seq),
    sha256: Schema.optional(Schema.String)
  }),
  progress: Schema.Struct({
    current: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
    total: Schema.optional(Schema.Number.pipe(Schema.finite(), Schema.nonNegative())),
    units: Schema.optional(Schema.String),
    message: Schema.optional(Schema.String)
  }),
  result_chunk: Schema.Struct({
    result_id: Name,
    chunk_seq: Seq,
    data: Schema.String,
    encoding: Schema.Literal("utf8", "base64"),
    more: Schema.Boolean
  }),
  delegate: Schema.Struct({
    delegate_id: Name,
    agent: AgentRef,
    input: Schema.optionalWith(Json, { default: () => null }),
    lease_request: Schema.optional(LeaseRequest),
    lease_constraints: Schema.optional(LeaseConstraints)
  })
} as const
export type EventKind = keyof typeof eventBodies
export type EventBody<K extends EventKind> = typeof eventBodies[K]["Type"]

export const isVendorKind = (kind: string) => /^x-vendor\.[A-Za-z0-9_-]+\.[A-Za-z0-9._-]+$/.test(kind)

/** What an agent emits: one of the kinds, with its body. */
export type AgentEvent =
  | { readonly [K in EventKind]: { readonly kind: K; readonly body: EventBody<K> } }[EventKind]
  | { readonly kind: `x-vendor.${string}`; readonly body: Json }

// ---------------------------------------------------------------------------
// What the runtime sends

/** A job's terminal outcome, as `job.result` or `job.error` say it. */
export const JobOutcome = Schema.Union(
  Schema.Struct({
    final_status: Schema.Literal("success"),
    result: Schema.optional(Json),
    result_id: Schema.optional(Name),
    result_size: Schema.optional(Seq),
    summary: Schema.optional(Schema.String)
  }),
  Schema.Struct({
    final_status: Schema.Literal("error", "cancelled", "timed_out"),
    code: ErrorCode,
    message: Schema.String,
    retryable: Schema.Boolean,
    details: Schema.optional(Json)
  })
)
export type JobOutcome = typeof JobOutcome.Type

/** A job's end in error, with its code's retry class. */
export const failure = (final_status: "error" | "cancelled" | "timed_out", code: ErrorCode, message: string): JobOutcome => ({
  final_status,
  code,
  message,
  retryable: retryableCode(code)
})

/** An envelope the runtime sends. */
export interface OutEnvelope {
  readonly arcp: "1.1"
  readonly id: string
  readonly type: string
  readonly session_id?: string
  readonly job_id?: string
  readonly trace_id?: string
  readonly event_seq?: number
  readonly payload: unknown
}
