/**
 * The runtime's options: one Schema with every default, decoded once when the
 * runtime starts. Each value is bounded: a zero ack wait or a NaN liveness
 * timeout would not fail at once, but make every delivery or registration
 * fail to reach the log, or deliver nothing, ever; a duration of centuries
 * would push deadlines past the times an event can hold.
 */
import { Either, Schema } from "effect"
import { MessageType } from "./Envelope.js"
import { ValidationError } from "./Errors.js"

/** The longest duration an option may give: ten years, in ms. */
export const maxDurationMs = 10 * 365 * 24 * 3_600_000
/** The largest count an option may give: far past what memory holds, well inside a safe integer. */
const maxCount = 2 ** 40

const Positive = (max: number) =>
  Schema.Int.pipe(
    Schema.positive({ message: () => "must be a positive integer" }),
    Schema.lessThanOrEqualTo(max, { message: () => `must be at most ${max}` })
  )
const NonNegative = (max: number) =>
  Schema.NonNegativeInt.pipe(
    Schema.annotations({ message: () => "must be an integer, 0 or more" }),
    Schema.lessThanOrEqualTo(max, { message: () => `must be at most ${max}` })
  )
const Duration = Positive(maxDurationMs)

const withDefault = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: () => value, exact: true })

export const RuntimeOptions = Schema.Struct({
  /** How long a delivery waits for a terminal ACK before it is tried again (a READ restarts it). */
  ackWaitMs: withDefault(Duration, 30_000),
  /** Deliveries of one message before it times out with ACK_TIMEOUT. */
  maxAttempts: withDefault(Positive(maxCount), 5),
  /** Messages a mailbox holds, queued or in flight; past it, BUFFER_FULL. */
  mailboxCapacity: withDefault(Positive(maxCount), 10_000),
  /** Unacknowledged deliveries in flight per subscriber. */
  maxInFlight: withDefault(Positive(maxCount), 1_000),
  /** Largest payload in bytes; past it, OVERSIZE_PAYLOAD. */
  payloadLimit: withDefault(Positive(maxCount), 1024 * 1024),
  /** How long (producer, idempotency token) and (producer, sequence number) are remembered. */
  dedupWindowMs: withDefault(NonNegative(maxDurationMs), 3_600_000),
  /** Finished messages are forgotten this long after they finish (never before the dedup window). */
  retentionMs: withDefault(NonNegative(maxDurationMs), 3_600_000),
  /** Heartbeats may stop this long before an agent is marked unavailable; undefined: never. */
  livenessTimeoutMs: withDefault(Schema.UndefinedOr(Duration), 60_000),
  /** PRIVILEGED deliveries per recipient per second; more are served as STANDARD. */
  privilegedPerSecond: withDefault(
    Schema.NonNegative.pipe(
      Schema.finite({ message: () => "must be a finite number, 0 or more" }),
      Schema.lessThanOrEqualTo(1_000_000, { message: () => "must be at most 1000000" })
    ),
    100
  ),
  /** While BULK waits, at least one delivery in this many is BULK. */
  bulkEvery: withDefault(Positive(maxCount), 10),
  /** Message types accepted by `send`; undefined: all. */
  supportedMessageTypes: withDefault(Schema.UndefinedOr(Schema.Array(MessageType)), undefined),
  /** A registration whose depth (root 0) would reach this is refused. */
  maxDelegationDepth: withDefault(Positive(maxCount), 10),
  // Coordination (PROTOCOLS.md §1 "Coordination")
  /** Scheduler: how long a preempted agent has to yield before its task is taken back (FORCED_PREEMPTION). */
  preemptionGraceMs: withDefault(Duration, 10_000),
  /** Scheduler: the longest non-preemptible section an agent may declare; a longer one is cut to it. */
  maxSectionMs: withDefault(Duration, 300_000),
  /** Scheduler: deliveries of a task that may fail (retryably) before the task fails; preemptions do not count. */
  maxTaskAttempts: withDefault(Positive(1_000), 3),
  /** How long an agent may stay in each of these states before it is marked FAILED and its work requeued. */
  agentStateTimeoutsMs: withDefault(
    Schema.Struct({
      INITIALIZING: withDefault(Duration, 60_000),
      WAITING_RESOURCES: withDefault(Duration, 300_000),
      SUSPENDED: withDefault(Duration, 3_600_000),
      RECOVERING: withDefault(Duration, 120_000),
      SHUTTING_DOWN: withDefault(Duration, 30_000)
    }),
    { INITIALIZING: 60_000, WAITING_RESOURCES: 300_000, SUSPENDED: 3_600_000, RECOVERING: 120_000, SHUTTING_DOWN: 30_000 }
  ),
  /** Human in the loop: how long a human has to answer, unless the invocation says. */
  hitlTimeoutMs: withDefault(Duration, 300_000),
  /** Worktrees: how long a switch away from home lasts, unless its approval says. */
  worktreeTtlMs: withDefault(Duration, 3_600_000),
  /** Worktrees: the pause before a failed bind is tried again (at most 3 times). */
  bindRetryDelayMs: withDefault(Duration, 5_000),
  /** Worktrees: after the last retry failed, how long before a human is asked. */
  bindEscalateAfterMs: withDefault(Duration, 60_000),
  /** Negotiation: how long a room waits for its votes, unless its proposal says. */
  roomDeadlineMs: withDefault(Duration, 300_000)
})

/** The runtime's options, every one set. */
export type RuntimeConfig = typeof RuntimeOptions.Type
/** The options as a user gives them: each may be left out for its default. */
export type RuntimeOptions = typeof RuntimeOptions.Encoded

/** Every option at its default. */
export const defaultRuntimeConfig: RuntimeConfig = Schema.decodeSync(RuntimeOptions)({})

const decodeOptions = Schema.decodeUnknownEither(RuntimeOptions, { errors: "all", onExcessProperty: "error" })

/** Options from a user, checked: a ValidationError names every bad one. */
export const decodeRuntimeOptions = (options: unknown): Either.Either<RuntimeConfig, ValidationError> =>
  Either.mapLeft(decodeOptions(options), (error) => ValidationError.fromParseError("RuntimeOptions", error))
