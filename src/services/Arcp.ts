/**
 * The ARCP runtime (PROTOCOLS.md §3): sessions a client opens and resumes,
 * jobs it submits, watches, cancels and lists, run by the agents registered
 * here. Every fact is an event in the log (`schema/ArcpEvents.ts`), so a
 * session resumes across a restart and while its jobs run.
 *
 * The network edge (`server/Arcp.ts`) decodes frames and calls these
 * methods with the session's `Connection`: every answer and every job
 * message is sent on it from the command loop, in the order the log has
 * them, and never before the event that says so is durable.
 *
 * An agent is an Effect handler in the server's process (`agent`): it gets a
 * `JobContext` to emit events, read its lease and budget, make tool calls
 * through its lease, delegate, and notice a cancel (its fiber is
 * interrupted). What it returns is the job's result; an `ArcpError` it fails
 * with is the job's error.
 */
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import type { AgentEvent, ErrorCode, Hello, JobOutcome, ListJobs, Submit } from "../schema/Arcp.js"
import type { InternalError, JobEnded, JobNotFound, PermissionDenied, PersistenceError, ValidationError } from "../schema/Errors.js"
import { ErrorCode as ErrorCodeSchema, retryableCode } from "../schema/Arcp.js"
import type { Json } from "../schema/Json.js"
import type { LeaseGrants } from "../schema/Lease.js"
import type { Principal } from "../schema/Keys.js"

/** An ARCP failure with its wire code and retry class (INTERNAL_ERROR and TIMEOUT retryable, nothing else). */
export class ArcpError extends Schema.TaggedError<ArcpError>()("ArcpError", {
  code: ErrorCodeSchema,
  message: Schema.String,
  retryable: Schema.Boolean
}) {
  static of(code: ErrorCode, message: string) {
    return new ArcpError({ code, message, retryable: retryableCode(code) })
  }
}

/** What a reported event became: emitted (a delegate, with its child job), or refused with the code an in-process handler would get. */
export type ReportAnswer =
  | { readonly ok: true; readonly child_job_id?: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string }

export type ReportError = JobNotFound | JobEnded | PermissionDenied | ValidationError | PersistenceError | InternalError

/** Where a session's frames go: a transport, as the edge holds it. */
export interface Connection {
  /** Sends one frame (JSON text); a closed transport drops it. */
  readonly send: (text: string) => void
  /** Closes the transport. */
  readonly close: (code: number, reason: string) => void
}

/** A result streamed as `result_chunk` events: the terminating `job.result` names it. */
export interface StreamedResult {
  readonly _tag: "StreamedResult"
  readonly result_id: string
  readonly result_size?: number | undefined
  readonly summary?: string | undefined
}

export const streamedResult = (result: Omit<StreamedResult, "_tag">): StreamedResult => ({ _tag: "StreamedResult", ...result })

/** What an in-process agent's handler gets for its job. */
export interface JobContext {
  readonly job_id: string
  readonly agent: string
  readonly version: string
  readonly input: Json
  readonly lease: LeaseGrants
  /** Epoch ms; absent: the lease does not expire. */
  readonly lease_expires_at: number | undefined
  readonly budget: Readonly<Record<string, number>> | undefined
  readonly trace_id: string | undefined
  /**
   * Emits an event. In order with every other of the job; not waited for:
   * it is visible once durable. A `tool_call`, a `cost.*` metric or a
   * `delegate` is checked against the lease and budget: use `toolCall`,
   * `cost` and `delegate` to learn the answer.
   */
  readonly emit: (event: AgentEvent) => Effect.Effect<void>
  readonly log: (level: "trace" | "debug" | "info" | "warn" | "error" | "critical", message: string) => Effect.Effect<void>
  readonly progress: (current: number, total?: number, message?: string) => Effect.Effect<void>
  /** A tool call through the lease: PERMISSION_DENIED when it does not cover it; LEASE_EXPIRED or BUDGET_EXHAUSTED end the job. */
  readonly toolCall: (tool: string, args?: Json, call_id?: string) => Effect.Effect<string, ArcpError>
  /** Reports a cost: charges the job's budget and the gateway's; past either, the job ends with BUDGET_EXHAUSTED. */
  readonly cost: (name: string, value: number, unit: string) => Effect.Effect<void, ArcpError>
  /** Starts a child job on a subset of this job's lease; its id. */
  readonly delegate: (request: {
    readonly delegate_id: string
    readonly agent: string
    readonly input?: Json
    readonly lease_request?: Readonly<Record<string, ReadonlyArray<string>>>
    readonly lease_constraints?: { readonly expires_at?: string }
  }) => Effect.Effect<string, ArcpError>
  /** Completes when the job's submitter cancels it (the handler's fiber is interrupted then too). */
  readonly cancelled: Effect.Effect<void>
}

export type Handler = (context: JobContext) => Effect.Effect<Json | StreamedResult, ArcpError>

export interface AgentDefinition {
  readonly name: string
  readonly version: string
  /** The version a bare `name` resolves to; the first registered otherwise. */
  readonly default?: boolean | undefined
}

/** A session as a welcome describes it. */
export interface Opened {
  readonly session_id: string
  /** When `heartbeat` was negotiated. */
  readonly heartbeat_interval_sec: number | undefined
  /** The features in effect: the intersection of the hello's and the runtime's. */
  readonly features: ReadonlySet<string>
}

export interface ArcpOptions {
  /** How long a detached session stays resumable (default 600 s). */
  readonly resumeWindowSec?: number | undefined
  /** When `heartbeat` is negotiated (default 30 s). */
  readonly heartbeatIntervalSec?: number | undefined
  /** Unacknowledged events sent at most, when `ack` is negotiated (default 1,000). */
  readonly ackWindow?: number | undefined
  /** Jobs a session may have running at once (default 1,000); a submit past it is a `session.error`. */
  readonly maxRunningJobs?: number | undefined
  readonly runtimeName?: string | undefined
  readonly runtimeVersion?: string | undefined
}

export interface ArcpConfig {
  readonly resumeWindowSec: number
  readonly heartbeatIntervalSec: number
  readonly ackWindow: number
  readonly maxRunningJobs: number
  readonly runtimeName: string
  readonly runtimeVersion: string
}

export class Arcp extends Context.Tag("switchboard/Arcp")<Arcp, {
  readonly config: ArcpConfig
  /** Adds an in-process agent for as long as the scope lasts. */
  readonly register: (definition: AgentDefinition, handler: Handler) => Effect.Effect<void, never, Scope.Scope>
  /** The agents and their versions, for a welcome. */
  readonly agents: Effect.Effect<ReadonlyArray<{ readonly name: string; readonly versions: ReadonlyArray<string>; readonly default: string }>>
  /**
   * `session.hello` from an authenticated principal: a new session, or a
   * resume. Answers `session.welcome` on the connection (then, on a resume,
   * every event after `last_event_seq`), or fails with the code to answer.
   */
  readonly hello: (
    connection: Connection,
    request: {
      readonly session_id: string
      /** Who the bearer token makes the caller; a resume by token alone may leave it out. */
      readonly principal: Principal | undefined
      readonly hello: Hello
    }
  ) => Effect.Effect<Opened, ArcpError>
  /** The transport went: the session's resume window starts. */
  readonly detach: (session_id: string, connection: Connection, reason: string) => Effect.Effect<void>
  readonly ack: (session_id: string, seq: number) => Effect.Effect<void>
  /** `job.submit`: answers `job.accepted` or `job.error` (under a fresh job id) on the connection, in arrival order. */
  readonly submit: (
    session_id: string,
    request: { readonly submit: Submit; readonly trace_id: string | undefined }
  ) => Effect.Effect<void, ArcpError>
  /** `job.cancel`: answers `job.cancelled`; the job's `job.error CANCELLED` follows once it has stopped. */
  readonly cancel: (session_id: string, job_id: string, reason: string | undefined, request_id: string) => Effect.Effect<void, ArcpError>
  readonly subscribe: (
    session_id: string,
    request: { readonly job_id: string; readonly from_event_seq: number | undefined; readonly history: boolean },
    request_id: string
  ) => Effect.Effect<void, ArcpError>
  readonly unsubscribe: (session_id: string, job_id: string) => Effect.Effect<void>
  /**
   * A remote agent's events for a job it runs (`reporter`: the agent, or
   * undefined for an operator): each answered as an in-process handler's
   * emit is, in order (a refused tool call, say, is `ok: false`).
   */
  readonly report: (request: {
    readonly job_id: string
    readonly reporter: string | undefined
    readonly events: ReadonlyArray<{ readonly kind: string; readonly body: Json }>
  }) => Effect.Effect<ReadonlyArray<ReportAnswer>, ReportError>
  /** A remote agent's end of a job it runs: its result, or its error. */
  readonly end: (request: {
    readonly job_id: string
    readonly reporter: string | undefined
    readonly outcome: JobOutcome
  }) => Effect.Effect<void, ReportError>
  /** `session.list_jobs`: answers `session.jobs`. */
  readonly listJobs: (session_id: string, request: ListJobs, request_id: string) => Effect.Effect<void, ArcpError>
}>() {}

/** An in-process agent, registered for as long as the layer lasts; a bare name is version `1.0.0`. */
export const agent = (definition: AgentDefinition | string, handler: Handler): Layer.Layer<never, never, Arcp> =>
  Layer.scopedDiscard(Effect.flatMap(Arcp, (arcp) =>
    arcp.register(typeof definition === "string" ? { name: definition, version: "1.0.0" } : definition, handler)))

/** The `echo` agent of `switchboard serve --echo-agent`: a log, a progress, and its input back. */
export const echoAgent: Layer.Layer<never, never, Arcp> = agent(
  { name: "echo", version: "1.0.0", default: true },
  (context) =>
    Effect.gen(function*() {
      yield* context.log("info", "echo")
      yield* context.progress(1, 1)
      return context.input
    })
)
