import { Effect, Layer, Stream, type Scope } from "effect"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import { newEnvelope } from "../../src/layers/Envelopes.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import type { EnvelopeInput } from "../../src/model/Envelopes.js"
import { Ids } from "../../src/services/Ids.js"
import { type Inbound, Router } from "../../src/services/Router.js"
import { Registry } from "../../src/services/Registry.js"

export const routerLayer = (config: RuntimeOptions = {}) =>
  Switchboard.layer(config).pipe(Layer.provideMerge(EventLogMemory.layer()), Layer.provideMerge(Ids.layerSequential("m")))

export const register = (agent_id: string, extra: Partial<{ capabilities: Array<string>; communication_class: "PRIVILEGED" | "STANDARD" | "BULK" }> = {}) =>
  Effect.flatMap(Registry, (registry) => registry.register({ agent_id, name: agent_id, ...extra }))

export const sendTo = (to: string | { capability: string }, input: EnvelopeInput) =>
  Effect.gen(function*() {
    const router = yield* Router
    const envelope = yield* newEnvelope(input)
    return yield* router.send({ to, envelope })
  })

/** Subscribes and gives a function that takes the next `n` inbound items. */
export const inbox = (agentId: string): Effect.Effect<(n: number) => Effect.Effect<ReadonlyArray<Inbound>>, never, Router | Scope.Scope> =>
  Effect.gen(function*() {
    const router = yield* Router
    const stream = yield* Effect.orDie(router.subscription(agentId))
    const pull = yield* Stream.toPull(stream)
    let buffer: Array<Inbound> = []
    return (n: number) =>
      Effect.gen(function*() {
        while (buffer.length < n) {
          const chunk = yield* Effect.orDie(pull)
          buffer = buffer.concat([...chunk])
        }
        const taken = buffer.slice(0, n)
        buffer = buffer.slice(n)
        return taken
      })
  })

/** Whether the registry has the agent available for messages. */
export const isAvailable = (agentId: string) =>
  Effect.flatMap(Registry, (registry) => Effect.map(registry.get(agentId), (info) => info._tag === "Some" && info.value.available))

/** The agent a message is with now, if the router knows the message. */
export const recipientOf = (messageId: string) =>
  Effect.flatMap(Router, (router) => Effect.map(router.status(messageId), (status) => status._tag === "Some" ? status.value.to : undefined))
