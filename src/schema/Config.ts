/**
 * The runtime's options, checked when it starts: a zero ack wait or a NaN
 * liveness timeout would not fail at once, but make every delivery or
 * registration fail to reach the log, or deliver nothing, ever.
 */
import { Schema } from "effect"
import { MessageType } from "./Envelope.js"

const Positive = Schema.Int.pipe(Schema.positive({ message: () => "must be a positive integer" }))
const NonNegative = Schema.NonNegativeInt.annotations({ message: () => "must be an integer, 0 or more" })

/** `RouterConfig` (src/model/Router.ts), field by field. */
export const RouterOptions = Schema.Struct({
  ackWaitMs: Positive,
  maxAttempts: Positive,
  mailboxCapacity: Positive,
  maxInFlight: Positive,
  payloadLimit: Positive,
  dedupWindowMs: NonNegative,
  retentionMs: NonNegative,
  livenessTimeoutMs: Schema.UndefinedOr(Positive),
  privilegedPerSecond: Schema.NonNegative.pipe(Schema.finite({ message: () => "must be a finite number, 0 or more" })),
  bulkEvery: Positive,
  supportedMessageTypes: Schema.UndefinedOr(Schema.Array(MessageType)),
  maxDelegationDepth: Positive
})
