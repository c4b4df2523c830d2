/**
 * The network server: the HTTP API (with its OpenAPI document at
 * `/openapi.json` and a documentation page at `/docs`), the live streams,
 * `/metrics` and the console's files at `/console`, over the runtime's
 * services in context. One layer: give it the runtime (`Switchboard.layer`
 * over an event log), the keys and a secret store, and it listens until its
 * scope closes. Closing it stops accepting, lets requests in flight finish,
 * ends the streams, then lets the runtime below close the log.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Layer } from "effect"
import * as Http from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import type { EventLog } from "../services/EventLog.js"
import type { Gateway } from "../services/Gateway.js"
import type { Keys } from "../services/Keys.js"
import type { Registry } from "../services/Registry.js"
import type { Router } from "../services/Router.js"
import type { Runtime } from "../services/Runtime.js"
import type { SecretStore } from "../services/SecretStore.js"
import type { Arcp } from "../services/Arcp.js"
import { SwitchboardApi } from "./Api.js"
import * as ArcpEdge from "./Arcp.js"
import * as Auth from "./Auth.js"
import { edge } from "./Edge.js"
import { agents, messages } from "./HandlersRouter.js"
import * as Console from "./Console.js"
import * as Docs from "./Docs.js"
import * as Streams from "./Streams.js"
import { arcp } from "./HandlersArcp.js"
import { assembly, audit, gateway, health } from "./HandlersGateway.js"
import * as HandlersCoordination from "./HandlersCoordination.js"
import type { Coordination } from "../layers/Switchboard.js"
import { inspect } from "./HandlersInspect.js"

export interface ServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** Default 7070; 0 picks a free port. */
  readonly port?: number | undefined
  /** The largest request body, in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number | undefined
  /** Connections open at once; one more is answered 503 and closed (default 10,000). */
  readonly maxConnections?: number | undefined
  /** Per key (or per address on an open server); default 1,000 a second, bursts of 2,000. */
  readonly rateLimit?: Auth.RateLimit | undefined
  /** An idle keep-alive connection is closed after this long (default 5 s). */
  readonly idleTimeoutMs?: number | undefined
  /** Where the console's built files are (default `console/dist` of this package). */
  readonly consoleDirectory?: string | undefined
}

export const defaults = {
  host: "127.0.0.1",
  port: 7070,
  maxBodyBytes: 1024 * 1024,
  maxConnections: 10_000,
  rateLimit: { ratePerSecond: 1_000, burst: 2_000 },
  idleTimeoutMs: 5_000
} as const

const overCapacity = JSON.stringify({
  type: "urn:switchboard:error:TooManyConnections",
  title: "TooManyConnections",
  status: 503,
  detail: "the server has as many connections open as it takes; retry shortly",
  code: "AGENT_UNAVAILABLE",
  retryable: true
})

const rawProblem = (status: number, reason: string, body: string) =>
  `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/problem+json\r\n` +
  `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

const unreadable = (status: number, detail: string) =>
  JSON.stringify({
    type: "urn:switchboard:error:ValidationError",
    title: "ValidationError",
    status,
    detail,
    code: "VALIDATION_ERROR",
    retryable: false,
    subject: "request",
    issues: [{ path: "", message: detail }]
  })

/**
 * What Node's parser refuses before any route sees it (a request line or
 * headers over the limit, bytes that are no HTTP), answered as a problem
 * like every other refusal rather than a bare status line. Timeouts and
 * resets are left as Node handles them.
 */
const onClientError = (error: NodeJS.ErrnoException, socket: Duplex) => {
  if (!socket.writable || (socket as Socket).bytesWritten > 0) return socket.destroy()
  if (error.code === "HPE_HEADER_OVERFLOW") {
    return socket.end(rawProblem(431, "Request Header Fields Too Large", unreadable(431, "the request line and headers are too large")))
  }
  if (error.code?.startsWith("HPE_")) {
    return socket.end(rawProblem(400, "Bad Request", unreadable(400, "not an HTTP/1.1 request the server can read")))
  }
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") return socket.end("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
  socket.destroy()
}

/** A Node server that answers a connection over the limit with a 503 problem, not a reset. */
const nodeServer = (maxConnections: number, idleTimeoutMs: number, upgrades?: ArcpEdge.Upgrades) => () => {
  const server = Http.createServer({ keepAliveTimeout: idleTimeoutMs, headersTimeout: 15_000, requestTimeout: 30_000 })
  if (upgrades !== undefined) {
    // `/arcp` is upgraded by the ARCP edge itself, before the HTTP app's own upgrade listener sees it.
    const emit = server.emit.bind(server) as (event: string, ...args: Array<any>) => boolean
    server.emit = ((event: string, ...args: Array<any>) =>
      event === "upgrade" && upgrades.handle?.(args[0], args[1], args[2]) === true ? true : emit(event, ...args)) as typeof server.emit
  }
  server.on("clientError", onClientError)
  let open = 0
  server.on("connection", (socket: Socket) => {
    open++
    socket.once("close", () => open--)
    if (open > maxConnections) {
      socket.end(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\n" +
          `Connection: close\r\nContent-Length: ${Buffer.byteLength(overCapacity)}\r\n\r\n${overCapacity}`
      )
    }
  })
  return server
}

/** The longest path parameter routed, in characters once decoded: well past the longest id (256). */
const maxPathParam = 4096

const ApiLive = HttpApiBuilder.api(SwitchboardApi).pipe(
  Layer.provide([
    agents,
    messages,
    gateway,
    audit,
    assembly,
    arcp,
    health,
    inspect,
    HandlersCoordination.scheduler,
    HandlersCoordination.worktrees,
    HandlersCoordination.negotiation,
    HandlersCoordination.hitl
  ])
)

/** The HTTP app's layers, on whatever `HttpServer` is provided (and the ARCP edge's own upgrades, when given). */
export const app = (options: ServerOptions = {}, upgrades?: ArcpEdge.Upgrades) => {
  const maxBodyBytes = options.maxBodyBytes ?? defaults.maxBodyBytes
  return HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(HttpApiBuilder.middleware(edge(maxBodyBytes))),
    Layer.provide(Streams.layer),
    Layer.provide(Docs.layer),
    Layer.provide(Console.layer(options.consoleDirectory)),
    Layer.provide(ArcpEdge.layer(upgrades)),
    Layer.provide(ApiLive),
    Layer.provide(Auth.layer),
    Layer.provide(Auth.layerAuthenticate(options.rateLimit ?? defaults.rateLimit)),
    // The router's own bound (100 characters by default) would answer "no route"
    // for an id of 101 to 256 characters, which every Schema takes. Past this
    // one a path parameter is no id anyway; below it the Schemas say why (400).
    Layer.provide(HttpRouter.setRouterConfig({ maxParamLength: maxPathParam }))
  )
}

/** The server, listening on `host:port`, over the services in context. */
export const layer = (
  options: ServerOptions = {}
): Layer.Layer<
  HttpServer.HttpServer,
  HttpServerError.ServeError,
  Registry | Router | Gateway | Runtime | EventLog | Keys | SecretStore | Arcp | Coordination
> => {
  const upgrades = ArcpEdge.makeUpgrades()
  return app(options, upgrades).pipe(
    Layer.provideMerge(
      NodeHttpServer.layer(
        nodeServer(options.maxConnections ?? defaults.maxConnections, options.idleTimeoutMs ?? defaults.idleTimeoutMs, upgrades),
        { host: options.host ?? defaults.host, port: options.port ?? defaults.port }
      )
    )
  )
}
