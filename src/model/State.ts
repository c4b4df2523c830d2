/**
 * The shape every concern of the model shares: the runtime's whole state,
 * made of one slice per concern; the typed answer of a decision; and what a
 * slice gives the root (`Runtime.ts`) so that it can fold events into it.
 *
 * A slice owns its part of the state: only its own `evolve` handlers write
 * it. Its decisions and handlers may read every other part.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type { Event } from "../schema/Event.js"
import type { AgentsState } from "./Agents.js"
import type { ArcpJobsState } from "./ArcpJobs.js"
import type { ArcpSessionsState } from "./ArcpSessions.js"
import type { DedupState } from "./Dedup.js"
import type { GovernanceState } from "./Governance.js"
import type { HitlState } from "./Hitl.js"
import type { MailboxesState } from "./Mailboxes.js"
import type { MessagesState } from "./Messages.js"
import type { NegotiationState } from "./Negotiation.js"
import type { SchedulerState } from "./Scheduler.js"
import type { TimersState } from "./Timers.js"
import type { WorktreesState } from "./Worktrees.js"

/** The state of the whole runtime: `fold(evolve, log)`. */
export interface RuntimeState
  extends
    AgentsState,
    MessagesState,
    DedupState,
    MailboxesState,
    TimersState,
    GovernanceState,
    ArcpSessionsState,
    ArcpJobsState,
    HitlState,
    WorktreesState,
    NegotiationState,
    SchedulerState
{}

/**
 * What a decision answers: the events to append and the caller's value, or
 * a refusal, which may still have events to record (an audit record of a
 * denial, a refused message).
 */
export type Decision<A, E = never> = Accepted<A> | Refused<E>

export interface Accepted<A> {
  readonly _tag: "Accepted"
  readonly events: ReadonlyArray<Event>
  readonly value: A
}

export interface Refused<E> {
  readonly _tag: "Refused"
  readonly error: E
  readonly events: ReadonlyArray<Event>
}

export const accept = <A = void>(events: ReadonlyArray<Event>, value?: A): Decision<A> => ({
  _tag: "Accepted",
  events,
  value: value as A
})

export const refuse = <E>(error: E, events: ReadonlyArray<Event> = []): Decision<never, E> => ({
  _tag: "Refused",
  error,
  events
})

/** One handler of an event type, writing its slice's part of the state in place. */
export type Handler<T extends Event["_tag"]> = (
  state: RuntimeState,
  event: Extract<Event, { readonly _tag: T }>,
  config: RuntimeConfig
) => void

/** What a concern gives the root. */
export interface Slice<S> {
  /** Its part of the state, empty. */
  readonly initial: () => S
  /** Its handlers, by event tag. */
  readonly evolve: { readonly [T in Event["_tag"]]?: Handler<T> }
  /** Run after every event, whatever its tag: housekeeping that follows time. */
  readonly after?: (state: RuntimeState, event: Event, config: RuntimeConfig) => void
  /** Its part of the state as plain, comparable data. */
  readonly snapshot: (state: RuntimeState) => object
}

/** A map as a record with sorted keys: snapshots compare equal whatever the insertion order. */
export const sortedRecord = <A, B>(entries: Iterable<readonly [string, A]>, f: (a: A) => B): Record<string, B> =>
  Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, f(v)]))

/** When an event happened: an audit record keeps its time inside. */
export const timeOf = (event: Event) => event._tag === "AuditRecorded" ? event.record.at : event.at

/** A list's page size when the caller names none. */
export const defaultPageSize = 100

/**
 * A page of a map's entries, in the map's order (the order the log first
 * named them, so the same on every replay and a cursor stays valid while
 * the map grows): those after the key `after` (from the first when absent;
 * none when no entry has that key), that `keep` keeps, at most `limit`.
 * `next` is the page's last key when more follow, for the next page's `after`.
 */
export const pageOf = <A>(
  entries: ReadonlyMap<string, A>,
  page: { readonly after?: string | undefined; readonly limit?: number | undefined },
  keep: (value: A, key: string) => boolean
): { readonly entries: ReadonlyArray<readonly [string, A]>; readonly next?: string } => {
  const limit = page.limit ?? defaultPageSize
  const found: Array<readonly [string, A]> = []
  let last = ""
  let started = page.after === undefined
  for (const [key, value] of entries) {
    if (!started) {
      started = key === page.after
      continue
    }
    if (!keep(value, key)) continue
    if (found.length === limit) return { entries: found, next: last }
    found.push([key, value])
    last = key
  }
  return { entries: found }
}
