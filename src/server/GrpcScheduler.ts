/**
 * `sw4rm.scheduler.SchedulerService` over the runtime's Scheduler
 * (PROTOCOLS.md §1, "Coordination"), with the access rules of every edge
 * (`CoordinationAccess.ts`):
 *
 * - `SubmitTask`: queued, then dispatched by priority as a message to the
 *   agent (`agent_id`, or `capability:NAME` for any agent advertising it);
 *   the task's id, given or named by the runtime, comes back in the
 *   `sw4rm-task-id` response header. `params` is the task's input (JSON, or
 *   any bytes as `{ content_type, base64 }`). A refusal is a status, never
 *   `accepted: false`.
 * - `RequestPreemption` (the operator's): `enqueued` is false when the task
 *   does not outrank what the agent runs.
 * - `ShutdownAgent`, `PollActivityBuffer`, `PurgeActivity`: the agent's own.
 */
import type * as Grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { inputDecoder } from "../internal/decode.js"
import {
  AgentRequest,
  jsonOfBytes,
  millisOf,
  PreemptRequest,
  PurgeActivityRequest,
  ShutdownAgentRequest,
  SubmitTaskRequest
} from "../schema/Sw4rmCoordination.js"
import type { Gateway } from "../services/Gateway.js"
import { Scheduler } from "../services/Scheduler.js"
import type { Authenticate } from "./Auth.js"
import * as Access from "./CoordinationAccess.js"
import { type Run, sendHeaders, unary } from "./GrpcCalls.js"

const decodeSubmit = inputDecoder(SubmitTaskRequest, "request")
const decodePreempt = inputDecoder(PreemptRequest, "request")
const decodeShutdown = inputDecoder(ShutdownAgentRequest, "request")
const decodeAgent = inputDecoder(AgentRequest, "request")
const decodePurge = inputDecoder(PurgeActivityRequest, "request")

/** SW4RM names one agent; `capability:NAME`, as in the router's `sw4rm-to`, names any that advertises it. */
const targetOf = (agent_id: string) =>
  agent_id.startsWith("capability:") ? { capability: agent_id.slice("capability:".length) } : { agent_id }

export const make = (run: Run<Gateway>, authenticate: Authenticate["Type"]) =>
  Effect.gen(function*() {
    const scheduler = Access.scheduler(yield* Scheduler)

    const submit = (request: typeof SubmitTaskRequest.Type, call: Grpc.ServerUnaryCall<unknown, unknown>) =>
      Effect.gen(function*() {
        const input = yield* jsonOfBytes(request.params, request.content_type, "params")
        const task = yield* scheduler.submit({
          ...targetOf(request.agent_id),
          task_id: request.task_id,
          priority: request.priority,
          scope: request.scope,
          input
        })
        yield* sendHeaders(call, { "sw4rm-task-id": task.task_id })
        return { accepted: true, reason: "" }
      })

    const preempt = (request: typeof PreemptRequest.Type) =>
      Effect.map(scheduler.requestPreemption(request), (answer) => ({ enqueued: answer.enqueued }))

    const shutdown = ({ agent_id, grace_period }: typeof ShutdownAgentRequest.Type) =>
      Effect.map(
        scheduler.shutdownAgent({ agent_id, grace_ms: grace_period === null ? undefined : millisOf(grace_period) }),
        (answer) => ({ ok: answer.ok })
      )

    const poll = ({ agent_id }: typeof AgentRequest.Type) => scheduler.pollActivity(agent_id)

    const purge = (request: typeof PurgeActivityRequest.Type) => scheduler.purgeActivity(request)

    return {
      SubmitTask: unary(run, authenticate, "SubmitTaskRequest", decodeSubmit, submit),
      RequestPreemption: unary(run, authenticate, "PreemptRequest", decodePreempt, preempt),
      ShutdownAgent: unary(run, authenticate, "ShutdownAgentRequest", decodeShutdown, shutdown),
      PollActivityBuffer: unary(run, authenticate, "PollActivityBufferRequest", decodeAgent, poll),
      PurgeActivity: unary(run, authenticate, "PurgeActivityRequest", decodePurge, purge)
    } satisfies Grpc.UntypedServiceImplementation
  })
