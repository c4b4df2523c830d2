/**
 * The live registry: a thin layer over the command loop. Every request is
 * decoded at the edge, reads included, so nothing malformed reaches the loop.
 */
import { Effect, Layer, Option } from "effect"
import {
  type AgentEntry,
  agentInfo,
  decideDeregister,
  decideEdge,
  decideHeartbeat,
  decideRegister,
  lineageOf,
  subtreeOf
} from "../model/Agents.js"
import type { RuntimeState } from "../model/Runtime.js"
import { AgentDescriptor, EdgeRequest } from "../schema/Agent.js"
import { Id } from "../schema/Envelope.js"
import { DeregisterRequest, HeartbeatRequest } from "../schema/Requests.js"
import { inputDecoder } from "../internal/decode.js"
import { Registry } from "../services/Registry.js"
import { Runtime } from "../services/Runtime.js"
import { fieldOf, idOf, traced, tracedEffect, valueAt } from "./Spans.js"

const validDescriptor = inputDecoder(AgentDescriptor, "agent", { onExcessProperty: "error" })
const validHeartbeat = inputDecoder(HeartbeatRequest, "heartbeat")
const validDeregister = inputDecoder(DeregisterRequest, "deregister")
const validEdge = inputDecoder(EdgeRequest, "edge")
const validId = (subject: string) => inputDecoder(Id, subject)
const validAgentId = validId("agent_id")

const infos = (state: RuntimeState, ids: ReadonlyArray<string>) =>
  ids.flatMap((id) => {
    const agent = state.agents.get(id)
    return agent === undefined ? [] : [agentInfo(agent)]
  })

const registeredWhere = (state: RuntimeState, keep: (agent: AgentEntry) => boolean) =>
  [...state.agents.values()].filter((agent) => agent.registered && keep(agent)).map(agentInfo)

export const layer: Layer.Layer<Registry, never, Runtime> = Layer.effect(
  Registry,
  Effect.gen(function*() {
    const { config, query, run } = yield* Runtime

    /** A read of one id, checked first. */
    const byId = <A>(subject: string, read: (state: RuntimeState, id: string) => A) => {
      const valid = validId(subject)
      return (id: string) => Effect.flatMap(valid(id), (checked) => query((state) => read(state, checked)))
    }

    const byAgent = (agentId: unknown) => ({ agent_id: idOf(agentId) })
    const ofAgent = (request: unknown) => ({ agent_id: idOf(fieldOf(request, "agent_id")) })

    // Every method a span, when a tracer records them (`Spans.ts`).
    return Registry.of({
      register: traced("Registry.register", (descriptor) =>
        Effect.flatMap(validDescriptor(descriptor), (agent) =>
          valueAt(run((state, now) => decideRegister(state, config, agent, now)))), ofAgent),
      heartbeat: traced("Registry.heartbeat", (request) =>
        Effect.flatMap(validHeartbeat(request), (checked) =>
          valueAt(run((state, now) =>
            decideHeartbeat(state, config, {
              agent_id: checked.agent_id,
              state: checked.state ?? "RUNNING",
              health: checked.health ?? {}
            }, now)
          ))), ofAgent),
      keepAlive: traced("Registry.keepAlive", (agentId: string) =>
        Effect.flatMap(validAgentId(agentId), (agent_id) =>
          valueAt(run((state, now) => decideHeartbeat(state, config, { agent_id }, now)))), byAgent),
      deregister: traced("Registry.deregister", (request) =>
        Effect.flatMap(validDeregister(request), (checked) =>
          Effect.asVoid(valueAt(run((state, now) => decideDeregister(state, checked, now))))), ofAgent),
      get: traced("Registry.get", byId("agent_id", (state, id) => Option.map(Option.fromNullable(state.agents.get(id)), agentInfo)), byAgent),
      list: tracedEffect("Registry.list", query((state) => registeredWhere(state, () => true))),
      byCapability: traced("Registry.byCapability", byId("capability", (state, capability) =>
        registeredWhere(state, (agent) => agent.descriptor.capabilities.includes(capability))), (capability) => ({ capability: idOf(capability) })),
      lineage: traced("Registry.lineage", byId("agent_id", (state, id) => infos(state, state.agents.has(id) ? lineageOf(state, id) : [])), byAgent),
      subtree: traced("Registry.subtree", byId("agent_id", (state, id) => infos(state, state.agents.has(id) ? subtreeOf(state, id) : [])), byAgent),
      team: traced("Registry.team", byId("team_id", (state, team) => registeredWhere(state, (agent) => agent.descriptor.team_id === team)), (team) => ({ team_id: idOf(team) })),
      edges: traced("Registry.edges", byId("agent_id", (state, id) =>
        [...state.edges.values()].filter((edge) => edge.from === id || edge.to === id)), byAgent),
      addEdge: traced("Registry.addEdge", (edge) =>
        Effect.flatMap(validEdge(edge), (valid) => Effect.asVoid(valueAt(run((state, now) => decideEdge(state, valid, now))))), (edge) => ({
        agent_id: idOf(fieldOf(edge, "from")),
        to: idOf(fieldOf(edge, "to"))
      }))
    })
  })
)
