/**
 * An ARCP v1.1 client on Effect, over `@effect/platform`'s WebSocket: open a
 * session (or resume one from its last seen `event_seq`), submit jobs and
 * stream their events, cancel, list, subscribe. It speaks the wire of
 * PROTOCOLS.md §3 to any conformant runtime, Switchboard's `/arcp` first.
 *
 * Every frame that comes in is decoded with the wire's Schemas. Answers are
 * matched to requests by `trace_id` (each submit gets one) or by request id;
 * a job's messages go to its `JobHandle`, whose `result` reassembles a
 * streamed (`result_chunk`) result. When `ack` is negotiated the client
 * acknowledges what it has taken, every 64 events and once a second, so the
 * runtime's window never stalls it; when `heartbeat` is, it pings each
 * interval. Errors are `ArcpError`s carrying the wire's code and retry class;
 * LEASE_EXPIRED and BUDGET_EXHAUSTED are never retryable, whatever a runtime
 * says. The session and its socket last as long as the scope.
 */
import * as Socket from "@effect/platform/Socket"
import { Clock, Deferred, Duration, Effect, Either, FiberId, Queue, Ref, Schema, type Scope, Stream } from "effect"
import { fastInputDecoder } from "../internal/fastSchema.js"
import * as Wire from "../schema/Arcp.js"
import { Json } from "../schema/Json.js"
import { ArcpError } from "../services/Arcp.js"
import { RandomBytes } from "../services/RandomBytes.js"

export { ArcpError }

export interface ConnectOptions {
  /** `ws://host:port/arcp` */
  readonly url: string
  readonly token?: string | undefined
  readonly features?: ReadonlyArray<string> | undefined
  readonly client?: { readonly name: string; readonly version: string } | undefined
  /** Resumes a session instead of opening one. */
  readonly resume?: { readonly session_id: string; readonly resume_token: string; readonly last_event_seq: number } | undefined
}

/** A job message, as the client hands it on. */
export interface JobMessage {
  readonly type: "job.event" | "job.result" | "job.error"
  readonly job_id: string
  readonly event_seq: number | undefined
  readonly payload: any
}

export interface JobResult {
  readonly result?: Json | undefined
  readonly result_id?: string | undefined
  /** A streamed result, its chunks put back together (text; base64 chunks decoded as UTF-8). */
  readonly assembled?: string | undefined
  readonly summary?: string | undefined
}

export interface JobHandle {
  readonly job_id: string
  /** `job.accepted`'s payload (or `job.subscribed`'s). */
  readonly accepted: any
  /** The job's messages until its end; fails with the job's error. */
  readonly messages: Stream.Stream<JobMessage, ArcpError>
  /** Waits for the job's end: its result, or its error. */
  readonly result: Effect.Effect<JobResult, ArcpError>
}

export interface SubmitRequest {
  readonly agent: string
  readonly input?: Json | undefined
  readonly lease_request?: Readonly<Record<string, ReadonlyArray<string>>> | undefined
  readonly lease_constraints?: { readonly expires_at?: string } | undefined
  readonly idempotency_key?: string | undefined
  readonly max_runtime_sec?: number | undefined
}

export interface ArcpSession {
  readonly session_id: string
  readonly welcome: any
  /** The current resume token (it rotates on every welcome). */
  readonly resumeToken: string
  /** The newest `event_seq` taken: what to resume from. */
  readonly lastEventSeq: Effect.Effect<number>
  readonly submit: (request: SubmitRequest) => Effect.Effect<JobHandle, ArcpError>
  /** A handle on a job this session already gets messages of (after a resume). */
  readonly job: (job_id: string) => JobHandle
  readonly cancel: (job_id: string, reason?: string) => Effect.Effect<void, ArcpError>
  readonly listJobs: (request?: Wire.ListJobs) => Effect.Effect<{ readonly jobs: ReadonlyArray<any>; readonly next_cursor: string | null }, ArcpError>
  readonly subscribe: (job_id: string, options?: { readonly from_event_seq?: number; readonly history?: boolean }) => Effect.Effect<JobHandle, ArcpError>
  readonly unsubscribe: (job_id: string) => Effect.Effect<void>
  /** `session.bye`: the session stays resumable; its jobs run on. */
  readonly bye: (reason?: string) => Effect.Effect<void>
}

const decodeEnvelope = fastInputDecoder(Wire.Envelope, "envelope", { onExcessProperty: "ignore" })
const decodeOutcome = fastInputDecoder(Wire.JobOutcome, "outcome", { onExcessProperty: "ignore" })
const decodeEvent = fastInputDecoder(Schema.Struct({ kind: Schema.String, ts: Schema.String, body: Json }), "job.event", { onExcessProperty: "ignore" })
const decodeError = fastInputDecoder(Wire.ErrorObject, "error", { onExcessProperty: "ignore" })
const decodeWelcome = fastInputDecoder(
  Schema.Struct({
    resume_token: Schema.String,
    resume_window_sec: Schema.Number,
    heartbeat_interval_sec: Schema.optional(Schema.Number),
    capabilities: Schema.Struct({ features: Schema.Array(Schema.String), agents: Schema.optional(Schema.Unknown) })
  }),
  "session.welcome",
  { onExcessProperty: "ignore" }
)

const errorOf = (error: Wire.ErrorObject): ArcpError =>
  new ArcpError({
    code: error.code,
    message: error.message,
    retryable: error.code === "LEASE_EXPIRED" || error.code === "BUDGET_EXHAUSTED" ? false : error.retryable
  })

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

interface JobEntry {
  /** A handle was given out; the job ended: once both, the session forgets it. */
  handled: boolean
  ended: boolean
  readonly queue: Queue.Queue<JobMessage>
  readonly done: Deferred.Deferred<JobResult, ArcpError>
  readonly chunks: Map<string, Array<{ readonly data: string; readonly encoding: string }>>
}

/** Opens (or resumes) a session on `options.url`; it lasts as long as the scope. */
export const connect = (
  options: ConnectOptions
): Effect.Effect<ArcpSession, ArcpError, Scope.Scope | Socket.WebSocketConstructor> =>
  Effect.gen(function*() {
    const random = yield* RandomBytes
    const socket = yield* Socket.makeWebSocket(options.url)
    const write = yield* socket.writer
    let counter = 0
    const prefix = hex(yield* random.next(6))
    const nextId = () => `msg_${prefix}${(counter++).toString(36)}`
    const welcomed = yield* Deferred.make<{ readonly session_id: string; readonly payload: any }, ArcpError>()
    const jobs = new Map<string, JobEntry>()
    const bySubmit = new Map<string, Deferred.Deferred<JobHandle, ArcpError>>()
    const byRequest = new Map<string, Deferred.Deferred<any, ArcpError>>()
    /** The trace ids of the submits waiting for their answer, oldest first. */
    let submitOrder: Array<string> = []
    const lastSeq = yield* Ref.make(options.resume?.last_event_seq ?? 0)
    let session_id = options.resume?.session_id ?? ""
    let unacked = 0
    let features: ReadonlySet<string> = new Set()

    const send = (type: string, payload: unknown, extra: Record<string, unknown> = {}) => {
      const id = nextId()
      return Effect.as(
        Effect.mapError(
          write(JSON.stringify({ arcp: Wire.protocolVersion, id, type, ...(session_id === "" ? {} : { session_id }), ...extra, payload })),
          () => ArcpError.of("INTERNAL_ERROR", "the connection is closed")
        ),
        id
      )
    }

    const entry = (job_id: string): JobEntry => {
      let found = jobs.get(job_id)
      if (found === undefined) {
        found = { handled: false, ended: false, queue: Effect.runSync(Queue.unbounded<JobMessage>()), done: Deferred.unsafeMake(FiberId.none), chunks: new Map() }
        jobs.set(job_id, found)
      }
      return found
    }

    const handleOf = (job_id: string, accepted: any): JobHandle => {
      const job = entry(job_id)
      job.handled = true
      if (job.ended) jobs.delete(job_id)
      return {
        job_id,
        accepted,
        messages: Stream.fromQueue(job.queue).pipe(
          Stream.takeUntil((message) => message.type !== "job.event"),
          Stream.mapEffect((message) =>
            message.type === "job.error" ? Effect.fail(errorOf(message.payload)) : Effect.succeed(message)
          )
        ),
        result: Deferred.await(job.done)
      }
    }

    const onJobMessage = (env: Wire.Envelope, type: JobMessage["type"]) =>
      Effect.gen(function*() {
        const job_id = env.job_id ?? ""
        let payload: unknown = env.payload
        if (type === "job.event") {
          const decoded = decodeEvent(env.payload)
          if (Either.isLeft(decoded)) return
          payload = decoded.right
        } else {
          const decoded = decodeOutcome(env.payload)
          if (Either.isLeft(decoded)) return
          payload = decoded.right
        }
        if (env.event_seq !== undefined) {
          yield* Ref.set(lastSeq, env.event_seq)
          if (features.has("ack") && ++unacked >= 64) {
            unacked = 0
            yield* Effect.ignore(send("session.ack", { last_processed_seq: env.event_seq }))
          }
        }
        // A rejected submit: its job.error carries the submit's trace id.
        if (type === "job.error" && env.trace_id !== undefined && bySubmit.has(env.trace_id) && !jobs.has(job_id)) {
          const waiting = bySubmit.get(env.trace_id)!
          bySubmit.delete(env.trace_id)
          return yield* Deferred.fail(waiting, errorOf(payload as Wire.ErrorObject))
        }
        const job = entry(job_id)
        yield* Queue.offer(job.queue, { type, job_id, event_seq: env.event_seq, payload })
        if (type === "job.event") {
          const event = payload as { kind: string; body: any }
          if (event.kind === "result_chunk") {
            const chunks = job.chunks.get(event.body.result_id) ?? []
            chunks[event.body.chunk_seq] = { data: event.body.data, encoding: event.body.encoding }
            job.chunks.set(event.body.result_id, chunks)
          }
          return
        }
        // The handle keeps its queue: once one is out, the session need not.
        job.ended = true
        if (job.handled) jobs.delete(job_id)
        if (type === "job.error") return yield* Deferred.fail(job.done, errorOf(payload as Wire.ErrorObject))
        const outcome = payload as Extract<Wire.JobOutcome, { final_status: "success" }>
        const chunks = outcome.result_id === undefined ? undefined : job.chunks.get(outcome.result_id)
        const assembled = chunks?.map((chunk) => chunk.encoding === "base64" ? Buffer.from(chunk.data, "base64").toString("utf8") : chunk.data).join("")
        yield* Deferred.succeed(job.done, {
          result: outcome.result,
          result_id: outcome.result_id,
          summary: outcome.summary,
          ...(assembled === undefined ? {} : { assembled })
        })
      })

    const onFrame = (data: string | Uint8Array): Effect.Effect<void> | void => {
      let parsed: unknown
      try {
        parsed = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data))
      } catch {
        return
      }
      const decoded = decodeEnvelope(parsed)
      if (Either.isLeft(decoded)) return
      const env = decoded.right
      const payload = env.payload as any
      switch (env.type) {
        case "session.welcome": {
          const welcome = decodeWelcome(env.payload)
          if (Either.isLeft(welcome) || env.session_id === undefined) return
          session_id = env.session_id
          features = new Set(welcome.right.capabilities.features)
          return Deferred.succeed(welcomed, { session_id, payload: env.payload }).pipe(Effect.asVoid)
        }
        case "session.error": {
          const error = decodeError(env.payload)
          if (Either.isLeft(error)) return
          const request_id = (error.right.details as { request_id?: unknown } | undefined)?.request_id
          const failed = errorOf(error.right)
          if (typeof request_id === "string") {
            const waiting = byRequest.get(request_id) ?? bySubmit.get(request_id)
            byRequest.delete(request_id)
            bySubmit.delete(request_id)
            if (waiting !== undefined) return Deferred.fail(waiting, failed).pipe(Effect.asVoid)
          }
          return Deferred.fail(welcomed, failed).pipe(Effect.asVoid)
        }
        case "session.ping":
          return Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.ignore(send("session.pong", { ping_nonce: String(payload?.nonce ?? ""), received_at: new Date(now).toISOString() })))
        case "job.accepted": {
          // By trace id, else by order (a delegated child's accepted matches neither).
          const trace = env.trace_id !== undefined && bySubmit.has(env.trace_id)
            ? env.trace_id
            : typeof payload?.trace_id === "string" && bySubmit.has(payload.trace_id)
            ? payload.trace_id as string
            : payload?.parent_job_id === undefined
            ? submitOrder.find((id) => bySubmit.has(id))
            : undefined
          const job_id = typeof payload?.job_id === "string" ? payload.job_id : env.job_id
          if (trace === undefined || job_id === undefined) return
          const waiting = bySubmit.get(trace)!
          bySubmit.delete(trace)
          return Deferred.succeed(waiting, handleOf(job_id, payload)).pipe(Effect.asVoid)
        }
        case "session.jobs":
        case "job.subscribed":
        case "job.cancelled": {
          const waiting = typeof payload?.request_id === "string" ? byRequest.get(payload.request_id) : undefined
          if (waiting === undefined) return
          byRequest.delete(payload.request_id)
          return Deferred.succeed(waiting, payload).pipe(Effect.asVoid)
        }
        case "job.event":
        case "job.result":
        case "job.error":
          return onJobMessage(env, env.type)
      }
    }

    const scope = yield* Effect.scope
    yield* socket.runRaw(onFrame).pipe(
      Effect.ensuring(Effect.suspend(() => {
        const lost = ArcpError.of("INTERNAL_ERROR", "the connection closed")
        return Effect.all([
          Deferred.fail(welcomed, lost),
          ...[...bySubmit.values(), ...byRequest.values()].map((waiting) => Deferred.fail(waiting, lost)),
          ...[...jobs.values()].map((job) => Deferred.fail(job.done, lost))
        ])
      })),
      Effect.ignore,
      Effect.forkIn(scope)
    )

    const trace = Effect.map(random.next(16), hex)
    yield* send("session.hello", {
      client: options.client ?? { name: "switchboard-arcp-client", version: "0.1.0" },
      auth: { scheme: "bearer", token: options.token ?? "" },
      capabilities: { encodings: ["json"], features: options.features ?? Wire.allFeatures },
      ...(options.resume === undefined ? {} : { resume: options.resume })
    })
    const welcome = yield* Deferred.await(welcomed)

    if (features.has("ack")) {
      yield* Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(Duration.seconds(1))
          if (unacked > 0) {
            unacked = 0
            yield* Effect.ignore(send("session.ack", { last_processed_seq: yield* Ref.get(lastSeq) }))
          }
        }
      }).pipe(Effect.forkIn(scope))
    }
    const interval = (welcome.payload as { heartbeat_interval_sec?: number }).heartbeat_interval_sec
    if (features.has("heartbeat") && interval !== undefined) {
      yield* Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.ignore(send("session.ping", { nonce: "hb", sent_at: new Date(now).toISOString() }))).pipe(
        Effect.delay(Duration.seconds(interval)),
        Effect.forever,
        Effect.forkIn(scope)
      )
    }

    const request = <A>(type: string, payload: unknown, extra: Record<string, unknown> = {}) =>
      Effect.gen(function*() {
        const waiting = yield* Deferred.make<A, ArcpError>()
        const id = nextId()
        byRequest.set(id, waiting as Deferred.Deferred<any, ArcpError>)
        yield* Effect.mapError(
          write(JSON.stringify({ arcp: Wire.protocolVersion, id, type, session_id, ...extra, payload })),
          () => ArcpError.of("INTERNAL_ERROR", "the connection is closed")
        )
        return yield* Deferred.await(waiting)
      })

    return {
      session_id: welcome.session_id,
      welcome: welcome.payload,
      resumeToken: (welcome.payload as { resume_token: string }).resume_token,
      lastEventSeq: Ref.get(lastSeq),
      submit: (submit) =>
        Effect.gen(function*() {
          const trace_id = yield* trace
          const waiting = yield* Deferred.make<JobHandle, ArcpError>()
          bySubmit.set(trace_id, waiting)
          submitOrder.push(trace_id)
          const id = yield* send("job.submit", submit, { trace_id })
          bySubmit.set(id, waiting)
          return yield* Deferred.await(waiting).pipe(Effect.ensuring(Effect.sync(() => {
            bySubmit.delete(id)
            bySubmit.delete(trace_id)
            submitOrder = submitOrder.filter((other) => other !== trace_id)
          })))
        }),
      job: (job_id) => handleOf(job_id, undefined),
      cancel: (job_id, reason) => Effect.asVoid(request("job.cancel", reason === undefined ? {} : { reason }, { job_id })),
      listJobs: (list = {}) => request("session.list_jobs", list),
      subscribe: (job_id, subscribe = {}) =>
        Effect.map(request<any>("job.subscribe", { job_id, ...subscribe }), (payload) => handleOf(job_id, payload)),
      unsubscribe: (job_id) => Effect.ignore(send("job.unsubscribe", { job_id })),
      bye: (reason) =>
        Effect.ignore(send("session.bye", reason === undefined ? {} : { reason })).pipe(
          Effect.zipRight(Effect.ignore(write(new Socket.CloseEvent(1000, "bye"))))
        )
    }
  })
