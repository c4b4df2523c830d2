/**
 * The router bench: durable messaging end to end, from `send` to FULFILLED,
 * on SQLite (WAL, durability `full`) and on memory, against two baselines
 * measured in the same run:
 *
 * - the event log's own append rate on the same SQLite setup (the event log
 *   bench's 100 fibers each appending one event at a time);
 * - NATS JetStream, when reachable (SWITCHBOARD_NATS_URL, default
 *   127.0.0.1:4222): file storage, `js.publish` awaiting its PubAck, a durable
 *   pull consumer with explicit acks; same payload size and message count.
 *   Measured twice: with `ackAck` (FULFILLED once the server has confirmed
 *   the ack, as the router's ack returns once it is durable: the like-for-like
 *   figure) and with a plain `ack` (FULFILLED as soon as the ack is sent, not
 *   confirmed: a faster, weaker baseline). The 1.5 target is judged against both.
 *
 * "N in flight": N producer fibers, each sending one message and waiting until
 * it is FULFILLED (the consumer's ack has returned) before sending the next.
 * One consumer agent takes its deliveries from `Router.subscription` in
 * chunks and settles each chunk with one `ackMany` (FULFILLED), as a batch
 * consumer would; the JetStream consumer acks each message, having no batch
 * ack. Figures: messages/s from the first `send` to the last
 * FULFILLED, and the latency from a message's `send` to its delivery reaching
 * the consumer (p50, p99).
 *
 * With 1,000 in flight it also measures what bounds the SQLite figure: the
 * router on a log that stores nothing (its own work: decisions, encoding,
 * hand-offs), and raw better-sqlite3 writing the very rows the SQLite run
 * logged (SQLite's own work). The SQLite driver commits on the thread that
 * does everything else, so a message costs at least both, one after the
 * other: the serial ceiling, 1 / (1 / null-log rate + events per message /
 * raw write rate). Its parts are measured seconds apart, single runs on a
 * machine whose speed moves: it is an estimate, not a hard bound.
 *
 * Flags: `--messages N` (or BENCH_MESSAGES; default 20,000) per configuration
 * with 100 and 1,000 in flight; `--serial-messages N` (or
 * BENCH_SERIAL_MESSAGES; default 2,000) with 1 in flight.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Array as Arr, Console, Duration, Effect, Layer, Option, Stream } from "effect"
import { AckPolicy, connect, type JetStreamClient, type JetStreamManager, type NatsConnection, StorageType } from "nats"
import Database from "better-sqlite3"
import { buildEnvelope, EventLog, EventLogMemory, Registry, Router, Switchboard } from "../src/index.js"
import { makeEventLog } from "../src/layers/EventLogStore.js"
import { EventLogSqlite } from "../src/node.js"
import {
  baselineWrite,
  concurrentAppend,
  fibers as appendFibers,
  makeEvents,
  nullStore,
  openRaw,
  withLog
} from "./eventlog.js"
import { formatNumber, intOption, latencies, ms, perS, printComparison, printResult, rate } from "./report.js"

const inFlights = [1, 100, 1_000] as const
type InFlight = (typeof inFlights)[number]

export const payloadSize = 256
const targetMsgsPerS = 30_000
const targetVsJetStream = 1.5
/** A configuration that makes no progress for this long is stuck: the bench fails and says where. */
const stallMs = 15_000

export const payload = (() => {
  const text = JSON.stringify({ task: "summarise", document: "doc-0001", notes: "" })
  return new TextEncoder().encode(JSON.stringify({
    task: "summarise",
    document: "doc-0001",
    notes: "x".repeat(payloadSize - text.length)
  }))
})()

// ---------------------------------------------------------------------------
// One measured run: M messages, N in flight, whatever carries them

export interface Run {
  readonly count: number
  /** performance.now() when each message's send started. */
  readonly sentAt: Float64Array
  /** Milliseconds from send to the first delivery reaching the consumer; NaN until then. */
  readonly latency: Float64Array
  /** Whether each message is FULFILLED yet, and the producer waiting for it, if any. */
  readonly isFulfilled: Uint8Array
  readonly waiting: Array<((done: Effect.Effect<void>) => void) | undefined>
  sent: number
  delivered: number
  redelivered: number
  fulfilled: number
  failure: string | undefined
}

export const makeRun = (count: number): Run => ({
  count,
  sentAt: new Float64Array(count),
  latency: new Float64Array(count).fill(Number.NaN),
  isFulfilled: new Uint8Array(count),
  waiting: new Array(count),
  sent: 0,
  delivered: 0,
  redelivered: 0,
  fulfilled: 0,
  failure: undefined
})

export const onDelivery = (run: Run, i: number) => {
  if (Number.isNaN(run.latency[i])) {
    run.latency[i] = performance.now() - run.sentAt[i]
    run.delivered++
  } else {
    run.redelivered++
  }
}

export const onFulfilled = (run: Run, i: number) => {
  run.fulfilled++
  run.isFulfilled[i] = 1
  const resume = run.waiting[i]
  run.waiting[i] = undefined
  resume?.(Effect.void)
}

const progress = (run: Run) =>
  `${run.sent} sent, ${run.delivered} delivered (${run.redelivered} again), ${run.fulfilled} fulfilled of ${run.count}`

/** Fails when `run` has made no progress for `stallMs`, or its consumer reported a failure. */
const watchdog = (label: string, run: Run) =>
  Effect.gen(function*() {
    let last = ""
    let still = 0
    while (true) {
      yield* Effect.sleep(Duration.seconds(1))
      if (run.failure !== undefined) return yield* Effect.fail(new Error(`${label}: ${run.failure}; ${progress(run)}`))
      const now = progress(run)
      still = now === last ? still + 1_000 : 0
      last = now
      if (still >= stallMs) {
        return yield* Effect.fail(new Error(`${label}: no progress for ${stallMs / 1_000} s: ${now}`))
      }
    }
  })

export interface Figures {
  readonly msgsPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Events in the router's log once the run is over. */
  readonly events?: number
}

export const percentile = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]

/**
 * Keeps `inFlight` messages between the start of `send(i)` and FULFILLED
 * (the consumer's `onFulfilled`) until `run.count` have been fulfilled.
 */
/**
 * Fresh SQLite files in a temporary directory of the scope's: `use` gets a
 * new file, removed with its WAL and journal once it is done.
 */
export const tempDatabases = (prefix: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix })
    let files = 0
    const fresh = <A, E, R>(use: (filename: string) => Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => `${dir}/run-${files++}.db`),
        use,
        (filename) =>
          Effect.forEach(["", "-wal", "-shm", "-journal"], (suffix) => Effect.ignore(fs.remove(filename + suffix)))
      )
    return { dir, fresh }
  })

export const drive = <E>(label: string, run: Run, inFlight: number, send: (i: number) => Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    let next = 0
    const producer = Effect.gen(function*() {
      while (next < run.count) {
        const i = next++
        run.sentAt[i] = performance.now()
        yield* send(i)
        run.sent++
        // A callback, not a Deferred: the harness's own waiting should cost next to nothing.
        if (run.isFulfilled[i] === 0) {
          yield* Effect.async<void>((resume) => {
            run.waiting[i] = resume
          })
        }
      }
    })
    const start = performance.now()
    yield* Effect.raceFirst(
      Effect.all(Arr.replicate(producer, inFlight), { concurrency: "unbounded", discard: true }),
      watchdog(label, run)
    )
    const seconds = (performance.now() - start) / 1_000
    if (run.delivered !== run.count || run.fulfilled !== run.count) {
      return yield* Effect.fail(new Error(`${label}: finished with ${progress(run)}`))
    }
    const sorted = Float64Array.from(run.latency).sort()
    return {
      msgsPerS: run.count / seconds,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99)
    }
  })

// ---------------------------------------------------------------------------
// The router

export const routerConfig = {
  livenessTimeoutMs: undefined,
  // Neither may limit the messages in flight.
  maxInFlight: 1_000_000_000,
  mailboxCapacity: 1_000_000_000
}

export const sqliteLog = (filename: string) => EventLogSqlite.layer({ filename, durability: "full" })

const producerId = "bench-producer"
const consumerId = "bench-consumer"

export const routerRun = (label: string, log: Layer.Layer<EventLog, unknown>, inFlight: number, count: number) =>
  Effect.gen(function*() {
    const router = yield* Router
    const registry = yield* Registry
    yield* registry.register({ agent_id: producerId, name: "producer" })
    yield* registry.register({ agent_id: consumerId, name: "consumer" })
    const run = makeRun(count)
    const inbox = yield* router.subscription(consumerId)

    // The consumer settles each chunk of deliveries it takes with one ackMany,
    // forked so that it keeps taking deliveries meanwhile.
    const fulfil = (ids: ReadonlyArray<string>) =>
      router.ackMany(ids.map((message_id) => ({ agent_id: consumerId, message_id, stage: "FULFILLED" as const }))).pipe(
        Effect.matchCause({
          onFailure: (cause) => {
            run.failure = `acks failed: ${String(cause)}`
          },
          onSuccess: (results) =>
            results.forEach((result, k) => {
              if (result._tag === "Left") run.failure = `ack of ${ids[k]} failed: ${result.left.message}`
              else onFulfilled(run, Number(ids[k].slice(1)))
            })
        })
      )
    yield* Stream.runForEachChunk(inbox, (chunk) => {
      const ids: Array<string> = []
      for (const inbound of chunk) {
        if (inbound._tag !== "Delivery") continue
        const messageId = inbound.envelope.message_id
        onDelivery(run, Number(messageId.slice(1)))
        ids.push(messageId)
      }
      return ids.length === 0 ? Effect.void : Effect.asVoid(Effect.fork(fulfil(ids)))
    }).pipe(Effect.forkScoped)

    const figures = yield* drive(label, run, inFlight, (i) =>
      router.send({
        to: consumerId,
        envelope: buildEnvelope({ producer_id: producerId, payload, sequence_number: i + 1 }, `m${i}`, 0)
      }))
    return { ...figures, events: yield* Effect.flatMap(EventLog, (log) => log.head) } satisfies Figures
  }).pipe(
    Effect.scoped,
    Effect.provide(Switchboard.layer(routerConfig).pipe(Layer.provideMerge(log)))
  )

/** A log that stores nothing: the router's own work, without any store's. */
const nullLog = Layer.scoped(EventLog, makeEventLog(nullStore()))

/** Raw better-sqlite3 writing the rows logged in `source` into `target`, 1,000 rows a transaction: events/s. */
const rawRewrite = (source: string, target: string) =>
  Effect.gen(function*() {
    const rows = yield* Effect.sync(() => {
      const db = new Database(source, { readonly: true })
      try {
        return db.prepare("SELECT event_type, event_version, payload FROM switchboard_events ORDER BY log_offset")
          .raw(true).all() as Array<[string, number, string]>
      } finally {
        db.close()
      }
    })
    const stored = rows.map(([type, version, payload]) => ({ type, version, payload }))
    const db = yield* openRaw(target)
    return yield* rate(stored.length, baselineWrite(db, stored, 1_000))
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------
// NATS JetStream

export interface Nats {
  readonly url: string
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
}

/** The connection, or why there is none. */
export const connectNats = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise(async (): Promise<Nats> => {
      const nc = await connect({ servers: url, timeout: 2_000, maxReconnectAttempts: 0 })
      try {
        const jsm = await nc.jetstreamManager({ timeout: 2_000 })
        return { url, nc, jsm, js: nc.jetstream() }
      } catch (cause) {
        await nc.close()
        throw cause
      }
    }),
    ({ nc }) => Effect.promise(() => nc.close())
  ).pipe(Effect.either)

let streams = 0

/** How the JetStream consumer acks: `confirmed` waits for the server (`ackAck`), `sent` does not (`ack`). */
export type JetStreamAck = "confirmed" | "sent"

export const jetStreamRun = ({ js, jsm }: Nats, label: string, inFlight: number, count: number, ack: JetStreamAck) =>
  Effect.gen(function*() {
    const name = `switchboard_bench_${process.pid}_${Date.now()}_${streams++}`
    const subject = `switchboard.bench.${name}`
    yield* Effect.acquireRelease(
      Effect.promise(() =>
        // Stream defaults otherwise: no sync on each write.
        jsm.streams.add({ name, subjects: [subject], storage: StorageType.File })
      ),
      () => Effect.promise(() => jsm.streams.delete(name))
    )
    yield* Effect.promise(() =>
      jsm.consumers.add(name, { durable_name: "bench", ack_policy: AckPolicy.Explicit, max_ack_pending: -1 })
    )
    const consumer = yield* Effect.promise(() => js.consumers.get(name, "bench"))
    const messages = yield* Effect.acquireRelease(
      Effect.promise(() => consumer.consume({ max_messages: Math.max(100, 2 * inFlight) })),
      (messages) => Effect.sync(() => messages.stop())
    )
    const run = makeRun(count)
    void (async () => {
      for await (const msg of messages) {
        const i = new DataView(msg.data.buffer, msg.data.byteOffset).getUint32(0)
        onDelivery(run, i)
        if (ack === "sent") {
          msg.ack()
          onFulfilled(run, i)
          continue
        }
        msg.ackAck().then(
          (confirmed) => confirmed ? onFulfilled(run, i) : (run.failure = `ack of message ${i} not confirmed`),
          (cause) => (run.failure = `ack of message ${i} failed: ${String(cause)}`)
        )
      }
    })().catch((cause) => (run.failure = `consumer failed: ${String(cause)}`))

    return yield* drive(label, run, inFlight, (i) => {
      const data = payload.slice()
      new DataView(data.buffer).setUint32(0, i)
      return Effect.tryPromise(() => js.publish(subject, data))
    })
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const messages = (yield* Effect.try(() => intOption(args, "messages", "BENCH_MESSAGES"))) ?? 20_000
    const serialMessages = (yield* Effect.try(() => intOption(args, "serial-messages", "BENCH_SERIAL_MESSAGES"))) ??
      2_000
    const countFor = (inFlight: InFlight) => inFlight === 1 ? serialMessages : messages
    const appendEvents = Math.max(1, Math.round(messages / appendFibers)) * appendFibers

    // Each configuration on a fresh file, removed as soon as it is measured.
    const { dir, fresh: sqlite } = yield* tempDatabases("switchboard-bench-")
    const memory = EventLogMemory.layer()

    const natsUrl = process.env.SWITCHBOARD_NATS_URL ?? "127.0.0.1:4222"
    const nats = Option.getRight(yield* connectNats(natsUrl))

    yield* Console.log(
      `router: ${formatNumber(messages)} messages per configuration (${
        formatNumber(serialMessages)
      } with 1 in flight), ${payload.length}-byte payloads, one consumer settling each chunk with ackMany; SQLite WAL, durability full, in ${dir}`
    )
    if (Option.isNone(nats)) {
      yield* Console.log(`JetStream baseline skipped: no NATS server with JetStream reachable at ${natsUrl}`)
    } else {
      yield* Console.log(
        `JetStream baselines at ${natsUrl}: file storage, js.publish awaiting its PubAck, durable pull consumer; ` +
          `"jetstream" acks with ackAck (ack confirmed), "jetstream_ack_sent" (JS-ack) with ack (not confirmed)`
      )
    }

    // Warm-up rounds, so the figures are of warmed-up code.
    const warmup = Math.min(2_000, messages)
    yield* routerRun("warmup memory", memory, 100, warmup)
    yield* sqlite((filename) => routerRun("warmup sqlite", sqliteLog(filename), 100, warmup))
    if (Option.isSome(nats)) yield* jetStreamRun(nats.value, "warmup jetstream", 100, warmup, "confirmed")

    const events = makeEvents(appendEvents)
    const appendRate = yield* sqlite((filename) =>
      withLog(filename, (log) =>
        Effect.map(Effect.timed(concurrentAppend(log, events)), ([took]) => appendEvents / Duration.toSeconds(took))))
    yield* Console.log(
      `event log append: ${formatNumber(appendRate)} events/s (SQLite, ${appendFibers} fibers x 1 event, ${
        formatNumber(appendEvents)
      } events)`
    )

    const results: Record<string, Figures> = {}
    /** Raw better-sqlite3 rewriting what the SQLite run with 1,000 in flight logged, and that run's events per message. */
    let rawSqlite: { readonly eventsPerS: number; readonly perMessage: number } | undefined
    for (const inFlight of inFlights) {
      const count = countFor(inFlight)
      yield* Console.log(`${inFlight} in flight, ${formatNumber(count)} messages:`)
      const measured: Array<[string, Figures]> = [
        [
          "sqlite",
          yield* sqlite((filename) =>
            Effect.tap(routerRun(`sqlite ${inFlight}`, sqliteLog(filename), inFlight, count), (figures) =>
              inFlight !== 1_000 ? Effect.void : Effect.map(
                sqlite((target) => rawRewrite(filename, target)),
                (eventsPerS) => {
                  rawSqlite = { eventsPerS, perMessage: figures.events! / count }
                }
              ))
          )
        ],
        ["memory", yield* routerRun(`memory ${inFlight}`, memory, inFlight, count)]
      ]
      if (inFlight === 1_000) measured.push(["null_log", yield* routerRun(`null log ${inFlight}`, nullLog, inFlight, count)])
      if (Option.isSome(nats)) {
        measured.push(
          ["jetstream", yield* jetStreamRun(nats.value, `jetstream ${inFlight}`, inFlight, count, "confirmed")],
          ["jetstream_ack_sent", yield* jetStreamRun(nats.value, `jetstream_ack_sent ${inFlight}`, inFlight, count, "sent")]
        )
      }
      const baseline = measured.find(([backend]) => backend === "jetstream")?.[1]
      for (const [backend, figures] of measured) {
        results[`${backend}_${inFlight}`] = figures
        const against = backend.startsWith("jetstream") || baseline === undefined
          ? ""
          : `   vs JetStream ${(figures.msgsPerS / baseline.msgsPerS).toFixed(3)}`
        yield* Console.log(`  ${backend.padEnd(18)} ${perS(figures.msgsPerS)}   ${latencies(figures)}${against}`)
      }
    }

    const sqlite1000 = results["sqlite_1000"].msgsPerS
    const jetstream1000 = results["jetstream_1000"]?.msgsPerS
    const jsSent1000 = results["jetstream_ack_sent_1000"]?.msgsPerS
    yield* Console.log(
      `sqlite, 1000 in flight: ${formatNumber(sqlite1000)} msgs/s  (target >= ${formatNumber(targetMsgsPerS)}: ${
        sqlite1000 >= targetMsgsPerS ? "met" : "MISSED"
      })`
    )
    for (const [label, baseline] of [["sqlite 1000 vs JS", jetstream1000], ["sqlite 1000 vs JS-ack", jsSent1000]] as const) {
      if (baseline === undefined) continue
      yield* printComparison({ label, figure: sqlite1000, baseline, target: targetVsJetStream, unit: "msgs/s" })
    }
    yield* Console.log(
      `sqlite 1000 vs append ${formatNumber(sqlite1000)} msgs/s  baseline ${formatNumber(appendRate)} events/s  ratio ${
        (sqlite1000 / appendRate).toFixed(3)
      }`
    )
    const nullLog1000 = results["null_log_1000"].msgsPerS
    const serialCeiling = rawSqlite === undefined
      ? undefined
      : 1 / (1 / nullLog1000 + rawSqlite.perMessage / rawSqlite.eventsPerS)
    if (rawSqlite !== undefined && serialCeiling !== undefined) {
      yield* Console.log(
        `what bounds sqlite 1000: the router on a log that stores nothing ${formatNumber(nullLog1000)} msgs/s; ` +
          `raw better-sqlite3 writing the ${rawSqlite.perMessage.toFixed(2)} events per message that run logged ` +
          `${formatNumber(rawSqlite.eventsPerS)} events/s; both, one after the other (the driver commits on the ` +
          `same thread): about ${formatNumber(serialCeiling)} msgs/s (from runs seconds apart: an estimate), ${
            (serialCeiling / targetMsgsPerS).toFixed(3)
          } of the target; sqlite 1000 reaches ${(sqlite1000 / serialCeiling).toFixed(3)} of it`
      )
    }

    const figures: Record<string, number> = {}
    for (const [key, f] of Object.entries(results)) figures[`${key}_msgs_per_s`] = Math.round(f.msgsPerS)
    for (const [key, f] of Object.entries(results)) {
      figures[`${key}_p50_ms`] = ms(f.p50Ms)
      figures[`${key}_p99_ms`] = ms(f.p99Ms)
    }
    figures.append_events_per_s = Math.round(appendRate)
    if (rawSqlite !== undefined && serialCeiling !== undefined) {
      figures.raw_sqlite_events_per_s = Math.round(rawSqlite.eventsPerS)
      figures.events_per_message = Math.round(rawSqlite.perMessage * 100) / 100
      figures.serial_ceiling_msgs_per_s = Math.round(serialCeiling)
    }
    figures.messages = messages
    figures.serial_messages = serialMessages

    const ratio = (figure: number, baseline: number) => Math.round((figure / baseline) * 1000) / 1000
    const ratios: Record<string, number> = {}
    if (jetstream1000 !== undefined) ratios.vs_jetstream = ratio(sqlite1000, jetstream1000)
    if (jsSent1000 !== undefined) ratios.vs_jetstream_ack_sent = ratio(sqlite1000, jsSent1000)
    ratios.vs_target = ratio(sqlite1000, targetMsgsPerS)
    ratios.vs_append = ratio(sqlite1000, appendRate)
    if (serialCeiling !== undefined) {
      ratios.serial_ceiling_vs_target = ratio(serialCeiling, targetMsgsPerS)
      ratios.vs_serial_ceiling = ratio(sqlite1000, serialCeiling)
    }
    for (const inFlight of inFlights) {
      const js = results[`jetstream_${inFlight}`]
      if (js === undefined) continue
      ratios[`sqlite_${inFlight}_vs_jetstream`] = ratio(results[`sqlite_${inFlight}`].msgsPerS, js.msgsPerS)
      ratios[`memory_${inFlight}_vs_jetstream`] = ratio(results[`memory_${inFlight}`].msgsPerS, js.msgsPerS)
      const sent = results[`jetstream_ack_sent_${inFlight}`]
      if (sent !== undefined) {
        ratios[`sqlite_${inFlight}_vs_jetstream_ack_sent`] = ratio(results[`sqlite_${inFlight}`].msgsPerS, sent.msgsPerS)
      }
    }
    yield* printResult({ bench: "router", figures, ratios })
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
