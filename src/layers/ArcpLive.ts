/**
 * The ARCP runtime over the command loop: sessions and jobs are decided by
 * the model (`model/ArcpSessions.ts`, `ArcpJobs.ts`, `ArcpEmit.ts`), their
 * events appended with everything else, and what a client must hear is sent
 * on its session's connection from inside the loop, once durable, in log
 * order:
 *
 * - answers (`session.welcome`, `job.accepted`, `job.cancelled`,
 *   `job.subscribed`, `session.jobs`) as each command is answered;
 * - job messages (`job.event`, `job.result`, `job.error`) by the turn's
 *   `committed` hook, which "pumps" every session the turn stamped: from the
 *   connection's last sent `event_seq` on, up to the ACK window when `ack`
 *   is negotiated. An ACK, logged, frees the buffer and pumps again.
 *
 * On start, after the log is folded, every session is detached (no transport
 * survives a restart) and every job still running fails with a retryable
 * INTERNAL_ERROR (its handler's fiber died with the old process); a fiber
 * expires sessions past their resume window.
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex } from "@noble/hashes/utils.js"
import { Duration, Effect, FiberSet, Layer, Runtime as EffectRuntime } from "effect"
import { allFeatures, type Feature, protocolVersion } from "../schema/Arcp.js"
import type { PersistenceError, ValidationError } from "../schema/Errors.js"
import type { Event } from "../schema/Event.js"
import { type ArcpSession, decideAck, expiresAt, decideDetach, decideDetachAll, decideExpireSessions, decideOpenSession, decideResume, entryAt } from "../model/ArcpSessions.js"
import {
  acceptedPayload,
  agentLabel,
  decideCancel,
  decideFailRunning,
  decideSubmit,
  decideSubscribe,
  decideUnsubscribe,
  isoOf,
  leaseOf,
  visibleTo
} from "../model/ArcpJobs.js"
import { accept, type RuntimeState } from "../model/State.js"
import { Arcp, type ArcpConfig, ArcpError, type ArcpOptions, type Connection } from "../services/Arcp.js"
import { RandomBytes } from "../services/RandomBytes.js"
import { Router } from "../services/Router.js"
import { Runtime } from "../services/Runtime.js"
import { EagerScheduler, makeRunner } from "./ArcpAgents.js"
import { makeRemote } from "./ArcpRemote.js"
import { remoteAgents } from "../model/ArcpRemote.js"
import { ulid } from "./Ulid.js"

const implemented: ReadonlyArray<Feature> = allFeatures

interface Attached {
  readonly connection: Connection
  /** The last seq sent on this connection. */
  sent: number
  readonly window: number
  readonly prefix: string
  counter: number
}

const encoder = new TextEncoder()
export const hashToken = (token: string) => bytesToHex(sha256(encoder.encode(token)))

const arcpTags: ReadonlySet<string> = new Set([
  "ArcpJobAccepted",
  "ArcpJobRejected",
  "ArcpJobEvent",
  "ArcpJobFinished",
  "ArcpJobCancelRequested",
  "ArcpJobSubscribed",
  "ArcpSessionAcked",
  "ArcpSessionResumed",
  "ArcpSessionDetached",
  "ArcpSessionExpired"
])

const make = (options: ArcpOptions) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const random = yield* RandomBytes
    const clock = yield* Effect.clock
    const effectRuntime = yield* Effect.runtime<never>()
    const runFork = EffectRuntime.runFork(effectRuntime)
    const scheduler = new EagerScheduler()
    const runAgent = EffectRuntime.runFork(yield* Effect.withScheduler(Effect.runtime<never>(), scheduler))
    const config: ArcpConfig = {
      resumeWindowSec: options.resumeWindowSec ?? 600,
      heartbeatIntervalSec: options.heartbeatIntervalSec ?? 30,
      ackWindow: options.ackWindow ?? 1000,
      maxRunningJobs: options.maxRunningJobs ?? 1000,
      runtimeName: options.runtimeName ?? "switchboard",
      runtimeVersion: options.runtimeVersion ?? "0.1.0"
    }
    // Knobs of the code that embeds the runtime: 0, a fraction or NaN would stall every session.
    for (const name of ["resumeWindowSec", "heartbeatIntervalSec", "ackWindow", "maxRunningJobs"] as const) {
      if (!Number.isSafeInteger(config[name]) || config[name] < 1) {
        return yield* Effect.dieMessage(`ARCP option ${name} must be a positive integer, got ${config[name]}`)
      }
    }
    const runner = makeRunner(runtime, (effect) => runAgent(effect), () => clock.unsafeCurrentTimeMillis(), scheduler)
    const runScoped = yield* FiberSet.makeRuntime<never>()
    const remote = makeRemote({ runtime, router: yield* Router, runner, run: (effect) => runScoped(effect), now: () => clock.unsafeCurrentTimeMillis() })
    const connections = new Map<string, Attached>()
    /** Sessions whose replay waits for their `job.subscribed`, sent when the subscribe is answered. */
    const held = new Set<string>()
    let current: RuntimeState | undefined
    let detachedWake: Effect.Latch | undefined

    const nextId = (attached: Attached) => `msg_${attached.prefix}${(attached.counter++).toString(36)}`

    const send = (attached: Attached, session_id: string, type: string, payload: unknown, job_id?: string, trace_id?: string) =>
      attached.connection.send(JSON.stringify({
        arcp: protocolVersion,
        id: nextId(attached),
        type,
        session_id,
        ...(job_id === undefined ? {} : { job_id }),
        ...(trace_id === undefined ? {} : { trace_id }),
        payload
      }))

    /** Sends what the session has stamped beyond what its connection got, within the ACK window. */
    const pump = (session: ArcpSession) => {
      const attached = connections.get(session.session_id)
      if (attached === undefined) return
      const limit = Math.min(session.seq, session.floor + attached.window)
      for (let seq = Math.max(attached.sent, session.floor) + 1; seq <= limit; seq++) {
        const entry = entryAt(session, seq)!
        attached.connection.send(
          `{"arcp":"1.1","id":"${nextId(attached)}","type":"${entry.type}","session_id":"${session.session_id}",` +
            `"job_id":${JSON.stringify(entry.job_id)},` +
            (entry.trace_id === undefined ? "" : `"trace_id":"${entry.trace_id}",`) +
            `"event_seq":${seq},"payload":${JSON.stringify(entry.payload)}}`
        )
      }
      if (limit > attached.sent) attached.sent = limit
    }

    /** Tells what the turn committed; whether it started a job, whose first events the next turn takes at once. */
    const committed = (events: ReadonlyArray<Event>, state: RuntimeState): boolean => {
      current = state
      let started = false
      remote.committed(events, state)
      let touched: Set<string> | undefined
      const touch = (session_id: string) => (touched ??= new Set()).add(session_id)
      for (const event of events) {
        if (!arcpTags.has(event._tag)) continue
        switch (event._tag) {
          case "ArcpJobEvent":
          case "ArcpJobFinished": {
            const job = state.arcpJobs.get(event.job_id)
            if (job === undefined) break
            touch(job.accepted.session_id)
            for (const session_id of job.audience) touch(session_id)
            if (event._tag === "ArcpJobFinished") runner.ended(event.job_id)
            break
          }
          case "ArcpJobAccepted": {
            // Sent here, before the turn's job messages: a job's events never come before its acceptance.
            const attached = connections.get(event.session_id)
            const job = state.arcpJobs.get(event.job_id)
            if (attached !== undefined && job !== undefined) {
              send(attached, event.session_id, "job.accepted", acceptedPayload(job), event.job_id, event.trace_id)
            }
            // Its handler starts once the acceptance is durable, never before: a job the log does not hold runs nowhere.
            try {
              if (event.remote === true) remote.accepted(event)
              else {
                runner.start(event)
                started = true
              }
            } catch (defect) {
              runFork(Effect.logError("arcp: a job could not start", defect))
            }
            break
          }
          case "ArcpJobCancelRequested":
            runner.cancel(event.job_id, event.reason)
            break
          case "ArcpJobSubscribed":
            held.add(event.session_id)
            break
          case "ArcpJobRejected":
          case "ArcpSessionAcked":
          case "ArcpSessionResumed":
            touch(event.session_id)
            break
          case "ArcpSessionDetached":
            detachedWake?.unsafeOpen()
            break
          case "ArcpSessionExpired": {
            const attached = connections.get(event.session_id)
            connections.delete(event.session_id)
            attached?.connection.close(1000, "the session expired")
            break
          }
        }
      }
      if (touched !== undefined) {
        for (const session_id of touched) {
          const session = state.arcpSessions.get(session_id)
          if (session !== undefined && !held.has(session_id)) pump(session)
        }
      }
      return started
    }
    // A throw here would stop the loop: a fault in what a commit tells is logged, never thrown.
    yield* runtime.extend({
      // What the jobs started by the last commit emitted at once (up to their first awaited operation): one turn for all of it.
      decide: (state, now) => {
        try {
          return runner.decideStarted(state, now)
        } catch (defect) {
          runFork(Effect.logError("arcp: a started job's events could not be decided", defect))
          return []
        }
      },
      committed: (events, state) => {
        try {
          return committed(events, state)
        } catch (defect) {
          runFork(Effect.logError("arcp: telling a commit failed", defect))
          return false
        }
      }
    })
    current = yield* runtime.query((state) => state).pipe(Effect.orDie)

    // After a restart: no transport holds a session, and no handler runs a job.
    yield* runtime.run((state, now) => accept([...decideDetachAll(state, "the runtime restarted", now), ...decideFailRunning(state, now)])).pipe(
      Effect.catchTag("InternalError", (error) => Effect.die(error))
    )
    yield* Effect.orDie(remote.atStart)

    // Expiry: sleeps until the first detached session's window closes, or
    // until a session detaches; idle when none is detached.
    detachedWake = yield* Effect.makeLatch(false)
    const wake = detachedWake
    yield* Effect.gen(function*() {
      while (true) {
        wake.unsafeClose()
        const next = yield* runtime.query((state) => {
          let first: number | undefined
          for (const session of state.arcpSessions.values()) {
            const at = expiresAt(session)
            if (at !== undefined && (first === undefined || at < first)) first = at
          }
          return first
        })
        if (next === undefined) {
          yield* wake.await
          continue
        }
        const wait = Math.max(0, next - clock.unsafeCurrentTimeMillis())
        yield* Effect.timeoutOption(wake.await, Duration.millis(Math.min(wait, 3_600_000)))
        yield* runtime.run((state, now) => decideExpireSessions(state, now))
      }
    }).pipe(Effect.ignore, Effect.forkScoped)

    const attach = (
      session_id: string,
      connection: Connection,
      features: ReadonlySet<string>,
      ackWindow: number | undefined,
      sent: number,
      prefix: string
    ) => {
      const before = connections.get(session_id)
      if (before !== undefined && before.connection !== connection) before.connection.close(1000, "the session was resumed on another connection")
      const attached: Attached = { connection, sent, window: ackWindow ?? (features.has("ack") ? config.ackWindow : Infinity), prefix, counter: 0 }
      connections.set(session_id, attached)
      return attached
    }

    /** The agents a welcome lists: the in-process handlers', and the live remote agents'. */
    const agentList = () => {
      const list = new Map(runner.list().map((agent) => [agent.name, agent]))
      if (current !== undefined) {
        for (const [name, versions] of remoteAgents(current)) {
          const local = list.get(name)
          const more = versions.filter((version) => local === undefined || !local.versions.includes(version))
          list.set(name, { name, versions: [...(local?.versions ?? []), ...more], default: local?.default ?? more[0] })
        }
      }
      return [...list.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    }

    const welcome = (attached: Attached, session: ArcpSession, token: string) =>
      send(attached, session.session_id, "session.welcome", {
        runtime: { name: config.runtimeName, version: config.runtimeVersion },
        resume_token: token,
        resume_window_sec: session.resume_window_sec,
        ...(session.heartbeat_interval_sec === undefined ? {} : { heartbeat_interval_sec: session.heartbeat_interval_sec }),
        capabilities: {
          encodings: ["json"],
          features: [...session.features],
          agents: session.features.has("agent_versions") ? agentList() : agentList().map((agent) => agent.name)
        }
      })

    const withSession = <A>(session_id: string, f: (state: RuntimeState, session: ArcpSession) => A) => (state: RuntimeState) => {
      const session = state.arcpSessions.get(session_id)
      if (session === undefined) throw new Error(`no session ${session_id}`)
      return f(state, session)
    }

    const service: Arcp["Type"] = {
      config,
      register: (definition, handler) =>
        Effect.acquireRelease(
          Effect.sync(() => runner.register(definition.name, definition.version, definition.default === true, handler)),
          (unregister) => Effect.sync(unregister)
        ).pipe(Effect.asVoid),
      agents: Effect.sync(agentList),
      report: remote.report,
      end: remote.end,
      hello: (connection, { hello, principal, session_id }) =>
        Effect.gen(function*() {
          const token = `rt_${bytesToHex(yield* random.next(32))}`
          const prefix = bytesToHex(yield* random.next(5))
          const key_id = principal?.key_id
          if (hello.resume !== undefined) {
            const resume = hello.resume
            return yield* runtime.run(
              (state, now) =>
                decideResume(state, {
                  session_id: resume.session_id,
                  key_id,
                  presented_hash: hashToken(resume.resume_token),
                  new_hash: hashToken(token),
                  last_event_seq: resume.last_event_seq
                }, now),
              (session) => {
                const attached = attach(session.session_id, connection, session.features, session.ack_window, resume.last_event_seq, prefix)
                welcome(attached, session, token)
                pump(session)
                return { session_id: session.session_id, heartbeat_interval_sec: session.heartbeat_interval_sec, features: session.features }
              }
            ).pipe(Effect.mapError(toArcp))
          }
          if (principal === undefined) return yield* ArcpError.of("UNAUTHENTICATED", "a new session needs a bearer token")
          const asked = new Set(hello.capabilities?.features ?? [])
          const features = implemented.filter((feature) => asked.has(feature))
          return yield* runtime.run(
            (state, now) =>
              decideOpenSession(state, {
                session_id,
                key_id: principal.key_id,
                role: principal._tag === "Operator" ? "operator" : "agent",
                ...(principal._tag === "Agent" ? { agent_id: principal.agent_id } : {}),
                client: { name: hello.client.name, version: hello.client.version },
                features,
                token_hash: hashToken(token),
                resume_window_sec: config.resumeWindowSec,
                ...(features.includes("ack") ? { ack_window: config.ackWindow } : {}),
                ...(features.includes("heartbeat") ? { heartbeat_interval_sec: config.heartbeatIntervalSec } : {})
              }, now),
            () => {
              const session = current!.arcpSessions.get(session_id)!
              const attached = attach(session_id, connection, session.features, session.ack_window, 0, prefix)
              welcome(attached, session, token)
              return { session_id, heartbeat_interval_sec: session.heartbeat_interval_sec, features: session.features }
            }
          ).pipe(Effect.mapError(toArcp))
        }),
      detach: (session_id, connection, reason) =>
        Effect.suspend(() => {
          const attached = connections.get(session_id)
          if (attached === undefined || attached.connection !== connection) return Effect.void
          connections.delete(session_id)
          return runtime.run((state, now) => decideDetach(state, session_id, reason, now)).pipe(Effect.ignore)
        }),
      ack: (session_id, seq) => runtime.run((state, now) => decideAck(state, session_id, seq, now)).pipe(Effect.ignore),
      submit: (session_id, { submit, trace_id }) =>
        Effect.gen(function*() {
          const id = yield* ulid
          return yield* runtime.run(
            (state, now) =>
              decideSubmit(
                state,
                { session_id, job_id: `job_${id}`, lease_id: `lease_job_${id}`, submit, trace_id, maxRunning: config.maxRunningJobs },
                runner.catalogIn(state),
                now
              ),
            (answer) => {
              // A new job's acceptance was sent as it committed; a rejection is in the session's stream.
              if (answer._tag !== "Existing") return
              const attached = connections.get(session_id)
              const job = current!.arcpJobs.get(answer.job_id)
              // The envelope carries this submit's trace id: a repeated idempotent submit is matched by it too.
              if (attached !== undefined && job !== undefined) {
                send(attached, session_id, "job.accepted", acceptedPayload(job), answer.job_id, trace_id ?? job.accepted.trace_id)
              }
            }
          ).pipe(Effect.mapError(toArcp))
        }),
      cancel: (session_id, job_id, reason, request_id) =>
        runtime.run(
          (state, now) => decideCancel(state, { session_id, job_id, reason }, now),
          () => {
            const attached = connections.get(session_id)
            if (attached !== undefined) {
              send(attached, session_id, "job.cancelled", { job_id, request_id, ...(reason === undefined ? {} : { reason }) }, job_id)
            }
          }
        ).pipe(Effect.mapError(toArcp)),
      subscribe: (session_id, request, request_id) =>
        runtime.run(
          (state, now) =>
            decideSubscribe(state, {
              session_id,
              job_id: request.job_id,
              from_event_seq: request.history ? request.from_event_seq ?? 0 : undefined
            }, now),
          (job) => {
            held.delete(session_id)
            const attached = connections.get(session_id)
            const session = current!.arcpSessions.get(session_id)
            if (attached === undefined || session === undefined) return
            send(attached, session_id, "job.subscribed", {
              job_id: request.job_id,
              request_id,
              current_status: job.status,
              agent: agentLabel(job),
              lease: leaseOf(job),
              ...(job.accepted.expires_at === undefined ? {} : { lease_constraints: { expires_at: isoOf(job.accepted.expires_at) } }),
              ...(job.accepted.budget === undefined ? {} : { budget: Object.fromEntries(job.remaining) }),
              ...(job.accepted.parent_job_id === undefined ? {} : { parent_job_id: job.accepted.parent_job_id }),
              ...(job.accepted.trace_id === undefined ? {} : { trace_id: job.accepted.trace_id }),
              subscribed_from: job.lastOwnerSeq,
              replayed: request.history
            }, request.job_id)
            pump(session)
          }
        ).pipe(Effect.mapError(toArcp), Effect.ensuring(Effect.sync(() => held.delete(session_id)))),
      unsubscribe: (session_id, job_id) => runtime.run((state, now) => decideUnsubscribe(state, session_id, job_id, now)).pipe(Effect.ignore),
      listJobs: (session_id, request, request_id) =>
        runtime.query(withSession(session_id, (state, session) => {
          const filter = request.filter ?? {}
          const statuses = filter.status === undefined ? undefined : new Set<string>(filter.status)
          const after = filter.created_after === undefined ? undefined : Date.parse(filter.created_after)
          const before = filter.created_before === undefined ? undefined : Date.parse(filter.created_before)
          const from = request.cursor === undefined || request.cursor === null ? 0 : cursorOrdinal(request.cursor)
          const limit = request.limit ?? 100
          const jobs: Array<unknown> = []
          let next_cursor: string | null = null
          let lastOrdinal = from
          for (const job of state.arcpJobs.values()) {
            if (job.ordinal <= from || !visibleTo(session, job)) continue
            if (statuses !== undefined && !statuses.has(job.status)) continue
            if (filter.agent !== undefined && filter.agent !== job.accepted.agent && filter.agent !== agentLabel(job)) continue
            if (after !== undefined && !(job.accepted.at > after)) continue
            if (before !== undefined && !(job.accepted.at < before)) continue
            if (jobs.length === limit) {
              next_cursor = cursorOf(lastOrdinal)
              break
            }
            lastOrdinal = job.ordinal
            jobs.push({
              job_id: job.accepted.job_id,
              agent: agentLabel(job),
              status: job.status,
              lease: leaseOf(job),
              ...(job.accepted.parent_job_id === undefined ? {} : { parent_job_id: job.accepted.parent_job_id }),
              created_at: isoOf(job.accepted.at),
              ...(job.accepted.trace_id === undefined ? {} : { trace_id: job.accepted.trace_id }),
              last_event_seq: job.lastOwnerSeq
            })
          }
          const attached = connections.get(session_id)
          if (attached !== undefined) send(attached, session_id, "session.jobs", { request_id, jobs, next_cursor })
        })).pipe(Effect.catchAllDefect(() => Effect.fail(ArcpError.of("INVALID_REQUEST", "no such session"))), Effect.mapError(toArcp))
    }
    return service
  })

/** A keyset cursor: the ordinal of the last job of the page, opaque to clients. */
const cursorOf = (ordinal: number) => Buffer.from(`jobs:${ordinal}`).toString("base64url")
const cursorOrdinal = (cursor: string): number => {
  const match = /^jobs:(\d+)$/.exec(Buffer.from(cursor, "base64url").toString())
  return match === null ? Number.MAX_SAFE_INTEGER : Number(match[1])
}

/** Any failure of the loop as the ARCP error a client gets. */
const toArcp = (error: unknown): ArcpError => {
  if (error instanceof ArcpError) return error
  if (typeof error === "object" && error !== null && "code" in error && "message" in error && !("_tag" in error)) {
    return ArcpError.of((error as { code: ArcpError["code"] }).code, String((error as { message: unknown }).message))
  }
  return ArcpError.of("INTERNAL_ERROR", error instanceof Error ? error.message : "the runtime failed")
}

export const layer = (options: ArcpOptions = {}): Layer.Layer<Arcp, ValidationError | PersistenceError, Runtime | Router> => Layer.scoped(Arcp, make(options))
