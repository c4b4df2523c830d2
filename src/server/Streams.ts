/**
 * The live streams, beside the request/response API:
 *
 * - `GET /agents/{id}/stream`, a WebSocket: the agent's deliveries and stage
 *   notices, acknowledged on the same socket (`Frames.ts`). At most
 *   `maxInFlight` deliveries are unacknowledged at a time. When the socket
 *   closes, what it had not acknowledged goes back to the mailbox at once, so
 *   a consumer that reconnects receives it again (at least once).
 * - `GET /agents/{id}/events`, Server-Sent Events: the same stream for
 *   browsers and `curl`, read-only; deliveries are acknowledged with
 *   `POST /acks`.
 * - `GET /log/follow?from=N`, Server-Sent Events: every record of the event
 *   log from offset N on, then each new one, for operators;
 * - `GET /metrics`, Prometheus text, for operators.
 *
 * They authenticate as the API does (the bearer key, or `access_token` in the
 * query for browsers, which cannot set headers on these), and refuse with the
 * same problems before upgrading.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Socket from "@effect/platform/Socket"
import * as Http from "node:http"
import type { Socket as NetSocket } from "node:net"
import { Cause, Deferred, Effect, Either, FiberSet, Option, type ParseResult, Schema, Scope, Stream } from "effect"
import { clip } from "../internal/bounds.js"
import { fastDecoder, fastEncoder } from "../internal/fastSchema.js"
import { Id } from "../schema/Envelope.js"
import { NoRoute, ValidationError } from "../schema/Errors.js"
import { encodeEvent } from "../schema/Event.js"
import { EventLog } from "../services/EventLog.js"
import { Gateway } from "../services/Gateway.js"
import type { AckError } from "../model/Messages.js"
import { Registry } from "../services/Registry.js"
import type { Runtime } from "../services/Runtime.js"
import { type AckRequest, type Inbound, Router } from "../services/Router.js"
import { actAs, auditFirstRefusal, operatorOnly } from "./Access.js"
import { Caller } from "./Api.js"
import { Authenticate } from "./Auth.js"
import { AckFrame, ServerFrame } from "./Frames.js"
import { problemResponse } from "./Edge.js"
import { problemOf } from "./Problem.js"
import { outbox } from "./Outbox.js"
import * as Prometheus from "./Prometheus.js"

const encodeFrame = fastEncoder(ServerFrame)
// On the fast path: one per message delivered, as hot as the send.
const decodeAck = fastDecoder(AckFrame, { onExcessProperty: "ignore" })
const utf8 = new TextDecoder()
const decodePath = Schema.decodeUnknown(Schema.Struct({ agent_id: Id }))
const decodeFrom = Schema.decodeUnknown(
  Schema.Struct({ from: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive())) })
)

/** What a stream's socket may have waiting to be sent before its consumer counts as not reading. */
const maxBufferedBytes = 16 * 1024 * 1024

/** A frame larger than this is refused, unread: no ACK is anywhere near it. */
const maxFrameBytes = 64 * 1024

const frameOf = (inbound: Inbound): ServerFrame =>
  inbound._tag === "Delivery"
    ? {
      type: "delivery",
      envelope: inbound.envelope,
      attempt: inbound.attempt,
      delivery_seq: inbound.delivery_seq,
      lane: inbound.lane
    }
    : { type: "notice", envelope: inbound.envelope, ack: inbound.ack }

const text = (frame: ServerFrame) =>
  Either.match(encodeFrame(frame), {
    onLeft: () => undefined,
    onRight: (encoded) => JSON.stringify(encoded)
  })

/** The bearer key of a request: the header, or `access_token` for clients that cannot set one. */
const tokenOf = (request: HttpServerRequest.HttpServerRequest, query: URLSearchParams) => {
  const header = request.headers.authorization ?? ""
  return header.toLowerCase().startsWith("bearer ") ? header.slice(7) : query.get("access_token") ?? ""
}

const queryOf = (request: HttpServerRequest.HttpServerRequest) =>
  new URL(request.url, "http://localhost").searchParams

const invalidPath = (error: ParseResult.ParseError) => ValidationError.fromParseError("request", error)

/** The caller of a stream request, allowed to act as `agent_id`; the problem otherwise. */
const authorize = (agent_id: string | undefined, action: string) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const authenticate = yield* Authenticate
    const caller = yield* authenticate(tokenOf(request, queryOf(request)), request.remoteAddress)
    yield* (agent_id === undefined ? operatorOnly(action) : actAs(agent_id, action)).pipe(
      Effect.provideService(Caller, caller)
    )
    return caller
  })

/** What the WebSocket server checks of a handshake before taking it (RFC 6455 §4.2.1). */
const handshakeKey = /^[+/0-9A-Za-z]{22}==$/
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * A handshake the WebSocket server would drop, refused first as a 400: the
 * server drops it without a word, and would leave the socket's fiber
 * waiting for an upgrade that never comes.
 */
const checkHandshake = (request: HttpServerRequest.HttpServerRequest) => {
  const header = (name: string) => request.headers[name] ?? ""
  const refuse = (field: string, message: string) => Effect.fail(ValidationError.single("request", field, message))
  if (header("upgrade").toLowerCase() !== "websocket") {
    return refuse("upgrade", "this route is a WebSocket: ask for an upgrade (or read /agents/{id}/events)")
  }
  if (!header("connection").toLowerCase().split(",").some((option) => option.trim() === "upgrade")) {
    return refuse("connection", "a WebSocket handshake says Connection: Upgrade")
  }
  if (!handshakeKey.test(header("sec-websocket-key"))) return refuse("sec-websocket-key", "must be 16 bytes in base64")
  if (!["8", "13"].includes(header("sec-websocket-version"))) return refuse("sec-websocket-version", "must be 13")
  const protocols = request.headers["sec-websocket-protocol"]
  if (protocols !== undefined && !protocols.split(",").every((protocol) => token.test(protocol.trim()))) {
    return refuse("sec-websocket-protocol", "must be a list of tokens")
  }
  return Effect.void
}

/**
 * The WebSocket stream. Once the socket is open, it is served by a fiber of
 * the server's own (`runSocket`, forked with the server's context, not the
 * request's), and the request's fiber returns: a stream lives for hours, and
 * the request's fiber would hold, all that time, the stack of every layer
 * the request went through and the request itself.
 */
const webSocket = (runSocket: (effect: Effect.Effect<void>) => unknown) =>
  Effect.gen(function*() {
    const router = yield* Router
    const registry = yield* Registry
    const params = yield* HttpRouter.params
    const { agent_id } = yield* Effect.mapError(decodePath(params), invalidPath)
    const caller = yield* authorize(agent_id, "stream.websocket")
    const gateway = yield* Gateway
    // An ACK the runtime refuses for this key (a message sent to another agent) is audited, as over HTTP.
    const audit = (results: ReadonlyArray<Either.Either<unknown, AckError>>) =>
      auditFirstRefusal("messages.ack", results).pipe(Effect.provideService(Caller, caller), Effect.provideService(Gateway, gateway))
    const request = yield* HttpServerRequest.HttpServerRequest
    yield* checkHandshake(request)
    // Refused now, while a status can still say so; the subscription itself starts once the socket is open.
    if (Option.isNone(yield* registry.get(agent_id))) return yield* new NoRoute({ to: agent_id })
    const socket = yield* request.upgrade
    const connection = connectionOf(request)
    const opened = yield* Deferred.make<void>()
    runSocket(
      serveSocket(
        router,
        agent_id,
        socket,
        Effect.zipRight(Effect.sync(() => limitFrames(connection, maxFrameBytes)), Deferred.succeed(opened, undefined)),
        wireOf(connection),
        audit
      ).pipe(Effect.ensuring(Deferred.succeed(opened, undefined)))
    )
    // Answered once the handshake is done: the answer then goes nowhere, the socket is the stream's.
    yield* Deferred.await(opened)
    return HttpServerResponse.empty()
  })

/** The TCP socket under a request (and, once upgraded, under its WebSocket), when served by Node. */
const connectionOf = (request: HttpServerRequest.HttpServerRequest) =>
  (request.source instanceof Http.IncomingMessage ? request.source.socket : null) as Partial<NetSocket> | null

/**
 * The platform's WebSocket server takes frames of up to 100 MiB (the `ws`
 * default), each buffered whole before a handler sees it, and offers no
 * option to say less. A stream's frames are ACKs of a few hundred bytes:
 * this sets that limit on the socket's own `ws` receiver, found through
 * the TCP socket it reads, so that a larger frame closes the connection
 * with 1009 (message too big) as it arrives, never buffered.
 */
const limitFrames = (connection: Partial<NetSocket> | null, maxBytes: number) => {
  if (connection === null) return
  const fields = connection as Record<symbol, unknown>
  const key = Object.getOwnPropertySymbols(fields).find((symbol) => symbol.description === "websocket")
  const receiver = key === undefined ? undefined : (fields[key] as { _receiver?: { _maxPayload?: unknown } } | undefined)?._receiver
  if (receiver !== undefined && typeof receiver._maxPayload === "number") receiver._maxPayload = maxBytes
}

/** What a stream asks of its TCP socket. */
interface Wire {
  /** Writes made by `effect` leave in one write: a chunk of deliveries, or the answers to a read's ACKs, reach the consumer together (one packet, one read) instead of a system call each. */
  readonly corked: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** The bytes written and not yet sent. */
  readonly buffered: () => number
}

const wireOf = (connection: Partial<NetSocket> | null): Wire => ({
  corked: typeof connection?.cork !== "function" || typeof connection.uncork !== "function"
    ? (effect) => effect
    : (effect) =>
      Effect.zipRight(
        Effect.sync(() => connection.cork!()),
        Effect.ensuring(effect, Effect.sync(() => connection.uncork!()))
      ),
  buffered: () => connection?.writableLength ?? 0
})

const serveSocket = (
  router: Router["Type"],
  agent_id: string,
  socket: Socket.Socket,
  onOpen: Effect.Effect<unknown>,
  { buffered, corked }: Wire,
  audit: (results: ReadonlyArray<Either.Either<unknown, AckError>>) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const write = yield* socket.writer
    // A consumer that does not read (its TCP window full) would have all that is
    // sent to it kept in memory: past the bound, its socket is closed instead, and
    // what it had not settled goes back to the agent's mailbox.
    const tooSlow = Effect.ignore(write(new Socket.CloseEvent(1008, "the consumer does not read what it is sent")))
    const send = (frame: ServerFrame) => {
      if (buffered() > maxBufferedBytes) return tooSlow
      const json = text(frame)
      return json === undefined ? Effect.void : write(json)
    }
    const inbound = outbox()
    const writers = yield* FiberSet.make()
    const runWriter = yield* FiberSet.runtime(writers)()
    inbound.start({
      // A socket that fails to write is closing: its own fiber ends, and these with it.
      write: (items) => Effect.ignore(corked(Effect.forEach(items, (item) => send(frameOf(item)), { discard: true }))),
      // The runtime stopped: say so, and close; the consumer reconnects to another run.
      close: Effect.ignore(write(new Socket.CloseEvent(1011, "the runtime stopped"))),
      run: (effect) => {
        runWriter(effect)
      }
    })
    // The ACKs read together (one read of the socket often holds many frames)
    // are settled with one `ackMany`: one command in the loop, not one each.
    // Each is still decided on its own and answered on its own.
    let pending: Array<{ readonly ack: AckRequest; readonly ref: string | undefined }> = []
    const settle = Effect.suspend(() => {
      const batch = pending
      pending = []
      return router.ackMany(batch.map(({ ack }) => ack)).pipe(
        Effect.matchEffect({
          onFailure: (error) =>
            corked(Effect.forEach(batch, ({ ref }) => send({ type: "error", ref, error: problemOf(error) }), { discard: true })),
          onSuccess: (results) =>
            Effect.zipRight(
              corked(Effect.forEach(results, (result, i) =>
                send(
                  Either.isRight(result)
                    ? { type: "acked", ref: batch[i].ref, receipt: result.right }
                    : { type: "error", ref: batch[i].ref, error: problemOf(result.left) }
                ), { discard: true })),
              // Once a read, not once each frame.
              audit(results)
            )
        })
      )
    })
    // After the frames of this read: they join the batch before it is settled.
    const settleLater = Effect.zipRight(Effect.yieldNow(), settle)
    const onFrame = (data: string | Uint8Array) => {
      const size = typeof data === "string" ? data.length : data.byteLength
      if (size > maxFrameBytes) {
        return send({
          type: "error",
          error: problemOf(ValidationError.single("frame", "", `is ${size} bytes, more than ${maxFrameBytes}`))
        })
      }
      const parsed = Either.try(() => JSON.parse(typeof data === "string" ? data : utf8.decode(data)) as unknown)
      if (Either.isLeft(parsed)) {
        return send({ type: "error", error: problemOf(ValidationError.single("frame", "", "must be a JSON document")) })
      }
      const ref = typeof (parsed.right as { ref?: unknown } | null)?.ref === "string"
        ? String((parsed.right as { ref: string }).ref).slice(0, 256)
        : undefined
      const frame = decodeAck(parsed.right)
      if (Either.isLeft(frame)) {
        return send({ type: "error", ref, error: problemOf(ValidationError.fromParseError("frame", frame.left)) })
      }
      const { ref: _ref, type: _type, ...ack } = frame.right
      pending.push({ ack: { ...ack, agent_id }, ref })
      return pending.length === 1 ? settleLater : undefined
    }
    // Subscribed once the socket is open, for as long as it is: a handshake that
    // fails holds nothing, and what this socket had not settled goes back when it closes.
    const subscribe = router.attach(agent_id, { unsettled: "release" }, inbound.sink).pipe(
      Scope.extend(scope),
      Effect.catchAll((error) => Effect.ignore(write(new Socket.CloseEvent(1011, clip(problemOf(error).detail, 120)))))
    )
    yield* socket.runRaw(onFrame, { onOpen: Effect.zipRight(subscribe, Effect.asVoid(onOpen)) }).pipe(
      Effect.catchAll(() => Effect.void)
    )
  }).pipe(Effect.scoped)

const sse = <E>(events: Stream.Stream<{ readonly event: string; readonly id?: string; readonly data: string }, E>) =>
  HttpServerResponse.stream(
    Stream.concat(
      Stream.make(": switchboard\n\n"),
      events.pipe(
        Stream.map((item) => `event: ${item.event}\n${item.id === undefined ? "" : `id: ${item.id}\n`}data: ${item.data}\n\n`),
        Stream.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Stream.empty
            : Stream.make(`event: error\ndata: ${JSON.stringify(problemOf(Cause.squash(cause)))}\n\n`)
        )
      )
    ).pipe(Stream.encodeText),
    { contentType: "text/event-stream", headers: { "cache-control": "no-cache", "x-accel-buffering": "no" } }
  )

const agentEvents = Effect.gen(function*() {
  const router = yield* Router
  const registry = yield* Registry
  const params = yield* HttpRouter.params
  const { agent_id } = yield* Effect.mapError(decodePath(params), invalidPath)
  yield* authorize(agent_id, "stream.events")
  // Refused now, while a status can still say so; the subscription itself lives as long as the response.
  if (Option.isNone(yield* registry.get(agent_id))) return yield* new NoRoute({ to: agent_id })
  return sse(Stream.filterMap(router.subscribe(agent_id, { unsettled: "release" }), (item) => {
    const frame = frameOf(item)
    const json = text(frame)
    return json === undefined ? Option.none() : Option.some({ event: frame.type, data: json })
  }))
})

const logFollow = Effect.gen(function*() {
  const log = yield* EventLog
  const request = yield* HttpServerRequest.HttpServerRequest
  const { from } = yield* Effect.mapError(
    decodeFrom(Object.fromEntries(queryOf(request))),
    (error) => ValidationError.fromParseError("request", error)
  )
  yield* authorize(undefined, "log.follow")
  return sse(Stream.filterMap(log.follow(from ?? 1), (record) =>
    Either.match(encodeEvent(record.event), {
      onLeft: () => Option.none(),
      onRight: (stored) =>
        Option.some({
          event: "record",
          id: String(record.offset),
          data: `{"offset":${record.offset},"committed_at":${record.committedAt},"event":${stored.payload}}`
        })
    })))
})

/** Prometheus text: the metric registry and the runtime's gauges, for operators. */
const metricsText = Effect.gen(function*() {
  yield* authorize(undefined, "metrics.read")
  const text = yield* Prometheus.metrics
  return HttpServerResponse.text(text, { contentType: Prometheus.contentType })
})

/** The stream routes and `/metrics`, added to the API's router. */
export const layer = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Router | Registry | EventLog | Authenticate | Gateway | Runtime>()
    const route = <E, R>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      effect.pipe(
        Effect.catchAll(problemResponse),
        Effect.provide(context)
      ) as Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>
    const runSocket = yield* FiberSet.runtime(yield* FiberSet.make())()
    yield* router.get("/agents/:agent_id/stream", route(webSocket(runSocket)))
    yield* router.get("/agents/:agent_id/events", route(agentEvents))
    yield* router.get("/log/follow", route(logFollow))
    yield* router.get("/metrics", route(metricsText))
  }))
