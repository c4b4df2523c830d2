/**
 * What a remote agent reports of an ARCP job it runs (`model/ArcpRemote.ts`):
 * its events, then its result or its error. An agent's key reports as its
 * agent, which must serve the job's agent (`arcp:NAME@VERSION`); an
 * operator's as the agent it names, or as itself. Refusals are audited
 * (`auditRefusal`, as for the router's routes), the model's as the edge's.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { failure } from "../schema/Arcp.js"
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

export const arcp = HttpApiBuilder.group(SwitchboardApi, "arcp", (handlers) =>
  Effect.gen(function*() {
    const arcp = yield* Arcp
    return handlers
      .handle("reportEvents", ({ path, payload }) =>
        Effect.flatMap(reporterOf(payload.agent_id, "arcp.report"), (reporter) =>
          arcp.report({ job_id: path.job_id, reporter, events: payload.events }).pipe(Effect.tapError((error) => auditRefusal("arcp.report", error)))))
      .handle("reportResult", ({ path, payload }) =>
        Effect.flatMap(reporterOf(payload.agent_id, "arcp.result"), (reporter) => {
          if (payload.result !== undefined && payload.result_id !== undefined) {
            return Effect.fail(ValidationError.single("arcp.result", "result", "a result is inline (result) or streamed (result_id), never both"))
          }
          const { agent_id: _agent, ...outcome } = payload
          return arcp.end({ job_id: path.job_id, reporter, outcome: { final_status: "success", ...outcome } }).pipe(Effect.tapError((error) => auditRefusal("arcp.result", error)))
        }))
      .handle("reportError", ({ path, payload }) =>
        Effect.flatMap(reporterOf(payload.agent_id, "arcp.error"), (reporter) =>
          arcp.end({
            job_id: path.job_id,
            reporter,
            outcome: {
              ...failure(
                payload.code === "CANCELLED" ? "cancelled" : payload.code === "TIMEOUT" ? "timed_out" : "error",
                payload.code,
                payload.message
              ),
              ...(payload.details === undefined ? {} : { details: payload.details })
            }
          }).pipe(Effect.tapError((error) => auditRefusal("arcp.error", error)))))
  }))
