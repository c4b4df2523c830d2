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
import { HttpApiBuilder, HttpServerRequest, HttpServerResponse, Socket } from "@effect/platform"
import { Clock, Deferred, Duration, Effect, Either, FiberSet, Option } from "effect"
import { fastInputDecoder } from "../internal/fastSchema.js"
import * as Wire from "../schema/Arcp.js"
import { openKeyId, type Principal } from "../schema/Keys.js"
import { Arcp, ArcpError, type Connection } from "../services/Arcp.js"
import { Keys } from "../services/Keys.js"
import { ulid } from "../layers/Ulid.js"

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

const serve = (socket: Socket.Socket, onOpen: Effect.Effect<unknown>) =>
  Effect.gen(function*() {
    const arcp = yield* Arcp
    const keys = yield* Keys
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const state: State = {
      provisional: `sess_${yield* ulid}`,
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
    let ws: globalThis.WebSocket | undefined
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
        if (opened.heartbeat_interval_sec !== undefined) yield* Effect.forkIn(heartbeats(opened.heartbeat_interval_sec), scope)
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
          // Vendor extensions pass through; an optional unknown one is dropped.
          if (env.type.startsWith("x-vendor.") || env.extensions?.optional === true) return
          return sessionError("INVALID_REQUEST", `unknown message type ${env.type.slice(0, 64)}`, env.id)
      }
    }

    const onFrame = (data: string | Uint8Array) => {
      state.lastHeard = clock.unsafeCurrentTimeMillis()
      if (ws === undefined) {
        return Effect.flatMap(Effect.serviceOption(Socket.WebSocket), (socket) => {
          ws = Option.getOrUndefined(socket)
          return Effect.suspend(() => handle(data) ?? Effect.void)
        })
      }
      return handle(data)
    }
    const handle = (data: string | Uint8Array): Effect.Effect<void> | void => {
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

    yield* socket.runRaw(onFrame, { onOpen: Effect.asVoid(onOpen) }).pipe(Effect.catchAll(() => Effect.void))
    state.closed = true
    if (state.session_id !== undefined) yield* arcp.detach(state.session_id, connection, "transport closed")
  }).pipe(Effect.scoped)

/**
 * `GET /arcp`: upgrades to the ARCP WebSocket, served by a fiber of the
 * server's own (`run`, made with the layer's context), not a child of the
 * request's: a session lives for hours, and should not hold what the
 * request's fiber held.
 */
export const route = (run: <A, E>(effect: Effect.Effect<A, E, Arcp | Keys>) => unknown) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if ((request.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.text("ARCP v1.1: connect with a WebSocket", { status: 426, headers: { upgrade: "websocket" } })
    }
    const socket = yield* request.upgrade
    const opened = yield* Deferred.make<void>()
    run(serve(socket, Deferred.succeed(opened, undefined)).pipe(Effect.ensuring(Deferred.succeed(opened, undefined))))
    yield* Deferred.await(opened)
    return HttpServerResponse.empty()
  })

/** The `/arcp` route, added to the API's router. */
export const layer = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const run = yield* FiberSet.makeRuntime<Arcp | Keys>()
    yield* router.get(
      "/arcp",
      route(run).pipe(
        Effect.catchAll(() => Effect.succeed(HttpServerResponse.text("the WebSocket upgrade failed", { status: 400 })))
      )
    )
  }))
