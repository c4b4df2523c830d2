/**
 * The command loop: one fiber owns the runtime's state and runs every
 * command through `decide` → `EventLog.append` → `evolve`, in batches.
 *
 * Each turn takes every queued command, decides each against the state as
 * the earlier ones left it (applying its events at once), adds what the clock
 * calls for (ack waits, TTLs, liveness, approvals) and what the extensions
 * decide (the router's deliveries), and appends all of it in one durable
 * append. Only then are callers answered: nothing is visible before its
 * event is durable. If the append fails, every caller of the turn gets the
 * error and the state is folded again from the log, the only source of
 * truth.
 *
 * Each append is timed and counted (`switchboard_append_seconds`,
 * `switchboard_events_appended_total`): the log is the floor under every
 * command's latency.
 *
 * The loop is supervised: if it ever stops (a refold that fails, a defect
 * that escapes a turn), every caller waiting or to come fails at once with
 * a retryable InternalError, and the cause is logged.
 */
import { Cause, Duration, Effect, Either, Exit, Layer, Stream } from "effect"
import { evolve, initialState, type RuntimeState } from "../model/Runtime.js"
import type { Decision } from "../model/State.js"
import { decideReconcile } from "../model/Placement.js"
import { decideTick, nextDeadline } from "../model/Timers.js"
import { decodeRuntimeOptions, type RuntimeConfig, type RuntimeOptions } from "../schema/Config.js"
import { InternalError, type PersistenceError, type UndecodableRecord, ValidationError } from "../schema/Errors.js"
import { encodeEvent, type Event, type EventRecord } from "../schema/Event.js"
import { EventLog } from "../services/EventLog.js"
import { type Committed, Runtime, type TurnExtension } from "../services/Runtime.js"
import * as Metrics from "./Metrics.js"
import { yieldToEventLoop } from "./Slicing.js"

/** A command as the loop holds it: its caller's types live in its closures. */
interface Command {
  /** Decides against the state; `undefined` for a read, answered after the turn. */
  readonly decide: (state: RuntimeState, now: number) => Outcome | undefined
  /** Reads the state once the turn is done. */
  readonly read?: (state: RuntimeState, offset: number) => void
  /** Fails the caller: its events cannot be logged, the append failed, or the loop stopped. */
  readonly fail: (error: ValidationError | PersistenceError | InternalError) => void
  /** A bug in its decision: the caller gets the defect. */
  readonly die: (defect: unknown) => void
}

/** A decided command: its events, and how to answer once they are durable. */
interface Outcome {
  readonly events: ReadonlyArray<Event>
  readonly settle: (records: ReadonlyArray<EventRecord>) => void
}

/** The longest the loop sleeps in one go: a timer of more than 2^31−1 ms would fire at once or never. */
const maxSleep = Duration.hours(1)

/**
 * One caller's decision in the loop: the command, and once decided, its
 * outcome too. A class rather than closures: this is made for every command.
 */
class RunCommand<A, E, B> implements Command, Outcome {
  private decision: Decision<A, E> | undefined
  constructor(
    private readonly decideWith: (state: RuntimeState, now: number) => Decision<A, E>,
    private readonly answer: (value: A, records: ReadonlyArray<EventRecord>) => B,
    private readonly done: (exit: Exit.Exit<B, E | ValidationError | PersistenceError | InternalError>) => void
  ) {}
  get events(): ReadonlyArray<Event> {
    return this.decision!.events
  }
  decide(state: RuntimeState, now: number): Outcome {
    this.decision = this.decideWith(state, now)
    return this
  }
  settle(records: ReadonlyArray<EventRecord>) {
    const decision = this.decision!
    this.done(decision._tag === "Accepted" ? answered(this.answer, decision.value, records) : Exit.fail(decision.error))
  }
  fail(error: ValidationError | PersistenceError | InternalError) {
    this.done(Exit.fail(error))
  }
  die(defect: unknown) {
    this.done(Exit.die(defect))
  }
}

/** A decision's value with its records, the answer `run` gives by default. */
const committed = <A>(value: A, records: ReadonlyArray<EventRecord>): Committed<A> => ({ value, records })

/** The caller's answer, made in the loop: one that throws is its caller's defect, not the loop's. */
const answered = <A, B>(answer: (value: A, records: ReadonlyArray<EventRecord>) => B, value: A, records: ReadonlyArray<EventRecord>): Exit.Exit<B> => {
  try {
    return Exit.succeed(answer(value, records))
  } catch (defect) {
    return Exit.die(defect)
  }
}

/** Folds a log into the runtime's state. */
export const foldLog = (log: EventLog["Type"], config: RuntimeConfig) => {
  const apply = evolve(config)
  return Stream.runFold(log.read(), { state: initialState(), offset: 0 }, (folded, record) => {
    apply(folded.state, record.event)
    return { state: folded.state, offset: record.offset }
  })
}

/** Whether events can be written to the log: those of a decision that cannot fail it for the others. */
const unencodable = (events: ReadonlyArray<Event>): ValidationError | undefined => {
  for (const event of events) {
    const encoded = encodeEvent(event)
    if (encoded._tag === "Left") return encoded.left
  }
  return undefined
}

const make = (options: RuntimeOptions) =>
  Effect.gen(function*() {
    const config = yield* decodeRuntimeOptions(options)
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
    /** The commands of the turn being run: failed too if the loop stops in it. */
    let inTurn: ReadonlyArray<Command> = []
    /** Why the loop stopped; undefined while it runs. */
    let stopped: InternalError | undefined
    const wake = yield* Effect.makeLatch(false)
    const offer = (command: Command) => {
      queued.push(command)
      wake.unsafeOpen()
    }

    let extensions: ReadonlyArray<TurnExtension> = []

    /** The turn's events, applied as they are decided. */
    const applyAll = (events: ReadonlyArray<Event>, into: Array<Event>) => {
      for (const event of events) {
        for (const extension of extensions) extension.beforeApply?.(state, event)
        apply(state, event)
        for (const extension of extensions) extension.afterApply?.(state, event)
        into.push(event)
      }
    }

    /**
     * One turn: decides the batch, appends what it decided, then answers.
     * Whether the loop should turn again at once: it logged something, and
     * commands arrived meanwhile or an extension made room for more work.
     */
    const turn = (
      batch: ReadonlyArray<Command>,
      now: number
    ): Effect.Effect<boolean, PersistenceError | UndecodableRecord> => {
      inTurn = batch
      const events: Array<Event> = []
      const decided: Array<{ readonly command: Command; readonly outcome: Outcome; readonly start: number }> = []
      const reads: Array<Command> = []
      for (let i = 0; i < batch.length; i++) {
        const command = batch[i]
        let outcome: Outcome | undefined
        try {
          outcome = command.decide(state, now)
        } catch (defect) {
          // A decision that throws is a bug: its caller gets the defect, the loop goes on.
          command.die(defect)
          continue
        }
        if (outcome === undefined) {
          reads.push(command)
          continue
        }
        try {
          applyAll(outcome.events, events)
        } catch (defect) {
          // Events that break `evolve` (a bug, or junk handed to `run`) fail their
          // caller alone; the state they half changed is folded again from the
          // log, and the rest of the turn is decided again on it.
          command.die(defect)
          queued = [...decided.map(({ command }) => command), ...reads, ...batch.slice(i + 1), ...queued]
          inTurn = []
          return Effect.gen(function*() {
            const refolded = yield* foldLog(log, config)
            state = refolded.state
            offset = refolded.offset
            yield* Effect.logError("runtime: a decision's events could not be applied; state folded again from the log", defect)
            return true
          })
        }
        decided.push({ command, outcome, start: events.length - outcome.events.length })
      }
      applyAll(decideTick(state, config, now), events)
      for (const extension of extensions) {
        if (extension.decide !== undefined) applyAll(extension.decide(state, now), events)
      }
      const answer = (records: ReadonlyArray<EventRecord>) => {
        decided.forEach(({ outcome, start }, i) => {
          const end = i + 1 < decided.length ? decided[i + 1].start : start + outcome.events.length
          outcome.settle(records.slice(start, end))
        })
        for (const command of reads) command.read!(state, offset)
        inTurn = []
      }
      if (events.length === 0) {
        answer([])
        return Effect.succeed(false)
      }
      // Timed from here: the append runs as soon as the loop yields this effect.
      const appendStart = clock.unsafeCurrentTimeNanos()
      return Effect.matchEffect(log.append(events), {
        onFailure: (error) =>
          Effect.gen(function*() {
            Metrics.recordAppendFailure()
            const refolded = yield* foldLog(log, config)
            state = refolded.state
            offset = refolded.offset
            if (error._tag === "ValidationError") {
              // Events the log cannot take fail their own decision alone: the
              // others are decided again, against the state as the log has it.
              const again: Array<Command> = []
              for (const { command, outcome } of decided) {
                const bad = unencodable(outcome.events)
                if (bad !== undefined) command.fail(bad)
                else again.push(command)
              }
              if (again.length === decided.length) {
                // No decision is at fault: the runtime's own events (a tick, a delivery)
                // cannot be logged. That is a bug, and deciding again would only repeat it.
                for (const { command } of decided) command.fail(error)
                return yield* Effect.die(error)
              }
              queued = [...again, ...queued]
            } else {
              for (const { command } of decided) command.fail(error)
            }
            for (const command of reads) command.read!(state, offset)
            inTurn = []
            yield* Effect.logError("runtime: append failed; state folded again from the log", error)
            return queued.length > 0
          })
        ,
        onSuccess: (records) =>
          Effect.sync(() => {
            Metrics.recordAppend(events, Number(clock.unsafeCurrentTimeNanos() - appendStart) / 1e9)
            offset = records[records.length - 1].offset
            let again = false
            for (const extension of extensions) {
              if (extension.committed?.(events, state) === true) again = true
            }
            answer(records)
            return again || queued.length > 0
          })
      })
    }

    /** When idle: waits for a command or the next deadline, whichever comes first, in bounded sleeps. */
    const idle = Effect.suspend((): Effect.Effect<void> => {
      if (queued.length > 0) return Effect.void
      const deadline = nextDeadline(state)
      if (deadline === undefined) return wake.await
      const wait = Duration.min(Duration.millis(Math.max(0, deadline - clock.unsafeCurrentTimeMillis())), maxSleep)
      return Effect.asVoid(Effect.timeoutOption(wake.await, wait))
    })

    // The loop. Before each turn it lets the event loop run: the commands
    // that come from sockets (HTTP requests, WebSocket ACKs) arrive in the
    // callbacks of one I/O phase, and the first of them wakes the loop between
    // two of those callbacks. Turning at once would decide that one alone and
    // commit it, blocking the rest of the phase for the whole (synchronous)
    // SQLite commit, and the next turn would find only the few that came in
    // meanwhile: a commit per message. Yielding first lets the whole phase
    // join the turn. It also keeps a busy loop from starving the handlers'
    // timers and sockets, as producers in the same process could otherwise
    // keep it turning on microtasks alone.
    const loop = Effect.gen(function*() {
      let busy = true
      while (true) {
        if (!busy) yield* idle
        yield* yieldToEventLoop
        const batch = queued
        queued = []
        wake.unsafeClose()
        busy = yield* turn(batch, clock.unsafeCurrentTimeMillis())
      }
    })

    const stop = (cause: Cause.Cause<unknown>) =>
      Effect.gen(function*() {
        stopped = new InternalError({
          message: Cause.isInterruptedOnly(cause) ? "the runtime has stopped" : "the runtime's loop failed; see the log"
        })
        const waiting = [...inTurn, ...queued]
        inTurn = []
        queued = []
        for (const command of waiting) command.fail(stopped)
        for (const extension of extensions) extension.stopped?.(stopped)
        if (!Cause.isInterruptedOnly(cause)) yield* Effect.logError("runtime: the command loop failed", cause)
      })

    yield* loop.pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? stop(exit.cause) : Effect.void), Effect.forkScoped)

    /**
     * Puts a command in the loop and waits for its answer, or fails at once if
     * the loop has stopped. `Effect.async` rather than a Deferred: this runs for
     * every command, and an interrupted caller's answer is simply dropped.
     */
    const submit = <A, E>(make: (done: (exit: Exit.Exit<A, E | InternalError>) => void) => Command) =>
      Effect.async<A, E | InternalError>((resume) => {
        if (stopped !== undefined) return resume(Effect.fail(stopped))
        offer(make(resume))
      })

    const run = <A, E, B = Committed<A>>(
      decide: (state: RuntimeState, now: number) => Decision<A, E>,
      answer: (value: A, records: ReadonlyArray<EventRecord>) => B = committed as never
    ) =>
      submit<B, E | ValidationError | PersistenceError | InternalError>((done) => new RunCommand(decide, answer, done))

    /** Several decisions offered at once, so that one turn takes them all; answered together. */
    const runMany = <A, E, B = Committed<A>>(
      decisions: ReadonlyArray<(state: RuntimeState, now: number) => Decision<A, E>>,
      answer: (value: A, records: ReadonlyArray<EventRecord>) => B = committed as never
    ) => {
      type Result = Either.Either<B, E | ValidationError>
      return decisions.length === 0
        ? Effect.succeed<ReadonlyArray<Result>>([])
        : submit<ReadonlyArray<Result>, PersistenceError | InternalError>((done) => {
          const results: Array<Result> = new Array(decisions.length)
          let pending = decisions.length
          const settle = (i: number, result: Result) => {
            results[i] = result
            if (--pending === 0) done(Exit.succeed(results))
          }
          // Offered here, all but the last; `submit` offers the last one.
          const command = (decide: (typeof decisions)[number], i: number): Command => ({
            decide: (current, now) => {
              const decision = decide(current, now)
              return {
                events: decision.events,
                settle: (records) => {
                  if (decision._tag === "Refused") return settle(i, Either.left(decision.error))
                  const answer_ = answered(answer, decision.value, records)
                  if (Exit.isSuccess(answer_)) settle(i, Either.right(answer_.value))
                  else done(answer_ as Exit.Exit<never>)
                }
              }
            },
            fail: (error) => error._tag === "ValidationError" ? settle(i, Either.left(error)) : done(Exit.fail(error)),
            die: (defect) => done(Exit.die(defect))
          })
          for (let i = 0; i < decisions.length - 1; i++) offer(command(decisions[i], i))
          return command(decisions[decisions.length - 1], decisions.length - 1)
        })
    }

    const query = <A>(read: (state: RuntimeState, offset: number) => A) =>
      submit<A, InternalError>((done) => ({
        decide: () => undefined,
        read: (current, at) => {
          let exit: Exit.Exit<A, InternalError>
          try {
            exit = Exit.succeed(read(current, at))
          } catch (defect) {
            exit = Exit.die(defect)
          }
          done(exit)
        },
        // Only the loop stopping fails a read.
        fail: (error) => done(Exit.fail(error as InternalError)),
        die: (defect) => done(Exit.die(defect))
      }))

    // After a restart: what was in flight is delivered again, what expired times out.
    offer({
      decide: (current, now) => ({ events: decideReconcile(current, config, now), settle: () => {} }),
      fail: () => {},
      die: () => {}
    })

    return Runtime.of({
      config,
      run,
      runMany,
      query,
      extend: (extension) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            extensions = [...extensions, extension]
          }),
          () =>
            Effect.sync(() => {
              extensions = extensions.filter((other) => other !== extension)
            })
        )
    })
  })

/** The command loop over the EventLog in context, from the runtime's options (each left out takes its default). */
export const layer = (options: RuntimeOptions = {}) => Layer.scoped(Runtime, make(options))
