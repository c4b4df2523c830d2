/**
 * Callers waiting for something the loop will record (a message's stage, a
 * human's answer), by key. A waiter is registered in a read of the loop, so
 * no commit slips between looking and waiting, and it lives in a scope: it
 * is gone once answered, failed or interrupted, and the
 * `switchboard_waiters` gauge counts those still waiting.
 */
import { Deferred, Effect, Exit } from "effect"
import type { RuntimeState } from "../model/Runtime.js"
import type { InternalError } from "../schema/Errors.js"
import type { Runtime } from "../services/Runtime.js"
import { waiters as gauge } from "./Metrics.js"

/** What a look at the state finds: nothing to wait for, the answer now, or what to wait for. */
export type Look<W, A> =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Now"; readonly value: A }
  | { readonly _tag: "Wait"; readonly wants: W }

interface Waiter<W, A> {
  readonly wants: W
  readonly done: Deferred.Deferred<A, InternalError>
}

export const make = <W, A>(query: Runtime["Type"]["query"]) => {
  const byKey = new Map<string, Set<Waiter<W, A>>>()

  const remove = (key: string, waiter: Waiter<W, A>) => {
    const pending = byKey.get(key)
    if (pending?.delete(waiter)) gauge.unsafeModify(-1, [])
    if (pending?.size === 0) byKey.delete(key)
  }

  return {
    /** Waits for `key`: `look` runs in the loop; `absent` is the error when there is nothing to wait for. */
    await: <E>(
      key: string,
      look: (state: RuntimeState) => Look<W, A>,
      absent: () => E
    ): Effect.Effect<A, E | InternalError> =>
      Effect.scoped(Effect.gen(function*() {
        const done = yield* Deferred.make<A, InternalError>()
        let waiter: Waiter<W, A> | undefined
        const found = yield* Effect.acquireRelease(
          query((state) => {
            const seen = look(state)
            if (seen._tag === "Now") Deferred.unsafeDone(done, Exit.succeed(seen.value))
            if (seen._tag === "Wait") {
              waiter = { wants: seen.wants, done }
              let pending = byKey.get(key)
              if (pending === undefined) byKey.set(key, pending = new Set())
              pending.add(waiter)
              gauge.unsafeModify(1, [])
            }
            return seen._tag !== "Absent"
          }),
          () => Effect.sync(() => waiter !== undefined && remove(key, waiter))
        )
        if (!found) return yield* Effect.fail(absent())
        return yield* Deferred.await(done)
      })),
    /** Answers the waiters of `key` that `answer` has a value for: from the loop, after a commit. */
    wake: (key: string, answer: (wants: W) => A | undefined) => {
      for (const waiter of byKey.get(key) ?? []) {
        const value = answer(waiter.wants)
        if (value !== undefined) Deferred.unsafeDone(waiter.done, Exit.succeed(value))
      }
    },
    /** Fails every waiter: the loop has stopped, nothing they wait for will be recorded. */
    failAll: (error: InternalError) => {
      for (const pending of byKey.values()) {
        for (const waiter of pending) Deferred.unsafeDone(waiter.done, Exit.fail(error))
      }
    },
    /** Whether anyone waits for `key`. */
    has: (key: string) => byKey.has(key)
  }
}
