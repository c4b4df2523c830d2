/**
 * `sw4rm.registry.RegistryService` over the runtime's Registry (PROTOCOLS.md
 * §1, "Registry"): register a descriptor, heartbeat with a state and a health
 * map, deregister. An agent's key registers and reports only its own agent,
 * as over HTTP. A refusal (a descriptor the registry refuses, a killed agent,
 * an unknown one) is a status, like every other failure.
 */
import type * as Grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { inputDecoder } from "../internal/decode.js"
import { DeregisterAgentRequest, HeartbeatRequest, RegisterAgentRequest } from "../schema/Sw4rm.js"
import type { Gateway } from "../services/Gateway.js"
import { Registry } from "../services/Registry.js"
import type { Router } from "../services/Router.js"
import { actAs } from "./Access.js"
import type { Authenticate } from "./Auth.js"
import { type Run, unary } from "./GrpcCalls.js"

const decodeRegister = inputDecoder(RegisterAgentRequest, "request")
const decodeHeartbeat = inputDecoder(HeartbeatRequest, "request")
const decodeDeregister = inputDecoder(DeregisterAgentRequest, "request")

export const make = (run: Run<Router | Registry | Gateway>, authenticate: Authenticate["Type"]) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const register = (request: typeof RegisterAgentRequest.Type) =>
      Effect.gen(function*() {
        const agent = request.agent
        yield* actAs(agent.agent_id, "agents.register")
        yield* registry.register(agent)
        return { accepted: true, reason: "" }
      })
    const heartbeat = ({ agent_id, health, state }: typeof HeartbeatRequest.Type) =>
      Effect.zipRight(
        actAs(agent_id, "agents.heartbeat"),
        Effect.as(registry.heartbeat({ agent_id, health, ...(state === undefined ? {} : { state }) }), { ok: true })
      )
    const deregister = ({ agent_id, reason }: typeof DeregisterAgentRequest.Type) =>
      Effect.zipRight(actAs(agent_id, "agents.deregister"), Effect.as(registry.deregister({ agent_id, reason }), { ok: true }))
    return {
      RegisterAgent: unary(run, authenticate, "RegisterAgentRequest", decodeRegister, register),
      Heartbeat: unary(run, authenticate, "HeartbeatRequest", decodeHeartbeat, heartbeat),
      DeregisterAgent: unary(run, authenticate, "DeregisterAgentRequest", decodeDeregister, deregister)
    } satisfies Grpc.UntypedServiceImplementation
  })
