/**
 * The ARCP endpoint: a WebSocket at `GET /arcp` (PROTOCOLS.md §3). One JSON
 * envelope per text frame; every frame is decoded here with the Schemas of
 * `schema/Arcp.ts` and handed to the `Arcp` service, which answers on the
 * session's connection. What cannot be decoded (a binary frame, junk, another
 * version, a missing or unknown field, a message before the hello) is
 * answered with a typed `session.error`, which always carries a session id
 * (the one the session would have had, before a welcome), and the
 * connection stays up: a bad frame harms nothing but itself.
 *
 * Authentication is inside the session: the hello's bearer token is checked
 * against the server's API keys (`Keys`); an unknown one is
 * UNAUTHENTICATED and the connection closes. Heartbeats, when negotiated,
 * are the edge's: a ping each interval, and a peer silent for two intervals
 * is HEARTBEAT_LOST (its session stays resumable; its jobs run on).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Socket from "@effect/platform/Socket"
import { Clock, Deferred, Duration, Effect, Either, Fiber, FiberSet, Option } from "effect"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { type WebSocket, WebSocketServer } from "ws"
import { fastInputDecoder } from "../internal/fastSchema.js"
import * as Wire from "../schema/Arcp.js"
import { openKeyId, type Principal } from "../schema/Keys.js"
import { Arcp, ArcpError, type Connection } from "../services/Arcp.js"
import { Keys } from "../services/Keys.js"
import { encodeUlid } from "../layers/Ulid.js"
import { RandomBytes, type RandomBytesService } from "../services/RandomBytes.js"

/** A frame larger than this is refused unread. */
export const maxFrameBytes = 1024 * 1024

const decoders = {
  envelope: fastInputDecoder(Wire.Envelope, "envelope", { onExcessProperty: "ignore" }),
  hello: fastInputDecoder(Wire.Hello, "session.hello", { onExcessProperty: "ignore" }),
  resume: fastInputDecoder(Wire.Resume, "session.resume", { onExcessProperty: "ignore" }),
  ping: fastInputDecoder(Wire.Ping, "session.ping", { onExcessProperty: "ignore" }),
  pong: fastInputDecoder(Wire.Pong, "session.pong", { onExcessProperty: "ignore" }),
  ack: fastInputDecoder(Wire.Ack, "session.ack", { onExcessProperty: "ignore" }),
  bye: fastInputDecoder(Wire.Bye, "session.bye", { onExcessProperty: "ignore" }),
  listJobs: fastInputDecoder(Wire.ListJobs, "session.list_jobs", { onExcessProperty: "ignore" }),
  submit: fastInputDecoder(Wire.Submit, "job.submit", { onExcessProperty: "ignore" }),
  cancel: fastInputDecoder(Wire.Cancel, "job.cancel", { onExcessProperty: "ignore" }),
  subscribe: fastInputDecoder(Wire.Subscribe, "job.subscribe", { onExcessProperty: "ignore" }),
  unsubscribe: fastInputDecoder(Wire.Unsubscribe, "job.unsubscribe", { onExcessProperty: "ignore" })
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** One connection: its session once welcomed, and what it last heard. */
interface State {
  readonly provisional: string
  session_id: string | undefined
  features: ReadonlySet<string>
  lastHeard: number
  counter: number
  closed: boolean
}

/** What every connection uses: the services, and how to run an effect on a fiber of the server's. */
interface Deps {
  readonly arcp: Arcp["Type"]
  readonly keys: Keys["Type"]
  readonly clock: Clock.Clock
  readonly random: RandomBytesService
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
}

/** A raw WebSocket (the `ws` library's, as both paths below get it). */
type RawSocket = globalThis.WebSocket

/**
 * One connection, as plain callbacks: no fiber lives for it between frames
 * (a session may idle for hours, and a thousand of them must stay small);
 * each frame's work runs on a fiber of its own (`deps.run`), and so do the
 * heartbeats when negotiated.
 */
const connectionOf = (deps: Deps) => {
  const { arcp, clock, keys } = deps
  {
    const state: State = {
      provisional: `sess_${encodeUlid(clock.unsafeCurrentTimeMillis(), Effect.runSync(deps.random.next(10)))}`,
      session_id: undefined,
      features: new Set(),
      lastHeard: clock.unsafeCurrentTimeMillis(),
      counter: 0,
      closed: false
    }
    // The raw WebSocket, taken from the first frame's context: frames are sent
    // on it synchronously, from inside the command loop, and a closed socket
    // drops them (the socket's own writer waits for an open socket, which a
    // loop must never do).
    let ws: RawSocket | undefined
    let heartbeat: Fiber.RuntimeFiber<void> | undefined
    // The frames sent in one go (a turn of the loop tells several at once) leave in one write.
    let corked = false
    const uncork = () => {
      corked = false
      ;(ws as unknown as { _socket?: { uncork?: () => void } } | undefined)?._socket?.uncork?.()
    }
    const connection: Connection = {
      send: (text) => {
        if (state.closed || ws === undefined || ws.readyState !== 1) return
        try {
          if (!corked) {
            const raw = (ws as unknown as { _socket?: { cork?: () => void } })._socket
            if (raw?.cork !== undefined) {
              raw.cork()
              corked = true
              queueMicrotask(uncork)
            }
          }
          ws.send(text)
        } catch {
          // Closed under us: the close handler detaches the session.
        }
      },
      close: (code, reason) => {
        if (state.closed) return
        state.closed = true
        try {
          ws?.close(code, reason)
        } catch {
          // Already closing.
        }
      }
    }
    const envelope = (type: string, payload: unknown, job_id?: string) =>
      JSON.stringify({
        arcp: Wire.protocolVersion,
        id: `msg_${state.provisional.slice(5)}_${(state.counter++).toString(36)}`,
        type,
        session_id: state.session_id ?? state.provisional,
        ...(job_id === undefined ? {} : { job_id }),
        payload
      })
    const sessionError = (code: Wire.ErrorCode, message: string, request_id?: string, job_id?: string) =>
      connection.send(envelope("session.error", Wire.errorObject(code, message, request_id === undefined ? undefined : { request_id }), job_id))
    const fail = (error: ArcpError, request_id: string, job_id?: string) =>
      Effect.sync(() => sessionError(error.code, error.message, request_id, job_id))

    const hello = (env: Wire.Envelope, hello: Wire.Hello, resumeByToken: boolean) =>
      Effect.gen(function*() {
        let principal: Principal | undefined
        if (!resumeByToken) {
          if (hello.auth.scheme.toLowerCase() !== "bearer") {
            return yield* ArcpError.of("UNAUTHENTICATED", "auth.scheme must be bearer")
          }
          if (keys.open && hello.auth.token === "") principal = { _tag: "Operator", key_id: openKeyId }
          else {
            const found = yield* keys.authenticate(hello.auth.token)
            if (Option.isNone(found)) {
              if (!keys.open) return yield* ArcpError.of("UNAUTHENTICATED", "unknown API key")
              principal = { _tag: "Operator", key_id: openKeyId }
            } else principal = found.value
          }
        }
        const opened = yield* arcp.hello(connection, { session_id: state.provisional, principal, hello })
        state.session_id = opened.session_id
        state.features = opened.features
        if (opened.heartbeat_interval_sec !== undefined) heartbeat = deps.run(heartbeats(opened.heartbeat_interval_sec))
      }).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() => {
            sessionError(error.code, error.message, env.id)
            if (error.code === "UNAUTHENTICATED") connection.close(1008, "unauthenticated")
          })
        )
      )

    const onText = (text: string): Effect.Effect<void> | void => {
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        return sessionError("INVALID_REQUEST", "a frame must be one JSON envelope")
      }
      if (!isRecord(parsed)) return sessionError("INVALID_REQUEST", "a frame must be a JSON object")
      const request_id = typeof parsed.id === "string" ? parsed.id.slice(0, 256) : undefined
      if (parsed.arcp !== Wire.protocolVersion) {
        return sessionError("INVALID_REQUEST", `unsupported ARCP version ${JSON.stringify(parsed.arcp)?.slice(0, 32)}; this runtime speaks 1.1`, request_id)
      }
      const decoded = decoders.envelope(parsed)
      if (Either.isLeft(decoded)) return sessionError("INVALID_REQUEST", decoded.left.message, request_id)
      const env = decoded.right
      // A payload is an object; one left out is taken as empty (clients omit it on messages without fields).
      if (env.payload === null) return sessionError("INVALID_REQUEST", "payload must be an object, not null", env.id, env.job_id)
      const payload = env.payload ?? {}
      const decode = <A>(decoder: (input: unknown) => Either.Either<A, { readonly message: string }>) => {
        const result = decoder(payload)
        if (Either.isLeft(result)) {
          sessionError("INVALID_REQUEST", result.left.message, env.id, env.job_id)
          return undefined
        }
        return result.right
      }
      if (state.session_id === undefined) {
        if (env.type === "session.hello") {
          const body = decode(decoders.hello)
          return body === undefined ? undefined : hello(env, body, false)
        }
        if (env.type === "session.resume") {
          const body = decode(decoders.resume)
          if (body === undefined) return undefined
          const session_id = body.session_id ?? env.session_id
          if (session_id === undefined) return sessionError("INVALID_REQUEST", "session.resume needs a session_id", env.id)
          return hello(env, {
            client: body.client ?? { name: "unknown", version: "0" },
            auth: body.auth ?? { scheme: "bearer", token: "" },
            ...(body.capabilities === undefined ? {} : { capabilities: body.capabilities }),
            resume: { session_id, resume_token: body.resume_token, last_event_seq: body.last_event_seq }
          }, body.auth === undefined)
        }
        return sessionError("INVALID_REQUEST", `${env.type} before session.hello: say hello first`, env.id)
      }
      const session_id = state.session_id
      if (env.session_id !== session_id) {
        return sessionError("INVALID_REQUEST", "session_id must be this session's", env.id, env.job_id)
      }
      const needs = (feature: Wire.Feature) => {
        if (state.features.has(feature)) return true
        sessionError("INVALID_REQUEST", `${env.type} needs the feature ${feature}, not negotiated`, env.id, env.job_id)
        return false
      }
      switch (env.type) {
        case "session.hello":
        case "session.resume":
          return sessionError("INVALID_REQUEST", "this session is open already", env.id)
        case "session.ping": {
          const body = decode(decoders.ping)
          if (body === undefined) return
          return connection.send(envelope("session.pong", { ping_nonce: body.nonce, received_at: new Date(clock.unsafeCurrentTimeMillis()).toISOString() }))
        }
        case "session.pong":
          return decode(decoders.pong) === undefined ? undefined : undefined
        case "session.ack": {
          const body = decode(decoders.ack)
          return body === undefined || !needs("ack") ? undefined : arcp.ack(session_id, body.last_processed_seq)
        }
        case "session.bye":
        case "session.close": {
          const body = decode(decoders.bye)
          if (body === undefined) return
          return Effect.zipRight(
            arcp.detach(session_id, connection, `bye${body.reason === undefined ? "" : `: ${body.reason}`}`),
            Effect.sync(() => {
              // The spec's prose closes with `session.close` and has it acknowledged; the SDK's `session.bye` is not.
              if (env.type === "session.close") connection.send(envelope("session.closed", { request_id: env.id }))
              connection.close(1000, "bye")
            })
          )
        }
        case "session.list_jobs": {
          const body = decode(decoders.listJobs)
          return body === undefined || !needs("list_jobs") ? undefined : Effect.catchAll(arcp.listJobs(session_id, body, env.id), (e) => fail(e, env.id))
        }
        case "job.submit": {
          const body = decode(decoders.submit)
          return body === undefined ? undefined : Effect.catchAll(arcp.submit(session_id, { submit: body, trace_id: env.trace_id }), (e) => fail(e, env.id))
        }
        case "job.cancel": {
          const body = decode(decoders.cancel)
          if (body === undefined) return
          const job_id = env.job_id ?? body.job_id
          if (job_id === undefined) return sessionError("INVALID_REQUEST", "job.cancel names its job in job_id", env.id)
          return Effect.catchAll(arcp.cancel(session_id, job_id, body.reason, env.id), (e) => fail(e, env.id, job_id))
        }
        case "job.subscribe": {
          const body = decode(decoders.subscribe)
          return body === undefined || !needs("subscribe") ? undefined : Effect.catchAll(
            arcp.subscribe(session_id, { job_id: body.job_id, from_event_seq: body.from_event_seq, history: body.history ?? false }, env.id),
            (e) => fail(e, env.id, body.job_id)
          )
        }
        case "job.unsubscribe": {
          const body = decode(decoders.unsubscribe)
          return body === undefined || !needs("subscribe") ? undefined : arcp.unsubscribe(session_id, body.job_id)
        }
        default:
          // Vendor extensions pass through, and an optional unknown extension is dropped;
          // an unknown session.* or job.* type is refused whatever its extensions say.
          if (env.type.startsWith("x-vendor.")) return
          if (env.extensions?.optional === true && !/^(session|job)\./.test(env.type)) return
          return sessionError("INVALID_REQUEST", `unknown message type ${env.type.slice(0, 64)}`, env.id)
      }
    }

    const handle = (data: string | Uint8Array): Effect.Effect<void> | void => {
      state.lastHeard = clock.unsafeCurrentTimeMillis()
      if (typeof data !== "string") return sessionError("INVALID_REQUEST", "binary frames are refused: send JSON text frames")
      if (data.length > maxFrameBytes) return sessionError("INVALID_REQUEST", `a frame is at most ${maxFrameBytes} bytes`)
      return onText(data)
    }

    // Heartbeats, once a session negotiated them: a fiber then, none before (a connection is kept as small as it can be).
    const heartbeats = (interval: number) => Effect.gen(function*() {
      let pings = 0
      while (!state.closed) {
        yield* Effect.sleep(Duration.seconds(interval))
        const now = yield* Clock.currentTimeMillis
        if (now - state.lastHeard > 2 * interval * 1000) {
          sessionError("HEARTBEAT_LOST", `nothing heard for ${2 * interval} s`)
          connection.close(1001, "heartbeat lost")
          if (state.session_id !== undefined) yield* arcp.detach(state.session_id, connection, "heartbeat lost")
          return
        }
        connection.send(envelope("session.ping", { nonce: `p_${++pings}`, sent_at: new Date(now).toISOString() }))
      }
    })

    return {
      setSocket: (socket: RawSocket) => {
        ws = socket
      },
      hasSocket: () => ws !== undefined,
      onFrame: handle,
      onClose: Effect.suspend(() => {
        state.closed = true
        if (heartbeat !== undefined) deps.run(Fiber.interrupt(heartbeat))
        return state.session_id === undefined ? Effect.void : arcp.detach(state.session_id, connection, "transport closed")
      })
    }
  }
}

/** The platform's WebSocket (the `/arcp` route): the raw socket comes with the first frame. */
const serve = (deps: Deps, socket: Socket.Socket, onOpen: Effect.Effect<unknown>) =>
  Effect.gen(function*() {
    const connection = connectionOf(deps)
    const onFrame = (data: string | Uint8Array) => {
      if (!connection.hasSocket()) {
        return Effect.flatMap(Effect.serviceOption(Socket.WebSocket), (raw) => {
          if (Option.isSome(raw)) connection.setSocket(raw.value)
          return Effect.suspend(() => connection.onFrame(data) ?? Effect.void)
        })
      }
      return connection.onFrame(data)
    }
    yield* socket.runRaw(onFrame, { onOpen: Effect.asVoid(onOpen) }).pipe(Effect.catchAll(() => Effect.void))
    yield* connection.onClose
  })

/** A socket upgraded by the server itself (`upgrades`): plain listeners, no fiber while idle. */
const serveRaw = (deps: Deps, ws: WebSocket) => {
  const connection = connectionOf(deps)
  connection.setSocket(ws as unknown as RawSocket)
  ws.on("message", (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)
    const effect = connection.onFrame(isBinary ? new Uint8Array(bytes) : bytes.toString("utf8"))
    if (effect !== undefined) deps.run(effect)
  })
  ws.once("close", () => deps.run(connection.onClose))
  ws.on("error", () => {})
}

/**
 * `GET /arcp`: upgrades to the ARCP WebSocket, served by a fiber of the
 * server's own (`run`, made with the layer's context), not a child of the
 * request's: a session lives for hours, and should not hold what the
 * request's fiber held.
 */
export const route = (deps: Deps) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if ((request.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.text("ARCP v1.1: connect with a WebSocket", { status: 426, headers: { upgrade: "websocket" } })
    }
    const socket = yield* request.upgrade
    const opened = yield* Deferred.make<void>()
    deps.run(serve(deps, socket, Deferred.succeed(opened, undefined)).pipe(Effect.ensuring(Deferred.succeed(opened, undefined))))
    yield* Deferred.await(opened)
    return HttpServerResponse.empty()
  })

/**
 * Where the Node server hands WebSocket upgrades before the HTTP app sees
 * them (`Server.ts`): `/arcp` is upgraded here, by a `ws` server of its own,
 * and served with plain listeners. The HTTP app's own upgrade would keep a
 * few fibers per socket for its whole life (about 45 KB a session). Set
 * while the layer lasts; `/arcp` through the HTTP app still works without it.
 */
export interface Upgrades {
  handle: ((request: IncomingMessage, socket: Duplex, head: Buffer) => boolean) | undefined
}

export const makeUpgrades = (): Upgrades => ({ handle: undefined })

/** The `/arcp` route, added to the API's router; and, given `upgrades`, the server's own upgrade of it. */
export const layer = (upgrades?: Upgrades) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.gen(function*() {
      const run = yield* FiberSet.makeRuntime<Arcp | Keys>()
      const deps: Deps = {
        arcp: yield* Arcp,
        keys: yield* Keys,
        clock: yield* Effect.clock,
        random: yield* RandomBytes,
        run: (effect) => run(effect)
      }
      yield* router.get(
        "/arcp",
        route(deps).pipe(
          Effect.catchAll(() => Effect.succeed(HttpServerResponse.text("the WebSocket upgrade failed", { status: 400 })))
        )
      )
      if (upgrades !== undefined) {
        const wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes + 1024 })
        upgrades.handle = (request, socket, head) => {
          if ((request.url ?? "").split("?")[0] !== "/arcp") return false
          wss.handleUpgrade(request, socket, head, (ws) => serveRaw(deps, ws))
          return true
        }
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            upgrades.handle = undefined
            for (const ws of wss.clients) ws.close(1001, "the server is stopping")
            wss.close()
          })
        )
      }
    })
  )
