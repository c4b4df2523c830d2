/**
 * What the coordination layers share: a command that decodes its request
 * at the edge, then runs its decision in the loop with the context of one
 * decision (`Deciding`: the audit chain, the invocation ids), answering
 * with its value once durable; and a bounded wait on the loop's waiters.
 */
import { Duration, Effect, type Either } from "effect"
import { type Deciding, deciding } from "../model/Hitl.js"
import type { Decision, RuntimeState } from "../model/State.js"
import { DeadlineExceeded } from "../schema/CoordinationErrors.js"
import type { ValidationError } from "../schema/Errors.js"
import type { Runtime } from "../services/Runtime.js"
import { valueAt } from "./Spans.js"

export const commands = (runtime: Runtime["Type"]) =>
<I, A, E>(
  valid: (input: unknown) => Either.Either<I, ValidationError>,
  decide: (d: Deciding, request: I) => Decision<A, E>
) =>
(input: unknown) =>
  Effect.flatMap(valid(input), (request) =>
    valueAt(runtime.run((state: RuntimeState, now) => decide(deciding(state, runtime.config, now), request))))

/** The default bound of a wait (PROTOCOLS.md §1: "30 s by default"). */
export const defaultWaitMs = 30_000

/** `wait`, for at most `ms`: then DEADLINE_EXCEEDED about `what` of `id`. Interrupted, it leaves nothing behind. */
export const bounded = <A, E>(wait: Effect.Effect<A, E>, ms: number, what: string, id: string) =>
  Effect.timeoutFail(wait, {
    duration: Duration.millis(ms),
    onTimeout: () => new DeadlineExceeded({ what, id, waited_ms: ms })
  })
