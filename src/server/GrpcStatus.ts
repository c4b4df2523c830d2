/**
 * Typed errors as gRPC statuses (PROTOCOLS.md §1, "SW4RM over gRPC"): one
 * table gives each error class its status code; the trailers carry the SW4RM
 * error code (`sw4rm-error-code`, by name, as the ACK payloads and the JSON
 * API spell it) and whether retrying can help (`sw4rm-retryable`), and, for
 * some errors, what a client needs to act on it (the original message of a
 * duplicate, when to try again after a rate limit).
 *
 * What no error class names (a defect, a failure of the log that no retry
 * mends) is INTERNAL with INTERNAL_ERROR: never the server's crash, never
 * its details.
 */
import { Metadata, status as Code, type StatusObject } from "@grpc/grpc-js"
import { clip, maxMessage } from "../internal/bounds.js"

interface Failure {
  readonly _tag: string
  readonly message: string
  readonly code?: unknown
  readonly retryable?: unknown
}

const isFailure = (error: unknown): error is Failure =>
  typeof error === "object" && error !== null && typeof (error as Failure)._tag === "string" &&
  typeof (error as Failure).message === "string"

/** Each error class the edge may meet, with its status; a retryable one not listed is UNAVAILABLE. */
const codes: Readonly<Record<string, Code>> = {
  ValidationError: Code.INVALID_ARGUMENT,
  UnsupportedMessageType: Code.INVALID_ARGUMENT,
  Unauthorized: Code.UNAUTHENTICATED,
  PermissionDenied: Code.PERMISSION_DENIED,
  AgentKilled: Code.PERMISSION_DENIED,
  LeaseExpired: Code.PERMISSION_DENIED,
  NoRoute: Code.NOT_FOUND,
  MessageNotFound: Code.NOT_FOUND,
  BufferFull: Code.RESOURCE_EXHAUSTED,
  OversizePayload: Code.RESOURCE_EXHAUSTED,
  RateLimited: Code.RESOURCE_EXHAUSTED,
  BudgetExhausted: Code.RESOURCE_EXHAUSTED,
  AgentUnavailable: Code.UNAVAILABLE,
  AgentShutdown: Code.UNAVAILABLE,
  TtlExpired: Code.FAILED_PRECONDITION,
  DuplicateDetected: Code.ALREADY_EXISTS,
  AlreadyInProgress: Code.ABORTED,
  // Coordination's errors: their codes are the statuses' own names.
  NotFound: Code.NOT_FOUND,
  AlreadyExists: Code.ALREADY_EXISTS,
  FailedPrecondition: Code.FAILED_PRECONDITION,
  DeadlineExceeded: Code.DEADLINE_EXCEEDED
}

/**
 * The SW4RM code sent for an error whose own code is none of SW4RM's:
 * UNAUTHENTICATED is a refusal of access, and a rate limit is SW4RM's
 * OVERLOADED (16), a code of its wire that the runtime's errors do not use.
 */
const sw4rmCodes: Readonly<Record<string, string>> = { Unauthorized: "PERMISSION_DENIED", RateLimited: "OVERLOADED" }

export interface Status extends StatusObject {
  /** The SW4RM code in the trailers. */
  readonly sw4rm: string
}

/** A text trailer must be printable ASCII: anything else (an id may be any text) is sent percent-encoded. */
export const asciiValue = (value: string) => /^[ -~]*$/.test(value) ? value : encodeURIComponent(value)

const statusWith = (code: Code, sw4rm: string, retryable: boolean, details: string, extra: Record<string, string> = {}): Status => {
  const metadata = new Metadata()
  metadata.set("sw4rm-error-code", sw4rm)
  metadata.set("sw4rm-retryable", String(retryable))
  for (const [key, value] of Object.entries(extra)) metadata.set(key, asciiValue(value))
  return { code, details: clip(details, maxMessage), metadata, sw4rm }
}

/** A refusal of the edge's own, named by its SW4RM code. */
export const refusal = (code: Code, sw4rm: string, details: string, retryable = false): Status =>
  statusWith(code, sw4rm, retryable, details)

/** The status of a failure: a typed error by its class, anything else INTERNAL. */
export const statusOf = (error: unknown): Status => {
  if (!isFailure(error)) return statusWith(Code.INTERNAL, "INTERNAL_ERROR", true, "an unexpected failure")
  const retryable = error.retryable === true
  const code = codes[error._tag] ?? (retryable ? Code.UNAVAILABLE : Code.INTERNAL)
  const sw4rm = sw4rmCodes[error._tag] ?? (typeof error.code === "string" ? error.code : "INTERNAL_ERROR")
  const extra: Record<string, string> = {}
  const fields = error as unknown as Record<string, unknown>
  if (error._tag === "DuplicateDetected") {
    extra["sw4rm-original-message-id"] = String(fields.original_message_id)
    extra["sw4rm-stage"] = String(fields.stage)
  }
  if (error._tag === "RateLimited") extra["retry-after-ms"] = String(fields.retry_after_ms)
  return statusWith(code, sw4rm, retryable, error.message, extra)
}
