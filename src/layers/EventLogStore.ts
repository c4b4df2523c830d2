/**
 * The machinery shared by every EventLog backend. A backend supplies a
 * `LogStore` driver (commit one transaction, read a page, tell the head); this
 * module builds the service on it: encoding, group commit, paging with
 * decoding, and `follow`.
 */
import { Cause, Chunk, Clock, Deferred, Effect, Either, Option, Queue, Stream, SubscriptionRef } from "effect"
import { PersistenceError } from "../schema/Errors.js"
import { decodeEvent, encodeEvent, type Event, type EventRecord, type StoredEvent } from "../schema/Event.js"
import { EventLog } from "../services/EventLog.js"

export interface StoredRecord extends StoredEvent {
  readonly offset: number
  readonly committedAt: number
}

export interface LogStore {
  /**
   * Commits the events in one transaction at the next offsets and returns the
   * first offset given; nothing is written when it fails.
   */
  readonly commit: (events: ReadonlyArray<StoredEvent>, committedAt: number) => Effect.Effect<number, PersistenceError>
  /** Up to `limit` records with `from <= offset <= to`, in offset order. */
  readonly readPage: (
    from: number,
    to: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StoredRecord>, PersistenceError>
  readonly head: Effect.Effect<number, PersistenceError>
  /** Heads committed by other processes sharing the store, if it can tell. */
  readonly externalHeads?: Stream.Stream<number, PersistenceError>
}

export interface EventLogOptions {
  /** Records read per query; default 2,000. */
  readonly pageSize?: number
  /** Most appends committed in one transaction; default 1,000. */
  readonly maxGroup?: number
}

interface Committed {
  readonly first: number
  readonly committedAt: number
}

interface PendingAppend {
  readonly events: ReadonlyArray<StoredEvent>
  readonly done: Deferred.Deferred<Committed, PersistenceError>
}

export const makeEventLog = (store: LogStore, options: EventLogOptions = {}) =>
  Effect.gen(function*() {
    const pageSize = options.pageSize ?? 2_000
    const maxGroup = options.maxGroup ?? 1_000
    const headRef = yield* SubscriptionRef.make(yield* store.head)
    const advanceHead = (offset: number) => SubscriptionRef.update(headRef, (head) => Math.max(head, offset))

    const queue = yield* Queue.unbounded<PendingAppend>()

    // A group is one transaction. If it fails, each append is retried alone, so
    // one caller's failure never becomes another's.
    const commitGroup = (group: ReadonlyArray<PendingAppend>): Effect.Effect<void> =>
      Effect.gen(function*() {
        const committedAt = yield* Clock.currentTimeMillis
        const events = group.length === 1 ? group[0].events : group.flatMap((pending) => pending.events)
        const result = yield* Effect.either(store.commit(events, committedAt))
        if (Either.isLeft(result)) {
          if (group.length === 1) return yield* Deferred.fail(group[0].done, result.left)
          for (const pending of group) yield* commitGroup([pending])
          return
        }
        let offset = result.right
        for (const pending of group) {
          yield* Deferred.succeed(pending.done, { first: offset, committedAt })
          offset += pending.events.length
        }
        yield* advanceHead(offset - 1)
      })

    yield* Effect.gen(function*() {
      const first = yield* Queue.take(queue)
      const rest = yield* Queue.takeUpTo(queue, maxGroup - 1)
      yield* commitGroup(Chunk.isEmpty(rest) ? [first] : [first, ...rest])
    }).pipe(Effect.forever, Effect.forkScoped)

    // Appends still queued when the log closes fail instead of waiting forever.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(queue), (pending) =>
        Effect.forEach(pending, ({ done }) => Deferred.fail(done, new PersistenceError({ message: "event log closed" }))))
    )

    if (store.externalHeads) {
      yield* store.externalHeads.pipe(
        Stream.runForEach(advanceHead),
        Effect.catchAll((error) => Effect.logWarning("event log: lost the feed of other writers' heads", error)),
        Effect.forkScoped
      )
    }

    const append = (events: ReadonlyArray<Event>) =>
      Effect.gen(function*() {
        if (events.length === 0) return []
        const stored: Array<StoredEvent> = new Array(events.length)
        for (let i = 0; i < events.length; i++) {
          const encoded = encodeEvent(events[i])
          if (Either.isLeft(encoded)) return yield* encoded.left
          stored[i] = encoded.right
        }
        const done = yield* Deferred.make<Committed, PersistenceError>()
        yield* Queue.offer(queue, { events: stored, done })
        const { committedAt, first } = yield* Deferred.await(done)
        return events.map((event, i): EventRecord => ({ offset: first + i, committedAt, event }))
      })

    const decodePage = (page: ReadonlyArray<StoredRecord>) => {
      const records: Array<EventRecord> = new Array(page.length)
      for (let i = 0; i < page.length; i++) {
        const stored = page[i]
        const event = decodeEvent(stored.offset, stored)
        if (Either.isLeft(event)) return Effect.fail(event.left)
        records[i] = { offset: stored.offset, committedAt: stored.committedAt, event: event.right }
      }
      return Effect.succeed(Chunk.unsafeFromArray(records))
    }

    const readBetween = (from: number, to: number) =>
      Stream.paginateChunkEffect(from, (cursor) =>
        cursor > to
          ? Effect.succeed([Chunk.empty<EventRecord>(), Option.none<number>()] as const)
          : Effect.flatMap(store.readPage(cursor, to, pageSize), (page) =>
            Effect.map(decodePage(page), (chunk) => {
              const next = cursor + page.length
              return [chunk, page.length < pageSize || next > to ? Option.none() : Option.some(next)] as const
            })))

    const read = (range: { readonly from?: number; readonly to?: number } = {}) =>
      Stream.unwrap(Effect.map(
        range.to === undefined ? store.head : Effect.succeed(range.to),
        (to) => readBetween(Math.max(1, range.from ?? 1), to)
      ))

    const awaitHead = (offset: number) =>
      headRef.changes.pipe(Stream.filter((head) => head >= offset), Stream.runHead)

    // History and live records come from the same place, the store, read by
    // offset after the head has reached it: so the seam has neither gap nor duplicate.
    const follow = (from = 1) =>
      Stream.paginateChunkEffect(Math.max(1, from), (cursor) =>
        Effect.zipRight(
          awaitHead(cursor),
          Effect.flatMap(store.readPage(cursor, Number.MAX_SAFE_INTEGER, pageSize), (page) =>
            Effect.map(decodePage(page), (chunk) => [chunk, Option.some(cursor + page.length)] as const))
        ))

    // Another process may have appended since the last notification: ask the store.
    const head = store.externalHeads
      ? Effect.tap(store.head, advanceHead)
      : SubscriptionRef.get(headRef)

    return EventLog.of({ append, read, follow, head })
  })

/** Turns any failure or defect of `effect` into a PersistenceError saying `message`. */
export const persistence = (message: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchAllCause(effect, (cause) => Effect.fail(new PersistenceError({ message, cause: Cause.squash(cause) })))
