/**
 * The frames of an agent's live stream (`/agents/{id}/stream`, a WebSocket),
 * as Schemas. The server sends deliveries and stage notices, and answers each
 * ACK; the consumer sends ACKs. Each frame is one JSON text message.
 *
 * Server → consumer:
 * - `{ type: "delivery", envelope, attempt, delivery_seq, lane }`: acknowledge it;
 * - `{ type: "notice", envelope, ack }`: a stage change of a message the agent produced;
 * - `{ type: "acked", ref?, receipt }` or `{ type: "error", ref?, error }` (a problem) per ACK frame.
 *
 * Consumer → server:
 * - `{ type: "ack", ref?, message_id, stage, error_code?, note?, delivery_seq? }`: the acknowledging agent is the stream's.
 *
 * `ref` is the consumer's own tag for an ACK, echoed in its answer.
 * `delivery_seq` counts the agent's deliveries from 1 with no gap: a jump
 * means deliveries the consumer did not see (they come again).
 */
import { Schema } from "effect"
import { AckPayload, AckStage, CommunicationClass, Envelope, ErrorCode, Id, Note } from "../schema/Envelope.js"
import { AckReceiptView } from "../schema/Views.js"

const Ref = Schema.String.pipe(Schema.maxLength(256))

export const AckFrame = Schema.Struct({
  type: Schema.Literal("ack"),
  ref: Schema.optional(Ref),
  message_id: Id,
  stage: AckStage,
  error_code: Schema.optional(ErrorCode),
  note: Schema.optional(Note),
  delivery_seq: Schema.optional(Schema.Int.pipe(Schema.positive()))
}).annotations({ identifier: "AckFrame" })
export type AckFrame = typeof AckFrame.Type

export const DeliveryFrame = Schema.Struct({
  type: Schema.Literal("delivery"),
  envelope: Envelope,
  attempt: Schema.Number,
  delivery_seq: Schema.Number,
  lane: CommunicationClass
})

export const NoticeFrame = Schema.Struct({
  type: Schema.Literal("notice"),
  envelope: Envelope,
  ack: AckPayload
})

/**
 * The problem an ACK was refused with, as the API answers it (`Problem.ts`):
 * with the error's own fields (`_tag`, `message_id`, ...) beside these, so
 * that a client decodes it back into the error class it was.
 */
export const ProblemFrame = Schema.Struct(
  {
    type: Schema.String,
    title: Schema.String,
    status: Schema.Number,
    detail: Schema.String,
    code: Schema.String,
    retryable: Schema.Boolean
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

export const AckedFrame = Schema.Struct({ type: Schema.Literal("acked"), ref: Schema.optional(Ref), receipt: AckReceiptView })
export const ErrorFrame = Schema.Struct({ type: Schema.Literal("error"), ref: Schema.optional(Ref), error: ProblemFrame })

export const ServerFrame = Schema.Union(DeliveryFrame, NoticeFrame, AckedFrame, ErrorFrame)
export type ServerFrame = typeof ServerFrame.Type
