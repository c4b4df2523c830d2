/**
 * The facts of ARCP sessions and jobs (PROTOCOLS.md §3), in the one log like
 * every other: a session opened, resumed (its token rotated), detached,
 * acknowledged, expired; a job accepted or rejected, each event it emitted,
 * a cancel asked for, a subscription, its end. A session's `event_seq` is
 * not stored: it is the fold's count of what reached the session, so replay
 * gives every session the same numbers again. Resume tokens are stored as
 * their SHA-256, never as they are.
 */
import { Schema } from "effect"
import { ErrorCode, JobOutcome } from "./Arcp.js"
import { Json } from "./Json.js"
import { LeaseGrants } from "./Lease.js"

const At = Schema.Int
const Ref = Schema.String

export const ArcpSessionOpened = Schema.TaggedStruct("ArcpSessionOpened", {
  session_id: Ref,
  /** The API key the session authenticated with, and who that made it. */
  key_id: Schema.String,
  role: Schema.Literal("operator", "agent"),
  agent_id: Schema.optional(Schema.String),
  client: Schema.Struct({ name: Schema.String, version: Schema.String }),
  features: Schema.Array(Schema.String),
  token_hash: Schema.String,
  resume_window_sec: Schema.Int,
  heartbeat_interval_sec: Schema.optional(Schema.Int),
  /** With `ack`: how many unacknowledged messages are sent at most (absent in logs from before it was recorded). */
  ack_window: Schema.optional(Schema.Int.pipe(Schema.positive())),
  at: At
})
export type ArcpSessionOpened = typeof ArcpSessionOpened.Type

/** A resume: the token rotated, and what the client had seen (which frees what it covers). */
export const ArcpSessionResumed = Schema.TaggedStruct("ArcpSessionResumed", {
  session_id: Ref,
  token_hash: Schema.String,
  last_event_seq: Schema.Int,
  at: At
})
export type ArcpSessionResumed = typeof ArcpSessionResumed.Type

/** The transport went (bye, close, heartbeat lost, restart): the resume window runs from here. */
export const ArcpSessionDetached = Schema.TaggedStruct("ArcpSessionDetached", {
  session_id: Ref,
  reason: Schema.String,
  at: At
})
export type ArcpSessionDetached = typeof ArcpSessionDetached.Type

/** Its resume window passed: the session and its buffer are gone. */
export const ArcpSessionExpired = Schema.TaggedStruct("ArcpSessionExpired", {
  session_id: Ref,
  at: At
})
export type ArcpSessionExpired = typeof ArcpSessionExpired.Type

/** `session.ack`: the events up to `seq` need not be kept for a resume. */
export const ArcpSessionAcked = Schema.TaggedStruct("ArcpSessionAcked", {
  session_id: Ref,
  seq: Schema.Int,
  at: At
})
export type ArcpSessionAcked = typeof ArcpSessionAcked.Type

export const ArcpJobAccepted = Schema.TaggedStruct("ArcpJobAccepted", {
  job_id: Ref,
  session_id: Ref,
  key_id: Schema.String,
  agent: Schema.String,
  version: Schema.String,
  input: Json,
  /** The lease the gateway granted (its own `LeaseGranted` is beside this event). */
  lease_id: Schema.String,
  grants: LeaseGrants,
  /** Epoch ms. */
  expires_at: Schema.optional(Schema.Int),
  /** Currency → the amount the job may spend. */
  budget: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number })),
  idempotency_key: Schema.optional(Schema.String),
  /** SHA-256 of the submit's parameters: a second submit with the key and other parameters is a DUPLICATE_KEY. */
  params_hash: Schema.optional(Schema.String),
  max_runtime_sec: Schema.optional(Schema.Number),
  trace_id: Schema.optional(Schema.String),
  parent_job_id: Schema.optional(Ref),
  delegate_id: Schema.optional(Schema.String),
  /** Run by a remote agent, through the router (absent: by an in-process handler). */
  remote: Schema.optional(Schema.Literal(true)),
  at: At
})
export type ArcpJobAccepted = typeof ArcpJobAccepted.Type

/** A submit refused: the session gets a `job.error` under a fresh job id, in its `event_seq`. */
export const ArcpJobRejected = Schema.TaggedStruct("ArcpJobRejected", {
  job_id: Ref,
  session_id: Ref,
  agent: Schema.String,
  code: ErrorCode,
  message: Schema.String,
  trace_id: Schema.optional(Schema.String),
  at: At
})
export type ArcpJobRejected = typeof ArcpJobRejected.Type

/** One event a job emitted (`job.event`), as its agent gave it. */
export const ArcpJobEvent = Schema.TaggedStruct("ArcpJobEvent", {
  job_id: Ref,
  kind: Schema.String,
  /** ISO 8601, UTC. */
  ts: Schema.String,
  body: Json,
  at: At
})
export type ArcpJobEvent = typeof ArcpJobEvent.Type

export const ArcpJobCancelRequested = Schema.TaggedStruct("ArcpJobCancelRequested", {
  job_id: Ref,
  session_id: Ref,
  reason: Schema.optional(Schema.String),
  at: At
})
export type ArcpJobCancelRequested = typeof ArcpJobCancelRequested.Type

export const ArcpJobFinished = Schema.TaggedStruct("ArcpJobFinished", {
  job_id: Ref,
  outcome: JobOutcome,
  at: At
})
export type ArcpJobFinished = typeof ArcpJobFinished.Type

export const ArcpJobSubscribed = Schema.TaggedStruct("ArcpJobSubscribed", {
  session_id: Ref,
  job_id: Ref,
  /** Replay the job's events after this one (in the submitting session's numbering); absent: live only. */
  from_event_seq: Schema.optional(Schema.Int),
  at: At
})
export type ArcpJobSubscribed = typeof ArcpJobSubscribed.Type

export const ArcpJobUnsubscribed = Schema.TaggedStruct("ArcpJobUnsubscribed", {
  session_id: Ref,
  job_id: Ref,
  at: At
})
export type ArcpJobUnsubscribed = typeof ArcpJobUnsubscribed.Type

export const ArcpEvent = Schema.Union(
  ArcpSessionOpened,
  ArcpSessionResumed,
  ArcpSessionDetached,
  ArcpSessionExpired,
  ArcpSessionAcked,
  ArcpJobAccepted,
  ArcpJobRejected,
  ArcpJobEvent,
  ArcpJobCancelRequested,
  ArcpJobFinished,
  ArcpJobSubscribed,
  ArcpJobUnsubscribed
)
export type ArcpEvent = typeof ArcpEvent.Type
