/**
 * Unary calls of one method that arrive together, handled together. SW4RM's
 * wire has no batch: a producer sends each message with its own
 * `SendMessage`, a consumer settles each delivery with its own
 * `AckDelivery`. Handled one by one, every call would be a fiber of its own
 * and a command of its own in the runtime's loop; under load, that per-call
 * work, not the store, is most of what a message costs.
 *
 * So the calls that reach the server in one turn of the event loop (the
 * calls of one socket read, usually) are handled by one fiber: each is still
 * authenticated, decoded with its Schema, and checked as its own caller
 * (`prepare`), in the order they came; what passes goes to the runtime as one
 * batch (`handleMany`, e.g. `Router.sendMany`: one command, one durable
 * append), and each call gets its own answer or its own status. A call
 * refused, alone or within the batch, fails alone; only a failure of the
 * whole batch (the store, the loop) is every call's, as it would have been
 * had each gone alone. Nothing is answered before the batch is durable.
 *
 * A call its client cancels is left out if it has not been handled yet, and
 * unanswered otherwise (what the runtime took stays taken, as for a call
 * cancelled while its command was in the loop).
 */
import type * as Grpc from "@grpc/grpc-js"
import { Cause, Effect, Either, Exit, FiberId } from "effect"
import type { Principal } from "../schema/Keys.js"
import { yieldToEventLoop } from "../layers/Slicing.js"
import { Caller } from "./Api.js"
import type { Authenticate } from "./Auth.js"
import { callerOf, type Decode, decodeRequest, type Run, statusOfCause } from "./GrpcCalls.js"

/** What one call comes to, checked as its caller. */
export type Prepared<Item, Res, R> =
  /** Its answer, with nothing for the runtime to do. */
  | { readonly _tag: "Answer"; readonly answer: Res }
  /** A part of the batch. */
  | { readonly _tag: "Item"; readonly item: Item }
  /** Handled on its own, beside the batch (a rare kind of call that the batch does not take). */
  | { readonly _tag: "Alone"; readonly effect: Effect.Effect<Res, unknown, R | Caller> }

export const answer = <Res>(value: Res): Prepared<never, Res, never> => ({ _tag: "Answer", answer: value })
export const item = <Item>(value: Item): Prepared<Item, never, never> => ({ _tag: "Item", item: value })
export const alone = <Res, R>(effect: Effect.Effect<Res, unknown, R | Caller>): Prepared<never, Res, R> => ({
  _tag: "Alone",
  effect
})

export interface Batched<Req, Item, Res, R> {
  /** As the call's caller (`Caller`): its answer, its part of the batch, or a refusal. */
  readonly prepare: (request: Req, call: Grpc.ServerUnaryCall<unknown, Res>) => Effect.Effect<Prepared<Item, Res, R>, unknown, R | Caller>
  /** The items at once: in order, each one's answer or refusal. A failure is every item's. */
  readonly handleMany: (items: ReadonlyArray<Item>) => Effect.Effect<ReadonlyArray<Either.Either<Res, unknown>>, unknown, R>
}

interface Entry<Res> {
  readonly call: Grpc.ServerUnaryCall<unknown, Res>
  readonly callback: Grpc.sendUnaryData<Res>
  answered: boolean
}

/** A unary method whose calls that arrive together are handled as one batch (see the module's header). */
export const batchedUnary = <Req, Item, Res, R>(
  run: Run<R>,
  authenticate: Authenticate["Type"],
  name: string,
  decode: Decode<Req>,
  batched: Batched<Req, Item, Res, R>
): Grpc.handleUnaryCall<unknown, Res> => {
  let pending: Array<Entry<Res>> = []

  const settle = (entry: Entry<Res>, exit: Exit.Exit<Res, unknown>): Effect.Effect<void> => {
    if (entry.answered) return Effect.void
    entry.answered = true
    if (entry.call.cancelled) return Effect.void
    if (Exit.isSuccess(exit)) {
      entry.callback(null, exit.value)
      return Effect.void
    }
    const status = statusOfCause(exit.cause)
    return Effect.sync(() => entry.callback(status)).pipe(
      Effect.zipLeft(Cause.isDie(exit.cause) ? Effect.logError(`gRPC ${name}: a defect`, exit.cause) : Effect.void)
    )
  }

  const prepareOne = (entry: Entry<Res>) =>
    Effect.flatMap(callerOf(authenticate, entry.call), (caller: Principal) =>
      Effect.flatMap(
        decodeRequest(entry.call.request, decode, name),
        (request) => Effect.provideService(batched.prepare(request, entry.call), Caller, caller)
      ).pipe(
        Effect.map((prepared) =>
          prepared._tag === "Alone" ? { ...prepared, effect: Effect.provideService(prepared.effect, Caller, caller) } : prepared
        )
      ))

  const handle = (batch: ReadonlyArray<Entry<Res>>) =>
    Effect.gen(function*() {
      const items: Array<Item> = []
      const owners: Array<Entry<Res>> = []
      for (const entry of batch) {
        if (entry.call.cancelled) {
          entry.answered = true
          continue
        }
        const prepared = yield* Effect.exit(prepareOne(entry))
        if (Exit.isFailure(prepared)) {
          yield* settle(entry, Exit.failCause(prepared.cause))
        } else if (prepared.value._tag === "Answer") {
          yield* settle(entry, Exit.succeed(prepared.value.answer))
        } else if (prepared.value._tag === "Alone") {
          // Its own fiber, as an unbatched call: the batch does not wait for it.
          const effect = prepared.value.effect as Effect.Effect<Res, unknown, R>
          run(Effect.flatMap(Effect.exit(effect), (exit) => settle(entry, exit)))
        } else {
          items.push(prepared.value.item)
          owners.push(entry)
        }
      }
      if (items.length === 0) return
      const results = yield* Effect.exit(batched.handleMany(items))
      for (let i = 0; i < owners.length; i++) {
        if (Exit.isFailure(results)) {
          yield* settle(owners[i], Exit.failCause(results.cause))
        } else {
          const result = results.value[i]
          yield* settle(owners[i], Either.isRight(result) ? Exit.succeed(result.right) : Exit.fail(result.left))
        }
      }
    }).pipe(
      // The server stopping: what the batch has not answered is told to come back.
      Effect.onInterrupt(() => Effect.forEach(batch, (entry) => settle(entry, Exit.interrupt(FiberId.none)), { discard: true }))
    )

  // After the event loop's turn: every call that came in the same I/O phase joins the batch.
  const drain = Effect.zipRight(
    yieldToEventLoop,
    Effect.suspend(() => {
      const batch = pending
      pending = []
      return handle(batch)
    })
  )

  return (call, callback) => {
    pending.push({ call, callback, answered: false })
    if (pending.length === 1) run(drain)
  }
}
