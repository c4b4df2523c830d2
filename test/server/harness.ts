/**
 * A real server for tests: `Server.layer` on 127.0.0.1, on a free port, over
 * an in-memory runtime (or the layers a test gives), inside the test's scope.
 * Tests talk to it over real sockets (`fetch`, WebSockets) and may reach the
 * runtime's services directly to look behind the wire.
 */
import { HttpServer } from "@effect/platform"
import { Context, Effect, Layer, type Scope } from "effect"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import * as KeysLive from "../../src/layers/KeysLive.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import type { KeysFile } from "../../src/schema/Keys.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { Arcp } from "../../src/services/Arcp.js"
import { Gateway } from "../../src/services/Gateway.js"
import { Keys } from "../../src/services/Keys.js"
import { Registry } from "../../src/services/Registry.js"
import { Router } from "../../src/services/Router.js"
import { SecretStore } from "../../src/services/SecretStore.js"
import * as Server from "../../src/server/Server.js"
import * as Grpc from "../../src/server/Grpc.js"

export interface Started {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string
  readonly registry: Registry["Type"]
  readonly router: Router["Type"]
  readonly gateway: Gateway["Type"]
  readonly arcp: Arcp["Type"]
  /** The port of SW4RM's gRPC services, when asked for (`grpc`). */
  readonly grpcPort: number | undefined
}

export const start = (options: {
  readonly runtime?: RuntimeOptions
  readonly server?: Server.ServerOptions
  /** Without it the server is open: every caller is the operator. */
  readonly keys?: KeysFile
  readonly secrets?: Readonly<Record<string, string>>
  /** Serves SW4RM's gRPC services too, on a free port unless said. */
  readonly grpc?: Grpc.GrpcOptions
} = {}): Effect.Effect<Started, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = Switchboard.layer(options.runtime ?? {}).pipe(Layer.provideMerge(EventLogMemory.layer()))
    const server = options.grpc === undefined
      ? Server.layer({ port: 0, ...options.server })
      : Layer.merge(Server.layer({ port: 0, ...options.server }), Grpc.layer({ port: 0, ...options.grpc }))
    const layer = server.pipe(
      Layer.provideMerge(runtime),
      Layer.provide(options.keys === undefined ? KeysLive.layerOpen : Layer.succeed(Keys, KeysLive.make(options.keys))),
      Layer.provide(SecretStore.layerMemory(options.secrets ?? {}))
    )
    const context = yield* Layer.build(layer)
    const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    return {
      url: `http://127.0.0.1:${address.port}`,
      registry: Context.get(context, Registry),
      router: Context.get(context, Router),
      gateway: Context.get(context, Gateway),
      arcp: Context.get(context, Arcp),
      grpcPort: options.grpc === undefined ? undefined : Context.unsafeGet(context, Grpc.GrpcServer).port
    }
  })

/** What `request` answers: the status, the content type, the headers and the body (parsed when JSON). */
export interface Answer {
  readonly status: number
  readonly type: string
  readonly headers: Headers
  readonly body: any
}

/** A JSON request; the answer's status, content type and parsed body. */
export const request = (
  url: string,
  init: { readonly method?: string; readonly body?: unknown; readonly key?: string; readonly raw?: string } = {}
): Effect.Effect<Answer> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = {}
    if (init.body !== undefined || init.raw !== undefined) headers["content-type"] = "application/json"
    if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`
    const response = await fetch(url, {
      method: init.method ?? (init.body === undefined && init.raw === undefined ? "GET" : "POST"),
      headers,
      body: init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body))
    })
    const text = await response.text()
    let body: any = undefined
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      body = text
    }
    return { status: response.status, type: response.headers.get("content-type") ?? "", headers: response.headers, body }
  })
