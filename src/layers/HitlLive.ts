/**
 * The live human-in-the-loop queue: a thin layer over the command loop.
 * Invocations and the gateway's approvals are read from one state and
 * answered through one decision; a wait for an answer is bounded.
 */
import { Effect, Either, Layer, Schema } from "effect"
import { inputDecoder } from "../internal/decode.js"
import { hitlQueue, type Invocation, invocationView } from "../model/Hitl.js"
import { decideHitl, decideInvoke } from "../model/HitlDecide.js"
import { NotFound } from "../schema/CoordinationErrors.js"
import { Id } from "../schema/Envelope.js"
import { AwaitHitl, DecideRequest, type InvocationView, InvokeRequest, QueueFilter } from "../schema/Hitl.js"
import { copyJson } from "../schema/Json.js"
import { Hitl } from "../services/Hitl.js"
import { Runtime } from "../services/Runtime.js"
import { bounded, commands, defaultWaitMs } from "./Coordinated.js"
import { fieldOf, idOf, traced } from "./Spans.js"
import * as Waiters from "./Waiters.js"
import type { Look } from "./Waiters.js"

const strict = { onExcessProperty: "error" } as const
const validInvoke = (input: unknown) =>
  Either.map(inputDecoder(InvokeRequest, "hitl", strict)(input), (request) =>
    request.context === undefined ? request : { ...request, context: copyJson(request.context) })
const validDecide = (input: unknown) =>
  Either.map(inputDecoder(DecideRequest, "decision", strict)(input), (request) =>
    request.args === undefined ? request : { ...request, args: copyJson(request.args) })
const validFilter = inputDecoder(Schema.UndefinedOr(QueueFilter), "queue", strict)
const validAwait = inputDecoder(AwaitHitl, "wait", strict)
const validId = inputDecoder(Id, "hitl_id")

export const layer: Layer.Layer<Hitl, never, Runtime> = Layer.scoped(
  Hitl,
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const command = commands(runtime)
    const waiters = Waiters.make<void, InvocationView>(runtime.query)

    yield* runtime.extend({
      committed: (events, state) => {
        for (const event of events) {
          if (event._tag !== "HitlDecided" && event._tag !== "HitlWithdrawn") continue
          const invocation = state.hitl.get(event.hitl_id)
          if (invocation !== undefined && waiters.has(event.hitl_id)) waiters.wake(event.hitl_id, () => invocationView(invocation))
        }
      },
      stopped: waiters.failAll
    })

    const look = (id: string) => (state: { readonly hitl: ReadonlyMap<string, Invocation> }): Look<void, InvocationView> => {
      const invocation = state.hitl.get(id)
      if (invocation === undefined) return { _tag: "Absent" }
      return invocation.status === "open" ? { _tag: "Wait", wants: undefined } : { _tag: "Now", value: invocationView(invocation) }
    }

    return Hitl.of({
      invoke: traced("Hitl.invoke", command(validInvoke, decideInvoke), (request) => ({ agent_id: idOf(fieldOf(request, "invoked_by")) })),
      decide: traced("Hitl.decide", command(validDecide, decideHitl), (request) => ({ hitl_id: idOf(fieldOf(request, "id")) })),
      queue: traced("Hitl.queue", (filter) => Effect.flatMap(validFilter(filter), (valid) => runtime.query((state) => hitlQueue(state, valid)))),
      invocation: traced("Hitl.invocation", (hitlId) =>
        Effect.flatMap(validId(hitlId), (id) =>
          Effect.flatMap(runtime.query((state) => {
            const invocation = state.hitl.get(id)
            return invocation === undefined ? undefined : invocationView(invocation)
          }), (view) => view === undefined ? Effect.fail(new NotFound({ what: "hitl invocation", id })) : Effect.succeed(view))), (id) => ({ hitl_id: idOf(id) })),
      awaitDecision: traced("Hitl.awaitDecision", (input) =>
        Effect.flatMap(validAwait(input), ({ id, timeout_ms }) =>
          bounded(
            waiters.await(id, look(id), () => new NotFound({ what: "hitl invocation", id })),
            timeout_ms ?? defaultWaitMs,
            "answer",
            id
          )), (request) => ({ hitl_id: idOf(fieldOf(request, "id")) }))
    })
  })
)
