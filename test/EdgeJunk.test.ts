/**
 * Junk at every public method: each answers with a typed failure (never a
 * throw, a defect or a hang), and the runtime goes on.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import { Gateway } from "../src/services/Gateway.js"
import { Registry } from "../src/services/Registry.js"
import { Router } from "../src/services/Router.js"
import type { SecretStore } from "../src/services/SecretStore.js"
import { gatewayLayer, toolsPolicy } from "./support/gateway.js"
import { register } from "./support/router.js"

const deep = (n: number) => {
  let value: unknown = 1
  for (let i = 0; i < n; i++) value = { a: value }
  return value
}

describe("Junk at the edges", () => {
  it.scoped("every public method answers junk with a typed failure, and the loop goes on", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const gateway = yield* Gateway
      const registry = yield* Registry
      yield* register("a")
      yield* gateway.loadPolicy(toolsPolicy)
      const junk = null as never
      const calls: ReadonlyArray<readonly [string, () => Effect.Effect<unknown, unknown, SecretStore>]> = [
        ["router.send", () => router.send(junk)],
        ["router.send envelope", () => router.send({ to: "a", envelope: junk })],
        ["router.ack", () => router.ack(junk)],
        ["router.ackMany", () => router.ackMany(junk)],
        ["router.sendMany", () => router.sendMany(junk)],
        ["router.awaitStage", () => router.awaitStage(junk)],
        ["router.redrive", () => router.redrive(junk)],
        ["gateway.check", () => gateway.check(junk)],
        ["gateway.check deep args", () => gateway.check({ kind: "tool_call", agent_id: "a", tool: "web.search", args: deep(20_000) })],
        ["gateway.dispatchTool", () => gateway.dispatchTool(junk)],
        ["gateway.suspend", () => gateway.suspend(junk)],
        ["gateway.resume", () => gateway.resume(junk)],
        ["gateway.kill", () => gateway.kill(junk)],
        ["gateway.halt", () => gateway.halt(junk)],
        ["gateway.unhalt", () => gateway.unhalt(42 as never)],
        ["gateway.approve", () => gateway.approve(junk)],
        ["gateway.approvals", () => gateway.approvals(42 as never)],
        ["gateway.delegateLease", () => gateway.delegateLease(junk)],
        ["gateway.grantLease", () => gateway.grantLease(junk)],
        ["gateway.charge", () => gateway.charge(junk)],
        ["gateway.checkLease", () => gateway.checkLease(junk)],
        ["gateway.loadPolicy", () => gateway.loadPolicy(junk)],
        ["gateway.verifyAuditAgainst", () => gateway.verifyAuditAgainst(junk)],
        ["registry.register", () => registry.register(junk)],
        ["registry.heartbeat", () => registry.heartbeat(junk)],
        ["registry.deregister", () => registry.deregister(junk)],
        ["registry.addEdge", () => registry.addEdge(junk)],
        ["registry.keepAlive", () => registry.keepAlive(junk)]
      ]
      for (const [name, call] of calls) {
        const exit = yield* Effect.exit(Effect.suspend(call))
        const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        expect([name, Option.map(failure, (error) => (error as { _tag: string })._tag)]).toEqual([
          name,
          Option.some(expect.stringMatching(/ValidationError|InvalidPolicy/))
        ])
      }
      expect((yield* registry.list).map((agent) => agent.descriptor.agent_id)).toEqual(["a"])
    }).pipe(Effect.provide(gatewayLayer())))
})
