/**
 * Long work done in slices. The SQLite commit and a large policy's parse are
 * synchronous, on the one thread that also runs every fiber and every timer:
 * between slices, the event loop gets its turn (timers, sockets, and the
 * runtime's own loop), so one long piece of work never stalls the others.
 */
import { Effect } from "effect"

/** Lets the event loop run its timers and I/O before this fiber goes on. */
export const yieldToEventLoop: Effect.Effect<void> = typeof globalThis.setImmediate === "function"
  ? Effect.async<void>((resume) => {
    const handle = globalThis.setImmediate(() => resume(Effect.void))
    return Effect.sync(() => globalThis.clearImmediate(handle))
  })
  : Effect.yieldNow()

/** Runs work written as a generator that yields between its slices, letting the event loop run at each. */
export const runSliced = <A>(work: () => Generator<void, A>): Effect.Effect<A> =>
  Effect.suspend(() => {
    const steps = work()
    const next = (): Effect.Effect<A> => {
      const step = steps.next()
      return step.done === true ? Effect.succeed(step.value) : Effect.flatMap(yieldToEventLoop, next)
    }
    return next()
  })
