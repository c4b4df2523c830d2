/**
 * The `Router` and `Registry` of a remote server, behind the same tags as the
 * in-process ones: a program written against those services, `Processor.run`
 * first of all, runs unchanged in another process than its runtime, with
 * `Remote.layer({ baseUrl, apiKey })` in place of `Switchboard.layer(...)`.
 *
 * Every method is offered, each over the route of the HTTP API that does
 * the same (`server/Api.ts`, through `SwitchboardClient`); `subscribe` and
 * `subscription` over the agent's WebSocket (`Consumer.ts`), which
 * reconnects by itself; `ack` goes over the socket of the acknowledging
 * agent's subscription when one is open, over `POST /acks` otherwise;
 * `awaitStage` waits in long polls of a minute, one after the other, for as
 * long as it takes, as in process.
 *
 * Requests are checked here with the runtime's own Schemas before they
 * travel, so bad input fails with `ValidationError` as it does in process
 * (and an ACK of a batch that does not decode fails alone, as in process,
 * where the HTTP route would refuse the whole batch). Answers and errors are
 * the runtime's own. What the in-process services never meet:
 *
 * - the server cannot be reached, answers a status the API does not declare,
 *   or slows the caller down: `InternalError`, which every method declares
 *   and which is retryable (`Transport.ts`);
 * - the key is refused, or its agent may not do what is asked (a key acts
 *   only as its own agent; the state, `snapshot`, is for operators) where the
 *   method declares no `PermissionDenied`: a defect carrying that error, as
 *   no retry can mend a deployment's keys. `send` and `ack`, which declare
 *   it, fail with it: a suspended agent's refused ACKs reach `Processor`
 *   exactly as in process. `ackMany` answers it for each ACK of a batch the
 *   server refused whole (one ACK of it was for another agent than the
 *   key's), none of which was recorded.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Socket from "@effect/platform/Socket"
import { Chunk, Context, Effect, Either, Layer, Option, Schema, Stream } from "effect"
import type { AgentInfo } from "../model/Agents.js"
import type { RuntimeSnapshot } from "../model/Runtime.js"
import { AgentDescriptor, EdgeRequest } from "../schema/Agent.js"
import { AckRequest, EnvelopeState, Id } from "../schema/Envelope.js"
import { InternalError, ValidationError } from "../schema/Errors.js"
import { AwaitStageRequest, DeregisterRequest, HeartbeatRequest } from "../schema/Requests.js"
import type { MessageStatusView, SnapshotView } from "../schema/Views.js"
import { SendRequest } from "../server/Api.js"
import { Registry } from "../services/Registry.js"
import type { SendError } from "../model/Messages.js"
import { type AckError, type AckReceipt, type MessageStatus, Router, type SendReceipt } from "../services/Router.js"
import * as Consumer from "./Consumer.js"
import { baseUrlOf, make as makeClient, SwitchboardClient } from "./SwitchboardClient.js"
import { dieOn, internalOn, settle } from "./Transport.js"

/** Where the server is, the key, and how the agents' sockets reconnect (`Consumer.ConsumerOptions`). */
export type RemoteOptions = Omit<Consumer.ConsumerOptions, "agent_id">

/** A check of a request with a Schema of the runtime, failing as the runtime does. */
const checker = <A, I>(schema: Schema.Schema<A, I>, subject: string) => {
  const validate = Schema.validateEither(schema, { errors: "all" })
  return (value: A): Effect.Effect<A, ValidationError> =>
    Either.mapLeft(validate(value), (error) => ValidationError.fromParseError(subject, error))
}
const checkId = checker(Id, "request")
const checkSend = checker(SendRequest, "envelope")
const checkAck = checker(AckRequest, "ack")
const checkAwait = checker(AwaitStageRequest, "request")
const checkHeartbeat = checker(HeartbeatRequest, "heartbeat")
const checkDeregister = checker(DeregisterRequest, "request")
const checkEdge = checker(EdgeRequest, "edge")
const decodeDescriptor = (descriptor: typeof AgentDescriptor.Encoded) =>
  Either.mapLeft(
    Schema.decodeUnknownEither(AgentDescriptor, { errors: "all", onExcessProperty: "error" })(descriptor),
    (error) => ValidationError.fromParseError("agent", error)
  )

/** How far a message has gone, as `awaitStage` counts it: any terminal stage ends the wait. */
const stageRank = (stage: EnvelopeState) => stage === "SENT" ? 0 : stage === "RECEIVED" ? 1 : stage === "READ" ? 2 : 3

/** The longest wait the API allows one request (`wait_ms`). */
const longPollMs = 60_000

// JSON has no `undefined`: fields the runtime leaves undefined come back absent.
const messageStatus = (view: typeof MessageStatusView.Type): MessageStatus => ({
  ...view,
  delivery_seq: view.delivery_seq,
  error_code: view.error_code,
  finished_at: view.finished_at
})

const snapshotOf = (view: typeof SnapshotView.Type): RuntimeSnapshot => ({
  ...view,
  agents: Object.fromEntries(Object.entries(view.agents).map(([id, agent]) => [id, {
    ...agent,
    liveness_deadline: agent.liveness_deadline
  }])),
  messages: Object.fromEntries(Object.entries(view.messages).map(([id, message]) => [id, {
    ...message,
    delivery_seq: message.delivery_seq,
    ack_deadline: message.ack_deadline,
    expires_at: message.expires_at,
    error_code: message.error_code
  }])),
  gateway: { ...view.gateway, halted: view.gateway.halted }
})

/** The remote services, over the `HttpClient` and `WebSocketConstructor` in context. */
export const make = (options: RemoteOptions) =>
  Effect.gen(function*() {
    const client = yield* makeClient(options)
    const context = yield* Effect.context<HttpClient.HttpClient | Socket.WebSocketConstructor>()
    const baseUrl = baseUrlOf(options)
    /** A call of the API as a method of the services: see the module's header. */
    const remote = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(
        settle(baseUrl),
        dieOn("Unauthorized", "PermissionDenied"),
        internalOn(baseUrl, "OversizePayload", "PersistenceError", "UndecodableRecord")
      )
    /** The same, for the methods that declare `PermissionDenied` and `PersistenceError`. */
    const command = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(settle(baseUrl), dieOn("Unauthorized"), internalOn(baseUrl, "OversizePayload"))
    /** The open subscriptions, by agent: their sockets carry the agents' ACKs. */
    const consumers = new Map<string, Consumer.Consumer>()

    const subscription = (agent_id: string) =>
      Effect.gen(function*() {
        const consumer = yield* Consumer.connect({ ...options, agent_id }).pipe(Effect.provide(context))
        consumers.set(agent_id, consumer)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (consumers.get(agent_id) === consumer) consumers.delete(agent_id)
          })
        )
        // Refused after it was open: the agent is gone (NoRoute), or its key was revoked since.
        return consumer.inbound.pipe(
          Stream.catchAll((error) =>
            error._tag === "Unauthorized" || error._tag === "PermissionDenied"
              ? Stream.die(error)
              : Stream.fail(
                error._tag === "InternalError" ? error : new InternalError({ message: `switchboard at ${baseUrl}: ${error.message}` })
              )
          )
        )
      }).pipe(dieOn("Unauthorized", "PermissionDenied"))

    const ack = (request: AckRequest) =>
      Effect.flatMap(checkAck(request), ({ agent_id, ...ack }) => {
        const consumer = consumers.get(agent_id)
        return consumer === undefined ? command(client.messages.ack({ payload: request })) : consumer.ack(ack)
      }).pipe(dieOn("Unauthorized"))

    const router = Router.of({
      send: (request) =>
        Effect.flatMap(checkSend(request), (payload) =>
          command(client.messages.send({ payload }))),
      sendMany: (requests) =>
        Effect.gen(function*() {
          const checked = yield* Effect.forEach(requests, (request) => Effect.either(checkSend(request)))
          const valid = checked.flatMap((result) => Either.isRight(result) ? [result.right] : [])
          // The server takes at most 1,024 a request: larger batches go as several, in order.
          const answers = (yield* Effect.forEach(
            Chunk.toReadonlyArray(Chunk.chunksOf(Chunk.unsafeFromArray(valid), 1024)),
            (sends) => remote(client.messages.sendMany({ payload: { sends: Chunk.toReadonlyArray(sends) } }))
          )).flat()
          if (answers.length !== valid.length) {
            return yield* new InternalError({
              message: `switchboard at ${baseUrl}: answered ${answers.length} sends of ${valid.length}`
            })
          }
          let next = 0
          return checked.map((result): Either.Either<SendReceipt, SendError | AckError> => {
            if (Either.isLeft(result)) return Either.left(result.left)
            const answer = answers[next++]
            return answer.ok ? Either.right(answer.receipt) : Either.left(answer.error)
          })
        }),
      subscribe: (agent_id) => Stream.unwrapScoped(subscription(agent_id)),
      // Over the network, the consumer's socket is a stream already: its items are pushed on from it.
      attach: (agent_id, _options, sink) =>
        Effect.gen(function*() {
          const inbound = yield* subscription(agent_id)
          yield* inbound.pipe(
            Stream.runForEach((item) => Effect.sync(() => sink.offer(item))),
            Effect.catchAll((error) => Effect.sync(() => sink.end(error))),
            Effect.forkScoped
          )
        }),
      subscription,
      ack,
      ackMany: (requests) =>
        Effect.gen(function*() {
          const checked = yield* Effect.forEach(requests, (request) => Effect.either(checkAck(request)))
          const valid = checked.flatMap((result) => Either.isRight(result) ? [result.right] : [])
          const answers = valid.length === 0 ? [] : yield* client.messages.ackMany({ payload: { acks: valid } }).pipe(
            // One ACK for another agent than the key's refuses the whole batch: none of them was recorded.
            Effect.catchTag("PermissionDenied", (denied) => Effect.succeed(valid.map(() => ({ ok: false as const, error: denied })))),
            remote
          )
          if (answers.length !== valid.length) {
            return yield* new InternalError({
              message: `switchboard at ${baseUrl}: answered ${answers.length} ACKs of ${valid.length}`
            })
          }
          let next = 0
          return checked.map((result): Either.Either<AckReceipt, AckError> => {
            if (Either.isLeft(result)) return Either.left(result.left)
            const answer = answers[next++]
            return answer.ok ? Either.right(answer.receipt) : Either.left(answer.error)
          })
        }),
      status: (message_id) =>
        Effect.flatMap(checkId(message_id), () =>
          client.messages.status({ path: { message_id } }).pipe(
            Effect.map((view) => Option.some(messageStatus(view))),
            Effect.catchTag("MessageNotFound", () => Effect.succeedNone),
            remote
          )),
      awaitStage: (request) =>
        Effect.flatMap(checkAwait(request), ({ message_id, stage }) =>
          client.messages.awaitStage({ path: { message_id }, urlParams: { stage, wait_ms: longPollMs } }).pipe(
            Effect.repeat({ until: (status) => stageRank(status.stage) >= stageRank(stage) }),
            Effect.map(messageStatus),
            remote
          )),
      deadLetters: (agent_id) =>
        Effect.flatMap(checkId(agent_id), () =>
          client.messages.deadLetters({ path: { agent_id } }).pipe(
            Effect.map((views) => views.map(messageStatus)),
            remote
          )),
      redrive: (message_id) =>
        Effect.flatMap(checkId(message_id), () =>
          remote(client.messages.redrive({ path: { message_id } }))),
      snapshot: client.audit.state({ urlParams: {} }).pipe(
        Effect.map(({ offset, state }) => ({ offset, state: snapshotOf(state) })),
        remote,
        // Only `at`, which is not sent, could be invalid.
        internalOn(baseUrl, "ValidationError")
      )
    })

    const registry = Registry.of({
      register: (descriptor) =>
        Effect.flatMap(decodeDescriptor(descriptor), (payload) =>
          command(client.agents.register({ payload }))),
      heartbeat: (request) =>
        Effect.flatMap(checkHeartbeat(request), ({ agent_id, ...payload }) =>
          remote(client.agents.heartbeat({ path: { agent_id }, payload }))),
      keepAlive: (agent_id) => Effect.flatMap(checkId(agent_id), () => remote(client.agents.keepAlive({ path: { agent_id } }))),
      deregister: (request) =>
        Effect.flatMap(checkDeregister(request), ({ agent_id, reason }) =>
          remote(client.agents.deregister({ path: { agent_id }, payload: { reason } }))),
      get: (agent_id) =>
        Effect.flatMap(checkId(agent_id), () =>
          client.agents.get({ path: { agent_id } }).pipe(
            Effect.map((agent): Option.Option<AgentInfo> => Option.some(agent)),
            Effect.catchTag("NoRoute", () => Effect.succeedNone),
            remote
          )),
      list: remote(client.agents.list({ urlParams: {} })).pipe(internalOn(baseUrl, "ValidationError")),
      byCapability: (capability) =>
        Effect.flatMap(checkId(capability), () => remote(client.agents.list({ urlParams: { capability } }))),
      lineage: (agent_id) => Effect.flatMap(checkId(agent_id), () => remote(client.agents.lineage({ path: { agent_id } }))),
      subtree: (agent_id) => Effect.flatMap(checkId(agent_id), () => remote(client.agents.subtree({ path: { agent_id } }))),
      team: (team_id) => Effect.flatMap(checkId(team_id), () => remote(client.agents.team({ path: { team_id } }))),
      edges: (agent_id) => Effect.flatMap(checkId(agent_id), () => remote(client.agents.edges({ path: { agent_id } }))),
      addEdge: (edge) =>
        Effect.flatMap(checkEdge(edge), ({ edge_type, from, to }) =>
          remote(client.assembly.edge({ payload: { source_agent_id: from, target_agent_id: to, edge_type } })).pipe(
            Effect.asVoid
          ))
    })

    return Context.make(Router, router).pipe(Context.add(Registry, registry), Context.add(SwitchboardClient, client))
  })

/**
 * The `Router` and `Registry` of the server at `baseUrl` (and its
 * `SwitchboardClient`, for the rest of the API), over an `HttpClient` and a
 * `Socket.WebSocketConstructor`: on Node, `Remote.layerNode` from
 * `switchboard/node` includes both.
 */
export const layer = (
  options: RemoteOptions
): Layer.Layer<Router | Registry | SwitchboardClient, never, HttpClient.HttpClient | Socket.WebSocketConstructor> =>
  Layer.effectContext(make(options))
