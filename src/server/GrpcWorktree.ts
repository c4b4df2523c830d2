/**
 * `sw4rm.worktree.WorktreeService` over the runtime's Worktrees
 * (PROTOCOLS.md §1, "Coordination"), with the access rules of every edge
 * (`CoordinationAccess.ts`): an agent binds, unbinds, switches and reads
 * its own worktree; approving and rejecting a switch are the operator's.
 *
 * `Bind` answers `ok: false` only while a human decides (the gateway's
 * policy asks for one; `reason` names the invocation); a refusal is a
 * status. A switch stays in the agent's current repository (SW4RM's
 * SwitchRequest names no repository). Revoke and the report of a failed
 * bind have no RPC in SW4RM's proto: they are Switchboard's, over HTTP.
 */
import type * as Grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { inputDecoder } from "../internal/decode.js"
import { AgentRequest, BindRequest, SwitchApprove, SwitchReject, SwitchRequest } from "../schema/Sw4rmCoordination.js"
import type { WorktreeStatus } from "../schema/Worktree.js"
import type { Gateway } from "../services/Gateway.js"
import { Worktrees } from "../services/Worktrees.js"
import type { Authenticate } from "./Auth.js"
import * as Access from "./CoordinationAccess.js"
import { type Run, unary } from "./GrpcCalls.js"

const decodeBind = inputDecoder(BindRequest, "request")
const decodeAgent = inputDecoder(AgentRequest, "request")
const decodeSwitch = inputDecoder(SwitchRequest, "request")
const decodeApprove = inputDecoder(SwitchApprove, "request")
const decodeReject = inputDecoder(SwitchReject, "request")

/** SW4RM's StatusResponse: the current binding and its state. */
const statusResponse = (status: WorktreeStatus) => ({ repo_id: status.repo_id, worktree_id: status.worktree_id, state: status.state })

export const make = (run: Run<Gateway>, authenticate: Authenticate["Type"]) =>
  Effect.gen(function*() {
    const worktrees = Access.worktrees(yield* Worktrees)

    const bind = (request: typeof BindRequest.Type) =>
      Effect.map(worktrees.bind(request), (status) => {
        const bound = status.state === "BOUND_HOME" && status.repo_id === request.repo_id &&
          status.worktree_id === request.worktree_id
        if (bound) return { ok: true, reason: "" }
        return {
          ok: false,
          reason: status.hitl_id === undefined ? `the agent is ${status.state}` : `a human decides: hitl ${status.hitl_id}`
        }
      })

    const unbind = ({ agent_id }: typeof AgentRequest.Type) => Effect.as(worktrees.unbind({ agent_id }), { ok: true })

    const requestSwitch = (request: typeof SwitchRequest.Type) => Effect.map(worktrees.requestSwitch(request), statusResponse)

    const approve = ({ agent_id, target_worktree_id, ttl_ms }: typeof SwitchApprove.Type) =>
      Effect.map(
        worktrees.approveSwitch({ agent_id, target_worktree_id, ttl_ms: ttl_ms === 0 ? undefined : ttl_ms }),
        statusResponse
      )

    const reject = (request: typeof SwitchReject.Type) => Effect.map(worktrees.rejectSwitch(request), statusResponse)

    const status = ({ agent_id }: typeof AgentRequest.Type) => Effect.map(worktrees.status(agent_id), statusResponse)

    return {
      Bind: unary(run, authenticate, "BindRequest", decodeBind, bind),
      Unbind: unary(run, authenticate, "UnbindRequest", decodeAgent, unbind),
      RequestSwitch: unary(run, authenticate, "SwitchRequest", decodeSwitch, requestSwitch),
      ApproveSwitch: unary(run, authenticate, "SwitchApprove", decodeApprove, approve),
      RejectSwitch: unary(run, authenticate, "SwitchReject", decodeReject, reject),
      Status: unary(run, authenticate, "StatusRequest", decodeAgent, status)
    } satisfies Grpc.UntypedServiceImplementation
  })
