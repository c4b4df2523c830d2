import { FetchHttpClient } from "@effect/platform"
import { it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { expect } from "vitest"
import * as SwitchboardClient from "../../src/client/SwitchboardClient.js"
import * as SwitchboardClientNode from "../../src/client/SwitchboardClientNode.js"
import { newEnvelope } from "../../src/layers/Envelopes.js"
import { DuplicateDetected, MessageNotFound, NoRoute, ValidationError } from "../../src/schema/Errors.js"
import { InvalidPolicy } from "../../src/schema/Policy.js"
import { start } from "../server/harness.js"
import { makeKeys } from "./support.js"

const descriptor = (agent_id: string, more: { readonly parent_agent_id?: string } = {}) => ({
  agent_id,
  name: agent_id,
  description: "",
  capabilities: [],
  communication_class: "STANDARD" as const,
  modalities_supported: [],
  enforcement_mode: "enforce" as const,
  ...more
})

it.scopedLive("the typed client answers the runtime's values, and fails with the runtime's error classes", () =>
  Effect.gen(function*() {
    const { url } = yield* start()
    // Any HttpClient will do; a trailing slash on the base URL too.
    const client = yield* SwitchboardClient.make({ baseUrl: `${url}/` }).pipe(Effect.provide(FetchHttpClient.layer))
    expect(yield* client.health.health()).toEqual({ status: "ok" })

    const registered = yield* client.agents.register({ payload: descriptor("p") })
    expect(registered).toMatchObject({ descriptor: { agent_id: "p" }, available: true })
    yield* client.agents.register({ payload: descriptor("c") })

    // 404: NoRoute, the very class the in-process registry fails with.
    const missing = yield* Effect.flip(client.agents.get({ path: { agent_id: "nobody" } }))
    expect(missing).toBeInstanceOf(NoRoute)
    expect(missing).toMatchObject({ _tag: "NoRoute", code: "NO_ROUTE", retryable: false, to: "nobody" })
    // 400: ValidationError, with its issues.
    const orphan = yield* Effect.flip(client.agents.register({ payload: descriptor("o", { parent_agent_id: "ghost" }) }))
    expect(orphan).toBeInstanceOf(ValidationError)
    expect((orphan as ValidationError).issues[0]).toMatchObject({ path: "parent_agent_id" })
    // 404 again, another class at the same status.
    const unknownMessage = yield* Effect.flip(client.messages.status({ path: { message_id: "m-none" } }))
    expect(unknownMessage).toBeInstanceOf(MessageNotFound)

    const envelope = yield* newEnvelope({ producer_id: "p", payload: { n: 1 }, ttl_ms: 60_000 })
    const receipt = yield* client.messages.send({ payload: { to: "c", envelope } })
    expect(receipt).toMatchObject({ message_id: envelope.message_id, to: "c", stage: "RECEIVED" })
    // 409: the duplicate names the original.
    const duplicate = yield* Effect.flip(client.messages.send({ payload: { to: "c", envelope } }))
    expect(duplicate).toBeInstanceOf(DuplicateDetected)
    expect(duplicate).toMatchObject({ original_message_id: envelope.message_id })
    const noRoute = yield* Effect.flip(client.messages.send({ payload: { to: "nobody", envelope: { ...envelope, message_id: "m-2" } } }))
    expect(noRoute).toBeInstanceOf(NoRoute)

    yield* client.messages.ack({ payload: { agent_id: "c", message_id: envelope.message_id, stage: "FULFILLED" } })
    const status = yield* client.messages.awaitStage({ path: { message_id: envelope.message_id }, urlParams: { stage: "FULFILLED" } })
    expect(status).toMatchObject({ stage: "FULFILLED", attempts: 0 })

    const policy = yield* Effect.flip(client.gateway.loadPolicy({ payload: { yaml: "id: [" } }))
    expect(policy).toBeInstanceOf(InvalidPolicy)

    // An id that needs escaping reaches its own route, not another one.
    yield* client.agents.register({ payload: descriptor("team/a%2Fb c") })
    expect((yield* client.agents.get({ path: { agent_id: "team/a%2Fb c" } })).descriptor.agent_id).toBe("team/a%2Fb c")
  }))

it.scopedLive("the key goes as a bearer token; a refused one is Unauthorized, a key of another agent PermissionDenied", () =>
  Effect.gen(function*() {
    const keys = makeKeys(["p"])
    const { registry, url } = yield* start({ keys: keys.file })
    yield* registry.register({ agent_id: "q", name: "Q" })
    // Built in the test's scope: the Node client's connections live as long as the layer.
    const as = (apiKey?: string | Redacted.Redacted<string>) =>
      Effect.map(
        Layer.build(SwitchboardClientNode.layerNode({ baseUrl: url, apiKey })),
        Context.get(SwitchboardClient.SwitchboardClient)
      )

    const anonymous = yield* as()
    expect(yield* Effect.flip(anonymous.agents.list({ urlParams: {} }))).toMatchObject({ _tag: "Unauthorized", code: "UNAUTHENTICATED" })
    const forged = yield* as("sb_0000")
    expect(yield* Effect.flip(forged.agents.list({ urlParams: {} }))).toMatchObject({ _tag: "Unauthorized" })

    const p = yield* as(Redacted.make(keys.agents.p))
    expect(yield* p.agents.register({ payload: descriptor("p") })).toMatchObject({ descriptor: { agent_id: "p" } })
    const foreign = yield* Effect.flip(p.agents.heartbeat({ path: { agent_id: "q" }, payload: {} }))
    expect(foreign).toMatchObject({ _tag: "PermissionDenied", code: "PERMISSION_DENIED" })
    expect(yield* Effect.flip(p.gateway.halt({ payload: { reason: "no" } }))).toMatchObject({ _tag: "PermissionDenied" })

    const operator = yield* as(keys.operator)
    yield* operator.gateway.suspend({ path: { agent_id: "q" }, payload: { reason: "checking" } })
    expect((yield* operator.audit.state({ urlParams: {} })).state.gateway.suspended).toHaveProperty("q")
  }))
