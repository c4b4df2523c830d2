/**
 * Replay: any log (any EventLog layer; a store file through
 * `EventLogSqlite.layerReadonly` of `switchboard/node`) folded into the
 * router's state at any offset, stepped event by event, and compared. It
 * runs the very `evolve` of the live router, so a replay that reaches another
 * state than the live run is a bug.
 */
import { Effect, Stream } from "effect"
import { evolve, initialState, type RuntimeState, snapshot } from "../model/Runtime.js"
import { decodeRuntimeOptions, type RuntimeOptions } from "../schema/Config.js"
import { concerning, describe, messageOf } from "../model/Timeline.js"
import type { EventRecord } from "../schema/Event.js"
import { EventLog, type ReadRange } from "../services/EventLog.js"

export { differences } from "../model/Timeline.js"
export { snapshot }

export interface Step {
  readonly record: EventRecord
  /** The state after this record. It is the same object at every step, changed in place: take `snapshot(state)` to keep one. */
  readonly state: RuntimeState
}

/** Applies a record to the state, with the options of the run being replayed (checked: ValidationError). */
const folder = (options: RuntimeOptions) =>
  Effect.map(decodeRuntimeOptions(options), (config) => {
    const apply = evolve(config)
    return (state: RuntimeState, record: EventRecord) => apply(state, record.event)
  })

/**
 * Every record of the range with the state it leads to, one at a time: each
 * step is seen downstream before the next record is applied.
 */
export const steps = (range: ReadRange = {}, config: RuntimeOptions = {}) =>
  Stream.unwrap(Effect.gen(function*() {
    const log = yield* EventLog
    const fold = yield* folder(config)
    // History before the range still shapes the state: fold it quietly first.
    const from = range.from ?? 1
    const state = from > 1 ? yield* Stream.runFold(log.read({ to: from - 1 }), initialState(), fold) : initialState()
    return log.read(range).pipe(
      Stream.rechunk(1),
      Stream.map((record): Step => ({ record, state: fold(state, record) }))
    )
  }))

/**
 * The last offset a replay up to `at` reaches: `at`, or the head when the log
 * ends before it or no `at` is given. A log being written grows between two
 * reads of its head: read once and handed to both `timeline` and `stateAt`, it
 * has them describe the same records.
 */
export const lastOffset = (at?: number) =>
  Effect.flatMap(EventLog, (log) => Effect.map(log.head, (head) => at === undefined ? head : Math.min(at, head)))

/** The state once the records up to offset `at` (default: the head) are applied. */
export const stateAt = (at?: number, config: RuntimeOptions = {}) =>
  Effect.flatMap(Effect.all([EventLog, folder(config)]), ([log, fold]) => {
    return Stream.runFold(
      log.read({ to: at }),
      { offset: 0, state: initialState() },
      (folded, record) => ({ offset: record.offset, state: fold(folded.state, record) })
    )
  })

/**
 * `reached` (a state folded up to its offset) folded on up to offset `at`
 * (or the head): for a reader that steps forward through a log, each step
 * costs the records since the last, not the whole log again. The state is
 * changed in place, and returned with the offset it reached.
 */
export const advance = (reached: { readonly offset: number; readonly state: RuntimeState }, at: number, config: RuntimeOptions = {}) =>
  Effect.flatMap(Effect.all([EventLog, folder(config)]), ([log, fold]) =>
    at <= reached.offset
      ? Effect.succeed(reached)
      : Stream.runFold(
        log.read({ from: reached.offset + 1, to: at }),
        reached,
        (folded, record) => ({ offset: record.offset, state: fold(folded.state, record) })
      ))

export interface TimelineEntry {
  readonly offset: number
  readonly at: number
  readonly text: string
  readonly record: EventRecord
}

/** The records concerning an agent and/or a message, each described in a line. */
export const timeline = (
  filter: {
    readonly agent?: string
    readonly message?: string
    /** Start here rather than at the first record: only for a message, whose records all follow its acceptance. */
    readonly from?: number
    readonly to?: number
  } = {}
) =>
  Stream.unwrap(Effect.map(EventLog, (log) => {
    // Made here, once per read: it remembers the agents of every message met so far.
    const concernsAgent = filter.agent === undefined ? () => true : concerning(filter.agent)
    return log.read({ from: filter.agent === undefined ? filter.from : undefined, to: filter.to }).pipe(
      Stream.filter((record) =>
        concernsAgent(record.event) && (filter.message === undefined || messageOf(record.event) === filter.message)
      ),
      Stream.map((record): TimelineEntry => ({
        offset: record.offset,
        at: record.committedAt,
        text: describe(record.event),
        record
      }))
    )
  }))
