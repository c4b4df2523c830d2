/**
 * The read-only views of `ApiInspect.ts`. Each reads the state between two
 * turns (`Runtime.query`) or the log (or folds it: a replay), and answers
 * only what its caller may see: an agent's key its own agent's mailbox,
 * kill switch and ARCP work, the timelines of messages it sent or was sent;
 * the log and its replay are the operator's, as `/log/follow` is.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Chunk, Effect, Either, Option, Stream } from "effect"
import * as Replay from "../layers/Replay.js"
import { expiresAt } from "../model/ArcpSessions.js"
import { initialState, type RuntimeState } from "../model/Runtime.js"
import { agentsOf, messageOf } from "../model/Timeline.js"
import { MessageNotFound } from "../schema/Errors.js"
import { encodeEvent, type Event, type EventRecord } from "../schema/Event.js"
import type { EnvelopeState } from "../schema/Envelope.js"
import { EventLog } from "../services/EventLog.js"
import { Keys } from "../services/Keys.js"
import { Router } from "../services/Router.js"
import { Runtime } from "../services/Runtime.js"
import { actAs, actAsOneOf, operatorOnly } from "./Access.js"
import { Caller, SwitchboardApi } from "./Api.js"

/** A page of the log reads at most this many records, matching or not: a rare filter answers a short page and a `next`. */
const maxScanned = 20_000
/** And holds about this many bytes of events: a page of large envelopes stays a page. */
const maxPageBytes = 1024 * 1024
/** The log is read backwards in windows of this many records. */
const window = 500
/** A timeline longer than this (a message redelivered for days) is cut. */
const maxTimeline = 10_000

/** The stage a record brings its message to, if it brings it to one. */
const stageOf = (event: Event): EnvelopeState | undefined => {
  switch (event._tag) {
    case "MessageAccepted":
    case "MessageRedriven":
      return "RECEIVED"
    case "MessageAcked":
      return event.stage
    case "MessageTimedOut":
      return "TIMED_OUT"
    default:
      return undefined
  }
}

interface LogFilter {
  readonly agent_id?: string | undefined
  readonly message_id?: string | undefined
  readonly types?: ReadonlySet<string> | undefined
  readonly stage?: EnvelopeState | undefined
}

const matches = (filter: LogFilter, event: Event) =>
  (filter.types === undefined || filter.types.has(event._tag)) &&
  (filter.stage === undefined || stageOf(event) === filter.stage) &&
  (filter.message_id === undefined || messageOf(event) === filter.message_id) &&
  (filter.agent_id === undefined || agentsOf(event).includes(filter.agent_id))

const countBy = <A>(values: Iterable<A>, key: (value: A) => string) => {
  const counts: Record<string, number> = {}
  for (const value of values) counts[key(value)] = (counts[key(value)] ?? 0) + 1
  return counts
}

/** The state in figures, and a page of its messages in the order accepted. */
const summarize = (
  offset: number,
  state: RuntimeState,
  page: { readonly after: string | undefined; readonly limit: number; readonly stage: EnvelopeState | undefined }
) => {
  const agents = [...state.agents.values()].filter((agent) => agent.registered)
  const mailboxes = [...state.mailboxes.values()]
  const messages: Array<{
    message_id: string
    producer_id: string
    to: string
    stage: EnvelopeState
    location: "queued" | "in_flight" | "done"
    attempts: number
    dead_letter: boolean
  }> = []
  let next: string | undefined
  let started = page.after === undefined
  for (const message of state.messages.values()) {
    if (!started) {
      started = message.id === page.after
      continue
    }
    if (page.stage !== undefined && message.stage !== page.stage) continue
    if (messages.length === page.limit) {
      next = messages[messages.length - 1].message_id
      break
    }
    messages.push({
      message_id: message.id,
      producer_id: message.producerId,
      to: message.to,
      stage: message.stage,
      location: message.location,
      attempts: message.attempts,
      dead_letter: message.deadLetter
    })
  }
  return {
    offset,
    agents: { registered: agents.length, live: agents.filter((agent) => agent.live).length, by_state: countBy(agents, (agent) => agent.state) },
    messages: {
      total: state.messages.size,
      by_stage: countBy(state.messages.values(), (message) => message.stage),
      queued: mailboxes.reduce((sum, mailbox) => sum + mailbox.queued, 0),
      in_flight: mailboxes.reduce((sum, mailbox) => sum + mailbox.inFlight, 0),
      dead_letters: mailboxes.reduce((sum, mailbox) => sum + mailbox.deadLetters.size, 0)
    },
    gateway: {
      halted: state.halted,
      suspended: [...state.suspended.keys()],
      killed: [...state.killed],
      approvals: countBy(state.approvals.values(), (approval) => approval.status),
      policies: state.policies.size,
      audits: state.audits
    },
    edges: state.edges.size,
    page: messages,
    next
  }
}

export const inspect = HttpApiBuilder.group(SwitchboardApi, "inspect", (handlers) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const router = yield* Router
    const log = yield* EventLog
    const keys = yield* Keys
    // The last state a replay reached: a step forward folds only the records
    // since. One at a time, since folding changes it in place; it costs as much
    // memory as the live state, once an operator has replayed.
    let replayed: { readonly offset: number; readonly state: RuntimeState } | undefined
    const replaying = yield* Effect.makeSemaphore(1)
    const stateAt = (at: number) =>
      Effect.gen(function*() {
        const start = replayed !== undefined && replayed.offset <= at ? replayed : { offset: 0, state: initialState() }
        replayed = yield* Replay.advance(start, at, runtime.config).pipe(
          Effect.provideService(EventLog, log),
          // A fold that failed half way left the state between two offsets.
          Effect.tapErrorCause(() => Effect.sync(() => void (replayed = undefined)))
        )
        return replayed
      })

    /**
     * The first offset committed at `at` or later (the head + 1 when none is),
     * found by halving: records are committed in offset order, by one clock.
     */
    const firstCommittedSince = (at: number) =>
      Effect.gen(function*() {
        let low = 1
        let high = (yield* log.head) + 1
        while (low < high) {
          const middle = Math.floor((low + high) / 2)
          const [record] = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read({ from: middle, to: middle })))
          if (record !== undefined && record.committedAt < at) low = middle + 1
          else high = middle
        }
        return low
      })

    /** The agent an agent's key is bound to; undefined for the operator. */
    const ownAgent = Effect.map(Caller, (caller) => caller._tag === "Agent" ? caller.agent_id : undefined)

    /**
     * Up to `limit` records before `before` that match, newest first, read
     * backwards a window at a time. Stops early at `maxScanned` records or
     * `maxPageBytes` of events; `next` says where the next page starts.
     */
    const page = (before: number, limit: number, filter: LogFilter) =>
      Effect.gen(function*() {
        const records: Array<EventRecord> = []
        let bytes = 0
        let scanned = 0
        let upTo = before - 1
        while (upTo >= 1 && records.length < limit && scanned < maxScanned && bytes < maxPageBytes) {
          const from = Math.max(1, upTo - window + 1)
          const chunk = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read({ from, to: upTo })))
          let i = chunk.length - 1
          for (; i >= 0 && records.length < limit && bytes < maxPageBytes; i--) {
            const record = chunk[i]
            if (!matches(filter, record.event)) continue
            records.push(record)
            bytes += Either.match(encodeEvent(record.event), { onLeft: () => 0, onRight: (stored) => stored.payload.length })
          }
          scanned += chunk.length - 1 - i
          // Where the next read starts: below the last record looked at.
          upTo = i >= 0 ? chunk[i].offset : from - 1
        }
        return { records, next: upTo >= 1 ? upTo + 1 : undefined }
      })

    return handlers
      .handle("whoami", () =>
        Effect.map(Caller, (caller) =>
          caller._tag === "Agent"
            ? { role: "agent" as const, key_id: caller.key_id, agent_id: caller.agent_id, open: keys.open }
            : { role: "operator" as const, key_id: caller.key_id, open: keys.open }))
      .handle("mailboxes", ({ urlParams }) =>
        Effect.gen(function*() {
          const own = yield* ownAgent
          if (urlParams.agent_id !== undefined) yield* actAs(urlParams.agent_id, "mailboxes.read")
          const only = urlParams.agent_id ?? own
          return yield* runtime.query((state) => {
            const ids = only === undefined ? [...state.agents.keys()] : state.agents.has(only) ? [only] : []
            return ids.map((agent_id) => {
              const mailbox = state.mailboxes.get(agent_id)
              return {
                agent_id,
                queued: mailbox?.queued ?? 0,
                in_flight: mailbox?.inFlight ?? 0,
                dead_letters: mailbox?.deadLetters.size ?? 0,
                next_delivery_seq: mailbox?.nextSeq ?? 1
              }
            })
          })
        }))
      .handle("killSwitch", () =>
        Effect.gen(function*() {
          const own = yield* ownAgent
          const mine = (agent_id: string) => own === undefined || own === agent_id
          return yield* runtime.query((state) => ({
            halted: state.halted,
            suspended: [...state.suspended].filter(([agent_id]) => mine(agent_id)).map(([agent_id, reason]) => ({ agent_id, reason })),
            killed: [...state.killed].filter(mine)
          }))
        }))
      .handle("edges", () => runtime.query((state) => [...state.edges.values()].map((edge) => ({ ...edge }))))
      .handle("log", ({ urlParams }) =>
        Effect.gen(function*() {
          yield* operatorOnly("log.read")
          const head = yield* log.head
          const types = urlParams.type === undefined
            ? undefined
            : new Set(urlParams.type.split(",").map((type) => type.trim()).filter((type) => type !== ""))
          const found = yield* page(Math.min(urlParams.before ?? head + 1, head + 1), urlParams.limit ?? 100, {
            agent_id: urlParams.agent_id,
            message_id: urlParams.message_id,
            stage: urlParams.stage,
            types: types === undefined || types.size === 0 ? undefined : types
          })
          return {
            records: found.records.map((record) => ({ offset: record.offset, committed_at: record.committedAt, event: record.event })),
            next: found.next,
            head
          }
        }))
      .handle("timeline", ({ path }) =>
        Effect.gen(function*() {
          const status = Option.getOrUndefined(yield* router.status(path.message_id))
          const read = (from: number) =>
            Effect.map(
              Stream.runCollect(Replay.timeline({ message: path.message_id, from }).pipe(Stream.take(maxTimeline))),
              Chunk.toReadonlyArray
            )
          // A message the runtime holds was accepted at a known time: its records are read
          // from about there, not from the log's start. Should that miss its acceptance (a
          // clock set back), the whole log is read, as it is for a message let go.
          const start = status === undefined ? 1 : yield* firstCommittedSince(status.accepted_at - 1000)
          const near = yield* read(start)
          const entries = start === 1 || near.some((entry) => entry.record.event._tag === "MessageAccepted") ? near : yield* read(1)
          // Once the runtime lets a finished message go, its acceptance in the log still names its agents.
          const accepted = entries.find((entry) => entry.record.event._tag === "MessageAccepted")?.record.event
          const agents = status !== undefined
            ? [status.producer_id, status.to]
            : accepted?._tag === "MessageAccepted"
            ? [accepted.envelope.producer_id, accepted.to]
            : undefined
          if (agents === undefined) return yield* new MessageNotFound({ message_id: path.message_id })
          yield* actAsOneOf(agents, "messages.timeline", `message ${path.message_id}`)
          return {
            message_id: path.message_id,
            status,
            entries: entries.map((entry) => ({ offset: entry.offset, at: entry.at, text: entry.text, event: entry.record.event }))
          }
        }).pipe(Effect.provideService(EventLog, log)))
      .handle("stateSummary", ({ urlParams }) =>
        Effect.gen(function*() {
          yield* operatorOnly("state.read")
          const head = yield* log.head
          return yield* replaying.withPermits(1)(Effect.map(stateAt(Math.min(urlParams.at ?? head, head)), ({ offset, state }) =>
            summarize(offset, state, { after: urlParams.after, limit: urlParams.limit ?? 100, stage: urlParams.stage })))
        }))
      .handle("arcpSessions", () =>
        Effect.gen(function*() {
          const caller = yield* Caller
          return yield* runtime.query((state) =>
            [...state.arcpSessions.values()]
              .filter((session) => caller._tag === "Operator" || session.key_id === caller.key_id)
              .map((session) => ({
                session_id: session.session_id,
                key_id: session.key_id,
                role: session.role,
                attached: session.attached,
                detached_at: session.detached_at,
                expires_at: expiresAt(session),
                event_seq: session.seq,
                acked_seq: session.floor,
                running_jobs: session.running,
                subscriptions: session.subscriptions.size
              }))
          )
        }))
      .handle("arcpJobs", ({ urlParams }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const limit = urlParams.limit ?? 100
          const after = urlParams.after ?? 0
          return yield* runtime.query((state) => {
            const jobs = []
            let next: number | undefined
            for (const job of state.arcpJobs.values()) {
              const accepted = job.accepted
              if (job.ordinal <= after) continue
              if (caller._tag === "Agent" && accepted.key_id !== caller.key_id) continue
              if (urlParams.status !== undefined && job.status !== urlParams.status) continue
              if (urlParams.session_id !== undefined && accepted.session_id !== urlParams.session_id) continue
              if (jobs.length === limit) {
                next = jobs[jobs.length - 1].ordinal
                break
              }
              jobs.push({
                ordinal: job.ordinal,
                job_id: accepted.job_id,
                session_id: accepted.session_id,
                key_id: accepted.key_id,
                agent: accepted.agent,
                version: accepted.version,
                status: job.status,
                created_at: accepted.at,
                parent_job_id: accepted.parent_job_id,
                trace_id: accepted.trace_id,
                cancel_requested: job.cancel_requested,
                error_code: job.outcome !== undefined && "code" in job.outcome ? job.outcome.code : undefined,
                last_event_seq: job.lastOwnerSeq
              })
            }
            return { jobs: jobs.map(({ ordinal: _ordinal, ...job }) => job), next }
          })
        }))
  }))
