/**
 * The live registry and router: one fiber owns the state and runs every
 * command through `decide` → `EventLog.append` → `evolve`, in batches.
 *
 * Each turn of the loop takes every queued command, decides each against the
 * state as the earlier ones left it, adds what the clock calls for (ack waits,
 * TTLs, liveness) and the deliveries that subscribers have room for, and
 * appends all of it in one durable append. Only then are callers answered,
 * deliveries handed out and stage changes announced: nothing is visible before
 * its event is durable. If the append fails, the batch fails as a whole and
 * the state is folded again from the log, the only source of truth.
 */
import {
  Cause,
  Chunk,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Mailbox,
  Option,
  Schema,
  Stream
} from "effect"
import {
  type AckCommand,
  type AckError,
  decideAck,
  decideDeliveries,
  decideDeregister,
  decideEdge,
  decideHeartbeat,
  decideReconcile,
  decideRedrive,
  decideRegister,
  decideSend,
  decideTick,
  decideUntakenDeliveries,
  defaultRouterConfig,
  evolve,
  initialState,
  isAvailable,
  isTerminal,
  lineageOf,
  nextDeadline,
  subtreeOf,
  type AgentEntry,
  type MessageEntry,
  type RouterConfig,
  type RouterState,
  type SendError,
  snapshot
} from "../model/Router.js"
import { buildEnvelope } from "../model/Envelopes.js"
import { Refusal } from "../model/Gateway.js"
import { AgentDescriptor, AgentHealth, EdgeRequest } from "../schema/Agent.js"
import { RouterOptions } from "../schema/Config.js"
import {
  AckPayload,
  AckRequest,
  type AckStage,
  AgentState,
  decodeAckPayload,
  Envelope,
  type EnvelopeState
} from "../schema/Envelope.js"
import {
  MessageNotFound,
  NoRoute,
  type PersistenceError,
  ValidationError
} from "../schema/Errors.js"
import type { Event, EventRecord } from "../schema/Event.js"
import { inputDecoder, inputValidator } from "../internal/decode.js"
import { fastInputDecoder, fastValidator } from "../internal/fastSchema.js"
import type { MessageAccepted } from "../schema/RouterEvents.js"
import { EventLog } from "../services/EventLog.js"
import { type AgentInfo, Registry } from "../services/Registry.js"
import {
  type AckReceipt,
  type Delivery,
  type Inbound,
  type MessageStatus,
  type Recipient,
  Router,
  type SendReceipt,
  type StageNotice
} from "../services/Router.js"

// ---------------------------------------------------------------------------
// Views of the state

export const agentInfo = (agent: AgentEntry): AgentInfo => ({
  descriptor: agent.descriptor,
  state: agent.state,
  health: agent.health,
  available: isAvailable(agent),
  registered_at: agent.registeredAt
})

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

const stageRank = (stage: EnvelopeState) =>
  stage === "SENT" ? 0 : stage === "RECEIVED" ? 1 : stage === "READ" ? 2 : 3

/** Folds a log into the router's state. */
export const foldLog = (log: EventLog["Type"], config: RouterConfig) =>
  Stream.runFold(log.read(), { state: initialState(), offset: 0 }, (folded, record) => {
    evolve(config)(folded.state, record.event)
    return { state: folded.state, offset: record.offset }
  })

// ---------------------------------------------------------------------------
// The loop

type Decision = Either.Either<ReadonlyArray<Event>, unknown>

/** The error a caller sees: a Refusal's own error. */
export type Unrefused<E> = E extends Refusal<infer R> ? R : E

/** Answers a caller (`resume` of `Effect.async`), always with an Exit. */
type Resume = (result: Exit.Exit<any, any>) => void

interface DecideCommand {
  readonly _tag: "Decide"
  readonly decide: (state: RouterState, now: number) => Decision
  /** The caller's answer, read once the batch is durable and applied. */
  readonly answer: (state: RouterState, records: ReadonlyArray<EventRecord>) => unknown
  readonly resume: Resume
}

interface QueryCommand {
  readonly _tag: "Query"
  readonly read: (state: RouterState) => unknown
  readonly resume: Resume
}

type Command = DecideCommand | QueryCommand | { readonly _tag: "Wake" }

/** A decided command awaiting its answer: its events are `count` from `start` of the turn's. */
interface Decided {
  readonly command: DecideCommand
  readonly start: number
  readonly count: number
  readonly refused: unknown
}

interface Subscriber {
  readonly agentId: string
  readonly inbox: Mailbox.Mailbox<Inbound>
  /** Message ids delivered to this subscriber and not yet settled. */
  readonly holding: Set<string>
}

interface StageWaiter {
  readonly stage: EnvelopeState
  readonly done: Deferred.Deferred<MessageStatus>
}

/** The JSON form of an ack the router itself built: it cannot fail. */
const encodeAck = Schema.encodeSync(AckPayload)
/** An ACK request from outside, checked before it can reach the loop (and the log, with others' events). */
const validAck = fastInputDecoder(AckRequest, "ack")
const validateOptions = Schema.validateEither(RouterOptions, { errors: "all" })

/**
 * Lets the runtime's timers and I/O run between two busy turns. The SQLite
 * commit is synchronous, so producers in the same process could otherwise
 * keep the loop turning on microtasks alone, and a handler's timer or socket
 * would wait until they stop.
 */
const yieldToEventLoop: Effect.Effect<void> = typeof globalThis.setImmediate === "function"
  ? Effect.async<void>((resume) => {
    const handle = globalThis.setImmediate(() => resume(Effect.void))
    return Effect.sync(() => globalThis.clearImmediate(handle))
  })
  : Effect.yieldNow()

/**
 * The loop, as the other services built on it (the gateway) use it: a
 * decision goes through `run`, a read through `query`, and `onCommitted`
 * hears of each durable batch.
 */
export interface Runtime {
  readonly config: RouterConfig
  readonly log: EventLog["Type"]
  readonly run: <E, A = ReadonlyArray<EventRecord>>(
    decide: (state: RouterState, now: number) => Either.Either<ReadonlyArray<Event>, E>,
    answer?: (state: RouterState, records: ReadonlyArray<EventRecord>) => A
  ) => Effect.Effect<A, Unrefused<E> | PersistenceError>
  readonly query: <A>(read: (state: RouterState) => A) => Effect.Effect<A>
  readonly onCommitted: (listener: (events: ReadonlyArray<Event>, state: RouterState) => void) => void
}

export const make = (options: Partial<RouterConfig> = {}) =>
  Effect.gen(function*() {
    const config: RouterConfig = { ...defaultRouterConfig, ...options }
    yield* Either.mapLeft(validateOptions(config), (error) => ValidationError.fromParseError("RouterConfig", error))
    const log = yield* EventLog
    const apply = evolve(config)
    const folded = yield* foldLog(log, config)
    let state = folded.state
    /** The offset of the last record folded into `state`. */
    let offset = folded.offset

    const clock = yield* Effect.clock
    // The commands waiting for the loop, and a latch that is open while there
    // are any: taking them all is one array swap.
    let queued: Array<Command> = []
    const wake = yield* Effect.makeLatch(false)
    const offer = (command: Command) => {
      queued.push(command)
      wake.unsafeOpen()
    }
    const takeQueued = () => {
      const taken = queued
      queued = []
      wake.unsafeClose()
      return taken
    }
    /** Told of every batch once it is durable and applied. */
    const committedListeners: Array<(events: ReadonlyArray<Event>, state: RouterState) => void> = []
    const subscribers = new Map<string, Array<Subscriber>>()
    const holder = new Map<string, Subscriber>()
    const waiters = new Map<string, Array<StageWaiter>>()

    /** Whether the last publish freed a subscriber's credit: deliveries may then go out on another turn. */
    let creditFreed = false
    const release = (messageId: string) => {
      const subscriber = holder.get(messageId)
      if (subscriber === undefined) return
      subscriber.holding.delete(messageId)
      holder.delete(messageId)
      creditFreed = true
    }

    const notice = (message: MessageEntry, stage: AckStage, at: number): StageNotice => {
      const ack: AckPayload = {
        ack_for_message_id: message.id,
        ack_stage: stage,
        error_code: message.errorCode
      }
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
      return { _tag: "StageNotice", ack, envelope: { ...envelope, state: "RECEIVED" } }
    }

    /** After a commit: hand out deliveries, free credit, answer waiters, tell producers. */
    const publish = (events: ReadonlyArray<Event>, notices: ReadonlyMap<Event, StageNotice>) => {
      const changed = new Set<string>()
      for (const event of events) {
        switch (event._tag) {
          case "MessageDelivered": {
            const message = state.messages.get(event.message_id)
            const subscriber = (subscribers.get(event.to) ?? []).find((sub) => sub.holding.size < config.maxInFlight)
            // The envelope is let go only when the message finishes, and in a
            // turn deliveries are decided after everything that can finish one.
            const envelope = message?.envelope
            if (envelope === undefined || subscriber === undefined) break
            subscriber.holding.add(event.message_id)
            holder.set(event.message_id, subscriber)
            const delivery: Delivery = {
              _tag: "Delivery",
              // A first attempt hands out the envelope as it was accepted: no copy per message.
              envelope: event.attempt === 1
                ? envelope
                : { ...envelope, retry_count: envelope.retry_count + event.attempt - 1 },
              attempt: event.attempt,
              delivery_seq: event.delivery_seq,
              lane: event.lane
            }
            subscriber.inbox.unsafeOffer(delivery)
            break
          }
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
              for (const sub of subscribers.get(message.producerId) ?? []) sub.inbox.unsafeOffer(stageNotice)
            }
            break
          }
          case "MessageAccepted":
            changed.add(event.envelope.message_id)
            break
          default:
            break
        }
      }
      for (const id of changed) {
        const pending = waiters.get(id)
        const message = state.messages.get(id)
        if (pending === undefined || message === undefined) continue
        const remaining = pending.filter((waiter) => {
          if (stageRank(message.stage) < stageRank(waiter.stage)) return true
          Deferred.unsafeDone(waiter.done, Effect.succeed(messageStatus(message)))
          return false
        })
        if (remaining.length === 0) waiters.delete(id)
        else waiters.set(id, remaining)
      }
    }

    /** When idle: waits for a command or the next deadline, whichever comes first. */
    const idle = Effect.suspend((): Effect.Effect<void> => {
      if (queued.length > 0) return Effect.void
      const deadline = nextDeadline(state)
      if (deadline === undefined) return wake.await
      const wait = Duration.millis(Math.max(0, deadline - clock.unsafeCurrentTimeMillis()))
      return Effect.asVoid(Effect.timeoutOption(wake.await, wait))
    })

    /** Answers the callers of a batch, each with its own slice of the records it logged. */
    const answerDecided = (decided: ReadonlyArray<Decided>, records: ReadonlyArray<EventRecord>) => {
      for (const { command, count, refused, start } of decided) {
        command.resume(
          refused !== undefined
            ? Exit.fail(refused)
            : Exit.succeed(command.answer(state, records.slice(start, start + count)))
        )
      }
    }

    /**
     * One turn: decides the batch, appends what it decided, then tells everyone.
     * Whether the loop should turn again at once: it logged something, and
     * commands arrived meanwhile or acks freed credit for more deliveries.
     */
    const turn = (batch: ReadonlyArray<Command>, now: number): Effect.Effect<boolean> => {
      const events: Array<Event> = []
      const decided: Array<Decided> = []
      const queries: Array<QueryCommand> = []
      // Taken as each event is applied: the state after the whole turn no
      // longer tells which acks changed a stage (a late one does not; a READ
      // followed by a FULFILLED in the same turn does).
      const notices = new Map<Event, StageNotice>()
      const applyAll = (decision: ReadonlyArray<Event>) => {
        for (const event of decision) {
          if (event._tag === "MessageAcked" || event._tag === "MessageTimedOut") {
            const before = state.messages.get(event.message_id)?.stage
            apply(state, event)
            const message = state.messages.get(event.message_id)
            // Built only for a producer that listens: most never subscribe, and this runs for every ack.
            if (message !== undefined && message.stage !== before && subscribers.has(message.producerId)) {
              notices.set(event, notice(message, event._tag === "MessageAcked" ? event.stage : "TIMED_OUT", event.at))
            }
          } else {
            apply(state, event)
          }
          events.push(event)
        }
      }
      for (const command of batch) {
        if (command._tag === "Query") queries.push(command)
        if (command._tag !== "Decide") continue
        // A decision that throws is a bug: its caller gets the defect, the loop goes on.
        let decision: ReturnType<typeof command.decide>
        try {
          decision = command.decide(state, now)
        } catch (defect) {
          command.resume(Exit.die(defect))
          continue
        }
        if (Either.isLeft(decision)) {
          if (decision.left instanceof Refusal) {
            // Refused, yet recorded: the caller learns of it once the record is durable.
            decided.push({ command, start: events.length, count: decision.left.events.length, refused: decision.left.error })
            applyAll(decision.left.events)
          } else {
            command.resume(Exit.fail(decision.left))
          }
          continue
        }
        decided.push({ command, start: events.length, count: decision.right.length, refused: undefined })
        applyAll(decision.right)
      }
      applyAll(decideTick(state, config, now))
      for (const [agentId, subs] of subscribers) {
        let credit = 0
        for (const sub of subs) credit += config.maxInFlight - sub.holding.size
        applyAll(decideDeliveries(state, config, agentId, credit, now))
      }
      const answerQueries = () => {
        for (const query of queries) query.resume(Exit.succeed(query.read(state)))
      }
      if (events.length === 0) {
        answerDecided(decided, [])
        answerQueries()
        return Effect.succeed(false)
      }
      return Effect.matchEffect(log.append(events), {
        onFailure: (error) => {
          for (const { command } of decided) command.resume(Exit.fail(error))
          return Effect.gen(function*() {
            const refolded = yield* foldLog(log, config).pipe(Effect.orDie)
            state = refolded.state
            offset = refolded.offset
            answerQueries()
            yield* Effect.logError("router: append failed; state folded again from the log", error)
            return false
          })
        },
        onSuccess: (records) =>
          Effect.sync(() => {
            offset = records[records.length - 1].offset
            creditFreed = false
            publish(events, notices)
            for (const listener of committedListeners) listener(events, state)
            answerDecided(decided, records)
            answerQueries()
            return creditFreed || queued.length > 0
          })
      })
    }

    // The loop. After a busy turn (see `turn`) it turns again at once; after
    // `busyTurnsPerYield` such turns in a row it lets the event loop run.
    const busyTurnsPerYield = 8
    yield* Effect.gen(function*() {
      let busy = true
      let busyTurns = 0
      while (true) {
        if (!busy) {
          busyTurns = 0
          yield* idle
        } else if (++busyTurns >= busyTurnsPerYield) {
          busyTurns = 0
          yield* yieldToEventLoop
        }
        busy = yield* turn(takeQueued(), clock.unsafeCurrentTimeMillis())
      }
    }).pipe(Effect.forkScoped)
    offer({
      _tag: "Decide",
      decide: (current, now) => Either.right(decideReconcile(current, config, now)),
      answer: () => undefined,
      resume: () => {}
    })

    // -----------------------------------------------------------------------
    // Commands and queries

    /**
     * Runs a decision through the loop; once its events are durable and
     * applied, answers with `answer(state, records)`: one trip for both.
     */
    const run = <E, A = ReadonlyArray<EventRecord>>(
      decide: (state: RouterState, now: number) => Either.Either<ReadonlyArray<Event>, E>,
      answer: (state: RouterState, records: ReadonlyArray<EventRecord>) => A = (_, records) => records as A
    ) =>
      Effect.async<A, Unrefused<E> | PersistenceError>((resume) => {
        offer({ _tag: "Decide", decide, answer, resume })
      })

    const query = <A>(read: (state: RouterState) => A) =>
      Effect.async<A>((resume) => {
        offer({ _tag: "Query", read, resume: resume as unknown as Resume })
      })

    const validate = <A, I>(schema: Schema.Schema<A, I>, subject: string) => {
      const check = fastValidator(schema)
      return (value: unknown) =>
        Either.mapLeft(check(value), (error) => ValidationError.fromParseError(subject, error))
    }
    const validateEnvelope = validate(Envelope, "envelope")
    const validDescriptor = inputDecoder(AgentDescriptor, "agent", { onExcessProperty: "error" })
    const validateAgentState = inputValidator(AgentState, "heartbeat")
    const validateHealth = inputValidator(AgentHealth, "heartbeat")
    const validateReason = inputValidator(Schema.String, "deregister")
    const validateEdge = inputValidator(EdgeRequest, "edge")

    const infos = (state: RouterState, ids: ReadonlyArray<string>) =>
      ids.flatMap((id) => {
        const agent = state.agents.get(id)
        return agent === undefined ? [] : [agentInfo(agent)]
      })

    const agentOf = (state: RouterState, agentId: string) => {
      const agent = state.agents.get(agentId)
      return agent === undefined ? Either.left(new NoRoute({ to: agentId })) : Either.right(agentInfo(agent))
    }

    const recordHeartbeat = (command: Parameters<typeof decideHeartbeat>[2]) =>
      run(
        (state, now) => decideHeartbeat(state, config, command, now),
        (state) => agentInfo(state.agents.get(command.agent_id)!)
      )

    const registry = Registry.of({
      register: (descriptor) =>
        Effect.gen(function*() {
          const agent = yield* validDescriptor(descriptor)
          return yield* run(
            (state, now) => decideRegister(state, config, agent, now),
            (state) => agentInfo(state.agents.get(agent.agent_id)!)
          )
        }),
      heartbeat: (agentId, agentState = "RUNNING", health = {}) =>
        Effect.gen(function*() {
          const checked = yield* validateAgentState(agentState)
          const reported = yield* validateHealth(health)
          return yield* recordHeartbeat({ agent_id: agentId, state: checked, health: reported })
        }),
      keepAlive: (agentId) => recordHeartbeat({ agent_id: agentId }),
      deregister: (agentId, reason) =>
        Effect.flatMap(validateReason(reason), (valid) =>
          Effect.asVoid(run((state, now) => decideDeregister(state, { agent_id: agentId, reason: valid }, now)))),
      get: (agentId) => query((state) => Option.map(Option.fromNullable(state.agents.get(agentId)), agentInfo)),
      list: query((state) => [...state.agents.values()].filter((agent) => agent.registered).map(agentInfo)),
      byCapability: (capability) =>
        query((state) =>
          [...state.agents.values()]
            .filter((agent) => agent.registered && agent.descriptor.capabilities.includes(capability))
            .map(agentInfo)
        ),
      lineage: (agentId) =>
        query((state) => infos(state, state.agents.has(agentId) ? lineageOf(state, agentId) : [])),
      subtree: (agentId) =>
        query((state) => infos(state, state.agents.has(agentId) ? subtreeOf(state, agentId) : [])),
      team: (teamId) =>
        query((state) =>
          [...state.agents.values()].filter((agent) => agent.registered && agent.descriptor.team_id === teamId).map(
            agentInfo
          )
        ),
      edges: (agentId) =>
        query((state) => [...state.edges.values()].filter((edge) => edge.from === agentId || edge.to === agentId)),
      addEdge: (edge) =>
        Effect.flatMap(validateEdge(edge), (valid) =>
          Effect.asVoid(run((state, now) => Either.right(decideEdge(state, valid, now)))))
    })

    /**
     * An ACK as a loop command: decided against the state the commands before
     * it left, and answered with the stage it left (the batch may move it on).
     */
    const ackCommand = (request: AckCommand, resume: Resume): DecideCommand => {
      let late = false
      let stage: EnvelopeState = request.stage
      return {
        _tag: "Decide",
        decide: (state, now) => {
          const message = state.messages.get(request.message_id)
          late = message !== undefined && isTerminal(message.stage)
          if (late) stage = message!.stage
          return decideAck(state, config, request, now)
        },
        answer: (_, [record]): AckReceipt => ({ message_id: request.message_id, stage, late, offset: record.offset }),
        resume
      }
    }

    const ack = (request: AckCommand) =>
      Effect.flatMap(validAck(request), (valid) =>
        Effect.async<AckReceipt, AckError | PersistenceError>((resume) => {
          offer(ackCommand(valid, resume as Resume))
        }))

    const ackMany = (requests: ReadonlyArray<AckCommand>) =>
      requests.length === 0 ? Effect.succeed([]) : Effect.async<
        ReadonlyArray<Either.Either<AckReceipt, AckError>>,
        PersistenceError
      >((resume) => {
        const results: Array<Exit.Exit<AckReceipt, AckError | PersistenceError>> = new Array(requests.length)
        let pending = requests.length
        const settle = () => {
          const failed = results.find((exit) => Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(
            Option.exists((error) => error._tag === "PersistenceError")
          ))
          if (failed !== undefined) return resume(failed as Exit.Exit<never, PersistenceError>)
          resume(Exit.succeed(results.map((exit) =>
            Exit.match(exit, {
              onFailure: (cause) => Either.left(Option.getOrThrow(Cause.failureOption(cause)) as AckError),
              onSuccess: Either.right
            })
          )))
        }
        requests.forEach((request, i) => {
          const valid = validAck(request)
          if (Either.isLeft(valid)) {
            results[i] = Exit.fail(valid.left)
            if (--pending === 0) settle()
            return
          }
          offer(ackCommand(valid.right, (exit) => {
            results[i] = exit
            if (--pending === 0) settle()
          }))
        })
      })

    const toRoute = (to: Recipient) =>
      typeof to === "string"
        ? { _tag: "Agent" as const, agent_id: to }
        : { _tag: "Capability" as const, capability: to.capability }

    /** An ACKNOWLEDGEMENT envelope is the ack it carries, from its producer. */
    const sendAck = (envelope: Envelope) =>
      Effect.gen(function*() {
        const payload = yield* Effect.try({
          try: () => JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(envelope.payload)) as unknown,
          catch: () => ValidationError.single("envelope", "payload", "an ACKNOWLEDGEMENT payload must be JSON")
        })
        const ackPayload = yield* decodeAckPayload(payload)
        const receipt = yield* ack({
          agent_id: envelope.producer_id,
          message_id: ackPayload.ack_for_message_id,
          stage: ackPayload.ack_stage,
          error_code: ackPayload.error_code,
          note: ackPayload.note
        })
        const producer = yield* query((state) => state.messages.get(ackPayload.ack_for_message_id)?.producerId)
        return {
          message_id: envelope.message_id,
          to: producer ?? "",
          stage: "RECEIVED",
          offset: receipt.offset
        } satisfies SendReceipt
      })

    // The hot path: one validation, one trip through the loop.
    const send = (request: { readonly to: Recipient; readonly envelope: Envelope }) =>
      Effect.flatMap(validateEnvelope(request.envelope), (envelope): Effect.Effect<SendReceipt, SendError | AckError | PersistenceError> => {
        if (envelope.message_type === "ACKNOWLEDGEMENT") return sendAck(envelope)
        const route = toRoute(request.to)
        return run(
          (state, now) => decideSend(state, config, { route, envelope }, now),
          (_, [record]): SendReceipt => ({
            message_id: envelope.message_id,
            to: (record.event as MessageAccepted).to,
            stage: "RECEIVED",
            offset: record.offset
          })
        )
      })

    const subscription = (agentId: string) =>
      Effect.gen(function*() {
        yield* Effect.flatten(query((state) => agentOf(state, agentId)))
        const subscriber: Subscriber = { agentId, inbox: yield* Mailbox.make<Inbound>(), holding: new Set() }
        subscribers.set(agentId, [...(subscribers.get(agentId) ?? []), subscriber])
        offer({ _tag: "Wake" })
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            const rest = (subscribers.get(agentId) ?? []).filter((sub) => sub !== subscriber)
            if (rest.length === 0) subscribers.delete(agentId)
            else subscribers.set(agentId, rest)
            for (const id of subscriber.holding) holder.delete(id)
            const untaken = Chunk.filter(yield* subscriber.inbox.clear, (inbound) => inbound._tag === "Delivery")
            yield* subscriber.inbox.shutdown
            // The deliveries its consumer took wait for their ack wait, as after
            // a crash: it may still acknowledge them. Those it never took go back
            // now. Not awaited: the loop may be closing with the same scope.
            if (Chunk.isNonEmpty(untaken)) {
              const deliveries = Chunk.toReadonlyArray(untaken).map((delivery) => ({
                message_id: delivery.envelope.message_id,
                delivery_seq: delivery.delivery_seq
              }))
              offer({
                _tag: "Decide",
                decide: (state, now) => Either.right(decideUntakenDeliveries(state, agentId, deliveries, now)),
                answer: () => undefined,
                resume: () => {}
              })
            }
          })
        )
        return Mailbox.toStream(subscriber.inbox)
      })

    const awaitStage = (messageId: string, stage: EnvelopeState) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<MessageStatus>()
        const found = yield* query((state) => {
          const message = state.messages.get(messageId)
          if (message === undefined) return false
          if (stageRank(message.stage) >= stageRank(stage)) {
            Deferred.unsafeDone(done, Effect.succeed(messageStatus(message)))
          } else {
            waiters.set(messageId, [...(waiters.get(messageId) ?? []), { stage, done }])
          }
          return true
        })
        if (!found) return yield* new MessageNotFound({ message_id: messageId })
        return yield* Deferred.await(done)
      })

    const router = Router.of({
      send,
      ackMany,
      subscribe: (agentId) => Stream.unwrapScoped(subscription(agentId)),
      subscription,
      ack,
      status: (messageId) =>
        query((state) => Option.map(Option.fromNullable(state.messages.get(messageId)), messageStatus)),
      awaitStage,
      deadLetters: (agentId) =>
        query((state) =>
          [...(state.mailboxes.get(agentId)?.deadLetters ?? [])].flatMap((id) => {
            const message = state.messages.get(id)
            return message === undefined ? [] : [messageStatus(message)]
          })
        ),
      redrive: (messageId) =>
        Effect.map(run((state, now) => decideRedrive(state, messageId, now)), ([record]) => ({
          message_id: messageId,
          to: (record.event as { readonly to: string }).to,
          stage: "RECEIVED" as const,
          offset: record.offset
        })),
      snapshot: query((current) => ({ offset, state: snapshot(current) }))
    })

    const runtime: Runtime = {
      config,
      log,
      run,
      query,
      onCommitted: (listener) => committedListeners.push(listener)
    }
    return { registry, router, runtime }
  })
