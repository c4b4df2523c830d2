/**
 * ARCP sessions (PROTOCOLS.md §3): who opened each, its features, the hash
 * of its current resume token, whether a transport holds it and since when
 * it has none, and its buffer: every `job.event`, `job.result` and
 * `job.error` that reached it, stamped with its own `event_seq` (strictly
 * increasing, gap-free), kept until the client acknowledges it (an ACK, or
 * the `last_event_seq` of a resume) so that a resume replays it. The stamps
 * are the fold's: replaying the log gives every session the same numbers, so
 * a resume works across a restart.
 *
 * A buffer is bounded by what is unacknowledged, not by the session's life;
 * past `maxBuffered` entries the oldest go, and a resume from before them is
 * RESUME_WINDOW_EXPIRED.
 */
import type { ErrorCode, JobOutcome } from "../schema/Arcp.js"
import type {
  ArcpSessionAcked,
  ArcpSessionDetached,
  ArcpSessionExpired,
  ArcpSessionOpened,
  ArcpSessionResumed
} from "../schema/ArcpEvents.js"
import type { Event } from "../schema/Event.js"
import type { Json } from "../schema/Json.js"
import { accept, type Decision, refuse, type RuntimeState, type Slice, sortedRecord } from "./State.js"

/** What a session's buffer keeps for each stamped message: shared by every session that got it. */
export interface Stamped {
  readonly type: "job.event" | "job.result" | "job.error"
  readonly job_id: string
  readonly trace_id: string | undefined
  readonly payload: { readonly kind: string; readonly ts: string; readonly body: Json } | JobOutcome
}

export interface ArcpSession {
  readonly session_id: string
  readonly key_id: string
  readonly role: "operator" | "agent"
  readonly features: ReadonlySet<string>
  token_hash: string
  readonly resume_window_sec: number
  readonly heartbeat_interval_sec: number | undefined
  /** With `ack`: the most unacknowledged messages sent; the runtime holds the rest until an ACK. */
  readonly ack_window: number | undefined
  /** Its window filled and a `back_pressure` status said so: not said again until an ACK makes room. */
  pressured: boolean
  /** Its submitted jobs (delegated children too) that have not ended. */
  running: number
  attached: boolean
  detached_at: number | undefined
  /** The last `event_seq` stamped. */
  seq: number
  /** Every entry up to this seq has been dropped (acknowledged or evicted). */
  floor: number
  /** The entries from `floor + 1` to `seq`, in order. */
  buffer: Array<Stamped>
  /** Jobs of other sessions (or of this one, again) it subscribed to. */
  readonly subscriptions: Set<string>
}

export interface ArcpSessionsState {
  readonly arcpSessions: Map<string, ArcpSession>
}

/** The most a buffer holds, unacknowledged: past it the oldest entries go. */
export const maxBuffered = 100_000

/** A refusal with its ARCP code, answered as `session.error`. */
export interface ArcpRefusal {
  readonly code: ErrorCode
  readonly message: string
}
export const arcpRefusal = (code: ErrorCode, message: string): ArcpRefusal => ({ code, message })

/** What a session hears when its ACK window fills: the last message sent before the runtime holds the rest. */
const backPressure = (session: ArcpSession, entry: Stamped, at: number): Stamped => ({
  type: "job.event",
  job_id: entry.job_id,
  trace_id: entry.trace_id,
  payload: {
    kind: "status",
    ts: new Date(at).toISOString(),
    body: { phase: "back_pressure", message: `${session.ack_window} messages unacknowledged: the rest are held until session.ack` }
  }
})

/**
 * Appends to a session's buffer, stamping the next seq; evicts past the
 * bound. A message that would take the last place of the ACK window gives
 * it to a `status { phase: "back_pressure" }` of its job instead, and goes
 * after it, held: so the client learns why the stream pauses (`at`: the
 * time of the event that stamps it). Decided by
 * the fold, from what the log holds, so a replay stamps it the same.
 */
export const stamp = (session: ArcpSession, entry: Stamped, at: number) => {
  if (session.ack_window !== undefined && !session.pressured && session.seq - session.floor === session.ack_window - 1) {
    session.pressured = true
    push(session, session.ack_window === 1 ? entry : backPressure(session, entry, at))
  }
  push(session, entry)
}

const push = (session: ArcpSession, entry: Stamped) => {
  session.seq++
  session.buffer.push(entry)
  if (session.buffer.length > maxBuffered) {
    session.buffer.shift()
    session.floor++
  }
}

/** Drops the entries up to `seq`. */
const release = (session: ArcpSession, seq: number) => {
  const upTo = Math.min(seq, session.seq)
  if (upTo <= session.floor) return
  session.buffer.splice(0, upTo - session.floor)
  session.floor = upTo
  if (session.ack_window !== undefined && session.seq - session.floor < session.ack_window) session.pressured = false
}

/** The entry stamped `seq`, if the buffer still has it. */
export const entryAt = (session: ArcpSession, seq: number): Stamped | undefined =>
  seq > session.floor && seq <= session.seq ? session.buffer[seq - session.floor - 1] : undefined

/** When a detached session stops being resumable. */
export const expiresAt = (session: ArcpSession): number | undefined =>
  session.attached || session.detached_at === undefined ? undefined : session.detached_at + session.resume_window_sec * 1000

export const isExpired = (session: ArcpSession, now: number) => {
  const at = expiresAt(session)
  return at !== undefined && now >= at
}

// ---------------------------------------------------------------------------
// Decisions

export const decideOpenSession = (
  state: RuntimeState,
  opened: Omit<ArcpSessionOpened, "_tag" | "at">,
  now: number
): Decision<void, ArcpRefusal> =>
  state.arcpSessions.has(opened.session_id)
    ? refuse(arcpRefusal("INTERNAL_ERROR", `session ${opened.session_id} exists already`))
    : accept([{ _tag: "ArcpSessionOpened", ...opened, at: now }])

/**
 * A resume: the token must be the session's current one, the principal the
 * session's, the session within its window, and `last_event_seq` within what
 * the buffer still holds (the newest seq itself is valid: nothing to replay).
 * The token rotates.
 */
export const decideResume = (
  state: RuntimeState,
  request: {
    readonly session_id: string
    readonly key_id: string | undefined
    readonly presented_hash: string
    readonly new_hash: string
    readonly last_event_seq: number
  },
  now: number
): Decision<ArcpSession, ArcpRefusal> => {
  const session = state.arcpSessions.get(request.session_id)
  if (session === undefined || isExpired(session, now)) {
    return refuse(arcpRefusal("RESUME_WINDOW_EXPIRED", `session ${request.session_id} cannot be resumed: its window has closed`))
  }
  if (session.token_hash !== request.presented_hash || (request.key_id !== undefined && request.key_id !== session.key_id)) {
    return refuse(arcpRefusal("UNAUTHENTICATED", "the resume token or the principal is not the session's"))
  }
  if (request.last_event_seq > session.seq) {
    return refuse(arcpRefusal("INVALID_REQUEST", `last_event_seq ${request.last_event_seq} is past the session's newest, ${session.seq}`))
  }
  if (request.last_event_seq < session.floor) {
    return refuse(
      arcpRefusal("RESUME_WINDOW_EXPIRED", `events after ${request.last_event_seq} are no longer kept (kept from ${session.floor + 1})`)
    )
  }
  return accept([{
    _tag: "ArcpSessionResumed",
    session_id: session.session_id,
    token_hash: request.new_hash,
    last_event_seq: request.last_event_seq,
    at: now
  }], session)
}

export const decideDetach = (state: RuntimeState, session_id: string, reason: string, now: number): Decision<void> => {
  const session = state.arcpSessions.get(session_id)
  return session === undefined || !session.attached
    ? accept([])
    : accept([{ _tag: "ArcpSessionDetached", session_id, reason, at: now }])
}

/** An ACK past what was sent is taken as far as was sent; one already covered is nothing new. */
export const decideAck = (state: RuntimeState, session_id: string, seq: number, now: number): Decision<void> => {
  const session = state.arcpSessions.get(session_id)
  if (session === undefined) return accept([])
  const upTo = Math.min(seq, session.seq)
  return upTo <= session.floor ? accept([]) : accept([{ _tag: "ArcpSessionAcked", session_id, seq: upTo, at: now }])
}

/** Every detached session past its window goes. */
export const decideExpireSessions = (state: RuntimeState, now: number): Decision<void> => {
  const events: Array<Event> = []
  for (const session of state.arcpSessions.values()) {
    if (isExpired(session, now)) events.push({ _tag: "ArcpSessionExpired", session_id: session.session_id, at: now })
  }
  return accept(events)
}

/** After a restart no transport holds any session: each one's window starts now. */
export const decideDetachAll = (state: RuntimeState, reason: string, now: number): ReadonlyArray<Event> => {
  const events: Array<Event> = []
  for (const session of state.arcpSessions.values()) {
    if (session.attached) events.push({ _tag: "ArcpSessionDetached", session_id: session.session_id, reason, at: now })
  }
  return events
}

// ---------------------------------------------------------------------------
// Evolve (the stamping of job messages is in `ArcpJobs.ts`, which knows each job's audience)

const opened = (state: RuntimeState, event: ArcpSessionOpened) => {
  state.arcpSessions.set(event.session_id, {
    session_id: event.session_id,
    key_id: event.key_id,
    role: event.role,
    features: new Set(event.features),
    token_hash: event.token_hash,
    resume_window_sec: event.resume_window_sec,
    heartbeat_interval_sec: event.heartbeat_interval_sec,
    ack_window: event.ack_window,
    pressured: false,
    running: 0,
    attached: true,
    detached_at: undefined,
    seq: 0,
    floor: 0,
    buffer: [],
    subscriptions: new Set()
  })
}

const resumed = (state: RuntimeState, event: ArcpSessionResumed) => {
  const session = state.arcpSessions.get(event.session_id)
  if (session === undefined) return
  session.token_hash = event.token_hash
  session.attached = true
  session.detached_at = undefined
  release(session, event.last_event_seq)
}

const detached = (state: RuntimeState, event: ArcpSessionDetached) => {
  const session = state.arcpSessions.get(event.session_id)
  if (session === undefined) return
  session.attached = false
  session.detached_at = event.at
}

const expired = (state: RuntimeState, event: ArcpSessionExpired) => {
  const session = state.arcpSessions.get(event.session_id)
  if (session === undefined) return
  for (const job_id of session.subscriptions) state.arcpJobs.get(job_id)?.audience.delete(session.session_id)
  state.arcpSessions.delete(event.session_id)
}

const acked = (state: RuntimeState, event: ArcpSessionAcked) => {
  const session = state.arcpSessions.get(event.session_id)
  if (session !== undefined) release(session, event.seq)
}

/** The sessions as plain, comparable data. */
export const sessionsSnapshot = (state: RuntimeState) =>
  sortedRecord(state.arcpSessions, (session) => ({
    key_id: session.key_id,
    attached: session.attached,
    detached_at: session.detached_at,
    seq: session.seq,
    floor: session.floor,
    pressured: session.pressured,
    running: session.running,
    buffered: session.buffer.map((entry) => `${entry.type}:${entry.job_id}`),
    subscriptions: [...session.subscriptions].sort()
  }))

export const arcpSessionsSlice: Slice<ArcpSessionsState> = {
  initial: () => ({ arcpSessions: new Map() }),
  evolve: {
    ArcpSessionOpened: opened,
    ArcpSessionResumed: resumed,
    ArcpSessionDetached: detached,
    ArcpSessionExpired: expired,
    ArcpSessionAcked: acked
  },
  // Not in the runtime's snapshot, whose shape the HTTP API serves: `arcpSnapshot` (ArcpJobs.ts) has it.
  snapshot: () => ({})
}
