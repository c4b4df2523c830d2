/**
 * The runtime's command loop: the one place where the state lives and
 * changes. Every service (the registry, the router, the gateway, and the
 * concerns to come) is a thin layer over it: a command is a pure decision
 * run through `run`, a read goes through `query`, and what a service does
 * in every turn (the router's deliveries) is a `TurnExtension`.
 */
import { Context, Effect, type Either, type Scope } from "effect"
import type { RuntimeConfig } from "../schema/Config.js"
import type { InternalError, PersistenceError, ValidationError } from "../schema/Errors.js"
import type { Event, EventRecord } from "../schema/Event.js"
import type { RuntimeState } from "../model/Runtime.js"
import type { Decision } from "../model/State.js"

/** A decision's value, once its events are durable and applied, with the records they became. */
export interface Committed<A> {
  readonly value: A
  readonly records: ReadonlyArray<EventRecord>
}

/** What a service adds to every turn of the loop. Its functions run inside the loop: they must not block or throw. */
export interface TurnExtension {
  /** Events decided after the turn's commands, against the state they left (the router's deliveries). */
  readonly decide?: (state: RuntimeState, now: number) => ReadonlyArray<Event>
  /** Just before an event of the turn is applied. */
  readonly beforeApply?: (state: RuntimeState, event: Event) => void
  /** Just after an event of the turn is applied. */
  readonly afterApply?: (state: RuntimeState, event: Event) => void
  /**
   * Once the turn's events are durable and applied: hand out, answer, tell.
   * Returns true when that made room for more work at once (freed credit), so
   * the loop turns again without waiting.
   */
  readonly committed?: (events: ReadonlyArray<Event>, state: RuntimeState) => boolean | void
  /** The loop has stopped: fail whoever still waits on this service (waiters, subscriptions). */
  readonly stopped?: (error: InternalError) => void
}

export class Runtime extends Context.Tag("switchboard/Runtime")<Runtime, {
  /** The options the runtime was started with, each decoded and bounded. */
  readonly config: RuntimeConfig
  /**
   * Runs a decision in the loop against the latest state and `now` from the
   * Clock. Accepted, its events are appended (with the other commands of the
   * turn, in one durable append) and applied, and only then is the caller
   * answered with its value. Refused, its events (if any) are recorded the
   * same way and the caller gets its error. A decision that throws fails its
   * caller alone, with the defect; one whose events the log cannot take fails
   * alone with ValidationError. If the loop has stopped, InternalError.
   */
  readonly run: <A, E, B = Committed<A>>(
    decide: (state: RuntimeState, now: number) => Decision<A, E>,
    /** The caller's answer from the value and its records (default: both), made in the loop: it must not throw. */
    answer?: (value: A, records: ReadonlyArray<EventRecord>) => B
  ) => Effect.Effect<B, E | ValidationError | PersistenceError | InternalError>
  /**
   * Several decisions in one trip, decided in order in the same turn: the
   * answer holds each one's value or typed refusal, in order. A failure of
   * the log (or the loop) is everyone's: it fails the whole call.
   */
  readonly runMany: <A, E, B = Committed<A>>(
    decisions: ReadonlyArray<(state: RuntimeState, now: number) => Decision<A, E>>,
    answer?: (value: A, records: ReadonlyArray<EventRecord>) => B
  ) => Effect.Effect<ReadonlyArray<Either.Either<B, E | ValidationError>>, PersistenceError | InternalError>
  /**
   * Reads the state between two turns, with the offset of the last record it
   * reflects. `read` must not change the state; if it throws, its caller gets
   * the defect and the loop goes on.
   */
  readonly query: <A>(read: (state: RuntimeState, offset: number) => A) => Effect.Effect<A, InternalError>
  /** Adds to every turn for as long as the scope lasts. */
  readonly extend: (extension: TurnExtension) => Effect.Effect<void, never, Scope.Scope>
}>() {}

/** A command's answer, without the records it became. */
export const valueOf = <A, E, R>(committed: Effect.Effect<Committed<A>, E, R>): Effect.Effect<A, E, R> =>
  Effect.map(committed, ({ value }) => value)
