/**
 * Deeply nested input: every decoder of outside input refuses a value nested
 * more than `maxDepth` arrays and objects deep with its typed error, naming
 * where the nesting starts, and never throws (Schema's parser, its
 * formatters and the `yaml` package all recurse once per level).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc } from "effect"
import { AgentDescriptor, decodeAckPayload, decodeEnvelope, decodeEnvelopeJson, Lease, parsePolicy } from "../src/index.js"
import { EdgeRequest } from "../src/schema/Agent.js"
import { decodeEvent } from "../src/schema/Event.js"
import { ChargeRequest, GatedAction } from "../src/schema/GatewayEvents.js"
import { LeaseCheck } from "../src/schema/Lease.js"
import { decodePolicy } from "../src/schema/Policy.js"
import { maxDepth, tooDeep } from "../src/internal/bounds.js"
import { AuditContext } from "../src/schema/Audit.js"
import { inputDecoder } from "../src/internal/decode.js"
import { newEnvelope } from "../src/layers/Envelopes.js"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { Router } from "../src/services/Router.js"
import { gatewayLayer } from "./support/gateway.js"

type Shape = "array" | "object"
/** JSON text nesting `depth` arrays or objects. */
const nestedText = (depth: number, shape: Shape) =>
  shape === "array" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth)
const nested = (depth: number, shape: Shape): unknown => JSON.parse(nestedText(depth, shape))

/** What any decoder gives: a value, or a typed error with a message. Throws only if the decoder throws. */
const outcome = (result: unknown): Either.Either<unknown, { readonly _tag: string; readonly message: string }> =>
  Effect.runSync(Effect.either(result as Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>))

const strict = { onExcessProperty: "error" } as const
const envelope = {
  message_id: "m-1",
  producer_id: "a",
  correlation_id: "c",
  sequence_number: 1,
  retry_count: 0,
  message_type: "DATA",
  content_type: "text/plain",
  content_length: 0,
  ttl_ms: 0,
  timestamp: "2024-05-01T12:00:00.000Z",
  payload: "",
  state: "SENT"
}
const ackedAt = { _tag: "MessageAcked", message_id: "m", agent_id: "a", stage: "READ", at: 1 }

/** Each decoder of outside input, given a deep value to put in one of its fields. */
const decoders: Record<string, (deep: unknown, text: string) => unknown> = {
  envelope: (deep) => decodeEnvelope({ ...envelope, producer_id: deep }),
  "envelope, the whole": (deep) => decodeEnvelope(deep),
  "envelope JSON text": (_, text) => decodeEnvelopeJson(text),
  "envelope JSON text, a field": (_, text) => decodeEnvelopeJson(`{"message_id":${text}}`),
  "ack payload": (deep) => decodeAckPayload({ ack_for_message_id: "m", ack_stage: "READ", note: deep }),
  "agent descriptor": (deep) => inputDecoder(AgentDescriptor, "agent", strict)({ agent_id: "a", name: deep }),
  "tool call": (deep) => inputDecoder(GatedAction, "action", strict)({ kind: "tool_call", agent_id: "a", tool: "t", args: deep }),
  "tool name": (deep) => inputDecoder(GatedAction, "action", strict)({ kind: "tool_call", agent_id: "a", tool: deep, args: 1 }),
  "audit context": (deep) => inputDecoder(AuditContext, "context", strict)({ trace_id: deep }),
  lease: (deep) => inputDecoder(Lease, "lease", strict)({ lease_id: "l", agent_id: "a", grants: { "fs.read": deep } }),
  "lease check": (deep) => inputDecoder(LeaseCheck, "lease")({ lease_id: deep, namespace: "fs.read", resource: "r" }),
  charge: (deep) => inputDecoder(ChargeRequest, "charge")({ agent_id: "a", currency: "USD", amount: deep }),
  edge: (deep) => inputDecoder(EdgeRequest, "edge")({ from: "a", to: deep, edge_type: "calls" }),
  policy: (deep) => decodePolicy({ id: "p", scope: { kind: "global" }, tools: deep }),
  "event record": (_, text) =>
    decodeEvent(1, { type: "MessageAcked", version: 1, payload: JSON.stringify({ ...ackedAt, note: "NOTE" }).replace('"NOTE"', text) })
}

describe("deeply nested input", () => {
  it("is refused by every decoder with its typed error, never a throw (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(decoders)),
        fc.oneof(fc.integer({ min: 2 * maxDepth + 1, max: 3_000 }), fc.constantFrom(2 * maxDepth + 1, 10_000, 100_000)),
        fc.constantFrom<Shape>("array", "object"),
        (name, depth, shape) => {
          let result: ReturnType<typeof outcome>
          try {
            result = outcome(decoders[name](nested(depth, shape), nestedText(depth, shape)))
          } catch (thrown) {
            throw new Error(`${name} threw at depth ${depth}: ${String(thrown)}`)
          }
          if (Either.isRight(result)) throw new Error(`${name} accepted a value ${depth} deep`)
          expect(result.left.message).toMatch(/nested more than \d+ levels deep/)
          expect(result.left.message.length).toBeLessThan(4_000)
        }
      ),
      { numRuns: 150 }
    )
  })

  it("names where the nesting starts", () => {
    const error = outcome(decoders["tool call"](nested(5_000, "array"), ""))
    expect(Either.isLeft(error) && error.left.message).toBe(
      "invalid action: args.0.0.0.0.0.0.0.…: is nested more than 64 levels deep (arrays and objects)"
    )
  })

  it("is taken up to the limit, the input itself counting as the first level", () => {
    const decode = inputDecoder(GatedAction, "action", strict)
    const action = (depth: number) => ({ kind: "tool_call", agent_id: "a", tool: "t", args: nested(depth, "object") })
    expect(Either.isRight(decode(action(maxDepth - 1)))).toBe(true)
    expect(Either.isLeft(decode(action(maxDepth)))).toBe(true)
  })

  it("as a cyclic value is too deep, and a value shared at every level costs one visit", () => {
    const cyclic: Record<string, unknown> = { kind: "tool_call", agent_id: "a", tool: "t" }
    cyclic.args = cyclic
    expect(outcome(decoders["tool call"](cyclic, ""))).toMatchObject({ left: { _tag: "ValidationError" } })
    // 2^40 paths through 41 arrays.
    let shared: unknown = []
    for (let i = 0; i < 40; i++) shared = [shared, shared]
    expect(tooDeep(shared)).toBeUndefined()
    expect(tooDeep([shared, shared], 41)).toEqual([0, ...Array(40).fill(0)])
  })
})

describe("deeply nested YAML", () => {
  const refused = (yaml: string) => {
    const result = parsePolicy(yaml)
    expect(Either.isLeft(result) && result.left.message).toMatch(/nested more than 64 levels deep/)
  }

  it("is refused before the yaml package recurses into it: flow, block and compact block nesting", () => {
    refused(`id: p\nscope: { kind: global }\ntools: ${nestedText(100_000, "array")}`)
    refused(`id: p\nscope: { kind: global }\ntools: ${"{a: ".repeat(50_000)}1${"}".repeat(50_000)}`)
    refused(`id: p\nscope: { kind: global }\ntools:\n${"- ".repeat(100_000)}x`)
    refused(`id: p\nscope: { kind: global }\ntools:\n${Array.from({ length: 300 }, (_, i) => `${" ".repeat(i + 1)}a:`).join("\n")} 1`)
  })

  it("counts an alias as deep as what it stands for", () => {
    const deep = (depth: number, inner: string) => "[".repeat(depth) + inner + "]".repeat(depth)
    refused(`id: p\nscope: { kind: global }\nx: &a ${deep(40, "1")}\ntools: ${deep(30, "*a")}`)
    // An anchor used many times, within the limit, is fine (and refused only for what the policy is).
    const fine = parsePolicy(`id: p\nscope: { kind: global }\nx: &a ${deep(20, "1")}\ntools: ${deep(20, "*a, *a, *a")}`)
    expect(Either.isLeft(fine) && fine.left.message).not.toMatch(/nested/)
  })
})

describe("deeply nested requests to the services", () => {
  const deep = () => nested(10_000, "array")
  const refusedWith = (effect: Effect.Effect<unknown, { readonly _tag: string; readonly message: string }, any>) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(effect)
      expect(error._tag).toBe("ValidationError")
      expect(error.message).toMatch(/nested more than 64 levels deep/)
    })

  it.scoped("fail with ValidationError, never a defect", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      const router = yield* Router
      const gateway = yield* Gateway
      yield* registry.register({ agent_id: "a", name: "a" })
      yield* registry.register({ agent_id: "b", name: "b" })
      const sent = yield* router.send({ to: "b", envelope: yield* newEnvelope({ producer_id: "a", payload: "hi" }) })
      // An ACKNOWLEDGEMENT's JSON payload is parsed and decoded as an ack.
      const ack = yield* newEnvelope({ producer_id: "b", payload: "x" })
      const text = `{"ack_for_message_id":"${sent.message_id}","ack_stage":"READ","note":${nestedText(10_000, "array")}}`
      const bytes = new TextEncoder().encode(text)
      yield* refusedWith(router.send({
        to: "a",
        envelope: { ...ack, message_type: "ACKNOWLEDGEMENT", payload: bytes, content_length: bytes.length }
      }))
      yield* refusedWith(router.send({ to: "b", envelope: { ...ack, producer_id: deep() as string } }))
      yield* refusedWith(router.ack({ agent_id: "b", message_id: sent.message_id, stage: "READ", note: deep() as string }))
      yield* refusedWith(registry.register({ agent_id: "c", name: "c", capabilities: deep() as Array<string> }))
      yield* refusedWith(registry.heartbeat({ agent_id: "a", state: "RUNNING", health: { load: deep() as string } }))
      yield* refusedWith(registry.deregister({ agent_id: "a", reason: deep() as string }))
      yield* refusedWith(registry.addEdge({ from: "a", to: deep() as string, edge_type: "calls" }))
      yield* refusedWith(gateway.check({ kind: "tool_call", agent_id: "a", tool: "t", args: deep() }))
      yield* refusedWith(gateway.check({ kind: "llm_call", agent_id: "a", model: "m", context: { trace_id: deep() as string } }))
      yield* refusedWith(gateway.dispatchTool({ agent_id: "a", tool: "t", args: deep() }))
      yield* refusedWith(gateway.grantLease({ lease_id: "l", agent_id: "a", grants: { "fs.read": deep() as Array<string> } }))
      yield* refusedWith(gateway.checkLease({ lease_id: deep() as string, namespace: "fs.read", resource: "r" }))
      yield* refusedWith(gateway.charge({ agent_id: "a", currency: "USD", amount: deep() as number }))
      yield* refusedWith(gateway.kill({ agent_id: "a", reason: deep() as string }))
      // Nothing of it reached the log or changed the runtime.
      expect((yield* registry.get("a"))._tag).toBe("Some")
    }).pipe(Effect.provide(gatewayLayer())))
})
