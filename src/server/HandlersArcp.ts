/**
 * What a remote agent reports of an ARCP job it runs (`model/ArcpRemote.ts`):
 * its events, then its result or its error. An agent's key reports as its
 * agent, which must serve the job's agent (`arcp:NAME@VERSION`); an
 * operator's as the agent it names, or as itself. Refusals are audited.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { retryableCode } from "../schema/Arcp.js"
import { ValidationError } from "../schema/Errors.js"
import { Arcp } from "../services/Arcp.js"
import { actAs, auditRefusal } from "./Access.js"
import { Caller, SwitchboardApi } from "./Api.js"

/** Who reports: the agent the body names (the caller must act as it), else the caller's own agent. */
const reporterOf = (agent_id: string | undefined, action: string) =>
  Effect.flatMap(Caller, (caller) => {
    const reporter = agent_id ?? (caller._tag === "Agent" ? caller.agent_id : undefined)
    return reporter === undefined ? Effect.succeed(undefined) : Effect.as(actAs(reporter, action), reporter)
  })

/** A refusal of the model (an agent that does not serve the job's agent) is audited like the edge's. */
const audited = (action: string) => <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.tapError(effect, (error) => error._tag === "PermissionDenied" ? auditRefusal(action, error as never) : Effect.void)

export const arcp = HttpApiBuilder.group(SwitchboardApi, "arcp", (handlers) =>
  Effect.gen(function*() {
    const arcp = yield* Arcp
    return handlers
      .handle("reportEvents", ({ path, payload }) =>
        Effect.flatMap(reporterOf(payload.agent_id, "arcp.report"), (reporter) =>
          arcp.report({ job_id: path.job_id, reporter, events: payload.events }).pipe(audited("arcp.report"))))
      .handle("reportResult", ({ path, payload }) =>
        Effect.flatMap(reporterOf(payload.agent_id, "arcp.result"), (reporter) => {
          if (payload.result !== undefined && payload.result_id !== undefined) {
            return Effect.fail(ValidationError.single("arcp.result", "result", "a result is inline (result) or streamed (result_id), never both"))
          }
          const { agent_id: _agent, ...outcome } = payload
          return arcp.end({ job_id: path.job_id, reporter, outcome: { final_status: "success", ...outcome } }).pipe(audited("arcp.result"))
        }))
      .handle("reportError", ({ path, payload }) =>
        Effect.flatMap(reporterOf(payload.agent_id, "arcp.error"), (reporter) =>
          arcp.end({
            job_id: path.job_id,
            reporter,
            outcome: {
              final_status: payload.code === "CANCELLED" ? "cancelled" : payload.code === "TIMEOUT" ? "timed_out" : "error",
              code: payload.code,
              message: payload.message,
              retryable: retryableCode(payload.code),
              ...(payload.details === undefined ? {} : { details: payload.details })
            }
          }).pipe(audited("arcp.error"))))
  }))
