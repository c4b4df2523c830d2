/**
 * Guaranteed delivery with an ACK lifecycle (PROTOCOLS.md §1).
 */
import { Context, type Effect, type Either, type Option, type Scope, type Stream } from "effect"
import type { AckError, SendError } from "../model/Messages.js"
import type { RuntimeSnapshot } from "../model/Runtime.js"
import type { AckPayload, AckRequest, CommunicationClass, Envelope, EnvelopeState, ErrorCode } from "../schema/Envelope.js"
import type { InternalError, MessageNotFound, NoRoute, PersistenceError, ValidationError } from "../schema/Errors.js"
import type { AwaitStageRequest, SubscriptionOptions } from "../schema/Requests.js"

export type { AckError, SendError } from "../model/Messages.js"
export type { AckRequest } from "../schema/Envelope.js"
export type { SubscriptionOptions } from "../schema/Requests.js"

/** An agent id, or any live agent advertising a capability. */
export type Recipient = string | { readonly capability: string }

export interface SendReceipt {
  readonly message_id: string
  /** The agent the message was admitted for. */
  readonly to: string
  readonly stage: EnvelopeState
  /** The offset of the event that made it durable. */
  readonly offset: number
}

export interface AckReceipt {
  readonly message_id: string
  /** The message's stage after this ACK: unchanged for a late ACK. */
  readonly stage: EnvelopeState
  /** True when the message had already reached a terminal stage: recorded, changes nothing. */
  readonly late: boolean
  readonly offset: number
}

export interface MessageStatus {
  readonly message_id: string
  readonly producer_id: string
  readonly to: string
  readonly stage: EnvelopeState
  readonly attempts: number
  readonly delivery_seq: number | undefined
  readonly error_code: ErrorCode | undefined
  readonly dead_letter: boolean
  readonly accepted_at: number
  readonly finished_at: number | undefined
}

/** One delivery of a message from the agent's mailbox. Acknowledge it with `Router.ack`. */
export interface Delivery {
  readonly _tag: "Delivery"
  /** The message as sent, with `retry_count` raised by one per earlier attempt. */
  readonly envelope: Envelope
  readonly attempt: number
  /** Per recipient, from 1, gap-free across all its deliveries. */
  readonly delivery_seq: number
  readonly lane: CommunicationClass
}

/**
 * A stage change of a message this agent produced, as an ACKNOWLEDGEMENT
 * envelope, and a recipient's RECEIVED (which changes no stage). Needs no ack.
 */
export interface StageNotice {
  readonly _tag: "StageNotice"
  /** The recipient's own ACKNOWLEDGEMENT envelope when it sent one (`relayed`), else one Switchboard wrote. */
  readonly envelope: Envelope
  readonly ack: AckPayload
  /** The message's recipient (set in process; a remote stream does not carry it). */
  readonly to?: string | undefined
  /** Whether `envelope` is the recipient's own, as it sent it (set in process; a remote stream does not carry it). */
  readonly relayed?: boolean | undefined
}

export type Inbound = Delivery | StageNotice

/** Where `attach` hands an agent's inbound items, as they become durable. */
export interface InboundSink {
  /** Called in the runtime's turn: it must be quick, and must not throw. */
  readonly offer: (item: Inbound) => void
  /** The runtime stopped: no more items will come. Called at most once. */
  readonly end: (error: InternalError) => void
}

/** What every command of the router may fail with besides its own errors. */
type Failure = PersistenceError | InternalError

export class Router extends Context.Tag("switchboard/Router")<Router, {
  /**
   * Admits the message durably to the recipient's mailbox (stage RECEIVED)
   * and only then returns. An ACKNOWLEDGEMENT envelope is taken as the ack it
   * carries, from its producer.
   */
  readonly send: (request: {
    readonly to: Recipient
    readonly envelope: Envelope
  }) => Effect.Effect<SendReceipt, SendError | AckError | Failure>
  /**
   * Several sends in one trip and one durable append, for producers (and
   * the server's batch route) that send many at once. Each is checked and
   * decided on its own, in order, as `send` would: the answer holds, in
   * order, a receipt or the typed error of each. Only a failure of the log
   * or the loop fails the whole call.
   */
  readonly sendMany: (
    requests: ReadonlyArray<{ readonly to: Recipient; readonly envelope: Envelope }>
  ) => Effect.Effect<ReadonlyArray<Either.Either<SendReceipt, SendError | AckError>>, ValidationError | Failure>
  /**
   * The agent's deliveries, and stage notices of the messages it produced.
   * At most `maxInFlight` deliveries are unacknowledged at a time. When the
   * stream ends, what its consumer never took goes back to the mailbox at
   * once; what it took and has not settled waits for its ack wait, unless
   * `options.unsettled` is `release` (see `SubscriptionOptions`).
   */
  readonly subscribe: (
    agent_id: string,
    options?: SubscriptionOptions
  ) => Stream.Stream<Inbound, NoRoute | ValidationError | InternalError>
  /**
   * Like `subscribe`, but the subscription starts now, not when the stream is
   * first pulled: nothing is missed between subscribing and consuming. It
   * ends with the scope. A consumer on a connection that may drop and come
   * back takes `{ unsettled: "release" }`: on reconnecting, it receives again
   * at once what it had not settled, each with a new `delivery_seq` and its
   * attempt counted (at-least-once).
   */
  readonly subscription: (
    agent_id: string,
    options?: SubscriptionOptions
  ) => Effect.Effect<Stream.Stream<Inbound, InternalError>, NoRoute | ValidationError | InternalError, Scope.Scope>
  /**
   * Like `subscription`, but pushes each item to `sink` as soon as it is
   * durable, without a stream or a fiber of its own: for edges that write
   * straight to a connection, such as the server's WebSocket streams. Every
   * item handed over counts as taken; until the scope closes.
   */
  readonly attach: (
    agent_id: string,
    options: SubscriptionOptions | undefined,
    sink: InboundSink
  ) => Effect.Effect<void, NoRoute | ValidationError | InternalError, Scope.Scope>
  readonly ack: (request: AckRequest) => Effect.Effect<AckReceipt, AckError | Failure>
  /**
   * Several ACKs in one trip and one durable append, for consumers that
   * settle deliveries in batches. Each is decided on its own: the answer
   * holds, in order, a receipt or the typed error of each.
   */
  readonly ackMany: (
    requests: ReadonlyArray<AckRequest>
  ) => Effect.Effect<ReadonlyArray<Either.Either<AckReceipt, AckError>>, ValidationError | Failure>
  readonly status: (message_id: string) => Effect.Effect<Option.Option<MessageStatus>, ValidationError | InternalError>
  /**
   * Waits until the message reaches `stage`, or a terminal stage, and returns
   * its status. Interrupted, it leaves nothing behind.
   */
  readonly awaitStage: (request: AwaitStageRequest) => Effect.Effect<MessageStatus, MessageNotFound | ValidationError | InternalError>
  /** The agent's dead letters, oldest first. */
  readonly deadLetters: (agent_id: string) => Effect.Effect<ReadonlyArray<MessageStatus>, ValidationError | InternalError>
  /** Sends a dead letter again: RECEIVED, fresh attempts. */
  readonly redrive: (message_id: string) => Effect.Effect<SendReceipt, MessageNotFound | ValidationError | NoRoute | Failure>
  /** The whole state as plain data, with the offset it reflects: what `Replay.stateAt` must reproduce. */
  readonly snapshot: Effect.Effect<{ readonly offset: number; readonly state: RuntimeSnapshot }, InternalError>
}>() {}
