/**
 * Every route of `SwitchboardApi`, over a real socket: its success, and each
 * failure it documents that a healthy server can be brought to answer (400
 * naming the field, 401, 403, 404, 409, 410, 413, 422, 429 with
 * `Retry-After`, 503), each a problem+json with its wire `code` and
 * `retryable`. The routes come from the API's definition (`HttpApi.reflect`),
 * so a route added without a case here fails the coverage test. The OpenAPI
 * document lists the same routes and statuses; `/docs` is a page.
 *
 * The servers run on the test's clock (TestClock): TTLs, liveness and the
 * rate limiter's refill move only when the test moves the clock.
 */
import { describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { expect } from "vitest"
import { request, start } from "./harness.js"
import { keys, keysFile, routes } from "./wire.js"

const policy = `
id: routes
scope: { kind: global }
tools:
  "*": { allow: false }
  http.get: { allow: true }
  deploy: { allow: true, requires_approval_if: "tool == 'deploy'" }
budgets:
  - { currency: USD, limit: 10, per: agent }
`

const client = (url: string, key: string | undefined) => ({
  get: (path: string) => request(`${url}${path}`, { key }),
  post: (path: string, body: unknown = {}) => request(`${url}${path}`, { method: "POST", body, key }),
  raw: (path: string, raw: string) => request(`${url}${path}`, { method: "POST", raw, key }),
  del: (path: string) => request(`${url}${path}`, { method: "DELETE", key })
})

describe("Retry-After", () => {
  it.scoped("is sent with a retryable 429 (a rate limit), not with one that is not (a spent budget)", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, server: { rateLimit: { ratePerSecond: 1, burst: 3 } } })
      const a = client(url, keys.a)
      yield* client(url, keys.operator).post("/policies", { yaml: policy })
      yield* a.post("/agents", { agent_id: "a", name: "A" })
      const spent = yield* a.post("/agents/a/charge", { currency: "USD", amount: 100 })
      expect({ status: spent.status, code: spent.body.code, retryable: spent.body.retryable, retryAfter: spent.headers.get("retry-after") }).toEqual({
        status: 429,
        code: "BUDGET_EXHAUSTED",
        retryable: false,
        retryAfter: null
      })
      yield* a.get("/agents")
      const limited = yield* a.get("/agents")
      expect({ status: limited.status, code: limited.body.code, retryable: limited.body.retryable, retryAfter: Number(limited.headers.get("retry-after")) >= 1 }).toEqual({
        status: 429,
        code: "RATE_LIMITED",
        retryable: true,
        retryAfter: true
      })
    }))
})

describe("the OpenAPI document and the docs page", () => {
  it.scoped("/openapi.json is OpenAPI 3.1 listing every route of the API with its parameters, statuses and problem bodies", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const answer = yield* request(`${url}/openapi.json`)
      expect({ status: answer.status, type: answer.type }).toEqual({ status: 200, type: "application/json" })
      const doc = answer.body
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/)
      expect(doc.info).toMatchObject({ title: "Switchboard", version: expect.any(String) })
      expect(doc.components.securitySchemes).toEqual({ bearer: { type: "http", scheme: "bearer" } })

      const listed = Object.entries<any>(doc.paths).flatMap(([path, operations]) =>
        Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`)
      )
      const expected = routes.map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, "{$1}")}`)
      expect(listed.sort()).toEqual([...expected].sort())

      const operationIds = new Set<string>()
      for (const route of routes) {
        const operation = doc.paths[route.path.replace(/:(\w+)/g, "{$1}")][route.method.toLowerCase()]
        const where = `${route.method} ${route.path}`
        expect({ where, operationId: operation.operationId }).toEqual({ where, operationId: route.id })
        operationIds.add(operation.operationId)
        // Path parameters: each one declared, required.
        for (const name of [...route.path.matchAll(/:(\w+)/g)].map((match) => match[1])) {
          expect({ where, parameter: operation.parameters.find((p: any) => p.name === name && p.in === "path")?.required }).toEqual({
            where,
            parameter: true
          })
        }
        expect({ where, security: operation.security }).toEqual({ where, security: route.authenticated ? [{ bearer: [] }] : [] })
        expect({ where, statuses: Object.keys(operation.responses).map(Number).sort() }).toEqual({
          where,
          statuses: [...route.successes, ...route.failures].sort()
        })
        for (const [status, response] of Object.entries<any>(operation.responses)) {
          if (Number(status) < 400) continue
          // Every failure is a problem, whose schema has the members RFC 7807 and Switchboard give it.
          expect({ where, status, types: Object.keys(response.content ?? {}) }).toEqual({ where, status, types: ["application/problem+json"] })
          const schema = response.content["application/problem+json"].schema
          for (const ref of schema.$ref !== undefined ? [schema.$ref] : schema.anyOf.map((member: any) => member.$ref)) {
            const component = doc.components.schemas[ref.replace("#/components/schemas/", "")]
            expect({ where, status, ref, required: component?.required }).toEqual({
              where,
              status,
              ref,
              required: expect.arrayContaining(["type", "title", "status", "detail", "code", "retryable"])
            })
          }
        }
        if (Option.isSome(route.payload) && route.method !== "GET") {
          expect({ where, body: Object.keys(operation.requestBody?.content ?? {}) }).toEqual({ where, body: ["application/json"] })
        }
      }
      expect(operationIds.size).toBe(routes.length)

      // Every reference resolves.
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((match) => match[1])
      expect(refs.length).toBeGreaterThan(0)
      for (const ref of new Set(refs)) {
        const resolved = ref.replace(/^#\//, "").split("/").reduce((node: any, key) => node?.[key], doc)
        expect({ ref, resolved: resolved !== undefined }).toEqual({ ref, resolved: true })
      }
    }))

  it.scoped("/docs answers an HTML page built on the document", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile })
      const page = yield* request(`${url}/docs`)
      expect(page.status).toBe(200)
      expect(page.type).toMatch(/^text\/html/)
      expect(page.body).toMatch(/^<!doctype html>/i)
      expect(page.body).toContain("Switchboard")
    }))
})
