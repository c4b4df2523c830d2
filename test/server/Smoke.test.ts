import { it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { request, start } from "./harness.js"

it.scoped("the server answers its routes and problems over a real socket", () =>
  Effect.gen(function*() {
    const { url } = yield* start()
    const health = yield* request(`${url}/health`)
    expect(health).toMatchObject({ status: 200, body: { status: "ok" } })
    const registered = yield* request(`${url}/agents`, { body: { agent_id: "a", name: "A" } })
    expect(registered).toMatchObject({ status: 200, body: { descriptor: { agent_id: "a" }, available: true } })
    const junk = yield* request(`${url}/agents`, { raw: '{"agent_id":' })
    expect(junk).toMatchObject({ status: 400, type: "application/problem+json", body: { code: "VALIDATION_ERROR", retryable: false } })
    const unknown = yield* request(`${url}/nowhere`)
    expect(unknown).toMatchObject({ status: 404, type: "application/problem+json", body: { code: "NOT_FOUND" } })
    const missing = yield* request(`${url}/agents/nobody`)
    expect(missing).toMatchObject({ status: 404, body: { code: "NO_ROUTE", _tag: "NoRoute" } })
  }))

it.scoped("/metrics answers Prometheus text with the runtime's gauges", () =>
  Effect.gen(function*() {
    const { url } = yield* start()
    yield* request(`${url}/agents`, { body: { agent_id: "a", name: "A" } })
    const response = yield* Effect.promise(() => fetch(`${url}/metrics`))
    const text = yield* Effect.promise(() => response.text())
    expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4")
    expect(text).toContain("switchboard_agents_registered 1")
    expect(text).toContain('switchboard_messages{stage="RECEIVED"} 0')
  }))
