/**
 * The machinery shared by every EventLog backend. A backend supplies a
 * `LogStore` driver (commit one transaction, read a page, tell the head); this
 * module builds the service on it: encoding, group commit, paging with
 * decoding, and `follow`.
 */
import { Chunk, Clock, Effect, Either, Option, Stream } from "effect"
import { PersistenceError, type UndecodableRecord, type ValidationError } from "../schema/Errors.js"
import { decodeEvent, encodeEvent, type Event, type EventRecord, type StoredEvent } from "../schema/Event.js"
import { EventLog } from "../services/EventLog.js"

export interface StoredRecord extends StoredEvent {
  readonly offset: number
  readonly committedAt: number
}

/**
 * What names a commit, so that its retry can tell whether it landed. Only a
 * store whose commit can land while its caller hears of a failure (a database
 * across a network, whose acknowledgement of a COMMIT can be lost) need record
 * it; one whose commit answers in the process that runs it can ignore it.
 */
export interface Batch {
  /** Unique among all the commits of the store, by any process. */
  readonly id: string
  /**
   * Set when the events are a part of an earlier commit whose outcome is not
   * known, `skip` events into it: if that commit landed, the store writes
   * nothing and returns the offset it gave these events.
   */
  readonly retryOf?: { readonly id: string; readonly skip: number }
}

export interface LogStore {
  /**
   * Commits the events in one transaction at the next offsets and returns the
   * first offset given; nothing is written when it fails.
   */
  readonly commit: (
    events: ReadonlyArray<StoredEvent>,
    committedAt: number,
    batch: Batch
  ) => Effect.Effect<number, PersistenceError>
  /** Up to `limit` records with `from <= offset <= to`, in offset order. */
  readonly readPage: (
    from: number,
    to: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StoredRecord>, PersistenceError>
  readonly head: Effect.Effect<number, PersistenceError>
  /**
   * Whether concurrent appends should wait to share one commit (the default).
   * A store whose commit is a cheap synchronous step (memory) says `false`:
   * each append then commits at once in its caller's fiber, sparing the two
   * hand-offs to and from the writer that buy nothing there.
   */
  readonly groupCommit?: boolean
  /** Heads committed by other processes sharing the store, if it can tell. */
  readonly externalHeads?: Stream.Stream<number, PersistenceError>
}

export interface EventLogOptions {
  /** Records read per query; default 2,000. */
  readonly pageSize?: number
  /** Most appends committed in one transaction; default 1,000. */
  readonly maxGroup?: number
}

interface PendingAppend {
  readonly events: ReadonlyArray<Event>
  readonly stored: ReadonlyArray<StoredEvent>
  /** Resumes the appending fiber: its callback from `Effect.async`. */
  readonly resume: (outcome: Effect.Effect<ReadonlyArray<EventRecord>, PersistenceError>) => void
}

const logClosed = () => new PersistenceError({ message: "event log closed" })

export const makeEventLog = (store: LogStore, options: EventLogOptions = {}) =>
  Effect.gen(function*() {
    const pageSize = options.pageSize ?? 2_000
    const maxGroup = options.maxGroup ?? 1_000
    // Tuning knobs of the code that builds the log: 0 or NaN would make reads never end or appends never commit.
    for (const [name, value] of [["pageSize", pageSize], ["maxGroup", maxGroup]] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        return yield* Effect.dieMessage(`EventLog option ${name} must be a positive integer, got ${value}`)
      }
    }
    // The head and the `follow` streams waiting for it to reach an offset. A
    // plain variable and callbacks: the head moves on every commit, and a
    // SubscriptionRef's lock and hub cost more than the memory commit itself.
    let headOffset = yield* store.head
    let closed = false
    let headWaiters: Array<{
      readonly offset: number
      readonly resume: (done: Effect.Effect<void, PersistenceError>) => void
    }> = []
    const moveHead = (offset: number) => {
      if (offset <= headOffset) return
      headOffset = offset
      if (headWaiters.length === 0) return
      const waiting = headWaiters
      headWaiters = []
      for (const waiter of waiting) {
        if (waiter.offset <= headOffset) waiter.resume(Effect.void)
        else headWaiters.push(waiter)
      }
    }
    const advanceHead = (offset: number) => Effect.sync(() => moveHead(offset))
    const awaitHead = (offset: number): Effect.Effect<void, PersistenceError> =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(logClosed())
        if (offset <= headOffset) return Effect.void
        return Effect.async<void, PersistenceError>((resume) => {
          const waiter = { offset, resume }
          headWaiters.push(waiter)
          return Effect.sync(() => {
            headWaiters = headWaiters.filter((other) => other !== waiter)
          })
        })
      })

    // Appends waiting for the writer, in arrival order, and a latch that is open
    // while there are any. A callback and an array push per append rather than a
    // Deferred and a Queue: with many fibers appending one event each, those
    // were the bulk of an append's cost.
    let waiting: Array<PendingAppend> = []
    const wake = yield* Effect.makeLatch(false)

    // Batch ids: a nonce of this log and a counter. The nonce comes from the
    // platform's cryptographic generator (as Ids.layerUuid's ids do), not from
    // Effect's Random, whose default seed has 32 bits: the ids of every process
    // that ever writes a store must not collide.
    const nonce = yield* Effect.sync(() => globalThis.crypto.randomUUID())
    let batches = 0
    const nextBatchId = () => `${nonce}.${++batches}`

    const recordsOf = (events: ReadonlyArray<Event>, first: number, committedAt: number) =>
      events.map((event, i): EventRecord => ({ offset: first + i, committedAt, event }))

    const commitAlone = (events: ReadonlyArray<Event>, stored: ReadonlyArray<StoredEvent>) =>
      Effect.flatMap(Clock.currentTimeMillis, (committedAt) =>
        Effect.map(store.commit(stored, committedAt, { id: nextBatchId() }), (first) => {
          moveHead(first + events.length - 1)
          return recordsOf(events, first, committedAt)
        }))

    // A group is one transaction. If it fails, each append is retried alone, so
    // one caller's failure never becomes another's. Each retry names the group
    // and where its events sit in it: if the group did land and only the answer
    // was lost, the retry returns the offsets it gave instead of appending
    // again. Retries keep the group's commit time, which such records carry.
    const commitGroup = (
      group: ReadonlyArray<PendingAppend>,
      committedAt: number,
      retryOf?: Batch["retryOf"]
    ): Effect.Effect<void> => {
      const batch: Batch = { id: nextBatchId(), retryOf }
      return Effect.matchEffect(
        store.commit(group.length === 1 ? group[0].stored : group.flatMap((pending) => pending.stored), committedAt, batch),
        {
          onFailure: (error) => {
            if (group.length === 1) return Effect.sync(() => group[0].resume(Effect.fail(error)))
            let skip = 0
            const retries = group.map((pending) => {
              const retry = commitGroup([pending], committedAt, { id: batch.id, skip })
              skip += pending.events.length
              return retry
            })
            return Effect.all(retries, { discard: true })
          },
          onSuccess: (first) => {
            const last = group.reduce((offset, pending) => offset + pending.events.length, first - 1)
            // The head moves first: an append that has returned is visible to `head` and `follow`.
            return Effect.sync(() => {
              moveHead(last)
              let offset = first
              for (const { events, resume } of group) {
                resume(Effect.succeed(recordsOf(events, offset, committedAt)))
                offset += events.length
              }
            })
          }
        }
      )
    }

    // The writer, for stores that commit groups. A group under way finishes even
    // when the log closes: its appends may already be durable, and their callers
    // are owed an answer.
    if (store.groupCommit !== false) {
      yield* Effect.gen(function*() {
        yield* wake.await
        const group = waiting.length <= maxGroup ? waiting : waiting.slice(0, maxGroup)
        waiting = waiting.length <= maxGroup ? [] : waiting.slice(maxGroup)
        if (waiting.length === 0) wake.unsafeClose()
        yield* Effect.uninterruptible(Effect.flatMap(Clock.currentTimeMillis, (committedAt) => commitGroup(group, committedAt)))
      }).pipe(Effect.forever, Effect.forkScoped)
    }

    // Appends and follows still waiting when the log closes fail instead of waiting forever.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const { resume } of waiting) resume(Effect.fail(logClosed()))
        waiting = []
        for (const { resume } of headWaiters) resume(Effect.fail(logClosed()))
        headWaiters = []
      })
    )

    if (store.externalHeads) {
      yield* store.externalHeads.pipe(
        Stream.runForEach(advanceHead),
        Effect.catchAll((error) => Effect.logWarning("event log: lost the feed of other writers' heads", error)),
        Effect.forkScoped
      )
    }

    // The events are encoded when the append runs; the writer commits them with
    // whatever else arrived meanwhile. Committing in the caller's fiber instead
    // would save two hand-offs but lose the batching: the SQLite commit blocks,
    // so no other append could join while it runs.
    const append = (events: ReadonlyArray<Event>): Effect.Effect<
      ReadonlyArray<EventRecord>,
      ValidationError | PersistenceError
    > =>
      events.length === 0 ? Effect.succeed([]) : Effect.suspend((): Effect.Effect<
        ReadonlyArray<EventRecord>,
        ValidationError | PersistenceError
      > => {
        if (closed) return Effect.fail(logClosed())
        const stored: Array<StoredEvent> = new Array(events.length)
        for (let i = 0; i < events.length; i++) {
          const encoded = encodeEvent(events[i])
          if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
          stored[i] = encoded.right
        }
        if (store.groupCommit === false) return commitAlone(events, stored)
        return Effect.async<ReadonlyArray<EventRecord>, PersistenceError>((resume) => {
          waiting.push({ events, stored, resume })
          wake.unsafeOpen()
        })
      })

    // The records before an undecodable one are still emitted; then the stream fails at it, never skipping it.
    const decodePage = (page: ReadonlyArray<StoredRecord>): Stream.Stream<EventRecord, UndecodableRecord> => {
      const records: Array<EventRecord> = new Array(page.length)
      for (let i = 0; i < page.length; i++) {
        const stored = page[i]
        const event = decodeEvent(stored.offset, stored)
        if (Either.isLeft(event)) {
          return Stream.concat(Stream.fromChunk(Chunk.unsafeFromArray(records.slice(0, i))), Stream.fail(event.left))
        }
        records[i] = { offset: stored.offset, committedAt: stored.committedAt, event: event.right }
      }
      return Stream.fromChunk(Chunk.unsafeFromArray(records))
    }

    const readBetween = (from: number, to: number) =>
      Stream.paginateEffect(from, (cursor) =>
        cursor > to
          ? Effect.succeed([[], Option.none<number>()] as const)
          : Effect.map(store.readPage(cursor, to, pageSize), (page) => {
            const next = cursor + page.length
            return [page, page.length < pageSize || next > to ? Option.none() : Option.some(next)] as const
          })).pipe(Stream.flatMap(decodePage))

    const read = (range: { readonly from?: number; readonly to?: number } = {}) =>
      Stream.unwrap(Effect.map(
        range.to === undefined ? store.head : Effect.succeed(range.to),
        (to) => readBetween(Math.max(1, range.from ?? 1), to)
      ))

    // Another process may have appended since the last notification: ask the store.
    const head = store.externalHeads
      ? Effect.tap(store.head, advanceHead)
      : Effect.sync(() => headOffset)

    // A head heard from outside may be one the store has not reached (an
    // announcement meant for another store): the store's own head then replaces
    // it, unless the head moved while it was read.
    const resyncHead = Effect.suspend(() => {
      const before = headOffset
      return Effect.map(store.head, (stored) => {
        if (stored < headOffset && headOffset === before) headOffset = stored
        else moveHead(stored)
      })
    })

    // The feed of other writers' heads can fail silently (its connection
    // dropped): a follow waiting on such a store also reads the head now and then.
    const pollHead = Effect.forever(Effect.delay(Effect.ignore(head), "1 second"))
    const awaitNext = store.externalHeads
      ? (offset: number) => Effect.raceFirst(awaitHead(offset), pollHead)
      : awaitHead

    // History and live records come from the same place, the store, read by
    // offset after the head has reached it: so the seam has neither gap nor duplicate.
    const follow = (from = 1) =>
      Stream.paginateEffect(Math.max(1, from), (cursor) =>
        Effect.zipRight(
          awaitNext(cursor),
          Effect.flatMap(store.readPage(cursor, Number.MAX_SAFE_INTEGER, pageSize), (page) =>
            page.length === 0
              ? Effect.as(resyncHead, [page, Option.some(cursor)] as const)
              : Effect.succeed([page, Option.some(cursor + page.length)] as const))
        )).pipe(Stream.flatMap(decodePage))

    return EventLog.of({ append, read, follow, head })
  })

/**
 * Turns the store's typed failures (the driver's SqlError, a migration's
 * error) into a PersistenceError saying `message`. A defect stays a defect
 * (DESIGN rule 3): a bug is not a retryable failure of the store.
 */
export const persistence = (message: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.mapError(effect, (cause) => new PersistenceError({ message, cause }))
