/**
 * Typed errors on the wire: every error of the runtime is answered as an
 * `application/problem+json` body (RFC 7807: `type`, `title`, `status`,
 * `detail`) that also carries the error's own fields, among them its wire
 * `code` and `retryable`. One table gives each error its HTTP status, so the
 * server, the OpenAPI document and the typed client agree; the client decodes
 * a problem back into the very error class the runtime failed with.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Either, ParseResult, Schema } from "effect"
import {
  AckTimeout,
  AgentKilled,
  AgentShutdown,
  AgentUnavailable,
  AlreadyInProgress,
  BudgetExhausted,
  BufferFull,
  DuplicateDetected,
  ForcedPreemption,
  InternalError,
  JobEnded,
  JobNotFound,
  LeaseExpired,
  LeaseSubsetViolation,
  MessageNotFound,
  NoRoute,
  NotAStore,
  OversizePayload,
  PermissionDenied,
  PersistenceError,
  RateLimited,
  RouteNotFound,
  StoreInUse,
  ToolTimeout,
  TtlExpired,
  Unauthorized,
  UndecodableRecord,
  UnknownPlaceholder,
  UnsupportedMessageType,
  ValidationError
} from "../schema/Errors.js"
import { AlreadyExists, DeadlineExceeded, FailedPrecondition, NotFound } from "../schema/CoordinationErrors.js"
import { InvalidPolicy } from "../schema/Policy.js"

/** The members RFC 7807 defines, beside the error's own fields. */
const ProblemBody = Schema.Struct(
  {
    type: Schema.String,
    title: Schema.String,
    status: Schema.Int,
    detail: Schema.String,
    code: Schema.String,
    retryable: Schema.Boolean
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

interface TypedError {
  readonly _tag: string
  readonly message: string
}

/** The problem+json form of one error class, answered with `status`. */
const problem = <A extends TypedError, I>(error: Schema.Schema<A, I>, status: number) => {
  const encode = ParseResult.encode(error)
  const decode = ParseResult.decodeUnknown(error)
  return Schema.transformOrFail(ProblemBody, Schema.typeSchema(error), {
    strict: false,
    decode: (body) => {
      const { detail: _detail, status: _status, title: _title, type: _type, ...fields } = body
      return decode(fields)
    },
    encode: (value) =>
      ParseResult.map(encode(value), (fields) => ({
        type: `urn:switchboard:error:${value._tag}`,
        title: value._tag,
        status,
        detail: value.message,
        ...(fields as object)
      }) as typeof ProblemBody.Type)
  }).pipe(
    HttpApiSchema.withEncoding({ kind: "Json", contentType: "application/problem+json" }),
    Schema.annotations(HttpApiSchema.annotations({ status }))
  )
}

// Each error class once, with its status: a class answered two ways would
// leave the client unable to tell which.
export const Invalid = problem(ValidationError, 400)
export const PolicyInvalid = problem(InvalidPolicy, 400)
export const Unsupported = problem(UnsupportedMessageType, 400)
export const Unauthenticated = problem(Unauthorized, 401)
export const Denied = problem(PermissionDenied, 403)
export const Expired = problem(LeaseExpired, 403)
export const NotSubset = problem(LeaseSubsetViolation, 403)
export const NoMessage = problem(MessageNotFound, 404)
export const NoJob = problem(JobNotFound, 404)
export const NoAgent = problem(NoRoute, 404)
export const NoPath = problem(RouteNotFound, 404)
export const Duplicate = problem(DuplicateDetected, 409)
export const Killed = problem(AgentKilled, 409)
export const InProgress = problem(AlreadyInProgress, 409)
export const Ended = problem(JobEnded, 409)
export const Preempted = problem(ForcedPreemption, 409)
export const Gone = problem(TtlExpired, 410)
export const Oversize = problem(OversizePayload, 413)
export const Placeholder = problem(UnknownPlaceholder, 422)
export const Budget = problem(BudgetExhausted, 429)
export const Limited = problem(RateLimited, 429)
export const Undecodable = problem(UndecodableRecord, 500)
export const NotStore = problem(NotAStore, 500)
export const Internal = problem(InternalError, 503)
export const Persistence = problem(PersistenceError, 503)
export const Full = problem(BufferFull, 503)
export const Unavailable = problem(AgentUnavailable, 503)
export const Shutdown = problem(AgentShutdown, 503)
export const InUse = problem(StoreInUse, 503)
export const AckLate = problem(AckTimeout, 504)
export const ToolLate = problem(ToolTimeout, 504)
// Coordination (scheduler, worktrees, negotiation rooms, HITL)
export const Unknown = problem(NotFound, 404)
export const Exists = problem(AlreadyExists, 409)
export const Precondition = problem(FailedPrecondition, 409)
export const WaitedOut = problem(DeadlineExceeded, 504)

/** Statuses a client may retry after a pause: answered with `Retry-After`. */
export const retryAfterStatuses: ReadonlySet<number> = new Set([429, 503])

const everyProblem = Schema.Union(
  Invalid, PolicyInvalid, Unsupported, Unauthenticated, Denied, Expired, NotSubset, NoMessage, NoJob, NoAgent, Duplicate,
  Killed, InProgress, Ended, Preempted, NoPath, Gone, Oversize, Placeholder, Budget, Limited, Undecodable, NotStore, Internal, Persistence,
  Full, Unavailable, Shutdown, InUse, AckLate, ToolLate, Unknown, Exists, Precondition, WaitedOut
)
const encodeProblem = Schema.encodeUnknownEither(everyProblem)

/** One of the runtime's typed errors, which has a problem form. */
export const isTypedError = Schema.is(Schema.typeSchema(everyProblem))

/** The problem body of any typed error, for transports that are not request/response (frames, events). */
export const problemOf = (error: unknown): typeof ProblemBody.Type =>
  Either.getOrElse(encodeProblem(error), () => ({
    type: "urn:switchboard:error:InternalError",
    title: "InternalError",
    status: 500,
    detail: "an unexpected failure",
    code: "INTERNAL_ERROR",
    retryable: true
  }))
