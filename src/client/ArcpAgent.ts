/**
 * A remote ARCP agent: a process of its own that serves ARCP jobs for
 * `NAME@VERSION` (README, "ARCP"). It registers with the capability
 * `arcp:NAME@VERSION`, takes each job as a router delivery (`Processor.run`:
 * READ, then FULFILLED once the job has ended, FAILED if reporting failed;
 * a delivery it dies with comes again, to it or another instance), runs the
 * handler, and reports the handler's events, then its result or error, over
 * the server's API (`SwitchboardClient`).
 *
 * A job that ended meanwhile (its submitter cancelled it, its
 * `max_runtime_sec` passed) is answered 409 on the next report: the handler
 * is then interrupted and the delivery settled, as there is nothing left to do.
 */
import { Effect, Either, Schema } from "effect"
import { arcpCapability, jobContentType } from "../model/ArcpRemote.js"
import { payloadText } from "../model/Envelopes.js"
import type { EventKind } from "../schema/Arcp.js"
import { ValidationError } from "../schema/Errors.js"
import { Json } from "../schema/Json.js"
import { LeaseGrants } from "../schema/Lease.js"
import * as Processor from "../layers/Processor.js"
import { ArcpError } from "../services/Arcp.js"
import { Registry } from "../services/Registry.js"
import type { Delivery } from "../services/Router.js"
import { SwitchboardClient } from "./SwitchboardClient.js"

/** A job as its message carries it. */
export const RemoteJob = Schema.Struct({
  job_id: Schema.String,
  agent: Schema.String,
  version: Schema.String,
  input: Json,
  lease: LeaseGrants,
  lease_expires_at: Schema.optional(Schema.Number),
  budget: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number })),
  max_runtime_sec: Schema.optional(Schema.Number),
  trace_id: Schema.optional(Schema.String)
})
export type RemoteJob = typeof RemoteJob.Type

const decodeJob = Schema.decodeUnknownEither(Schema.parseJson(RemoteJob))

/** What a remote handler gets: its job, and how to report its events. */
export interface RemoteJobContext {
  readonly job: RemoteJob
  /** Reports one event; a `tool_call`, a `cost.*` metric or a `delegate` is answered as in process (PERMISSION_DENIED, a child job's id). */
  readonly emit: (kind: EventKind | `x-vendor.${string}`, body: Json) => Effect.Effect<{ readonly child_job_id?: string }, ArcpError>
  readonly log: (level: "trace" | "debug" | "info" | "warn" | "error" | "critical", message: string) => Effect.Effect<void, ArcpError>
  readonly progress: (current: number, total?: number, message?: string) => Effect.Effect<void, ArcpError>
}

/** What the handler returns is the job's result; an `ArcpError` it fails with is the job's error. */
export type RemoteHandler<R> = (context: RemoteJobContext) => Effect.Effect<Json, ArcpError, R>

/** The job ended on the server: nothing more to report. */
class Ended extends Schema.TaggedError<Ended>()("Ended", {}) {}

export interface ServeOptions<R> {
  /** The router agent this process is (its key must act as it). */
  readonly agent_id: string
  /** The ARCP agent it serves. */
  readonly name: string
  readonly version: string
  readonly handler: RemoteHandler<R>
  /** Jobs run at once; default 1. */
  readonly concurrency?: number
  /** See `Processor.run`; default 10 s. */
  readonly heartbeatEvery?: Processor.Handlers<never, never>["heartbeatEvery"]
}

/** Registers the agent and serves its jobs until interrupted. */
export const serve = <R>(options: ServeOptions<R>) =>
  Effect.gen(function*() {
    const client = yield* SwitchboardClient
    const registry = yield* Registry
    const agent_id = options.agent_id
    yield* registry.register({ agent_id, name: agent_id, capabilities: [arcpCapability(options.name, options.version)] })

    /** A report's failure: the job ended (409 or 404), or the server could not be reached or refused it. */
    const reported = <A>(effect: Effect.Effect<A, unknown>) =>
      Effect.catchAll(effect, (error): Effect.Effect<never, Ended | ArcpError> => {
        const tag = (error as { readonly _tag?: unknown })._tag
        return tag === "JobEnded" || tag === "JobNotFound"
          ? Effect.fail(new Ended())
          : Effect.fail(ArcpError.of("INTERNAL_ERROR", `reporting failed: ${(error as Error).message ?? String(error)}`))
      })

    const runJob = (delivery: Delivery) =>
      Effect.gen(function*() {
        const envelope = delivery.envelope
        if (!envelope.content_type.startsWith(jobContentType.split(";")[0])) {
          return yield* ValidationError.single("arcp.job", "content_type", `not an ARCP job: ${envelope.content_type}`)
        }
        const decoded = decodeJob(payloadText(envelope))
        if (Either.isLeft(decoded)) return yield* ValidationError.single("arcp.job", "payload", "not an ARCP job description")
        const job = decoded.right
        const path = { job_id: job.job_id }
        const emit: RemoteJobContext["emit"] = (kind, body) =>
          reported(client.arcp.reportEvents({ path, payload: { agent_id, events: [{ kind, body }] } })).pipe(
            Effect.flatMap(([answer]) =>
              answer === undefined || answer.ok
                ? Effect.succeed(answer?.ok === true && answer.child_job_id !== undefined ? { child_job_id: answer.child_job_id } : {})
                : Effect.fail(ArcpError.of(answer.code, answer.message))),
            // The job ended under the handler: it stops here, and the delivery is settled.
            Effect.catchTag("Ended", (ended) => Effect.die(ended))
          )
        const context: RemoteJobContext = {
          job,
          emit,
          log: (level, message) => Effect.asVoid(emit("log", { level, message })),
          progress: (current, total, message) =>
            Effect.asVoid(emit("progress", { current, ...(total === undefined ? {} : { total }), ...(message === undefined ? {} : { message }) }))
        }
        const outcome = yield* Effect.either(options.handler(context)).pipe(
          Effect.catchAllDefect((defect) => defect instanceof Ended ? Effect.succeed(undefined) : Effect.die(defect))
        )
        if (outcome === undefined) return
        const end = Either.isRight(outcome)
          ? client.arcp.reportResult({ path, payload: { agent_id, result: outcome.right } })
          : client.arcp.reportError({ path, payload: { agent_id, code: outcome.left.code, message: outcome.left.message } })
        yield* Effect.catchTag(reported(end), "Ended", () => Effect.void)
      })

    return yield* Processor.run(agent_id, {
      concurrency: options.concurrency ?? 1,
      heartbeatEvery: options.heartbeatEvery ?? "10 seconds",
      handlers: { DATA: runJob }
    })
  })
