/**
 * Where the router pushes an agent's deliveries and notices (`Router.attach`,
 * in the runtime's turn, once durable) until a connection's writer takes
 * them: shared by the edges that stream to an agent (the WebSocket, SW4RM's
 * `StreamIncoming`).
 */
import { Effect } from "effect"
import type { InternalError } from "../schema/Errors.js"
import type { Inbound, InboundSink } from "../services/Router.js"

/** How an edge writes what waits, and ends its stream when the runtime stops. */
export interface Writer {
  readonly write: (items: ReadonlyArray<Inbound>) => Effect.Effect<void>
  readonly close: Effect.Effect<void>
  readonly run: (effect: Effect.Effect<void>) => void
}

/**
 * A sink for `Router.attach` and its writer. One short fiber at a time
 * writes what waits, in order, each run in one `write`, after the turn: a
 * consumer costs no stream and no fiber while it is idle.
 */
export const outbox = () => {
  let pending: Array<Inbound> = []
  let ended: InternalError | undefined
  let writing = false
  let writer: Writer | undefined
  const next: Effect.Effect<void> = Effect.suspend(() => {
    if (pending.length > 0) {
      const items = pending
      pending = []
      return Effect.zipRight(writer!.write(items), next)
    }
    writing = false
    return ended === undefined ? Effect.void : writer!.close
  })
  const drain = () => {
    if (writing || writer === undefined) return
    writing = true
    writer.run(next)
  }
  return {
    sink: {
      offer: (item: Inbound) => {
        pending.push(item)
        if (pending.length === 1 && !writing) queueMicrotask(drain)
      },
      end: (error: InternalError) => {
        ended = error
        queueMicrotask(drain)
      }
    } satisfies InboundSink,
    /** From now on, `write` takes what is pushed, and `close` the end; what waits goes at once. */
    start: (started: Writer) => {
      writer = started
      if (pending.length > 0 || ended !== undefined) drain()
    }
  }
}

