/**
 * The read-only routes that let a client (the console, a script, a
 * dashboard of its own) see what the runtime holds without folding the whole
 * state: who a key is, each agent's mailbox, the kill switch, every edge of
 * the topology, the log a page at a time (newest first), one message's
 * timeline as `replay --message` tells it, the state at any offset in
 * figures and pages, and the ARCP sessions and jobs.
 *
 * Defined here, apart from `Api.ts`, so that the API's main module stays
 * readable; `Api.ts` adds the group behind the same `Authorization` as the
 * others. The access rules are in `HandlersInspect.ts`.
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { JobStatus } from "../schema/Arcp.js"
import { EnvelopeState, Id } from "../schema/Envelope.js"
import { Event, eventVersions } from "../schema/Event.js"
import { EdgeView, MessageStatusView } from "../schema/Views.js"
import * as P from "./Problem.js"

const Millis = Schema.Number.annotations({ description: "epoch milliseconds" })
const Offset = Schema.NumberFromString.pipe(Schema.int(), Schema.positive())
/** A page's size in a query string: at most `max`. */
export const PageSize = (max: number) => Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, max))

/** Who the key of a request makes its caller. */
export const CallerView = Schema.Struct({
  role: Schema.Literal("operator", "agent"),
  key_id: Schema.String,
  /** The agent an agent's key acts as. */
  agent_id: Schema.optional(Schema.String),
  /** The server runs without keys: every caller is the operator. */
  open: Schema.Boolean
}).annotations({ identifier: "Caller" })

export const MailboxView = Schema.Struct({
  agent_id: Schema.String,
  /** Messages waiting to be delivered. */
  queued: Schema.Number,
  /** Delivered, not yet settled. */
  in_flight: Schema.Number,
  dead_letters: Schema.Number,
  /** The delivery_seq the next delivery will carry. */
  next_delivery_seq: Schema.Number
}).annotations({ identifier: "Mailbox" })

export const KillSwitchView = Schema.Struct({
  /** Why everything is halted; absent when it is not. */
  halted: Schema.optional(Schema.String),
  suspended: Schema.Array(Schema.Struct({ agent_id: Schema.String, reason: Schema.String })),
  killed: Schema.Array(Schema.String)
}).annotations({ identifier: "KillSwitch" })

/** The event types, as a query may name them. */
export const EventType = Schema.Literal(...(Object.keys(eventVersions) as Array<keyof typeof eventVersions>))

export const LogQuery = Schema.Struct({
  /** Records before this offset (default: all), newest first. */
  before: Schema.optional(Offset),
  /** At most this many records (default 100, at most 1,000). */
  limit: Schema.optional(PageSize(1000)),
  /** Records that name this agent (its registration, a message it sent or was delivered, its ACKs, ...). */
  agent_id: Schema.optional(Id),
  message_id: Schema.optional(Id),
  /** Event types, separated by commas. */
  type: Schema.optional(Schema.String.pipe(Schema.maxLength(2048))),
  /** Records that bring a message to this stage. */
  stage: Schema.optional(EnvelopeState)
})

export const LogRecordView = Schema.Struct({
  offset: Schema.Number,
  committed_at: Millis,
  event: Event
}).annotations({ identifier: "LogRecord" })

export const LogPage = Schema.Struct({
  records: Schema.Array(LogRecordView),
  /** Pass as `before` for the next (older) page; absent once the first record was read. */
  next: Schema.optional(Schema.Number),
  /** The log's last offset when the page was read. */
  head: Schema.Number
}).annotations({ identifier: "LogPage" })

export const TimelineEntryView = Schema.Struct({
  offset: Schema.Number,
  at: Millis,
  /** The record in one line, as `switchboard replay --message` prints it. */
  text: Schema.String,
  event: Event
}).annotations({ identifier: "TimelineEntry" })

export const MessageTimeline = Schema.Struct({
  message_id: Schema.String,
  /** Its status now; absent once the runtime has let it go (its records stay in the log). */
  status: Schema.optional(MessageStatusView),
  entries: Schema.Array(TimelineEntryView)
}).annotations({ identifier: "MessageTimeline" })

export const ArcpSessionView = Schema.Struct({
  session_id: Schema.String,
  key_id: Schema.String,
  role: Schema.Literal("operator", "agent"),
  /** A transport is attached now. */
  attached: Schema.Boolean,
  detached_at: Schema.optional(Millis),
  /** When it can no longer be resumed, while detached. */
  expires_at: Schema.optional(Millis),
  /** The last event_seq given, and the last one the client acknowledged. */
  event_seq: Schema.Number,
  acked_seq: Schema.Number,
  running_jobs: Schema.Number,
  subscriptions: Schema.Number
}).annotations({ identifier: "ArcpSession" })

export const ArcpJobView = Schema.Struct({
  job_id: Schema.String,
  session_id: Schema.String,
  key_id: Schema.String,
  agent: Schema.String,
  version: Schema.String,
  status: JobStatus,
  created_at: Millis,
  parent_job_id: Schema.optional(Schema.String),
  trace_id: Schema.optional(Schema.String),
  cancel_requested: Schema.Boolean,
  /** The error's code, for a job that ended in one. */
  error_code: Schema.optional(Schema.String),
  /** The last event_seq its submitting session gave one of its messages. */
  last_event_seq: Schema.Number
}).annotations({ identifier: "ArcpJob" })

export const ArcpJobQuery = Schema.Struct({
  /** Jobs accepted after the job of this cursor (a page's `next`). */
  after: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())),
  limit: Schema.optional(PageSize(1000)),
  status: Schema.optional(JobStatus),
  session_id: Schema.optional(Id)
})

export const ArcpJobPage = Schema.Struct({
  jobs: Schema.Array(ArcpJobView),
  /** Pass as `after` for the next page; absent on the last one. */
  next: Schema.optional(Schema.Number)
}).annotations({ identifier: "ArcpJobPage" })

const Counts = Schema.Record({ key: Schema.String, value: Schema.Number })

export const StateSummaryQuery = Schema.Struct({
  /** The offset to fold the log to (default: the head); 0 is the empty state. */
  at: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())),
  /** The page of messages starts after this message (a page's `next`). */
  after: Schema.optional(Id),
  /** At most this many messages (default 100, at most 1,000). */
  limit: Schema.optional(PageSize(1000)),
  stage: Schema.optional(EnvelopeState)
})

export const StateSummary = Schema.Struct({
  /** The offset the state reflects: every record up to it, none after. */
  offset: Schema.Number,
  agents: Schema.Struct({ registered: Schema.Number, live: Schema.Number, by_state: Counts }),
  messages: Schema.Struct({
    total: Schema.Number,
    by_stage: Counts,
    queued: Schema.Number,
    in_flight: Schema.Number,
    dead_letters: Schema.Number
  }),
  gateway: Schema.Struct({
    halted: Schema.optional(Schema.String),
    suspended: Schema.Array(Schema.String),
    killed: Schema.Array(Schema.String),
    approvals: Counts,
    policies: Schema.Number,
    audits: Schema.Number
  }),
  edges: Schema.Number,
  /** A page of the messages the state holds, in the order accepted. */
  page: Schema.Array(Schema.Struct({
    message_id: Schema.String,
    producer_id: Schema.String,
    to: Schema.String,
    stage: EnvelopeState,
    location: Schema.Literal("queued", "in_flight", "done"),
    attempts: Schema.Number,
    dead_letter: Schema.Boolean
  })),
  /** Pass as `after` for the next page; absent on the last one. */
  next: Schema.optional(Schema.String)
}).annotations({ identifier: "StateSummary" })

/** The group, without its middleware: `Api.ts` puts it behind `Authorization`. */
export const inspect = HttpApiGroup.make("inspect")
  .add(
    HttpApiEndpoint.get("whoami", "/whoami").addSuccess(CallerView)
      .annotate(OpenApi.Description, "Who the key makes the caller: the operator, or the agent it acts as")
  )
  .add(
    HttpApiEndpoint.get("mailboxes", "/mailboxes")
      .setUrlParams(Schema.Struct({ agent_id: Schema.optional(Id) }))
      .addSuccess(Schema.Array(MailboxView))
      .annotate(OpenApi.Description, "Each agent's mailbox in figures; an agent's key sees its own")
  )
  .add(
    HttpApiEndpoint.get("killSwitch", "/kill-switch").addSuccess(KillSwitchView)
      .annotate(OpenApi.Description, "What is halted, suspended and killed; an agent's key sees its own agent")
  )
  .add(HttpApiEndpoint.get("edges", "/topology/edges").addSuccess(Schema.Array(EdgeView)))
  .add(
    HttpApiEndpoint.get("log", "/log").setUrlParams(LogQuery).addSuccess(LogPage).addError(P.Undecodable)
      .annotate(
        OpenApi.Description,
        "Operators: the log a page at a time, newest first, filtered; a page reads at most 20,000 records and about 1 MiB of events"
      )
  )
  .add(
    HttpApiEndpoint.get("timeline", "/messages/:message_id/timeline").setPath(Schema.Struct({ message_id: Id }))
      .addSuccess(MessageTimeline).addError(P.NoMessage).addError(P.Undecodable)
      .annotate(OpenApi.Description, "Every record of one message, described: for its producer, its recipient or the operator")
  )
  .add(
    HttpApiEndpoint.get("stateSummary", "/state/summary").setUrlParams(StateSummaryQuery).addSuccess(StateSummary)
      .addError(P.Undecodable)
      .annotate(
        OpenApi.Description,
        "Operators: the state at an offset (a replay) in figures, with a page of its messages; stepping forward folds only the records since the last step"
      )
  )
  .add(
    HttpApiEndpoint.get("arcpSessions", "/arcp/sessions").addSuccess(Schema.Array(ArcpSessionView))
      .annotate(OpenApi.Description, "ARCP sessions: all for the operator, a key's own for an agent's key")
  )
  .add(
    HttpApiEndpoint.get("arcpJobs", "/arcp/jobs").setUrlParams(ArcpJobQuery).addSuccess(ArcpJobPage)
      .annotate(OpenApi.Description, "ARCP jobs in the order accepted, a page at a time: all for the operator, a key's own for an agent's key")
  )
  .annotate(OpenApi.Description, "Read-only views of the runtime: the caller, mailboxes, kill switch, topology, the log, timelines, ARCP")
