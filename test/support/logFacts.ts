/**
 * A store's router facts, read from its records on their own terms, apart
 * from the runtime's fold: what was accepted, what finished each message,
 * which ACKs came late, what timed out or was requeued. The durability tests
 * hold a server's answers against them.
 */
import { Chunk, Effect, Layer, Stream } from "effect"
import { EventLog, Replay } from "../../src/index.js"
import { EventLogSqlite } from "../../src/node.js"
import type { EventRecord } from "../../src/schema/Event.js"

export interface LogFacts {
  readonly accepted: Map<string, Array<number>>
  /** Per message, the ACKs that finished it: offset, time, and the delivery each named. */
  readonly finishes: Map<string, Array<{ readonly offset: number; readonly at: number; readonly seq: number | undefined }>>
  readonly lateAcks: Map<string, number>
  readonly timedOut: Array<string>
  readonly other: Array<string>
  /** Per reason, the messages queued again for it. */
  readonly requeued: Map<string, Array<string>>
}

export const terminal = new Set(["FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"])

/**
 * The router's facts, walked record by record: a terminal ACK finishes its
 * message if none did before and the delivery it names went to its agent;
 * any other is late.
 */
export const readFacts = (records: ReadonlyArray<EventRecord>): LogFacts => {
  const facts: LogFacts = {
    accepted: new Map(),
    finishes: new Map(),
    lateAcks: new Map(),
    timedOut: [],
    other: [],
    requeued: new Map()
  }
  const deliveries = new Map<string, Array<string>>()
  const push = <A>(map: Map<string, Array<A>>, key: string, value: A) => map.set(key, [...(map.get(key) ?? []), value])
  for (const { event, offset } of records) {
    switch (event._tag) {
      case "MessageAccepted":
        push(facts.accepted, event.envelope.message_id, offset)
        break
      case "MessageDelivered":
        push(deliveries, event.message_id, `${event.to}#${event.delivery_seq}`)
        break
      case "MessageAcked": {
        if (!terminal.has(event.stage)) break
        const finished = (facts.finishes.get(event.message_id) ?? []).length > 0
        const named = event.delivery_seq === undefined ||
          (deliveries.get(event.message_id) ?? []).includes(`${event.agent_id}#${event.delivery_seq}`)
        if (finished || !named) facts.lateAcks.set(event.message_id, (facts.lateAcks.get(event.message_id) ?? 0) + 1)
        else push(facts.finishes, event.message_id, { offset, at: event.at, seq: event.delivery_seq })
        break
      }
      case "MessageRequeued":
        push(facts.requeued, event.reason, event.message_id)
        break
      case "MessageTimedOut":
        facts.timedOut.push(`${event.message_id} (${event.error_code}) at ${offset}`)
        break
      case "MessageRefused":
      case "MessageRedriven":
        facts.other.push(`${event._tag} of ${event._tag === "MessageRefused" ? event.envelope.message_id : event.message_id} at ${offset}`)
        break
    }
  }
  return facts
}

/** The records up to `to`, and the state `Replay` folds them to, from the store read-only (the server still has it open). */
export const readStore = (filename: string, to: number) =>
  Effect.gen(function*() {
    const log = yield* EventLog
    const records = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read({ to })))
    const replayed = yield* Replay.stateAt(to)
    return { records, replayed: { offset: replayed.offset, state: Replay.snapshot(replayed.state) } }
  }).pipe(Effect.provide(Layer.orDie(EventLogSqlite.layerReadonly({ filename }))), Effect.runPromise)
