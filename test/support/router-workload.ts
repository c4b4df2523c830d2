/**
 * The workload of the router crash test (test/RouterRestart.test.ts), run by
 * the child it kills (router-crash-worker.ts) and by the test itself when it
 * finishes the work: one producer sending logical messages, each with its own
 * idempotency token, to a capability served by three consumers, and the
 * consumers as idempotent processors over a durable processed-token store.
 */
import { Effect, Layer } from "effect"
import * as Processor from "../../src/layers/Processor.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { EventLogSqlite } from "../../src/node.js"
import { Ids } from "../../src/services/Ids.js"
import type { ProcessedTokens } from "./processed-tokens.js"
import { register, sendTo } from "./router.js"

export const producer = "producer"
export const consumers = ["c1", "c2", "c3"] as const
export const capability = "work"

export const tokenOf = (fiber: number, seq: number) => `t-${fiber}-${seq}`

export const allTokens = (fibers: number, perFiber: number) =>
  Array.from({ length: fibers }, (_, f) => Array.from({ length: perFiber }, (_, s) => tokenOf(f + 1, s + 1))).flat()

/** Liveness off: a restart must not depend on heartbeats sent before it. */
export const routerOn = (filename: string, config: RuntimeOptions = {}) =>
  Switchboard.layer({ livenessTimeoutMs: undefined, ...config }).pipe(
    Layer.provideMerge(EventLogSqlite.layer({ filename, durability: "full" })),
    Layer.provideMerge(Ids.layerUuid)
  )

export const registerAll = Effect.gen(function*() {
  yield* register(producer)
  for (const id of consumers) yield* register(id, { capabilities: [capability] })
})

export interface Sent {
  readonly token: string
  readonly id: string
  /** The router answered DuplicateDetected: `id` is the original's. */
  readonly dup: boolean
}

/** Sends the token's message once; a retry of an earlier send is answered with the original id. */
export const sendOnce = (token: string) =>
  sendTo({ capability }, { producer_id: producer, payload: { token }, idempotency_token: token }).pipe(
    Effect.map((receipt): Sent => ({ token, id: receipt.message_id, dup: false })),
    Effect.catchTag("DuplicateDetected", (error) => Effect.succeed<Sent>({ token, id: error.original_message_id, dup: true }))
  )

/**
 * `fibers` concurrent producer loops, each sending its tokens in order, from
 * the first: after a crash a producer cannot tell what the router kept, so it
 * sends everything again and lets dedup answer.
 */
export const produce = (fibers: number, perFiber: number, onSent: (sent: Sent) => void) =>
  Effect.forEach(
    Array.from({ length: fibers }, (_, i) => i + 1),
    (fiber) =>
      Effect.gen(function*() {
        for (let seq = 1; seq <= perFiber; seq++) onSent(yield* sendOnce(tokenOf(fiber, seq)))
      }),
    { concurrency: "unbounded", discard: true }
  )

export interface ConsumeOptions {
  readonly processed: ProcessedTokens
  readonly run: string
  /** Called after recording a token that was processed for the first time; a returned effect runs before the handler returns. */
  readonly afterProcess?: (token: string) => Effect.Effect<void> | undefined
}

/** Every consumer as a Processor whose handler processes each token once, durably. */
export const consume = (options: ConsumeOptions) =>
  Effect.forEach(
    consumers,
    (agentId) =>
      Processor.run(agentId, {
        default: (delivery) =>
          Effect.gen(function*() {
            const token = delivery.envelope.idempotency_token
            if (token === undefined) return yield* Effect.dieMessage(`no token on ${delivery.envelope.message_id}`)
            const fresh = options.processed.handle({
              token,
              message_id: delivery.envelope.message_id,
              agent_id: agentId,
              attempt: delivery.attempt,
              run: options.run
            })
            if (fresh) yield* options.afterProcess?.(token) ?? Effect.void
          })
      }),
    { concurrency: "unbounded", discard: true }
  )
