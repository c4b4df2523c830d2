/**
 * The registry and the router over HTTP: each handler checks who calls
 * (`Access.ts`), calls the service method the in-process API offers, and
 * returns its answer as it is. No rule lives here.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Duration, Effect, Either, Option, Schema } from "effect"
import { MessageNotFound, NoRoute, OversizePayload, ValidationError } from "../schema/Errors.js"
import { Registry } from "../services/Registry.js"
import { Router } from "../services/Router.js"
import { actAs, actAsOneOf, auditFirstRefusal, auditRefusal, mayActAs } from "./Access.js"
import { Caller, SendBatch, SendResult, SwitchboardApi } from "./Api.js"
import { fastEncoder, fastInputDecoder } from "../internal/fastSchema.js"

const defaultWaitMs = 30_000

const decodeSendBatch = fastInputDecoder(SendBatch, "request")

/** The JSON body, as the edge (`Edge.ts`) read and checked it: its own refusals come through as they are. */
const bodyOf = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.catchAll(request.json, (error: unknown) =>
    Effect.fail(
      error instanceof OversizePayload || error instanceof ValidationError
        ? error
        : ValidationError.single("body", "", "must be a JSON document")
    ))
const encodeSendResults = fastEncoder(Schema.Array(SendResult))

export const agents = HttpApiBuilder.group(SwitchboardApi, "agents", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const known = (agent_id: string) =>
      Effect.flatMap(registry.get(agent_id), Option.match({
        onNone: () => Effect.fail(new NoRoute({ to: agent_id })),
        onSome: Effect.succeed
      }))
    return handlers
      .handle("register", ({ payload }) =>
        Effect.zipRight(actAs(payload.agent_id, "agents.register"), registry.register(payload)))
      .handle("list", ({ urlParams }) =>
        urlParams.capability !== undefined
          ? Effect.map(
            registry.byCapability(urlParams.capability),
            (found) => urlParams.team_id === undefined ? found : found.filter((agent) => agent.descriptor.team_id === urlParams.team_id)
          )
          : urlParams.team_id !== undefined
          ? registry.team(urlParams.team_id)
          : registry.list)
      .handle("get", ({ path }) => known(path.agent_id))
      .handle("heartbeat", ({ path, payload }) =>
        Effect.zipRight(actAs(path.agent_id, "agents.heartbeat"), registry.heartbeat({ agent_id: path.agent_id, ...payload })))
      .handle("keepAlive", ({ path }) =>
        Effect.zipRight(actAs(path.agent_id, "agents.keepalive"), registry.keepAlive(path.agent_id)))
      .handle("deregister", ({ path, payload }) =>
        Effect.zipRight(
          actAs(path.agent_id, "agents.deregister"),
          registry.deregister({ agent_id: path.agent_id, reason: payload.reason })
        ))
      .handle("lineage", ({ path }) => registry.lineage(path.agent_id))
      .handle("subtree", ({ path }) => registry.subtree(path.agent_id))
      .handle("team", ({ path }) => registry.team(path.team_id))
      .handle("edges", ({ path }) => registry.edges(path.agent_id))
  }))

export const messages = HttpApiBuilder.group(SwitchboardApi, "messages", (handlers) =>
  Effect.gen(function*() {
    const router = yield* Router
    /** The message's status, for a caller it concerns: its producer, its recipient, or the operator. */
    const statusFor = (message_id: string, action: string) =>
      Effect.gen(function*() {
        const status = yield* Effect.flatMap(router.status(message_id), Option.match({
          onNone: () => Effect.fail(new MessageNotFound({ message_id })),
          onSome: Effect.succeed
        }))
        yield* actAsOneOf([status.producer_id, status.to], action, `message ${message_id}`)
        return status
      })
    return handlers
      .handle("send", ({ payload }) =>
        Effect.zipRight(
          actAs(payload.envelope.producer_id, "messages.send"),
          // An ACKNOWLEDGEMENT envelope is an ack: one the runtime refuses is audited as `POST /acks` would be.
          router.send(payload).pipe(Effect.tapError((error) => auditRefusal("messages.ack", error)))
        ))
      // Raw, to decode and encode on the fast path: a batch holds up to 1,024
      // envelopes, and Schema's general decoder would cost more than the rest
      // of the send. The route's Schemas and its OpenAPI description stay the API's.
      .handleRaw("sendMany", ({ request }) =>
        Effect.gen(function*() {
          const payload = yield* Effect.flatMap(bodyOf(request), (json) => decodeSendBatch(json))
          // An agent's key sends as its agent only: one send as another refuses the
          // batch, with one refusal in the audit (as for a batch of ACKs), not one per send.
          const caller = yield* Caller
          const foreign = payload.sends.find((send) => !mayActAs(caller, send.envelope.producer_id))
          if (foreign !== undefined) yield* actAs(foreign.envelope.producer_id, "messages.send")
          const results = yield* router.sendMany(payload.sends)
          // Refused acks (ACKNOWLEDGEMENT envelopes) are audited once a batch, not once each.
          yield* auditFirstRefusal("messages.ack", results)
          const answers = results.map(Either.match({
            onLeft: (error) => ({ ok: false as const, error }),
            onRight: (receipt) => ({ ok: true as const, receipt })
          }))
          return yield* Either.match(encodeSendResults(answers), {
            // A result the API cannot describe is a bug, as the platform would have it.
            onLeft: (error) => Effect.die(error),
            onRight: (encoded) => Effect.succeed(HttpServerResponse.unsafeJson(encoded))
          })
        }))
      .handle("status", ({ path }) => statusFor(path.message_id, "messages.status"))
      .handle("awaitStage", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const now = yield* statusFor(path.message_id, "messages.await")
          return yield* router.awaitStage({ message_id: path.message_id, stage: urlParams.stage }).pipe(
            Effect.timeoutTo({
              duration: Duration.millis(urlParams.wait_ms ?? defaultWaitMs),
              onTimeout: () => statusFor(path.message_id, "messages.await").pipe(Effect.orElseSucceed(() => now)),
              onSuccess: Effect.succeed
            }),
            Effect.flatten
          )
        }))
      .handle("redrive", ({ path }) =>
        Effect.gen(function*() {
          const status = yield* statusFor(path.message_id, "messages.redrive")
          yield* actAs(status.to, "messages.redrive")
          return yield* router.redrive(path.message_id)
        }))
      .handle("deadLetters", ({ path }) =>
        Effect.zipRight(actAs(path.agent_id, "messages.dead_letters"), router.deadLetters(path.agent_id)))
      .handle("ack", ({ payload }) =>
        Effect.zipRight(
          actAs(payload.agent_id, "messages.ack"),
          router.ack(payload).pipe(Effect.tapError((error) => auditRefusal("messages.ack", error)))
        ))
      .handle("ackMany", ({ payload }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          // An agent's key acknowledges for its agent only: one foreign ACK refuses the batch.
          const foreign = caller._tag === "Agent" ? payload.acks.find((ack) => ack.agent_id !== caller.agent_id) : undefined
          if (foreign !== undefined) yield* actAs(foreign.agent_id, "messages.ack")
          const results = yield* router.ackMany(payload.acks)
          yield* Effect.forEach(results, (result) =>
            Either.isLeft(result) ? auditRefusal("messages.ack", result.left) : Effect.void)
          return results.map(Either.match({
            onLeft: (error) => ({ ok: false as const, error }),
            onRight: (receipt) => ({ ok: true as const, receipt })
          }))
        }))
  }))
