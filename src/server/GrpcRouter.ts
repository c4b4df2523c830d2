/**
 * `sw4rm.router.RouterService` over the runtime's Router (PROTOCOLS.md §1,
 * "SW4RM over gRPC"):
 *
 * - `SendMessage`: to the recipient named in the call's `sw4rm-to` metadata
 *   (an agent id, or `capability:NAME`), else a copy to every other
 *   registered, available agent (`Broadcast.ts`); an ACKNOWLEDGEMENT
 *   envelope is the ACK it carries, for the producer of the acked message,
 *   whatever the metadata. `accepted` is false, with the reason, only for a
 *   broadcast that some agents took and others refused: a retry then sends
 *   again only what was refused (the copies taken are its duplicates).
 *   Every other failure is a status.
 * - `StreamIncoming`: the agent's deliveries (`seq` = delivery_seq) and the
 *   ACKs of messages it sent (`seq` 0). A copy of a broadcast comes with the
 *   ids its producer gave it. When the stream ends, what it had not settled
 *   goes back to the mailbox at once.
 * - `AckDelivery`: DELIVERED is FULFILLED, PERMANENT_FAILURE is FAILED into
 *   the dead letters, each of that delivery only; `recorded` is false for an
 *   unknown seq, another agent's delivery, or one already settled.
 *
 * An agent's key acts only as its agent, as over HTTP (`Access.ts`), and its
 * refusals are audited the same way.
 */
import type * as Grpc from "@grpc/grpc-js"
import { status as Code } from "@grpc/grpc-js"
import { Deferred, Effect, Either, Exit, Option } from "effect"
import { clip, maxMessage } from "../internal/bounds.js"
import { inputDecoder } from "../internal/decode.js"
import { fastEncoder, fastInputDecoder } from "../internal/fastSchema.js"
import { checkBroadcast, copyFor, originalId, recipientsOf, restore } from "../model/Broadcast.js"
import { type AckRequest, AckStageNumber, type Envelope, ErrorCodeNumber, Id } from "../schema/Envelope.js"
import type { Principal } from "../schema/Keys.js"
import { NoRoute, ValidationError } from "../schema/Errors.js"
import { DeliveryAckRequest, EnvelopeFromProto, SendMessageRequest, StreamRequest } from "../schema/Sw4rm.js"
import type { Gateway } from "../services/Gateway.js"
import { Registry } from "../services/Registry.js"
import { type Inbound, type Recipient, Router, type StageNotice } from "../services/Router.js"
import { actAs, actingAgent, auditRefusal } from "./Access.js"
import { Caller } from "./Api.js"
import type { Authenticate } from "./Auth.js"
import * as Batch from "./GrpcBatch.js"
import { type Run, serverStream } from "./GrpcCalls.js"
import { constant } from "./GrpcProto.js"
import { refusal } from "./GrpcStatus.js"
import { outbox } from "./Outbox.js"

/** The content type of the ACKs Switchboard writes for a gRPC stream: SW4RM's, with its numbers. */
export const ackContentType = "application/vnd.sw4rm.ack+json;v=1"

export interface RouterServiceOptions {
  /** What a stream may have written and not yet sent before its consumer counts as not reading (default 16 MiB). */
  readonly maxBufferedBytes?: number | undefined
}

const decodeSend = fastInputDecoder(SendMessageRequest, "request")
const decodeStream = inputDecoder(StreamRequest, "request")
const decodeDeliveryAck = inputDecoder(DeliveryAckRequest, "request")
const decodeRecipient = inputDecoder(Id, "sw4rm-to")
const encodeEnvelope = fastEncoder(EnvelopeFromProto)
const encoder = new TextEncoder()

const recorded = constant({ recorded: true })
const notRecorded = constant({ recorded: false })

/** The most deliveries remembered by seq for an agent, for an `AckDelivery` that names no message. */
const maxRemembered = 20_000

/** The recipient a call names in its metadata, if any: an agent id, or `capability:NAME`. */
const recipientOf = (metadata: Grpc.Metadata): Effect.Effect<Recipient | undefined, ValidationError> => {
  const values = metadata.get("sw4rm-to")
  if (values.length === 0 || values[0] === "") return Effect.succeed(undefined)
  if (values.length > 1 || typeof values[0] !== "string") {
    return Effect.fail(ValidationError.single("sw4rm-to", "", "must be one agent id, or capability:NAME"))
  }
  const value = values[0]
  return value.startsWith("capability:")
    ? Effect.map(decodeRecipient(value.slice("capability:".length)), (capability) => ({ capability }))
    : decodeRecipient(value)
}

/** An ACK the router wrote, for a SW4RM client: the ids its producer gave, and the enums by number. */
const sw4rmNotice = (notice: StageNotice): Envelope => {
  if (notice.relayed === true) return notice.envelope
  const { ack } = notice
  const ackFor = notice.to === undefined ? ack.ack_for_message_id : originalId(ack.ack_for_message_id, notice.to) ?? ack.ack_for_message_id
  const payload = encoder.encode(JSON.stringify({
    ack_for_message_id: ackFor,
    ack_stage: AckStageNumber[ack.ack_stage],
    ...(ack.error_code === undefined ? {} : { error_code: ErrorCodeNumber[ack.error_code] }),
    ...(ack.note === undefined ? {} : { note: ack.note })
  }))
  return { ...notice.envelope, content_type: ackContentType, payload, content_length: payload.length }
}

export const make = (
  run: Run<Router | Registry | Gateway>,
  runStream: Run<Router | Registry | Gateway>,
  authenticate: Authenticate["Type"],
  options: RouterServiceOptions = {}
) =>
  Effect.gen(function*() {
    const router = yield* Router
    const registry = yield* Registry
    const maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024
    const accepted = constant({ accepted: true, reason: "" })

    // Per agent, its deliveries by seq, as its streams handed them out, and how many streams it has open.
    const delivered = new Map<string, Map<number, string>>()
    const streams = new Map<string, number>()
    const remember = (agent_id: string, seq: number, message_id: string) => {
      const seqs = delivered.get(agent_id)
      if (seqs === undefined) return
      seqs.set(seq, message_id)
      if (seqs.size > maxRemembered) seqs.delete(seqs.keys().next().value!)
    }

    const broadcast = (envelope: Envelope) =>
      Effect.gen(function*() {
        const invalid = checkBroadcast(envelope)
        if (invalid !== undefined) return yield* Effect.fail(invalid)
        const recipients = recipientsOf(yield* registry.list, envelope.producer_id)
        if (recipients.length === 0) return yield* new NoRoute({ to: "every other agent (none is registered and available)" })
        const results = yield* router.sendMany(recipients.map((to) => ({ to, envelope: copyFor(envelope, to) })))
        const refused = results.flatMap((result, i) =>
          Either.isLeft(result) && result.left._tag !== "DuplicateDetected" ? [{ to: recipients[i], error: result.left }] : []
        )
        // Each copy taken before (a retry): the send as a whole is a duplicate.
        if (refused.length === 0) {
          const first = results[0]
          return results.every(Either.isLeft) && Either.isLeft(first) ? yield* Effect.fail(first.left) : accepted
        }
        if (refused.length === results.length) return yield* Effect.fail(refused[0].error)
        return {
          accepted: false,
          reason: clip(
            `taken for ${results.length - refused.length} of ${results.length} agents; refused for ` +
              refused.map(({ error, to }) => `${to} (${error.code}: ${error.message})`).join("; "),
            maxMessage
          )
        }
      })

    // Unicast sends (nearly all) join the batch; an ACK envelope or a broadcast goes alone.
    const prepareSend = (request: typeof SendMessageRequest.Type, call: Grpc.ServerUnaryCall<unknown, unknown>) =>
      Effect.gen(function*() {
        const envelope = request.msg
        yield* actAs(envelope.producer_id, "messages.send")
        if (envelope.message_type === "ACKNOWLEDGEMENT") {
          // An ACK the runtime refuses for this key is audited, as over HTTP.
          return Batch.alone(router.send({ to: envelope.producer_id, envelope }).pipe(
            Effect.tapError((error) => auditRefusal("messages.ack", error)),
            Effect.as(accepted)
          ))
        }
        const to = yield* recipientOf(call.metadata)
        return to === undefined ? Batch.alone(broadcast(envelope)) : Batch.item({ to, envelope })
      })

    const sendMany = (sends: ReadonlyArray<{ readonly to: Recipient; readonly envelope: Envelope }>) =>
      Effect.map(router.sendMany(sends), (results) => results.map((result) => Either.map(result, () => accepted)))

    const streamIncoming = (request: typeof StreamRequest.Type, call: Grpc.ServerWritableStream<unknown, unknown>) =>
      Effect.gen(function*() {
        const agent_id = request.agent_id
        yield* actAs(agent_id, "stream.grpc")
        // Refused now, with a status; the subscription itself starts below.
        if (Option.isNone(yield* registry.get(agent_id))) return yield* new NoRoute({ to: agent_id })
        const ended = yield* Deferred.make<void>()
        const end = () => Deferred.unsafeDone(ended, Exit.void)
        call.once("cancelled", end)
        call.once("close", end)
        if (!delivered.has(agent_id)) delivered.set(agent_id, new Map())
        streams.set(agent_id, (streams.get(agent_id) ?? 0) + 1)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            const open = (streams.get(agent_id) ?? 1) - 1
            if (open > 0) return streams.set(agent_id, open)
            streams.delete(agent_id)
            delivered.delete(agent_id)
          })
        )
        let buffered = 0
        let tooSlow = false
        const written = (size: number) => () => {
          buffered -= size
        }
        // A consumer that does not read would have all that is sent to it kept in
        // memory: past the bound its stream ends, and what it held goes back.
        const stopSlow = () => {
          tooSlow = true
          end()
          call.emit("error", refusal(Code.RESOURCE_EXHAUSTED, "BUFFER_FULL", "the consumer does not read what it is sent", true))
        }
        const write = (item: Inbound) => {
          if (tooSlow || call.cancelled || !call.writable) return
          if (buffered > maxBufferedBytes) return stopSlow()
          const envelope = item._tag === "Delivery" ? restore(item.envelope, agent_id) : sw4rmNotice(item)
          const msg = encodeEnvelope(envelope)
          if (Either.isLeft(msg)) return
          const size = envelope.payload.length + 512
          buffered += size
          if (item._tag === "Delivery") remember(agent_id, item.delivery_seq, item.envelope.message_id)
          call.write({ msg: msg.right, seq: item._tag === "Delivery" ? item.delivery_seq : 0 }, written(size))
        }
        const inbox = outbox()
        inbox.start({
          write: (items) => Effect.sync(() => items.forEach(write)),
          // The runtime stopped: the client reconnects, to this server once it is back or to another.
          close: Effect.sync(() => {
            end()
            if (!call.cancelled && call.writable) {
              call.emit("error", refusal(Code.UNAVAILABLE, "INTERNAL_ERROR", "the runtime stopped", true))
            }
          }),
          run: (effect) => {
            runStream(effect)
          }
        })
        yield* router.attach(agent_id, { unsettled: "release" }, inbox.sink)
        yield* Deferred.await(ended)
      })

    const prepareAck = (request: typeof DeliveryAckRequest.Type) =>
      Effect.gen(function*() {
        const agent_id = yield* actingAgent(request.agent_id === "" ? undefined : request.agent_id, "messages.ack")
        if (request.seq === 0) {
          return yield* Effect.fail(ValidationError.single("request", "seq", "is required: the delivery's seq, from 1"))
        }
        const message_id = request.message_id !== "" ? request.message_id : delivered.get(agent_id)?.get(request.seq)
        if (message_id === undefined) return Batch.answer(notRecorded)
        const failed = request.outcome === "PERMANENT_FAILURE"
        const ack: AckRequest = {
          agent_id,
          message_id,
          delivery_seq: request.seq,
          ...(failed
            ? { stage: "FAILED", error_code: "VALIDATION_ERROR", dead_letter: true, note: "PERMANENT_FAILURE (AckDelivery)" }
            : { stage: "FULFILLED" })
        }
        return Batch.item({ ack, caller: yield* Caller })
      })

    const ackMany = (items: ReadonlyArray<{ readonly ack: AckRequest; readonly caller: Principal }>) =>
      Effect.gen(function*() {
        const results = yield* router.ackMany(items.map(({ ack }) => ack))
        const answers: Array<Either.Either<{ readonly recorded: boolean }, unknown>> = []
        for (let i = 0; i < results.length; i++) {
          const result = results[i]
          const { ack, caller } = items[i]
          if (Either.isRight(result)) {
            delivered.get(ack.agent_id)?.delete(ack.delivery_seq!)
            answers.push(Either.right(result.right.late ? notRecorded : recorded))
            continue
          }
          const error = result.left
          // Another agent's message, or one the router does not know: nothing recorded.
          if (error._tag === "PermissionDenied") yield* Effect.provideService(auditRefusal("messages.ack", error), Caller, caller)
          answers.push(
            error._tag === "PermissionDenied" || error._tag === "MessageNotFound" ? Either.right(notRecorded) : Either.left(error)
          )
        }
        return answers
      })

    return {
      SendMessage: Batch.batchedUnary(run, authenticate, "SendMessageRequest", decodeSend, { prepare: prepareSend, handleMany: sendMany }),
      StreamIncoming: serverStream(runStream, authenticate, "StreamRequest", decodeStream, streamIncoming),
      AckDelivery: Batch.batchedUnary(run, authenticate, "DeliveryAckRequest", decodeDeliveryAck, {
        prepare: prepareAck,
        handleMany: ackMany
      })
    } satisfies Grpc.UntypedServiceImplementation
  })
