/**
 * Who may do what over the network. An agent's key acts only as its agent:
 * it sends as the producer, reads, streams and acknowledges only its own
 * mailbox and messages. The operator's key (or any caller of a server run
 * open, for local development) may do everything. A refusal is a
 * PermissionDenied (403) and is recorded in the audit trail, so that a key
 * probing for other agents' data leaves a trace.
 */
import { Effect, Either } from "effect"
import { PermissionDenied, ValidationError } from "../schema/Errors.js"
import { Gateway } from "../services/Gateway.js"
import type { Principal } from "../schema/Keys.js"
import { Caller } from "./Api.js"

const record = (caller: Principal, action: string, reason: string) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    yield* gateway.recordDenied({
      agent_id: caller._tag === "Agent" ? caller.agent_id : undefined,
      key_id: caller.key_id,
      action,
      reason
    }).pipe(
      // The refusal stands whether or not it could be recorded.
      Effect.catchAllCause((cause) => Effect.logWarning("could not audit a refused request", cause))
    )
  })

const refuse = (caller: Principal, action: string, reason: string) =>
  Effect.zipRight(record(caller, action, reason), Effect.fail(new PermissionDenied({ reason })))

/**
 * A refusal the runtime itself made for an agent's key (an ACK of a message
 * sent to another agent) is recorded in the audit as the edge's own are.
 */
export const auditRefusal = (action: string, error: { readonly _tag: string; readonly reason?: string }) =>
  error._tag === "PermissionDenied"
    ? Effect.flatMap(Caller, (caller) =>
      caller._tag === "Agent" ? record(caller, action, error.reason ?? "permission denied") : Effect.void)
    : Effect.void

/**
 * The refusals of a batch (ACKs decided together) audited once, by the
 * first: a key cannot grow the audit by a record for each item it sends.
 */
export const auditFirstRefusal = <E extends { readonly _tag: string; readonly reason?: string }>(
  action: string,
  results: ReadonlyArray<Either.Either<unknown, E>>
) => {
  const refused = results.find((result) => Either.isLeft(result) && result.left._tag === "PermissionDenied")
  return refused === undefined || Either.isRight(refused) ? Effect.void : auditRefusal(action, refused.left)
}

/** Whether `caller` may act as `agent_id`: its own agent, or any agent for the operator. */
export const mayActAs = (caller: Principal, agent_id: string): boolean =>
  caller._tag === "Operator" || caller.agent_id === agent_id

/** The caller acts as `agent_id` (`mayActAs`), or is refused. */
export const actAs = (agent_id: string, action: string) =>
  Effect.flatMap(Caller, (caller) =>
    mayActAs(caller, agent_id)
      ? Effect.void
      : refuse(caller, action, `key ${caller.key_id} acts for ${caller._tag === "Agent" ? caller.agent_id : "the operator"}, not ${agent_id}`))

/** The caller acts as one of `agent_ids` (a message's producer or recipient). */
export const actAsOneOf = (agent_ids: ReadonlyArray<string>, action: string, what: string) =>
  Effect.flatMap(Caller, (caller) =>
    caller._tag === "Operator" || agent_ids.includes(caller.agent_id)
      ? Effect.void
      : refuse(caller, action, `${what} does not concern ${caller.agent_id}`))

/** Operators only: policies, approvals, the kill switch, the audit and the state. */
export const operatorOnly = (action: string) =>
  Effect.flatMap(Caller, (caller) =>
    caller._tag === "Operator" ? Effect.void : refuse(caller, action, `${action} is for operators only`))

/** The agent the caller acts as: its own, or for the operator the one it names (required then). */
export const actingAgent = (named: string | undefined, action: string) =>
  Effect.flatMap(Caller, (caller): Effect.Effect<string, PermissionDenied | ValidationError, Gateway | Caller> => {
    if (caller._tag === "Agent") {
      return named === undefined || named === caller.agent_id
        ? Effect.succeed(caller.agent_id)
        : Effect.as(actAs(named, action), caller.agent_id)
    }
    // The operator may act as anyone, so a missing name is a missing field, not a refusal.
    return named === undefined
      ? Effect.fail(ValidationError.single("request", "agent_id", `is required for ${action} without an agent's key`))
      : Effect.succeed(named)
  })
