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
import { Runtime, valueOf } from "../services/Runtime.js"

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

    return Registry.of({
      register: (descriptor) =>
        Effect.flatMap(validDescriptor(descriptor), (agent) =>
          valueOf(run((state, now) => decideRegister(state, config, agent, now)))),
      heartbeat: (request) =>
        Effect.flatMap(validHeartbeat(request), (checked) =>
          valueOf(run((state, now) =>
            decideHeartbeat(state, config, {
              agent_id: checked.agent_id,
              state: checked.state ?? "RUNNING",
              health: checked.health ?? {}
            }, now)
          ))),
      keepAlive: (agentId) =>
        Effect.flatMap(validAgentId(agentId), (agent_id) =>
          valueOf(run((state, now) => decideHeartbeat(state, config, { agent_id }, now)))),
      deregister: (request) =>
        Effect.flatMap(validDeregister(request), (checked) =>
          Effect.asVoid(run((state, now) => decideDeregister(state, checked, now)))),
      get: byId("agent_id", (state, id) => Option.map(Option.fromNullable(state.agents.get(id)), agentInfo)),
      list: query((state) => registeredWhere(state, () => true)),
      byCapability: byId("capability", (state, capability) =>
        registeredWhere(state, (agent) => agent.descriptor.capabilities.includes(capability))),
      lineage: byId("agent_id", (state, id) => infos(state, state.agents.has(id) ? lineageOf(state, id) : [])),
      subtree: byId("agent_id", (state, id) => infos(state, state.agents.has(id) ? subtreeOf(state, id) : [])),
      team: byId("team_id", (state, team) => registeredWhere(state, (agent) => agent.descriptor.team_id === team)),
      edges: byId("agent_id", (state, id) =>
        [...state.edges.values()].filter((edge) => edge.from === id || edge.to === id)),
      addEdge: (edge) =>
        Effect.flatMap(validEdge(edge), (valid) => Effect.asVoid(run((state, now) => decideEdge(state, valid, now))))
    })
  })
)
