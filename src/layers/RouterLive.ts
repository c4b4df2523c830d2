/**
 * The live router: a thin layer over the command loop. Sends and acks are
 * decisions run through the loop; deliveries are what its turn extension
 * decides for the credit of each agent's subscribers, handed out once
 * durable; stage changes reach producers as ACKNOWLEDGEMENT notices.
 */
import { Chunk, Effect, Either, Exit, Layer, Mailbox, Option, Schema, Stream } from "effect"
import { buildEnvelope } from "../model/Envelopes.js"
import { decideDeliveries } from "../model/Mailboxes.js"
import { type AckError, type AckOutcome, type Admitted, decideAck, decideRedrive, decideSend, isTerminal, type MessageEntry, type SendError } from "../model/Messages.js"
import { decideReleasedDeliveries, decideUntakenDeliveries } from "../model/Placement.js"
import { snapshot } from "../model/Runtime.js"
import {
  AckPayload,
  AckRequest,
  type AckStage,
  decodeAckPayload,
  Envelope,
  type EnvelopeState,
  Id,
  maxIdLength
} from "../schema/Envelope.js"
import { type InternalError, MessageNotFound, NoRoute, type PersistenceError, ValidationError } from "../schema/Errors.js"
import type { Event, EventRecord } from "../schema/Event.js"
import type { RuntimeState } from "../model/State.js"
import { inputDecoder } from "../internal/decode.js"
import { fastInputDecoder } from "../internal/fastSchema.js"
import { AwaitStageRequest, SubscriptionOptions } from "../schema/Requests.js"
import type { Route } from "../schema/RouterEvents.js"
import { type AckReceipt, type Delivery, type Inbound, type InboundSink, type MessageStatus, type Recipient, Router, type SendReceipt, type StageNotice } from "../services/Router.js"
import { Runtime } from "../services/Runtime.js"
import { fieldOf, idOf, offsetOf, traced, tracedEffect } from "./Spans.js"
import * as Waiters from "./Waiters.js"
import type { Look } from "./Waiters.js"

export const messageStatus = (message: MessageEntry): MessageStatus => ({
  message_id: message.id,
  producer_id: message.producerId,
  to: message.to,
  stage: message.stage,
  attempts: message.attempts,
  delivery_seq: message.deliverySeq,
  error_code: message.errorCode,
  dead_letter: message.deadLetter,
  accepted_at: message.acceptedAt,
  finished_at: message.finishedAt
})

const stageRank = (stage: EnvelopeState) => stage === "SENT" ? 0 : stage === "RECEIVED" ? 1 : stage === "READ" ? 2 : 3

interface Subscriber {
  /** Hands an item over; called in the loop's turn, once it is durable. */
  readonly push: (item: Inbound) => void
  /** The loop stopped. */
  readonly fail: (error: InternalError) => void
  /** Ends the subscriber and gives back what it was handed and its consumer never took. */
  readonly close: Effect.Effect<Chunk.Chunk<Inbound>>
  /** The messages delivered to this subscriber and not yet settled, each with the delivery_seq it was handed out as. */
  readonly holding: Map<string, number>
}

/** A subscriber whose items wait in a mailbox for its stream to pull them. */
const mailboxSubscriber = (inbox: Mailbox.Mailbox<Inbound, InternalError>): Subscriber => ({
  push: (item) => inbox.unsafeOffer(item),
  fail: (error) => inbox.unsafeDone(Exit.fail(error)),
  // A mailbox the stopped loop failed holds nothing to give back.
  close: Effect.zipLeft(Effect.orElseSucceed(inbox.clear, () => Chunk.empty<Inbound>()), inbox.shutdown),
  holding: new Map()
})

/** A subscriber whose sink takes each item at once: nothing is ever left untaken. */
const sinkSubscriber = (sink: InboundSink): Subscriber => {
  let open = true
  return {
    push: (item) => {
      if (open) sink.offer(item)
    },
    fail: (error) => {
      if (open) sink.end(error)
      open = false
    },
    close: Effect.sync(() => {
      open = false
      return Chunk.empty<Inbound>()
    }),
    holding: new Map()
  }
}

/** The JSON form of an ack the router itself built: it cannot fail. */
const encodeAck = Schema.encodeSync(AckPayload)
/** On the fast path: an ACK per message, as hot as the send. */
const validAck = fastInputDecoder(AckRequest, "ack")
const validEnvelope = fastInputDecoder(Schema.typeSchema(Envelope), "envelope")
const validStageRequest = inputDecoder(AwaitStageRequest, "await")
const validMessageId = inputDecoder(Id, "message_id")
const validAgentId = inputDecoder(Id, "agent_id")
const validSubscriptionOptions = inputDecoder(Schema.UndefinedOr(SubscriptionOptions), "subscription", {
  onExcessProperty: "error"
})
// On the fast path, as the envelope: both are checked for every message sent.
const validRecipient = fastInputDecoder(Schema.Union(Id, Schema.Struct({ capability: Id })), "to")
const validSend = (request: unknown) =>
  typeof request === "object" && request !== null
    ? Either.right(request as { readonly to: unknown; readonly envelope: unknown })
    : Either.left(ValidationError.single("send", "", "must be an object with `to` and `envelope`"))
// Only its shape: each ack in it is decoded on its own, on the fast path.
const validAcks = (requests: unknown) =>
  Array.isArray(requests)
    ? Either.right(requests as ReadonlyArray<unknown>)
    : Either.left(ValidationError.single("acks", "", "must be an array of ack requests"))

const ackReceipt = (outcome: AckOutcome, records: ReadonlyArray<EventRecord>): AckReceipt => ({
  message_id: outcome.message_id,
  stage: outcome.stage,
  late: outcome.late,
  offset: records[0].offset
})

const sendReceipt = (admitted: Admitted, records: ReadonlyArray<EventRecord>): SendReceipt => ({
  message_id: admitted.message_id,
  to: admitted.to,
  stage: "RECEIVED",
  // The message's own record: it comes last, after any audit record or edge of the same decision.
  offset: records[records.length - 1].offset
})

const ackAttributes = (request: unknown) => ({
  agent_id: idOf(fieldOf(request, "agent_id")),
  message_id: idOf(fieldOf(request, "message_id")),
  stage: idOf(fieldOf(request, "stage"))
})

/** The offset of the last ack of a batch that was recorded. */
const lastOffset = (results: ReadonlyArray<Either.Either<{ readonly offset: number }, unknown>>) => {
  let offset: number | undefined
  for (const result of results) if (Either.isRight(result)) offset = result.right.offset
  return offset
}

const toRoute = (to: Recipient): Route =>
  typeof to === "string" ? { _tag: "Agent", agent_id: to } : { _tag: "Capability", capability: to.capability }

/** What a recipient's own ACKNOWLEDGEMENT envelope said: the producer is told with it, as it was sent. */
interface Relay {
  readonly envelope: Envelope
  readonly ack: AckPayload
}

/**
 * A stage change as the ACKNOWLEDGEMENT envelope the producer gets: the
 * recipient's own when it acknowledged with one, else one Switchboard writes.
 */
const notice = (message: MessageEntry, stage: AckStage, at: number, relay: Relay | undefined): StageNotice => {
  if (relay !== undefined) {
    return { _tag: "StageNotice", ack: relay.ack, envelope: { ...relay.envelope, state: "RECEIVED" }, to: message.to, relayed: true }
  }
  const ack: AckPayload = { ack_for_message_id: message.id, ack_stage: stage, error_code: message.errorCode }
  const envelope = buildEnvelope(
    {
      producer_id: "switchboard",
      correlation_id: message.correlationId,
      message_type: "ACKNOWLEDGEMENT",
      payload: encodeAck(ack)
    },
    `${message.id}/${stage}/${message.attempts}`,
    at
  )
  // Switchboard's own envelope, already in the producer's mailbox.
  return { _tag: "StageNotice", ack, envelope: { ...envelope, state: "RECEIVED" }, to: message.to, relayed: false }
}

export const layer: Layer.Layer<Router, never, Runtime> = Layer.scoped(
  Router,
  Effect.gen(function*() {
    const { config, extend, query, run, runMany } = yield* Runtime
    const subscribers = new Map<string, Array<Subscriber>>()
    const holder = new Map<string, Subscriber>()
    const stageWaiters = Waiters.make<EnvelopeState, MessageStatus>(query)

    /** Whether the last commit freed a subscriber's credit: deliveries may then go out at once. */
    let creditFreed = false
    const release = (messageId: string) => {
      const subscriber = holder.get(messageId)
      if (subscriber === undefined) return
      subscriber.holding.delete(messageId)
      holder.delete(messageId)
      creditFreed = true
    }

    // Stage changes are taken as each event is applied: the state after the
    // whole turn no longer tells which acks changed a stage (a late one does
    // not; a READ followed by a FULFILLED in the same turn does).
    let stageBefore: EnvelopeState | undefined
    let lateAcksBefore = 0
    let notices = new Map<Event, StageNotice>()
    // The ACK events decided from a recipient's ACKNOWLEDGEMENT envelope, for their notices.
    const relays = new WeakMap<Event, Relay>()

    const hand = (event: Extract<Event, { readonly _tag: "MessageDelivered" }>, message: MessageEntry | undefined) => {
      // The least loaded of the agent's subscribers: one that stopped reading
      // (its credit held) does not take all the work from the others.
      let subscriber: Subscriber | undefined
      for (const sub of subscribers.get(event.to) ?? []) {
        if (sub.holding.size < config.maxInFlight && (subscriber === undefined || sub.holding.size < subscriber.holding.size)) {
          subscriber = sub
        }
      }
      // The envelope is let go only when the message finishes, and in a turn
      // deliveries are decided after everything that can finish one.
      const envelope = message?.envelope
      if (envelope === undefined || subscriber === undefined) return
      subscriber.holding.set(event.message_id, event.delivery_seq)
      holder.set(event.message_id, subscriber)
      const delivery: Delivery = {
        _tag: "Delivery",
        // A first attempt hands out the envelope as it was accepted: no copy per message.
        envelope: event.attempt === 1 ? envelope : { ...envelope, retry_count: envelope.retry_count + event.attempt - 1 },
        attempt: event.attempt,
        delivery_seq: event.delivery_seq,
        lane: event.lane
      }
      subscriber.push(delivery)
    }

    yield* extend({
      decide: (state, now) => {
        const deliveries: Array<Event> = []
        for (const [agentId, subs] of subscribers) {
          let credit = 0
          for (const sub of subs) credit += config.maxInFlight - sub.holding.size
          for (const delivery of decideDeliveries(state, config, agentId, credit, now)) deliveries.push(delivery)
        }
        return deliveries
      },
      beforeApply: (state, event) => {
        if (event._tag === "MessageAcked" || event._tag === "MessageTimedOut") {
          const message = state.messages.get(event.message_id)
          stageBefore = message?.stage
          lateAcksBefore = message?.lateAcks ?? 0
        }
      },
      afterApply: (state, event) => {
        if (event._tag !== "MessageAcked" && event._tag !== "MessageTimedOut") return
        const message = state.messages.get(event.message_id)
        // Built only for a producer that listens: most never subscribe, and this runs for every ack.
        if (message === undefined || !subscribers.has(message.producerId)) return
        // A recipient's RECEIVED changes no stage, and is told all the same (not when late).
        const received = event._tag === "MessageAcked" && event.stage === "RECEIVED" && message.stage === "RECEIVED" &&
          message.lateAcks === lateAcksBefore
        if (message.stage !== stageBefore || received) {
          notices.set(event, notice(message, event._tag === "MessageAcked" ? event.stage : "TIMED_OUT", event.at, relays.get(event)))
        }
      },
      committed: (events, state) => {
        creditFreed = false
        const changed = new Set<string>()
        for (const event of events) {
          switch (event._tag) {
            case "MessageDelivered":
              hand(event, state.messages.get(event.message_id))
              break
            case "MessageAcked":
            case "MessageTimedOut":
            case "MessageRequeued":
            case "MessageRedriven": {
              const message = state.messages.get(event.message_id)
              if (message === undefined) break
              if (event._tag !== "MessageAcked" || isTerminal(message.stage)) release(event.message_id)
              changed.add(event.message_id)
              const stageNotice = notices.get(event)
              if (stageNotice !== undefined) {
                for (const sub of subscribers.get(message.producerId) ?? []) sub.push(stageNotice)
              }
              break
            }
            case "MessageAccepted":
              changed.add(event.envelope.message_id)
              break
          }
        }
        notices = new Map()
        for (const id of changed) {
          const message = state.messages.get(id)
          if (message === undefined || !stageWaiters.has(id)) continue
          const status = messageStatus(message)
          stageWaiters.wake(id, (stage) => stageRank(message.stage) >= stageRank(stage) ? status : undefined)
        }
        return creditFreed
      },
      stopped: (error) => {
        stageWaiters.failAll(error)
        for (const subs of subscribers.values()) {
          for (const sub of subs) sub.fail(error)
        }
      }
    })

    const ack = (request: AckRequest) => {
      const valid = validAck(request)
      return Either.isLeft(valid)
        ? Effect.fail(valid.left)
        : run((state, now) => decideAck(state, config, valid.right, now), ackReceipt)
    }

    const ackMany = (requests: ReadonlyArray<AckRequest>) => {
      const list = validAcks(requests)
      if (Either.isLeft(list)) return Effect.fail(list.left)
      const checked = list.right.map(validAck)
      const valid = checked.flatMap((request) => Either.isRight(request) ? [request.right] : [])
      const receipts = runMany(valid.map((request) => (state, now) => decideAck(state, config, request, now)), ackReceipt)
      // All valid: the answer as it is; else each refused request in its place.
      return valid.length === checked.length ? receipts : Effect.map(receipts, (results) => {
        let next = 0
        return checked.map((request) => Either.isLeft(request) ? Either.left(request.left) : results[next++])
      })
    }

    /** An ACKNOWLEDGEMENT envelope is the ack it carries, from its producer. */
    const sendAck = (envelope: Envelope) =>
      Effect.gen(function*() {
        const payload = yield* Effect.try({
          try: () => JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(envelope.payload)) as unknown,
          catch: () => ValidationError.single("envelope", "payload", "an ACKNOWLEDGEMENT payload must be JSON")
        })
        const ackPayload = yield* decodeAckPayload(payload)
        const request = yield* validAck({
          agent_id: envelope.producer_id,
          message_id: ackPayload.ack_for_message_id,
          stage: ackPayload.ack_stage,
          error_code: ackPayload.error_code,
          note: ackPayload.note
        })
        const relay: Relay = { envelope, ack: ackPayload }
        let producer = ""
        const receipt = yield* run((state, now) => {
          const decision = decideAck(state, config, request, now)
          if (decision._tag === "Accepted") {
            // Its producer hears of it with this very envelope.
            for (const event of decision.events) relays.set(event, relay)
            producer = state.messages.get(decision.value.message_id)?.producerId ?? ""
          }
          return decision
        }, ackReceipt)
        return { message_id: envelope.message_id, to: producer, stage: "RECEIVED", offset: receipt.offset } satisfies SendReceipt
      })

    type Failure = PersistenceError | InternalError
    type SendFailure = SendError | AckError | Failure
    const isEveryonesFailure = (error: SendFailure): error is Failure =>
      error._tag === "PersistenceError" || error._tag === "InternalError"
    type Checked =
      | { readonly _tag: "Ack"; readonly envelope: Envelope }
      | { readonly _tag: "Message"; readonly route: Route; readonly envelope: Envelope }
    // The hot path: checked at once, without a trip through the loop.
    const checkSend = (request: unknown): Either.Either<Checked, ValidationError> => {
      const checked = Either.flatMap(validSend(request), (checked) => validEnvelope(checked.envelope))
      if (Either.isLeft(checked)) return Either.left(checked.left)
      const valid = checked.right
      if (valid.message_type === "ACKNOWLEDGEMENT") return Either.right({ _tag: "Ack", envelope: valid })
      const recipient = (request as { readonly to: unknown }).to
      // An agent id, as nearly every send names: checked here without a decoder.
      const to = typeof recipient === "string" && recipient.length > 0 && recipient.length <= maxIdLength
        ? Either.right(recipient)
        : validRecipient(recipient)
      if (Either.isLeft(to)) return Either.left(to.left)
      // The runtime's own copy of the bytes: a producer that reuses its buffer changes nothing sent.
      return Either.right({ _tag: "Message", route: toRoute(to.right), envelope: { ...valid, payload: valid.payload.slice() } })
    }
    const decideChecked = (checked: Extract<Checked, { _tag: "Message" }>) => (state: RuntimeState, now: number) =>
      decideSend(state, config, checked, now)

    // One trip through the loop, which makes the receipt.
    const send = (request: { readonly to: Recipient; readonly envelope: Envelope }): Effect.Effect<SendReceipt, SendFailure> => {
      const checked = checkSend(request)
      if (Either.isLeft(checked)) return Effect.fail(checked.left)
      return checked.right._tag === "Ack" ? sendAck(checked.right.envelope) : run(decideChecked(checked.right), sendReceipt)
    }

    const sendMany = (requests: ReadonlyArray<{ readonly to: Recipient; readonly envelope: Envelope }>) => {
      if (!Array.isArray(requests)) {
        return Effect.fail(ValidationError.single("sends", "", "must be an array of send requests"))
      }
      const checked = requests.map(checkSend)
      type Result = Either.Either<SendReceipt, SendError | AckError>
      return Effect.gen(function*() {
        const results: Array<Result> = []
        // In order, as `send` would decide them one by one: the messages between
        // two ACKNOWLEDGEMENT envelopes go together in one trip, each ack on its
        // own (rare in a batch), so an ack sees every message sent before it.
        let run: Array<Extract<Checked, { _tag: "Message" }>> = []
        const flush = Effect.suspend(() => {
          const messages = run
          run = []
          return messages.length === 0
            ? Effect.void
            : Effect.map(runMany(messages.map(decideChecked), sendReceipt), (decided) => {
              results.push(...decided)
            })
        })
        for (const item of checked) {
          if (Either.isLeft(item)) {
            yield* flush
            results.push(Either.left(item.left))
          } else if (item.right._tag === "Message") {
            run.push(item.right)
          } else {
            yield* flush
            const acked = yield* Effect.either(sendAck(item.right.envelope))
            if (Either.isLeft(acked) && isEveryonesFailure(acked.left)) return yield* Effect.fail(acked.left)
            results.push(acked as Result)
          }
        }
        yield* flush
        return results as ReadonlyArray<Result>
      })
    }

    /** Adds `subscriber` for the agent until the scope closes, then settles what it leaves. */
    const subscribe = (agentId: string, options: SubscriptionOptions | undefined, make: Effect.Effect<Subscriber>) =>
      Effect.gen(function*() {
        const id = yield* validAgentId(agentId)
        const releasing = (yield* validSubscriptionOptions(options))?.unsettled === "release"
        if (!(yield* query((state) => state.agents.has(id)))) return yield* new NoRoute({ to: id })
        const subscriber = yield* make
        subscribers.set(id, [...(subscribers.get(id) ?? []), subscriber])
        // Lets the loop turn, so that what waits for this subscriber goes out.
        yield* Effect.forkDaemon(query(() => undefined))
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            const rest = (subscribers.get(id) ?? []).filter((sub) => sub !== subscriber)
            if (rest.length === 0) subscribers.delete(id)
            else subscribers.set(id, rest)
            // Nothing settles for this subscriber any more: what it holds now is all it will have held.
            const held = [...subscriber.holding]
            for (const [messageId] of held) holder.delete(messageId)
            const left = yield* subscriber.close
            const untaken: Array<{ readonly message_id: string; readonly delivery_seq: number }> = []
            for (const inbound of left) {
              if (inbound._tag === "Delivery") {
                untaken.push({ message_id: inbound.envelope.message_id, delivery_seq: inbound.delivery_seq })
              }
            }
            // Those its consumer took wait for their ack wait, as after a crash
            // (it may still acknowledge them), unless it asked to release them.
            // Those it never took go back now, their attempt given back.
            const untakenIds = new Set(untaken.map((delivery) => delivery.message_id))
            const unsettled = releasing
              ? held.flatMap(([message_id, delivery_seq]) => untakenIds.has(message_id) ? [] : [{ message_id, delivery_seq }])
              : []
            if (untaken.length === 0 && unsettled.length === 0) return
            // Not awaited: the loop may be closing with the same scope.
            yield* Effect.forkDaemon(
              run((state, now) => ({
                _tag: "Accepted",
                // Those released last: put at the front of their lanes, they end up
                // ahead of the untaken ones, which were delivered after them.
                events: [
                  ...decideUntakenDeliveries(state, id, untaken, now),
                  ...decideReleasedDeliveries(state, config, id, unsettled, now)
                ],
                value: undefined
              }))
            )
          })
        )
        return subscriber
      })

    const subscription = (agentId: string, options?: SubscriptionOptions) =>
      Effect.gen(function*() {
        const inbox = yield* Mailbox.make<Inbound, InternalError>()
        yield* subscribe(agentId, options, Effect.succeed(mailboxSubscriber(inbox)))
        return Mailbox.toStream(inbox)
      })

    const attach = (agentId: string, options: SubscriptionOptions | undefined, sink: InboundSink) =>
      Effect.asVoid(subscribe(agentId, options, Effect.sync(() => sinkSubscriber(sink))))

    const awaitStage = (request: AwaitStageRequest) =>
      Effect.flatMap(validStageRequest(request), ({ message_id, stage }) =>
        stageWaiters.await(message_id, (state): Look<EnvelopeState, MessageStatus> => {
          const message = state.messages.get(message_id)
          if (message === undefined) return { _tag: "Absent" }
          return stageRank(message.stage) >= stageRank(stage)
            ? { _tag: "Now", value: messageStatus(message) }
            : { _tag: "Wait", wants: stage }
        }, () => new MessageNotFound({ message_id })))

    const byMessageId = <A>(read: (id: string) => Effect.Effect<A, ValidationError | InternalError>) =>
      (messageId: string) => Effect.flatMap(validMessageId(messageId), read)

    // Every method a span (when a tracer records them): with the agent and
    // message it is about, read from the request as given, and the offset of
    // its record once it is durable.
    const traceSubscription = traced("Router.subscription", subscription, (agentId: string, _options?: SubscriptionOptions) => ({ agent_id: idOf(agentId) }))
    return Router.of({
      send: traced("Router.send", send, (request) => {
        const envelope = fieldOf(request, "envelope")
        return {
          agent_id: idOf(fieldOf(envelope, "producer_id")),
          message_id: idOf(fieldOf(envelope, "message_id")),
          to: idOf(fieldOf(request, "to"))
        }
      }, offsetOf),
      sendMany: traced("Router.sendMany", sendMany, (requests) => ({
        agent_id: Array.isArray(requests) ? idOf(fieldOf(fieldOf(requests[0], "envelope"), "producer_id")) : undefined,
        sends: Array.isArray(requests) ? requests.length : undefined
      }), (results) => ({ offset: lastOffset(results) })),
      ackMany: traced("Router.ackMany", ackMany, (requests) => ({
        agent_id: Array.isArray(requests) ? idOf(fieldOf(requests[0], "agent_id")) : undefined,
        acks: Array.isArray(requests) ? requests.length : undefined
      }), (results) => ({ offset: lastOffset(results) })),
      subscribe: (agentId, options) => Stream.unwrapScoped(traceSubscription(agentId, options)),
      subscription: traceSubscription,
      attach: traced("Router.attach", attach, (agentId: string) => ({ agent_id: idOf(agentId) })),
      ack: traced("Router.ack", ack, ackAttributes, offsetOf),
      status: traced("Router.status", byMessageId((id) =>
        query((state) => Option.map(Option.fromNullable(state.messages.get(id)), messageStatus))
      ), (messageId) => ({ message_id: idOf(messageId) })),
      awaitStage: traced("Router.awaitStage", awaitStage, (request) => ({
        message_id: idOf(fieldOf(request, "message_id")),
        stage: idOf(fieldOf(request, "stage"))
      })),
      deadLetters: traced("Router.deadLetters", (agentId: string) =>
        Effect.flatMap(validAgentId(agentId), (id) =>
          query((state) =>
            [...(state.mailboxes.get(id)?.deadLetters ?? [])].flatMap((messageId) => {
              const message = state.messages.get(messageId)
              return message === undefined ? [] : [messageStatus(message)]
            })
          )), (agentId) => ({ agent_id: idOf(agentId) })),
      redrive: traced("Router.redrive", (messageId: string) =>
        Effect.flatMap(validMessageId(messageId), (id) =>
          Effect.map(run((state, now) => decideRedrive(state, id, now)), ({ records, value }) => ({
            ...value,
            stage: "RECEIVED" as const,
            offset: records[0].offset
          }))), (messageId) => ({ message_id: idOf(messageId) }), offsetOf),
      snapshot: tracedEffect("Router.snapshot", query((state, offset) => ({ offset, state: snapshot(state) })), undefined, offsetOf)
    })
  })
)
