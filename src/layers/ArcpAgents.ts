/**
 * Runs ARCP jobs on the in-process agents: each job's handler on a fiber of
 * its own, what it emits decided through the command loop in order, a batch
 * at a time (`model/ArcpEmit.ts`), and its end (a result, an error, its
 * `max_runtime_sec` passed, a cancel) recorded once, after everything it
 * emitted.
 *
 * A job's emits go into its queue at once, in the order the handler makes
 * them, and one flush at a time takes the queue to the loop: a handler that
 * emits a log, a progress and returns costs one turn, not three. A cost
 * metric is decided in a flush of its own, since it reads the gateway's
 * counters as the state has them.
 */
import { Cause, Deferred, Duration, Effect, Either, Exit, Fiber, FiberId, Option, Schema, Scheduler } from "effect"
import { type AgentEvent, eventBodies, failure, isVendorKind, type JobOutcome } from "../schema/Arcp.js"
import type { ArcpJobAccepted } from "../schema/ArcpEvents.js"
import { isJson, type Json } from "../schema/Json.js"
import { decideEmit, type EmitAnswer, type EmitItem, isCharge } from "../model/ArcpEmit.js"
import { type AgentVersions, decideFinish } from "../model/ArcpJobs.js"
import { remoteVersions, withRemote } from "../model/ArcpRemote.js"
import { accept, type RuntimeState } from "../model/State.js"
import type { Event } from "../schema/Event.js"
import { ArcpError, type Handler, type JobContext, type StreamedResult } from "../services/Arcp.js"
import type { Runtime } from "../services/Runtime.js"

type Pending =
  | { readonly _tag: "Item"; readonly item: EmitItem; readonly done?: (answer: EmitAnswer[number]) => void }
  | { readonly _tag: "Finish"; readonly outcome: JobOutcome }

interface Running {
  readonly job_id: string
  readonly queue: Array<Pending>
  flushing: boolean
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** The fibers that end the job after a grace, interrupted once it ends. */
  readonly watchdogs: Array<Fiber.RuntimeFiber<unknown, unknown>>
  readonly cancelled: Deferred.Deferred<void>
  cancelReason: string | undefined
}

/** How long a cancelled (or timed out) handler has to stop before its job ends anyway. */
const graceMs = 30_000

class TimedOut {
  readonly _tag = "TimedOut"
}

const isStreamed = (value: unknown): value is StreamedResult =>
  typeof value === "object" && value !== null && (value as { _tag?: unknown })._tag === "StreamedResult"


/** Each kind's body check, made once: `Schema.is` builds its checker anew on every call. */
const bodyChecks = new Map<string, (body: unknown) => boolean>(
  Object.entries(eventBodies).map(([kind, schema]) => [kind, Schema.is(schema as Schema.Schema<any, any>)])
)

export const validBody = (kind: string, body: unknown): boolean => {
  if (isVendorKind(kind)) return isJson(body)
  const check = bodyChecks.get(kind)
  return check !== undefined && isJson(body) && check(body)
}

/** An event in the form the SDK sends: a metric's `dimensions` (the spec's name) as `dims`. */
export const sdkForm = (event: AgentEvent): AgentEvent => {
  if (event.kind !== "metric") return event
  const { dimensions, ...body } = event.body as { readonly dims?: Json; readonly dimensions?: Json }
  return dimensions === undefined ? event : { ...event, body: { ...body, dims: body.dims ?? dimensions } } as AgentEvent
}

/**
 * The scheduler of the agents' fibers: the default one, except while a job
 * starts (`eagerly`, as its acceptance commits), when every task runs at
 * once, in the loop, so that what a handler does synchronously (an echo: all
 * of it) is there for the very next turn to append.
 */
export class EagerScheduler implements Scheduler.Scheduler {
  private eager = false
  private readonly tasks: Array<Scheduler.Task> = []
  shouldYield(fiber: Parameters<Scheduler.Scheduler["shouldYield"]>[0]) {
    return this.eager ? false : Scheduler.defaultScheduler.shouldYield(fiber)
  }
  scheduleTask(task: Scheduler.Task, priority: number, fiber?: Parameters<Scheduler.Scheduler["scheduleTask"]>[2]) {
    if (this.eager) this.tasks.push(task)
    else Scheduler.defaultScheduler.scheduleTask(task, priority, fiber)
  }
  /** Runs `start` and every task it schedules, and theirs, before returning. */
  eagerly(start: () => void) {
    this.eager = true
    try {
      start()
      // A bound, so that a handler looping on yields cannot hold the loop: past it, the rest goes to the default scheduler.
      for (let i = 0; i < 10_000 && this.tasks.length > 0; i++) this.tasks.shift()!()
    } finally {
      this.eager = false
      const left = this.tasks.splice(0)
      for (const task of left) Scheduler.defaultScheduler.scheduleTask(task, 0)
    }
  }
}

export interface AgentRunner {
  readonly register: (name: string, version: string, isDefault: boolean, handler: Handler) => () => void
  /** The in-process handlers' versions of `name`. */
  readonly catalog: (name: string) => AgentVersions | undefined
  /** The versions of `name` in `state`: the in-process handlers' and the live remote agents'. */
  readonly catalogIn: (state: RuntimeState) => (name: string) => AgentVersions | undefined
  /** Whether an in-process handler runs `name@version`. */
  readonly runsHere: (name: string, version: string) => boolean
  readonly list: () => ReadonlyArray<{ readonly name: string; readonly versions: ReadonlyArray<string>; readonly default: string }>
  /**
   * A job's acceptance is durable (this runs as its turn commits): its
   * handler starts at once (`EagerScheduler`), and the next turn's
   * `decideStarted` takes what it emitted synchronously, so that (for a
   * handler that needs no I/O) its whole run is one more durable append.
   */
  readonly start: (accepted: ArcpJobAccepted) => void
  /** The events of the jobs started in this turn, from what their handlers emitted so far (up to any awaited operation). */
  readonly decideStarted: (state: RuntimeState, now: number) => ReadonlyArray<Event>
  /** Its submitter cancelled it: the handler is interrupted, then the job ends CANCELLED. */
  readonly cancel: (job_id: string, reason: string | undefined) => void
  /** It ended (the model ended it, say LEASE_EXPIRED): the handler, if still running, stops. */
  readonly ended: (job_id: string) => void
}

export const makeRunner = (
  runtime: Runtime["Type"],
  fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>,
  now: () => number,
  scheduler: EagerScheduler
): AgentRunner => {
  /** The jobs started since the last turn was decided: the next one takes what they emitted. */
  let started: Array<Running> = []
  const agents = new Map<string, { readonly handlers: Map<string, Handler>; defaultVersion: string | undefined }>()
  const running = new Map<string, Running>()

  const catalog = (name: string): AgentVersions | undefined => {
    const agent = agents.get(name)
    if (agent === undefined || agent.handlers.size === 0) return undefined
    const versions = [...agent.handlers.keys()]
    return { versions, default: agent.defaultVersion !== undefined && agent.handlers.has(agent.defaultVersion) ? agent.defaultVersion : versions[0] }
  }

  const catalogIn = (state: RuntimeState) => (name: string) => withRemote(catalog(name), remoteVersions(state, name))

  const flush = (job: Running): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (job.queue.length === 0) {
        job.flushing = false
        return Effect.void
      }
      const batch: Array<Extract<Pending, { _tag: "Item" }>> = []
      let finish: JobOutcome | undefined
      while (job.queue.length > 0) {
        const next = job.queue[0]
        if (next._tag === "Finish") {
          job.queue.shift()
          finish = next.outcome
          break
        }
        if (isCharge(next.item) && batch.length > 0) break
        batch.push(next)
        job.queue.shift()
        if (isCharge(next.item)) break
      }
      const items = batch.map((pending) => pending.item)
      return runtime.run((state, at) => {
        const emitted = items.length === 0 ? accept<EmitAnswer>([], []) : decideEmit(state, { job_id: job.job_id, items }, catalogIn(state), at)
        if (finish === undefined || emitted.events.some((event) => event._tag === "ArcpJobFinished")) return emitted
        const finished = decideFinish(state, job.job_id, finish, at)
        return accept([...emitted.events, ...finished.events], emitted._tag === "Accepted" ? emitted.value : [])
      }).pipe(
        Effect.matchCauseEffect({
          onSuccess: ({ value }) => Effect.sync(() => batch.forEach((pending, i) => pending.done?.(value[i]))),
          onFailure: (cause) =>
            Effect.zipRight(
              Effect.sync(() => batch.forEach((pending) => pending.done?.(Either.left({ code: "INTERNAL_ERROR", message: "the runtime could not record it" })))),
              Effect.logError(`arcp: job ${job.job_id}: its events could not be recorded`, cause)
            )
        }),
        Effect.zipRight(flush(job))
      )
    })

  const enqueue = (job: Running, pending: Pending) => {
    job.queue.push(pending)
    if (!job.flushing) {
      job.flushing = true
      // After a yield: the handler goes on first, and what it emits meanwhile (up to its end) joins the same flush.
      fork(Effect.zipRight(Effect.yieldNow(), flush(job)))
    }
  }

  const stamp = () => new Date(now()).toISOString()

  /** Ends the job with `outcome` after `ms`, if nothing ended it before (the first end wins). */
  const watchdog = (job: Running, ms: number, outcome: JobOutcome) => {
    job.watchdogs.push(fork(Effect.zipRight(Effect.sleep(Duration.millis(ms)), Effect.sync(() => {
      if (running.has(job.job_id)) enqueue(job, { _tag: "Finish", outcome })
    }))))
  }

  const awaited = (job: Running, kind: string, body: Json): Effect.Effect<{ readonly child_job_id?: string }, ArcpError> =>
    Effect.async((resume) => {
      enqueue(job, {
        _tag: "Item",
        item: { kind, body, ts: stamp(), ...(kind === "delegate" ? { child: childIds(job) } : {}) },
        done: (answer) => resume(Either.isRight(answer) ? Effect.succeed(answer.right) : Effect.fail(ArcpError.of(answer.left.code, answer.left.message)))
      })
    })

  let children = 0
  const childIds = (job: Running) => {
    children++
    return { job_id: `${job.job_id}.d${children}`, lease_id: `lease_${job.job_id}.d${children}` }
  }

  const outcomeOf = (job: Running, exit: Exit.Exit<Json | StreamedResult, ArcpError | TimedOut>): JobOutcome | undefined => {
    if (Exit.isSuccess(exit)) {
      const value = exit.value
      if (isStreamed(value)) {
        return {
          final_status: "success",
          result_id: value.result_id,
          ...(value.result_size === undefined ? {} : { result_size: value.result_size }),
          ...(value.summary === undefined ? {} : { summary: value.summary })
        }
      }
      return isJson(value)
        ? { final_status: "success", result: value }
        : failure("error", "INTERNAL_ERROR", "the agent's result is not JSON")
    }
    const error = Cause.failureOption(exit.cause)
    if (Option.isSome(error)) {
      const e = error.value
      return e instanceof TimedOut
        ? failure("timed_out", "TIMEOUT", "the job ran past its max_runtime_sec")
        : { final_status: "error", code: e.code, message: e.message, retryable: e.retryable }
    }
    if (Cause.isInterruptedOnly(exit.cause)) {
      // Interrupted by a cancel; otherwise the runtime is stopping, and a restart fails the job.
      return job.cancelReason !== undefined ? failure("cancelled", "CANCELLED", job.cancelReason) : undefined
    }
    return failure("error", "INTERNAL_ERROR", "the agent failed unexpectedly")
  }

  const start = (accepted: ArcpJobAccepted) => {
    // Started once, whatever tells of it twice.
    if (running.has(accepted.job_id)) return
    const handler = agents.get(accepted.agent)?.handlers.get(accepted.version)
    const job: Running = {
      job_id: accepted.job_id,
      queue: [],
      flushing: false,
      fiber: undefined,
      watchdogs: [],
      cancelled: Deferred.unsafeMake<void>(FiberId.none),
      cancelReason: undefined
    }
    running.set(accepted.job_id, job)
    // Its flush waits for the next turn: `decideStarted` takes the queue first.
    job.flushing = true
    started.push(job)
    if (handler === undefined) {
      enqueue(job, { _tag: "Finish", outcome: failure("error", "AGENT_NOT_AVAILABLE", `agent ${accepted.agent}@${accepted.version} is gone`) })
      return
    }
    const emit = (emitted: AgentEvent) =>
      Effect.suspend(() => {
        if (!validBody(emitted.kind, emitted.body)) return Effect.die(new Error(`agent event ${emitted.kind} has an invalid body`))
        const event = sdkForm(emitted)
        if (event.kind === "tool_call" || event.kind === "delegate" || isCharge({ kind: event.kind, body: event.body as Json, ts: "" })) {
          return Effect.asVoid(Effect.ignore(awaited(job, event.kind, event.body as Json)))
        }
        enqueue(job, { _tag: "Item", item: { kind: event.kind, body: event.body as Json, ts: stamp() } })
        return Effect.void
      })
    let calls = 0
    const context: JobContext = {
      job_id: accepted.job_id,
      agent: accepted.agent,
      version: accepted.version,
      input: accepted.input,
      lease: accepted.grants,
      lease_expires_at: accepted.expires_at,
      budget: accepted.budget,
      trace_id: accepted.trace_id,
      emit,
      log: (level, message) => emit({ kind: "log", body: { level, message } }),
      progress: (current, total, message) =>
        emit({ kind: "progress", body: { current, ...(total === undefined ? {} : { total }), ...(message === undefined ? {} : { message }) } }),
      toolCall: (tool, args, call_id) => {
        const id = call_id ?? `call_${++calls}`
        return Effect.as(awaited(job, "tool_call", { tool, call_id: id, ...(args === undefined ? {} : { args }) }), id)
      },
      cost: (name, value, unit) => Effect.asVoid(awaited(job, "metric", { name: name.startsWith("cost.") ? name : `cost.${name}`, value, unit })),
      delegate: (request) =>
        Effect.flatMap(awaited(job, "delegate", { ...request, input: request.input ?? null } as unknown as Json), ({ child_job_id }) =>
          child_job_id === undefined ? Effect.fail(ArcpError.of("INTERNAL_ERROR", "no child job")) : Effect.succeed(child_job_id)),
      cancelled: Deferred.await(job.cancelled)
    }
    let body: Effect.Effect<Json | StreamedResult, ArcpError | TimedOut> = Effect.suspend(() => handler(context))
    if (accepted.max_runtime_sec !== undefined) {
      const limit = accepted.max_runtime_sec * 1000
      body = Effect.timeoutFail(body, { duration: Duration.millis(limit), onTimeout: () => new TimedOut() })
      // A handler whose interruption never completes (a finalizer that hangs) still ends, after the grace.
      watchdog(job, limit + graceMs, failure("timed_out", "TIMEOUT", "the job ran past its max_runtime_sec and did not stop"))
    }
    scheduler.eagerly(() => {
      job.fiber = fork(Effect.onExit(body, (exit) =>
        Effect.sync(() => {
          const outcome = outcomeOf(job, exit)
          if (outcome !== undefined) enqueue(job, { _tag: "Finish", outcome })
        })))
    })
  }

  const decideStarted = (state: RuntimeState, at: number): ReadonlyArray<Event> => {
    if (started.length === 0) return []
    const jobs = started
    started = []
    const events: Array<Event> = []
    for (const job of jobs) {
      // The plain events first in the queue, and the end if it comes before any awaited operation.
      const items: Array<EmitItem> = []
      let finish: JobOutcome | undefined
      while (job.queue.length > 0) {
        const next = job.queue[0]
        if (next._tag === "Finish") {
          finish = next.outcome
          job.queue.shift()
          break
        }
        if (next.done !== undefined || isCharge(next.item) || next.item.kind === "tool_call" || next.item.kind === "delegate") break
        items.push(next.item)
        job.queue.shift()
      }
      if (items.length > 0) {
        const emitted = decideEmit(state, { job_id: job.job_id, items }, catalogIn(state), at)
        events.push(...emitted.events)
      }
      if (finish !== undefined && !events.some((event) => event._tag === "ArcpJobFinished" && event.job_id === job.job_id)) {
        events.push(...decideFinish(state, job.job_id, finish, at).events)
      }
      if (job.queue.length > 0) fork(flush(job))
      else job.flushing = false
    }
    return events
  }

  return {
    register: (name, version, isDefault, handler) => {
      let agent = agents.get(name)
      if (agent === undefined) agents.set(name, agent = { handlers: new Map(), defaultVersion: undefined })
      agent.handlers.set(version, handler)
      if (isDefault || agent.defaultVersion === undefined) agent.defaultVersion = version
      return () => {
        agent.handlers.delete(version)
        if (agent.defaultVersion === version) agent.defaultVersion = agent.handlers.keys().next().value
      }
    },
    catalog,
    catalogIn,
    runsHere: (name, version) => agents.get(name)?.handlers.has(version) === true,
    list: () =>
      [...agents.keys()].sort().flatMap((name) => {
        const entry = catalog(name)
        return entry === undefined ? [] : [{ name, versions: entry.versions, default: entry.default }]
      }),
    start,
    decideStarted,
    cancel: (job_id, reason) => {
      const job = running.get(job_id)
      if (job === undefined) {
        // No handler runs it (it was never started here): it ends at once.
        fork(runtime.run((state, at) => decideFinish(state, job_id, failure("cancelled", "CANCELLED", reason ?? "cancelled"), at)))
        return
      }
      job.cancelReason = reason ?? "cancelled by its submitter"
      Deferred.unsafeDone(job.cancelled, Exit.void)
      watchdog(job, graceMs, failure("cancelled", "CANCELLED", job.cancelReason))
      if (job.fiber !== undefined) fork(Fiber.interrupt(job.fiber))
      else enqueue(job, { _tag: "Finish", outcome: failure("cancelled", "CANCELLED", job.cancelReason) })
    },
    ended: (job_id) => {
      const job = running.get(job_id)
      if (job === undefined) return
      running.delete(job_id)
      for (const watchdog of job.watchdogs) fork(Fiber.interrupt(watchdog))
      if (job.fiber !== undefined && job.fiber.unsafePoll() === null) fork(Fiber.interrupt(job.fiber))
    }
  }
}

