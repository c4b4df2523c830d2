/**
 * `sw4rm.hitl.HitlService` over the runtime's Hitl (PROTOCOLS.md §1,
 * "Coordination"), with the access rules of every edge
 * (`CoordinationAccess.ts`).
 *
 * SW4RM's `Decide` takes an invocation and answers the decision: here it
 * asks a human (an invocation in the one queue, as the caller's agent, or
 * the operator's), sends its id at once in the `sw4rm-hitl-id` response
 * header, and answers when a human decides over HTTP, or the fallback does
 * at the invocation's deadline (DENY_BY_DEFAULT). The wait is bounded by
 * the call's deadline and by 10 minutes, then DEADLINE_EXCEEDED; the
 * question stays in the queue, and its answer can be read by its id. The
 * decision's `action` is approve, deny or modify; `decision_payload`, for
 * modify, the changed arguments as JSON.
 */
import type * as Grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { inputDecoder } from "../internal/decode.js"
import { FailedPrecondition } from "../schema/CoordinationErrors.js"
import { HitlInvocation, jsonOfBytes } from "../schema/Sw4rmCoordination.js"
import type { Gateway } from "../services/Gateway.js"
import { Hitl } from "../services/Hitl.js"
import type { Authenticate } from "./Auth.js"
import * as Access from "./CoordinationAccess.js"
import { remainingMs, type Run, sendHeaders, unary } from "./GrpcCalls.js"

const decodeInvocation = inputDecoder(HitlInvocation, "request")

/** The longest wait asked of the service (its own bound). */
const maxWaitMs = 600_000

export const make = (run: Run<Gateway>, authenticate: Authenticate["Type"]) =>
  Effect.gen(function*() {
    const hitl = Access.hitl(yield* Hitl)

    const decide = (request: typeof HitlInvocation.Type, call: Grpc.ServerUnaryCall<unknown, unknown>) =>
      Effect.gen(function*() {
        const context = yield* jsonOfBytes(request.context, "", "context")
        const invocation = yield* hitl.invoke({
          reason: request.reason_type,
          context,
          proposed_actions: request.proposed_actions,
          priority: request.priority
        })
        const id = invocation.hitl_id
        yield* sendHeaders(call, { "sw4rm-hitl-id": id })
        const remaining = yield* remainingMs(call)
        const answered = yield* hitl.awaitDecision({ id, timeout_ms: Math.min(maxWaitMs, remaining ?? maxWaitMs) })
        if (answered.decision === undefined) {
          return yield* new FailedPrecondition({ reason: `the question ${id} was withdrawn: ${answered.withdrawn_reason ?? "settled otherwise"}` })
        }
        const { action, args, rationale } = answered.decision
        return {
          action,
          decision_payload: args === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(args)),
          rationale
        }
      })

    return {
      Decide: unary(run, authenticate, "HitlInvocation", decodeInvocation, decide)
    } satisfies Grpc.UntypedServiceImplementation
  })
