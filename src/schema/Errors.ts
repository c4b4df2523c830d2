/**
 * Every expected failure of Switchboard, as a `Schema.TaggedError` carrying its
 * wire `code` and whether retrying can help (`retryable`). Both are literal
 * fields with constructor defaults, so they travel on the wire and cannot be
 * set wrong by a caller.
 *
 * Retry classes follow PROTOCOLS.md: non-retryable failures are never retried
 * by anything in the library.
 *
 * A message shows what a caller sent (an id, a reason), so it shows it
 * clipped (`clip`, `src/internal/bounds.ts`): an error must never be as large
 * as the input it refuses.
 */
import { type ParseResult, Schema } from "effect"
import { clip, maxMessage, problemsOf } from "../internal/bounds.js"

// ---------------------------------------------------------------------------
// Validation

export class ValidationIssue extends Schema.Class<ValidationIssue>("ValidationIssue")({
  /** Dotted path of the offending field, e.g. `envelope.content_length`; empty for the whole input. */
  path: Schema.String,
  message: Schema.String
}) {}

export class ValidationError extends Schema.TaggedError<ValidationError>()("ValidationError", {
  code: Schema.tag("VALIDATION_ERROR"),
  retryable: Schema.tag(false),
  /** What was being decoded: `envelope`, `ack`, `event`, ... */
  subject: Schema.String,
  issues: Schema.Array(ValidationIssue)
}) {
  override get message(): string {
    return `invalid ${this.subject}: ` +
      this.issues.map((issue) => issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`).join("; ")
  }

  /** Schema's problems, within bounds: never a throw, never larger than a few dozen problems of a few lines. */
  static fromParseError(subject: string, error: ParseResult.ParseError): ValidationError {
    return new ValidationError({ subject, issues: problemsOf(error.issue).map((problem) => new ValidationIssue(problem)) })
  }

  static single(subject: string, path: string, message: string): ValidationError {
    return new ValidationError({
      subject,
      issues: [new ValidationIssue({ path: clip(path, maxMessage), message: clip(message, maxMessage) })]
    })
  }
}

// ---------------------------------------------------------------------------
// Store

/** The store failed (I/O, SQL, connection). The operation may be retried. */
export class PersistenceError extends Schema.TaggedError<PersistenceError>()("PersistenceError", {
  code: Schema.tag("INTERNAL_ERROR"),
  retryable: Schema.tag(true),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** A committed record that no longer decodes: edited by hand, or written by a newer version. */
export class UndecodableRecord extends Schema.TaggedError<UndecodableRecord>()("UndecodableRecord", {
  code: Schema.tag("INTERNAL_ERROR"),
  retryable: Schema.tag(false),
  offset: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `event log record at offset ${this.offset} cannot be decoded: ${this.reason}`
  }
}

/** The file or database opened is not a Switchboard store. */
export class NotAStore extends Schema.TaggedError<NotAStore>()("NotAStore", {
  code: Schema.tag("INTERNAL_ERROR"),
  retryable: Schema.tag(false),
  location: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${clip(this.location)} is not a Switchboard store: ${clip(this.reason, maxMessage)}`
  }
}

/**
 * The store takes one writer at a time, and another has it open: another
 * process, or another log of this one. Opening again once it has closed (or
 * died) succeeds.
 */
export class StoreInUse extends Schema.TaggedError<StoreInUse>()("StoreInUse", {
  code: Schema.tag("INTERNAL_ERROR"),
  retryable: Schema.tag(true),
  location: Schema.String
}) {
  override get message(): string {
    return `${this.location} is in use: another process (or another log of this one) writes it`
  }
}

// ---------------------------------------------------------------------------
// SW4RM error codes (PROTOCOLS.md §1) and the governance codes of §2/§3

export class BufferFull extends Schema.TaggedError<BufferFull>()("BufferFull", {
  code: Schema.tag("BUFFER_FULL"),
  retryable: Schema.tag(true),
  agent_id: Schema.String,
  capacity: Schema.Number
}) {
  override get message(): string {
    return `mailbox of ${clip(this.agent_id)} is full (capacity ${this.capacity})`
  }
}

export class NoRoute extends Schema.TaggedError<NoRoute>()("NoRoute", {
  code: Schema.tag("NO_ROUTE"),
  retryable: Schema.tag(false),
  to: Schema.String
}) {
  override get message(): string {
    return `no route to ${clip(this.to)}`
  }
}

export class AckTimeout extends Schema.TaggedError<AckTimeout>()("AckTimeout", {
  code: Schema.tag("ACK_TIMEOUT"),
  retryable: Schema.tag(true),
  message_id: Schema.String
}) {
  override get message(): string {
    return `message ${clip(this.message_id)} was not acknowledged in time`
  }
}

export class AgentUnavailable extends Schema.TaggedError<AgentUnavailable>()("AgentUnavailable", {
  code: Schema.tag("AGENT_UNAVAILABLE"),
  retryable: Schema.tag(true),
  agent_id: Schema.String
}) {
  override get message(): string {
    return `agent ${clip(this.agent_id)} is unavailable`
  }
}

export class AgentShutdown extends Schema.TaggedError<AgentShutdown>()("AgentShutdown", {
  code: Schema.tag("AGENT_SHUTDOWN"),
  retryable: Schema.tag(true),
  agent_id: Schema.String
}) {
  override get message(): string {
    return `agent ${clip(this.agent_id)} is shutting down`
  }
}

export class PermissionDenied extends Schema.TaggedError<PermissionDenied>()("PermissionDenied", {
  code: Schema.tag("PERMISSION_DENIED"),
  retryable: Schema.tag(false),
  reason: Schema.String
}) {
  override get message(): string {
    return `permission denied: ${clip(this.reason, maxMessage)}`
  }
}

/**
 * The agent was killed (the kill switch, for good) and may not register
 * again. A PERMISSION_DENIED on the wire, told apart from the other refusals
 * so that HTTP can answer it 409 Conflict, as Agent Assembly's client expects
 * (PROTOCOLS.md §2): the agent's id is taken, not the caller's rights short.
 */
export class AgentKilled extends Schema.TaggedError<AgentKilled>()("AgentKilled", {
  code: Schema.tag("PERMISSION_DENIED"),
  retryable: Schema.tag(false),
  agent_id: Schema.String
}) {
  override get message(): string {
    return `agent ${clip(this.agent_id)} was killed and may not register again`
  }
}

export class UnsupportedMessageType extends Schema.TaggedError<UnsupportedMessageType>()("UnsupportedMessageType", {
  code: Schema.tag("UNSUPPORTED_MESSAGE_TYPE"),
  retryable: Schema.tag(false),
  message_type: Schema.String
}) {
  override get message(): string {
    return `unsupported message type ${clip(this.message_type)}`
  }
}

export class OversizePayload extends Schema.TaggedError<OversizePayload>()("OversizePayload", {
  code: Schema.tag("OVERSIZE_PAYLOAD"),
  retryable: Schema.tag(false),
  size: Schema.Number,
  limit: Schema.Number
}) {
  override get message(): string {
    return `payload of ${this.size} bytes exceeds the limit of ${this.limit} bytes`
  }
}

export class ToolTimeout extends Schema.TaggedError<ToolTimeout>()("ToolTimeout", {
  code: Schema.tag("TOOL_TIMEOUT"),
  retryable: Schema.tag(true),
  tool: Schema.String
}) {
  override get message(): string {
    return `tool ${clip(this.tool)} timed out`
  }
}

export class ForcedPreemption extends Schema.TaggedError<ForcedPreemption>()("ForcedPreemption", {
  code: Schema.tag("FORCED_PREEMPTION"),
  retryable: Schema.tag(true),
  agent_id: Schema.String
}) {
  override get message(): string {
    return `agent ${clip(this.agent_id)} was preempted`
  }
}

export class TtlExpired extends Schema.TaggedError<TtlExpired>()("TtlExpired", {
  code: Schema.tag("TTL_EXPIRED"),
  retryable: Schema.tag(false),
  message_id: Schema.String
}) {
  override get message(): string {
    return `message ${clip(this.message_id)} expired before delivery`
  }
}

/** Not retryable: sending the same logical message again yields the same duplicate. */
export class DuplicateDetected extends Schema.TaggedError<DuplicateDetected>()("DuplicateDetected", {
  code: Schema.tag("DUPLICATE_DETECTED"),
  retryable: Schema.tag(false),
  /** The id of the message first accepted for this logical message. */
  original_message_id: Schema.String,
  /** Its current stage. */
  stage: Schema.String
}) {
  override get message(): string {
    return `duplicate of message ${clip(this.original_message_id)} (${clip(this.stage)})`
  }
}

/** Retryable: the same work is running; asking again later can succeed. */
export class AlreadyInProgress extends Schema.TaggedError<AlreadyInProgress>()("AlreadyInProgress", {
  code: Schema.tag("ALREADY_IN_PROGRESS"),
  retryable: Schema.tag(true),
  id: Schema.String
}) {
  override get message(): string {
    return `${clip(this.id)} is already in progress`
  }
}

export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  code: Schema.tag("INTERNAL_ERROR"),
  retryable: Schema.tag(true),
  message: Schema.String
}) {}

export class LeaseExpired extends Schema.TaggedError<LeaseExpired>()("LeaseExpired", {
  code: Schema.tag("LEASE_EXPIRED"),
  retryable: Schema.tag(false),
  lease_id: Schema.String
}) {
  override get message(): string {
    return `lease ${clip(this.lease_id)} has expired`
  }
}

export class BudgetExhausted extends Schema.TaggedError<BudgetExhausted>()("BudgetExhausted", {
  code: Schema.tag("BUDGET_EXHAUSTED"),
  retryable: Schema.tag(false),
  scope: Schema.String,
  currency: Schema.String,
  limit: Schema.Number,
  spent: Schema.Number
}) {
  override get message(): string {
    return `budget of ${clip(this.scope)} exhausted: ${this.spent} of ${this.limit} ${clip(this.currency)}`
  }
}

/** No message with this id is known (never accepted, or forgotten after the retention window). */
/** No ARCP job of that id is known (it never was, or it ended more than a day ago). */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  code: Schema.tag("JOB_NOT_FOUND"),
  retryable: Schema.tag(false),
  job_id: Schema.String
}) {
  override get message(): string {
    return `no job ${clip(this.job_id)}`
  }
}

/** The ARCP job has ended (a result, an error, a cancel, a timeout): nothing more may be reported for it. */
export class JobEnded extends Schema.TaggedError<JobEnded>()("JobEnded", {
  code: Schema.tag("JOB_ENDED"),
  retryable: Schema.tag(false),
  job_id: Schema.String,
  /** Not `status`: a problem's `status` is its HTTP status. */
  job_status: Schema.String
}) {
  override get message(): string {
    return `job ${clip(this.job_id)} has ended (${this.job_status})`
  }
}

export class MessageNotFound extends Schema.TaggedError<MessageNotFound>()("MessageNotFound", {
  code: Schema.tag("VALIDATION_ERROR"),
  retryable: Schema.tag(false),
  message_id: Schema.String
}) {
  override get message(): string {
    return `no message ${clip(this.message_id)}`
  }
}

/**
 * A tool call's args name a secret the store does not hold (PROTOCOLS.md §2).
 * Answered over HTTP as 422 Unprocessable Content, its message worded as
 * Agent Assembly's gateway words it (`Unknown placeholder: ${NAME}`), since
 * its client shows that text. Carries names only, in their `${NAME}` form:
 * never a value.
 */
export class UnknownPlaceholder extends Schema.TaggedError<UnknownPlaceholder>()("UnknownPlaceholder", {
  code: Schema.tag("VALIDATION_ERROR"),
  retryable: Schema.tag(false),
  /** Every unknown name, without the `${}`. */
  names: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Unknown placeholder${this.names.length === 1 ? "" : "s"}: ` +
      clip(this.names.map((name) => "${" + name + "}").join(", "), maxMessage)
  }
}

/** A delegated lease grants more than its parent, or outlives it (ARCP, PROTOCOLS.md §3). */
export class LeaseSubsetViolation extends Schema.TaggedError<LeaseSubsetViolation>()("LeaseSubsetViolation", {
  code: Schema.tag("LEASE_SUBSET_VIOLATION"),
  retryable: Schema.tag(false),
  lease_id: Schema.String,
  parent_lease_id: Schema.String,
  /** The namespace of the offending pattern; absent when the expiry is at fault. */
  namespace: Schema.optional(Schema.String),
  /** The child pattern no parent pattern covers; absent when the expiry is at fault. */
  pattern: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `lease ${clip(this.lease_id)} is not a subset of lease ${clip(this.parent_lease_id)}: ${clip(this.reason, maxMessage)}`
  }
}

// ---------------------------------------------------------------------------
// The network edge: who is calling, and how often

/**
 * The caller presented no key, or one that is not a Switchboard key
 * (PROTOCOLS.md §3's UNAUTHENTICATED). Not retryable: the same key is refused
 * the same way. The reason never repeats the token.
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  code: Schema.tag("UNAUTHENTICATED"),
  retryable: Schema.tag(false),
  reason: Schema.String
}) {
  override get message(): string {
    return `unauthenticated: ${clip(this.reason, maxMessage)}`
  }
}

/**
 * The caller's key spent its request budget. No wire code of PROTOCOLS.md
 * means "slow down" (BUFFER_FULL is one mailbox's capacity), hence a code of
 * our own. Retryable, after `retry_after_ms` milliseconds.
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  code: Schema.tag("RATE_LIMITED"),
  retryable: Schema.tag(true),
  retry_after_ms: Schema.Number
}) {
  override get message(): string {
    return `rate limit reached: retry in ${this.retry_after_ms} ms`
  }
}

/** No route of the API has this method and path. */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  code: Schema.tag("NOT_FOUND"),
  retryable: Schema.tag(false),
  method: Schema.String,
  url: Schema.String
}) {
  override get message(): string {
    return `no route ${clip(this.method)} ${clip(this.url)}`
  }
}
