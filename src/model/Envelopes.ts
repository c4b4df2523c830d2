/**
 * Building envelopes without spelling out every field.
 */
import { DateTime } from "effect"
import type { Envelope, MessageType } from "../schema/Envelope.js"

export interface EnvelopeInput {
  readonly producer_id: string
  /** Bytes as they are; a string as UTF-8; anything else as JSON (content type `application/json`). */
  readonly payload: Uint8Array | string | unknown
  readonly message_type?: MessageType
  readonly content_type?: string
  readonly idempotency_token?: string
  /** Defaults to the message id: a conversation of one. */
  readonly correlation_id?: string
  readonly sequence_number?: number
  readonly ttl_ms?: number
  readonly repo_id?: string
  readonly worktree_id?: string
  readonly hlc_timestamp?: string
}

const encoder = new TextEncoder()

const payloadOf = (payload: EnvelopeInput["payload"]) =>
  payload instanceof Uint8Array
    ? { bytes: payload, contentType: "application/octet-stream" }
    : typeof payload === "string"
    ? { bytes: encoder.encode(payload), contentType: "text/plain; charset=utf-8" }
    : { bytes: encoder.encode(JSON.stringify(payload)), contentType: "application/json" }

/** A complete envelope (state SENT) from the given fields, an id and a time. */
export const buildEnvelope = (input: EnvelopeInput, message_id: string, now: number): Envelope => {
  const { bytes, contentType } = payloadOf(input.payload)
  const optional = <K extends keyof EnvelopeInput>(key: K) => input[key] === undefined ? {} : { [key]: input[key] }
  return {
    message_id,
    ...optional("idempotency_token"),
    producer_id: input.producer_id,
    correlation_id: input.correlation_id ?? message_id,
    sequence_number: input.sequence_number ?? 0,
    retry_count: 0,
    message_type: input.message_type ?? "DATA",
    content_type: input.content_type ?? contentType,
    content_length: bytes.length,
    ...optional("repo_id"),
    ...optional("worktree_id"),
    ...optional("hlc_timestamp"),
    ttl_ms: input.ttl_ms ?? 0,
    timestamp: DateTime.unsafeMake(now) as DateTime.Utc,
    payload: bytes,
    state: "SENT"
  }
}

const decoder = new TextDecoder()

/** The payload as JSON. */
export const payloadJson = (envelope: Envelope): unknown => JSON.parse(decoder.decode(envelope.payload))
/** The payload as UTF-8 text. */
export const payloadText = (envelope: Envelope): string => decoder.decode(envelope.payload)
