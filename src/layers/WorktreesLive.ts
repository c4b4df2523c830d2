/**
 * The live worktree bindings: a thin layer over the command loop. Each
 * command answers with the agent's status once its events are durable, read
 * in the loop right after.
 */
import { Effect, Layer, Schema } from "effect"
import { inputDecoder } from "../internal/decode.js"
import {
  decideApproveSwitch,
  decideBind,
  decideBindFailure,
  decideRejectSwitch,
  decideRequestSwitch,
  decideRevoke,
  decideUnbind,
  selectBindings,
  worktreeStatus
} from "../model/Worktrees.js"
import { Id } from "../schema/Envelope.js"
import { BindFailure, BindingsFilter, BindRequest, SwitchApprove, SwitchReject, SwitchRequest } from "../schema/Worktree.js"
import { Runtime } from "../services/Runtime.js"
import { Worktrees } from "../services/Worktrees.js"
import { commands } from "./Coordinated.js"
import { fieldOf, idOf, traced } from "./Spans.js"

const strict = { onExcessProperty: "error" } as const
const validBind = inputDecoder(BindRequest, "bind", strict)
const validSwitch = inputDecoder(SwitchRequest, "switch", strict)
const validApprove = inputDecoder(SwitchApprove, "switch", strict)
const validReject = inputDecoder(SwitchReject, "switch", strict)
const validFailure = inputDecoder(BindFailure, "bind_failure", strict)
const validAgentId = inputDecoder(Id, "agent_id")
const validFilter = inputDecoder(Schema.UndefinedOr(BindingsFilter), "worktrees", strict)

export const layer: Layer.Layer<Worktrees, never, Runtime> = Layer.scoped(
  Worktrees,
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const command = commands(runtime)
    const status = (agentId: string) => runtime.query((state) => worktreeStatus(state, agentId))
    /** The command, then the agent's status as it left it. */
    const then = <E>(effect: (input: unknown) => Effect.Effect<unknown, E>) => (input: unknown) =>
      Effect.zipRight(effect(input), status(String(fieldOf(input, "agent_id"))))
    const ofAgent = (request: unknown) => ({ agent_id: idOf(fieldOf(request, "agent_id")) })
    return Worktrees.of({
      bind: traced("Worktrees.bind", then(command(validBind, decideBind)), ofAgent),
      unbind: traced("Worktrees.unbind", then(command(validReject, decideUnbind)), ofAgent),
      requestSwitch: traced("Worktrees.requestSwitch", then(command(validSwitch, decideRequestSwitch)), ofAgent),
      approveSwitch: traced("Worktrees.approveSwitch", then(command(validApprove, decideApproveSwitch)), ofAgent),
      rejectSwitch: traced("Worktrees.rejectSwitch", then(command(validReject, decideRejectSwitch)), ofAgent),
      revoke: traced("Worktrees.revoke", then(command(validReject, decideRevoke)), ofAgent),
      reportBindFailure: traced("Worktrees.reportBindFailure", then(command(validFailure, decideBindFailure)), ofAgent),
      bindings: traced("Worktrees.bindings", (filter) =>
        Effect.flatMap(validFilter(filter), (valid) => runtime.query((state) => selectBindings(state, valid ?? {})))),
      status: traced("Worktrees.status", (agentId) => Effect.flatMap(validAgentId(agentId), status), (id) => ({ agent_id: idOf(id) }))
    })
  })
)
