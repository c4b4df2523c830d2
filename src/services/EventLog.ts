/**
 * The durable, append-only event log: the only source of truth.
 */
import { Context, type Effect, type Stream } from "effect"
import type { PersistenceError, UndecodableRecord, ValidationError } from "../schema/Errors.js"
import type { Event, EventRecord } from "../schema/Event.js"

export interface ReadRange {
  /** First offset to read (inclusive); defaults to 1. */
  readonly from?: number
  /** Last offset to read (inclusive); defaults to the head when the read starts. */
  readonly to?: number
}

export class EventLog extends Context.Tag("switchboard/EventLog")<EventLog, {
  /**
   * Appends events as one unit: all land or none does. Returns the committed
   * records, in the order given, once they are durable. Concurrent appends are
   * committed together in one transaction (group commit); a caller's own
   * events are never reordered or interleaved with another caller's.
   */
  readonly append: (
    events: ReadonlyArray<Event>
  ) => Effect.Effect<ReadonlyArray<EventRecord>, ValidationError | PersistenceError>
  /**
   * The committed records of a range, in offset order. A record that cannot be
   * decoded fails the stream with UndecodableRecord, after the records before it.
   */
  readonly read: (range?: ReadRange) => Stream.Stream<EventRecord, PersistenceError | UndecodableRecord>
  /**
   * The records from `from` on (default 1): history first, then every record
   * appended later, with no gap and no duplicate at the seam. Never ends, but
   * fails with PersistenceError when the log closes.
   */
  readonly follow: (from?: number) => Stream.Stream<EventRecord, PersistenceError | UndecodableRecord>
  /** The offset of the last committed record; 0 for an empty log. */
  readonly head: Effect.Effect<number, PersistenceError>
}>() {}
