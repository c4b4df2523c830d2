/**
 * An agent's live stream from a remote server (`/agents/{id}/stream`, a
 * WebSocket; frames in `server/Frames.ts`), as the in-process router gives
 * it: a `Stream` of deliveries and stage notices (`Inbound`), and an `ack`
 * that answers with the ACK's receipt.
 *
 * The socket is the consumer's business, not its user's. When it drops (the
 * network, a server restart), the consumer opens it again after a pause that
 * grows (`reconnect`, a `Schedule`) and the stream goes on: the server takes
 * back what the closed socket left unread and delivers it again, so nothing
 * is lost; deliveries already handed out and not acknowledged come again
 * too, after their ack wait (at least once, as in process). The stream fails
 * only on a refusal no reconnection changes (an unknown agent, a refused
 * key, a key of another agent), or once `reconnect` gives up.
 *
 * An ACK goes over the socket when it is open, tagged with a `ref` the
 * server echoes in its answer. When the socket is down, or does not answer
 * within `ackTimeout`, the ACK goes over HTTP (`POST /acks`) instead: sending
 * one twice is harmless (a repeated terminal ACK is recorded late and
 * changes nothing). When neither reaches the server, it is tried again on
 * the `reconnect` schedule for at most `ackRetryFor`.
 *
 * The key travels as the `access_token` query parameter of the upgrade
 * request: the WebSocket API of browsers and of Node's own `WebSocket` cannot
 * set a header. Beyond the loopback interface, use `https://` (`wss://`).
 *
 * It needs an `HttpClient` and a `Socket.WebSocketConstructor` (on Node 20,
 * which has no global WebSocket, `NodeSocket.layerWebSocketConstructor` from
 * `@effect/platform-node`; `Consumer.layerNode` from `switchboard/node` gives both).
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Socket from "@effect/platform/Socket"
import {
  Clock,
  Data,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Mailbox,
  Option,
  Predicate,
  Redacted,
  Schedule,
  Schema,
  type Scope,
  type Stream
} from "effect"
import { schemaDecoder } from "../internal/decode.js"
import type { AckError } from "../model/Messages.js"
import { Id } from "../schema/Envelope.js"
import {
  InternalError,
  type NoRoute,
  type PermissionDenied,
  type PersistenceError,
  type Unauthorized,
  ValidationError
} from "../schema/Errors.js"
import { AckFrame, type DeliveryFrame, type NoticeFrame, ServerFrame } from "../server/Frames.js"
import * as P from "../server/Problem.js"
import type { AckReceipt, AckRequest, Inbound } from "../services/Router.js"
import { apiKeyOf, baseUrlOf, type ClientOptions, make as makeClient } from "./SwitchboardClient.js"
import { isUnreachable, settle } from "./Transport.js"

export interface ConsumerOptions extends ClientOptions {
  /** The agent whose mailbox this is; the key, if any, must act as it. */
  readonly agent_id: string
  /**
   * The pauses between attempts to open the socket. Default: from 100 ms,
   * doubling up to 5 s, jittered, forever. A socket that stayed open for a
   * second or more starts the schedule over.
   */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
  /** How long an ACK sent on the socket waits for its answer before it goes over HTTP (default 10 s). */
  readonly ackTimeout?: Duration.DurationInput | undefined
  /** How long an ACK that reaches no server is tried again (default 30 s). */
  readonly ackRetryFor?: Duration.DurationInput | undefined
  /** How long opening the socket may take (default 10 s). */
  readonly openTimeout?: Duration.DurationInput | undefined
}

/** An ACK as a consumer sends it: the acknowledging agent is the consumer's own. */
export type ConsumerAck = Omit<AckRequest, "agent_id">

/** Why a consumer stops: refusals that reconnecting does not change, or `reconnect` giving up (`InternalError`). */
export type ConsumerError = NoRoute | PermissionDenied | Unauthorized | ValidationError | InternalError

/** Why an ACK fails: the router's own refusals, a refused key, or a server that could not be reached. */
export type ConsumerAckError = AckError | PersistenceError | InternalError | Unauthorized

export interface Consumer {
  readonly agent_id: string
  /**
   * The agent's deliveries and stage notices, in the order the server sent
   * them, across reconnections. Read it once. It ends when the consumer's
   * scope closes.
   */
  readonly inbound: Stream.Stream<Inbound, ConsumerError>
  /** Acknowledges a delivery as this agent; answers the receipt. */
  readonly ack: (request: ConsumerAck) => Effect.Effect<AckReceipt, ConsumerAckError>
  /** Whether the socket is open now. */
  readonly connected: Effect.Effect<boolean>
}

export const defaultReconnect: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

/** A socket open this long counts as a connection that worked: the pauses start over. */
const stableAfterMs = 1_000

/** An ACK sent on the socket that got no answer: it goes over HTTP. */
class Unanswered extends Data.TaggedError("Unanswered") {}

const decodeFrame = schemaDecoder(ServerFrame, { onExcessProperty: "ignore" })
const encodeAck = Schema.encodeEither(AckFrame)
const decodeAgentId = Schema.decodeUnknownEither(Id)
/** The problems the server refuses an ACK with (`Router.ack`'s errors), back as the runtime's classes. */
const decodeRefusal = schemaDecoder(Schema.Union(P.Invalid, P.NoMessage, P.Denied, P.Persistence, P.Internal))

const parse = (data: string | Uint8Array): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)))
  } catch {
    return Option.none()
  }
}

const inboundOf = (frame: typeof DeliveryFrame.Type | typeof NoticeFrame.Type): Inbound =>
  frame.type === "delivery"
    ? {
      _tag: "Delivery",
      envelope: frame.envelope,
      attempt: frame.attempt,
      delivery_seq: frame.delivery_seq,
      lane: frame.lane
    }
    : { _tag: "StageNotice", envelope: frame.envelope, ack: frame.ack }

/** `ws://` for `http://`, `wss://` for `https://`, with the key as `access_token`. */
const streamUrl = (options: ClientOptions, agent_id: string) => {
  const url = new URL(`${baseUrlOf(options)}/agents/${encodeURIComponent(agent_id)}/stream`)
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  const key = apiKeyOf(options)
  if (key !== undefined) url.searchParams.set("access_token", Redacted.value(key))
  return url.toString()
}

/** A refusal that opening the socket again would meet again. */
const isRefusal = (error: unknown): error is ConsumerError =>
  Predicate.isTagged(error, "NoRoute") || Predicate.isTagged(error, "Unauthorized") ||
  Predicate.isTagged(error, "PermissionDenied") || Predicate.isTagged(error, "ValidationError")

/**
 * Opens the agent's stream, and keeps it open until the scope closes.
 * Returns once the socket is first open, or fails with the refusal that
 * keeps it shut (unknown agent, refused key). While the server cannot be
 * reached, it waits, trying again on the `reconnect` schedule.
 */
export const connect = (
  options: ConsumerOptions
): Effect.Effect<Consumer, ConsumerError, Scope.Scope | HttpClient.HttpClient | Socket.WebSocketConstructor> =>
  Effect.gen(function*() {
    const agent_id = yield* Either.mapLeft(
      decodeAgentId(options.agent_id),
      (error) => ValidationError.fromParseError("consumer", error)
    )
    const baseUrl = baseUrlOf(options)
    const client = yield* makeClient(options)
    const reconnect = options.reconnect ?? defaultReconnect
    const ackTimeout = options.ackTimeout ?? Duration.seconds(10)
    const ackRetryFor = options.ackRetryFor ?? Duration.seconds(30)

    const inbox = yield* Mailbox.make<Inbound, ConsumerError>()
    const firstOpen = yield* Deferred.make<void, ConsumerError>()
    // ACKs sent on the socket and not answered yet, by their ref.
    const pending = new Map<string, Deferred.Deferred<AckReceipt, Exclude<ConsumerAckError, Unauthorized> | Unanswered>>()
    let refs = 0
    let open = false

    // Synchronous but for the warning: an effect returned here runs on a fiber of its own,
    // and deliveries must reach the inbox in the order they came.
    const onFrame = (data: string | Uint8Array): Effect.Effect<void> | void => {
      // Skipped, so not acknowledged: a delivery comes again after its ack wait (and ends in the dead letters if it never decodes).
      const json = parse(data)
      if (Option.isNone(json)) return Effect.logWarning(`consumer ${agent_id}: a frame that is not JSON was skipped`)
      const parsed = json.value
      const decoded = decodeFrame(parsed)
      if (Either.isLeft(decoded)) {
        return Effect.logWarning(
          `consumer ${agent_id}: a frame that does not decode was skipped`,
          ValidationError.fromParseError("frame", decoded.left).message
        )
      }
      const frame = decoded.right
      switch (frame.type) {
        case "delivery":
        case "notice": {
          inbox.unsafeOffer(inboundOf(frame))
          return
        }
        case "acked": {
          const answer = frame.ref === undefined ? undefined : pending.get(frame.ref)
          if (answer !== undefined) Deferred.unsafeDone(answer, Exit.succeed(frame.receipt))
          return
        }
        case "error": {
          const answer = frame.ref === undefined ? undefined : pending.get(frame.ref)
          if (answer === undefined) return
          // Decoded again from the raw frame: the frame's schema keeps only the problem's common members.
          const refusal = decodeRefusal((parsed as { readonly error?: unknown }).error)
          Deferred.unsafeDone(
            answer,
            Exit.fail(
              Either.isRight(refusal)
                ? refusal.right
                : new InternalError({ message: `switchboard at ${baseUrl} refused an ACK: ${frame.error.detail}` })
            )
          )
        }
      }
    }

    const socket = yield* Socket.makeWebSocket(streamUrl(options, agent_id), {
      openTimeout: options.openTimeout ?? Duration.seconds(10),
      // Every close ends the session the same way: the consumer opens the socket again.
      closeCodeIsError: () => false
    })
    const write = yield* socket.writer

    /** Why the socket cannot open, when the API can tell: an unknown agent, a refused key. */
    const refusal = Effect.gen(function*() {
      yield* client.agents.get({ path: { agent_id } })
      // Any key may read an agent; only one acting as it may read its dead letters.
      yield* client.messages.deadLetters({ path: { agent_id } })
    }).pipe(
      Effect.matchEffect({
        onFailure: (error) => Effect.succeed(isRefusal(error) ? Option.some(error) : Option.none()),
        onSuccess: () => Effect.succeedNone
      })
    )

    const session = Effect.gen(function*() {
      let openedAt: number | undefined
      yield* Effect.exit(socket.runRaw(onFrame, {
        onOpen: Effect.gen(function*() {
          openedAt = yield* Clock.currentTimeMillis
          open = true
          yield* Deferred.succeed(firstOpen, undefined)
        })
      }))
      open = false
      for (const answer of pending.values()) Deferred.unsafeDone(answer, Exit.fail(new Unanswered()))
      return openedAt
    })

    const supervise = Effect.gen(function*() {
      const pause = yield* Schedule.driver(reconnect)
      while (true) {
        const openedAt = yield* session
        if (openedAt === undefined) {
          const refused = yield* refusal
          if (Option.isSome(refused)) return yield* Effect.fail(refused.value)
        } else if ((yield* Clock.currentTimeMillis) - openedAt >= stableAfterMs) {
          yield* pause.reset
        }
        yield* pause.next(undefined).pipe(
          Effect.catchAll(() =>
            Effect.fail(new InternalError({ message: `switchboard at ${baseUrl}: gave up opening the stream of ${agent_id}` }))
          )
        )
      }
    })

    yield* supervise.pipe(
      Effect.onExit((exit) =>
        Exit.isInterrupted(exit)
          ? inbox.end
          : Exit.isFailure(exit)
          ? Effect.zipRight(Deferred.failCause(firstOpen, exit.cause), inbox.failCause(exit.cause))
          : Effect.void
      ),
      Effect.forkScoped
    )
    yield* Deferred.await(firstOpen)

    const overSocket = (request: ConsumerAck) =>
      Effect.gen(function*() {
        const ref = `a${++refs}`
        const frame = yield* Either.mapLeft(
          encodeAck({ type: "ack", ref, ...request }),
          (error) => ValidationError.fromParseError("ack", error)
        )
        const answer = yield* Deferred.make<AckReceipt, Exclude<ConsumerAckError, Unauthorized> | Unanswered>()
        pending.set(ref, answer)
        return yield* write(JSON.stringify(frame)).pipe(
          Effect.zipRight(Deferred.await(answer)),
          Effect.timeoutFail({ duration: ackTimeout, onTimeout: () => new Unanswered() }),
          Effect.catchTag("SocketError", () => Effect.fail(new Unanswered())),
          Effect.ensuring(Effect.sync(() => pending.delete(ref)))
        )
      })

    const overHttp = (request: ConsumerAck) =>
      client.messages.ack({ payload: { ...request, agent_id } }).pipe(
        Effect.catchTags({
          // The body of one ACK is never too large: a 413 here is not the runtime's answer.
          OversizePayload: (error) => Effect.fail(new InternalError({ message: `switchboard at ${baseUrl}: ${error.message}` })),
          RateLimited: (error) => Effect.fail(new InternalError({ message: `switchboard at ${baseUrl}: ${error.message}` }))
        })
      )

    const ack = (request: ConsumerAck): Effect.Effect<AckReceipt, ConsumerAckError> =>
      Effect.suspend(() => open ? overSocket(request) : Effect.fail(new Unanswered())).pipe(
        Effect.catchTag("Unanswered", () => overHttp(request)),
        Effect.retry({
          schedule: Schedule.upTo(reconnect, ackRetryFor),
          while: (error) => isUnreachable(error)
        }),
        settle(baseUrl)
      )

    return { agent_id, inbound: Mailbox.toStream(inbox), ack, connected: Effect.sync(() => open) }
  })
