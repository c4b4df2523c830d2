import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, DefaultServices, Effect, Exit, Layer, Tracer } from "effect"
import * as Telemetry from "../src/layers/Telemetry.js"
import { Registry } from "../src/services/Registry.js"
import { Router } from "../src/services/Router.js"
import { register, routerLayer, sendTo } from "./support/router.js"

interface Exported {
  readonly name: string
  readonly attributes: Record<string, unknown>
  readonly service: unknown
}

interface Collector {
  readonly server: Server
  readonly endpoint: string
  readonly spans: Array<Exported>
  /** Every request, as "METHOD path". */
  readonly posts: Array<string>
}

/** A collector on a free port of 127.0.0.1 that keeps every span POSTed to /v1/traces (OTLP/HTTP, JSON). */
const collector = Effect.acquireRelease(
  Effect.async<Collector>((resume) => {
    const spans: Array<Exported> = []
    const posts: Array<string> = []
    const server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        posts.push(`${request.method} ${request.url}`)
        if (request.method === "POST" && request.url === "/v1/traces") {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
          for (const resourceSpans of body.resourceSpans ?? []) {
            const service = resourceSpans.resource?.attributes?.find((a: any) => a.key === "service.name")?.value?.stringValue
            for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
              for (const span of scopeSpans.spans ?? []) {
                const attributes: Record<string, unknown> = {}
                for (const { key, value } of span.attributes ?? []) {
                  attributes[key] = value.stringValue ?? value.intValue ?? value.doubleValue ?? value.boolValue
                }
                spans.push({ name: span.name, attributes, service })
              }
            }
          }
        }
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ server, endpoint: `http://127.0.0.1:${port}`, spans, posts }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** The telemetry layer reading the given variables, and nothing from the process. */
const fromVariables = (variables: Record<string, string>) =>
  Telemetry.layerFromEnv.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson(variables))))

const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

describe("Telemetry.layerFromEnv", () => {
  it.live("exports spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, named and attributed, as the service switchboard", () =>
    Effect.gen(function*() {
      const { endpoint, spans } = yield* collector
      // The layer's scope ends before the assertions: its spans are flushed then.
      yield* Effect.gen(function*() {
        expect(yield* Effect.tracer).not.toBe(defaultTracer)
        yield* Effect.withSpan(Effect.void, "telemetry-test-span", { attributes: { answer: 42 } })
        // The runtime's own commands, through the real layers.
        yield* register("a")
        yield* register("b")
        const receipt = yield* sendTo("b", { producer_id: "a", payload: "hello" })
        yield* Effect.flatMap(Router, (router) => router.status(receipt.message_id))
        yield* Effect.flip(Effect.flatMap(Registry, (registry) => registry.register({ agent_id: 42 } as never)))
      }).pipe(Effect.provide(routerLayer().pipe(Layer.provideMerge(fromVariables({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint })))))

      expect(spans.find((span) => span.name === "telemetry-test-span")).toMatchObject({
        attributes: { answer: 42 },
        service: "switchboard"
      })
      const registered = spans.filter((span) => span.name === "Registry.register")
      expect(registered.map((span) => span.attributes.agent_id)).toEqual(["a", "b", undefined])
      expect(registered[0].attributes.offset).toBeDefined()
      const send = spans.find((span) => span.name === "Router.send")!
      expect(send.attributes).toMatchObject({ agent_id: "a", to: "b", message_id: expect.any(String) })
      expect(Number(send.attributes.offset)).toBeGreaterThan(0)
      expect(spans.find((span) => span.name === "Router.status")?.attributes.message_id).toBe(send.attributes.message_id)
    }).pipe(Effect.scoped))

  it.live("sends to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, and takes OTEL_SERVICE_NAME", () =>
    Effect.gen(function*() {
      const { endpoint, posts, spans } = yield* collector
      yield* Effect.withSpan(Effect.void, "traces-endpoint-span").pipe(
        Effect.provide(fromVariables({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces`, OTEL_SERVICE_NAME: "relay" }))
      )
      expect(posts).toContain("POST /v1/traces")
      expect(spans.map(({ name, service }) => ({ name, service }))).toEqual([{ name: "traces-endpoint-span", service: "relay" }])
    }).pipe(Effect.scoped))

  it.live("without the variable exports nothing and leaves Effect's default tracer", () =>
    Effect.gen(function*() {
      const { posts } = yield* collector
      yield* Effect.gen(function*() {
        expect(yield* Effect.tracer).toBe(defaultTracer)
        yield* Effect.withSpan(Effect.void, "not-exported")
        yield* register("a")
      }).pipe(Effect.provide(routerLayer().pipe(Layer.provideMerge(fromVariables({ OTEL_SERVICE_NAME: "switchboard" })))))
      // Nothing was told where the collector is; nothing may have found it either.
      yield* Effect.sleep("200 millis")
      expect(posts).toEqual([])
    }).pipe(Effect.scoped))

  it.effect("refuses an endpoint that is not a URL", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(fromVariables({ OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" })).pipe(Effect.scoped))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("OTEL_EXPORTER_OTLP_ENDPOINT")
    }))
})
