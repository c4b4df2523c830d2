/**
 * The consumer side of the ACK lifecycle, over `Router.subscribe`: for each
 * delivery it marks READ, runs the handler for the message type, and marks
 * FULFILLED; FAILED with the error's code when the handler fails with a typed
 * error; REJECTED with UNSUPPORTED_MESSAGE_TYPE when nothing handles the type.
 *
 * A handler that dies (a defect) or is interrupted acknowledges nothing: the
 * message is delivered again after its ack wait, never lost. So it is when
 * the agent is suspended meanwhile and its acks are refused: the processor
 * goes on, and takes the message again once the agent is resumed.
 */
import { Duration, Effect, Layer, Schedule, Schema, Stream } from "effect"
import { clip } from "../internal/bounds.js"
import type { AckError } from "../model/Messages.js"
import { ErrorCode, maxNoteLength, type MessageType } from "../schema/Envelope.js"
import { type InternalError, type NoRoute, type PersistenceError, ValidationError } from "../schema/Errors.js"
import { Registry } from "../services/Registry.js"
import { type Delivery, Router, type StageNotice } from "../services/Router.js"

export type Handler<E, R> = (delivery: Delivery) => Effect.Effect<void, E, R>

export interface Handlers<E, R> {
  /** Handlers by message type. */
  readonly handlers?: { readonly [K in MessageType]?: Handler<E, R> }
  /** For any type without its own handler. */
  readonly default?: Handler<E, R>
  /** Stage changes of the messages this agent produced. */
  readonly onNotice?: (notice: StageNotice) => Effect.Effect<void, never, R>
  /** Deliveries handled at once; default 1, which keeps their order. */
  readonly concurrency?: number
  /**
   * Heartbeats the agent (keeping the state it reported) this often while it runs, so that it
   * stays available: without heartbeats, an agent is marked unavailable after
   * the runtime's `livenessTimeoutMs` and no longer gets messages. A third of
   * that timeout is a sound choice. Default: none, the agent heartbeats itself.
   */
  readonly heartbeatEvery?: Duration.DurationInput
}

const isErrorCode = Schema.is(ErrorCode)

/** The wire code of a typed failure: its own `code` when it is one, else INTERNAL_ERROR. */
const codeOf = (error: unknown): ErrorCode => {
  const code = typeof error === "object" && error !== null ? (error as { readonly code?: unknown }).code : undefined
  return isErrorCode(code) ? code : "INTERNAL_ERROR"
}

/** A failure's message as an ACK's note, cut to fit one (`maxNoteLength`): a long message must not turn the ack itself away. */
const noteOf = (error: unknown) => clip(error instanceof Error ? error.message : String(error), maxNoteLength - 1)

/** Handles one delivery through its whole lifecycle. */
export const handle = <E, R>(agentId: string, options: Handlers<E, R>, delivery: Delivery) =>
  Effect.gen(function*() {
    const router = yield* Router
    const envelope = delivery.envelope
    const ack = (stage: "READ" | "FULFILLED" | "REJECTED" | "FAILED", error_code?: ErrorCode, note?: string) =>
      router.ack({ agent_id: agentId, message_id: envelope.message_id, stage, error_code, note, delivery_seq: delivery.delivery_seq })
    const handler = options.handlers?.[envelope.message_type] ?? options.default
    if (handler === undefined) {
      return yield* ack("REJECTED", "UNSUPPORTED_MESSAGE_TYPE", `no handler for ${envelope.message_type}`)
    }
    yield* ack("READ")
    // Defects and interruptions pass through untouched: no ACK, so a redelivery.
    yield* handler(delivery).pipe(
      Effect.matchEffect({
        onFailure: (error) => ack("FAILED", codeOf(error), noteOf(error)),
        onSuccess: () => ack("FULFILLED")
      })
    )
  })

/**
 * Runs the agent's handlers over its subscription until interrupted. Fails
 * only when the agent is unknown, or an ACK or a heartbeat cannot be recorded.
 */
export const run = <E, R>(
  agentId: string,
  options: Handlers<E, R>
): Effect.Effect<void, NoRoute | AckError | ValidationError | PersistenceError | InternalError, Router | Registry | R> =>
  Effect.flatMap(Effect.all([Router, Registry]), ([router, registry]) => {
    const every = options.heartbeatEvery === undefined ? undefined : Duration.decode(options.heartbeatEvery)
    // A zero interval would heartbeat without end and starve everything else.
    if (every !== undefined && (!Duration.isFinite(every) || Duration.toMillis(every) < 1)) {
      return Effect.fail(
        ValidationError.single("processor", "heartbeatEvery", "must be finite and at least a millisecond")
      )
    }
    // Only liveness: the state and health the agent reported itself stay as they are
    // (one SHUTTING_DOWN must not become available again).
    const heartbeats = every === undefined
      ? Effect.never
      : Effect.repeat(registry.keepAlive(agentId), Schedule.spaced(every))
    const deliveries = router.subscribe(agentId).pipe(
      Stream.mapEffect(
        (inbound) =>
          inbound._tag === "StageNotice"
            ? options.onNotice?.(inbound) ?? Effect.void
            : handle(agentId, options, inbound).pipe(
              // Its agent was suspended (or halted) since the delivery reached it: the
              // ack is refused, the message comes back after its ack wait, once resumed.
              Effect.catchTag("PermissionDenied", (denied) =>
                Effect.logWarning(
                  `processor ${agentId}: cannot acknowledge ${inbound.envelope.message_id} (${denied.reason}); it will be delivered again`
                )),
              Effect.catchAllDefect((defect) =>
                Effect.logWarning(
                  `processor ${agentId}: handler died on ${inbound.envelope.message_id}; it will be delivered again`,
                  defect
                )
              )
            ),
        { concurrency: options.concurrency ?? 1 }
      ),
      Stream.runDrain
    )
    return Effect.raceFirst(deliveries, Effect.asVoid(heartbeats))
  })

/**
 * A processor that runs as long as its layer: started when the layer is
 * built, interrupted when its scope closes. A failure of the processor (an
 * unknown agent, an ACK the log cannot record) is logged; the layer goes on.
 */
export const layer = <E, R>(agentId: string, options: Handlers<E, R>): Layer.Layer<never, never, Router | Registry | R> =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      run(agentId, options).pipe(
        Effect.catchAllCause((cause) => Effect.logError(`processor ${agentId} stopped`, cause))
      )
    )
  )
