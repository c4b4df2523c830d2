/**
 * The event log bench: the SQLite layer with durability `full`, against raw
 * better-sqlite3 doing the same work in the same run.
 *
 * - write baseline: the same encoded rows, inserted by one prepared statement
 *   in 1,000-row transactions, into the same table with the same pragmas (WAL,
 *   synchronous=FULL);
 * - read baseline: the whole table selected back, each payload `JSON.parse`d;
 * - group ceiling: the same raw inserts in 100-row transactions. (a) can never
 *   commit more than one event from each of its 100 fibers at a time, and each
 *   commit waits for its fsync, so this is the most (a) could ever reach.
 * - machinery ceiling: (a) itself on a store whose commit does nothing: the
 *   log's own work per append (encoding and checking the event, the fiber's
 *   trip through the group commit) without any SQL. (a) adds SQLite's work
 *   to it, so this too bounds (a) from above.
 * - serial ceiling: both together. The SQLite driver commits on the thread
 *   that runs everything else, so an event costs at least its share of the
 *   log's work plus its share of a 100-row commit:
 *   1 / (1 / machinery ceiling + 1 / group ceiling).
 *
 * Figures, in events/s: (a) 100 fibers each appending one event at a time,
 * repeatedly; (b) one fiber appending batches of 100; (c) `read` of the whole
 * log written by (b), decoded to events. Both reads open their file afresh
 * once the writes are done.
 *
 * Each figure and each baseline is the best of several rounds, all on fresh
 * files, after a warm-up round: on a shared machine a single round mostly
 * measures the neighbours.
 *
 * Flags: `--events N` (or BENCH_EVENTS) events per round, default 50,000;
 * `--rounds N` (or BENCH_ROUNDS), default 3; `--short`: 10,000 events, one
 * round and a shorter report, unless given.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import Database from "better-sqlite3"
import { Array as Arr, Console, DateTime, Effect, Either, type Scope, Stream } from "effect"
import { EventLog } from "../src/index.js"
import { EventLogSqlite } from "../src/node.js"
import { encodeEvent, type StoredEvent } from "../src/schema/Event.js"
import { MessageAccepted } from "../src/schema/RouterEvents.js"
import { type LogStore, makeEventLog } from "../src/layers/EventLogStore.js"
import { formatNumber, hasFlag, intOption, printComparison, printResult, rate, ratioOf } from "./report.js"

export const fibers = 100
const batchSize = 100
const baselineTransaction = 1_000

// ---------------------------------------------------------------------------
// The events: one message accepted for routing, with a 200-byte JSON payload

const payload = (() => {
  const text = JSON.stringify({ task: "summarise", document: "doc-0001", notes: "" })
  return new TextEncoder().encode(JSON.stringify({
    task: "summarise",
    document: "doc-0001",
    notes: "x".repeat(200 - text.length)
  }))
})()

/**
 * The constructor's own check is skipped: it costs some 100 µs an event, and
 * encoding (by the log, and for the baseline rows) checks every event anyway.
 */
export const makeEvents = (count: number) => {
  const start = DateTime.unsafeMake("2025-01-01T00:00:00Z")
  return Arr.makeBy(count, (i) =>
    MessageAccepted.make({
      to: `agent-${i % 16}`,
      route: { _tag: "Capability", capability: "summarise" },
      lane: "STANDARD",
      expires_at: DateTime.toEpochMillis(start) + i + 60_000,
      at: DateTime.toEpochMillis(start) + i,
      envelope: {
        message_id: `msg-${i.toString().padStart(8, "0")}`,
        producer_id: "agent-producer",
        correlation_id: `conversation-${i % 1_000}`,
        sequence_number: i,
        retry_count: 0,
        message_type: "DATA",
        content_type: "application/json",
        content_length: payload.length,
        ttl_ms: 60_000,
        timestamp: DateTime.add(start, { millis: i }),
        payload,
        state: "SENT"
      }
    }, { disableValidation: true }))
}

const encodeAll = (events: ReadonlyArray<MessageAccepted>) =>
  events.map((event) => Either.getOrThrow(encodeEvent(event)))

// ---------------------------------------------------------------------------
// Baselines: raw better-sqlite3

// The table of EventLogSql's SQLite migration.
const createTable = `CREATE TABLE switchboard_events (
  log_offset INTEGER PRIMARY KEY,
  committed_at INTEGER NOT NULL,
  event_type TEXT NOT NULL,
  event_version INTEGER NOT NULL,
  payload TEXT NOT NULL
)`

export const openRaw = (filename: string): Effect.Effect<Database.Database, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const db = new Database(filename)
      db.pragma("journal_mode = WAL")
      db.pragma("synchronous = FULL")
      return db
    }),
    (db) => Effect.sync(() => db.close())
  )

export const baselineWrite = (db: Database.Database, rows: ReadonlyArray<StoredEvent>, transaction: number) =>
  Effect.sync(() => {
    db.exec(createTable)
    const insert = db.prepare(
      `INSERT INTO switchboard_events (log_offset, committed_at, event_type, event_version, payload)
       VALUES (?, ?, ?, ?, ?)`
    )
    const commit = db.transaction((first: number, committedAt: number) => {
      const end = Math.min(first + transaction, rows.length)
      for (let i = first; i < end; i++) {
        insert.run(i + 1, committedAt, rows[i].type, rows[i].version, rows[i].payload)
      }
    })
    for (let first = 0; first < rows.length; first += transaction) commit(first, Date.now())
  })

const baselineRead = (db: Database.Database) =>
  Effect.sync(() => {
    const select = db.prepare(
      "SELECT log_offset, committed_at, event_type, event_version, payload FROM switchboard_events ORDER BY log_offset"
    ).raw(true)
    let count = 0
    for (const row of select.iterate() as Iterable<[number, number, string, number, string]>) {
      if (JSON.parse(row[4])._tag === row[2]) count++
    }
    return count
  })

// ---------------------------------------------------------------------------
// The event log

export const withLog = <A, E>(filename: string, use: (log: EventLog["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(EventLog, use).pipe(Effect.provide(EventLogSqlite.layer({ filename, durability: "full" })))

export const concurrentAppend = (log: EventLog["Type"], events: ReadonlyArray<MessageAccepted>) => {
  const perFiber = events.length / fibers
  return Effect.forEach(
    Arr.range(0, fibers - 1),
    (fiber) =>
      Effect.forEach(Arr.range(0, perFiber - 1), (i) => log.append([events[fiber * perFiber + i]]), { discard: true }),
    { concurrency: "unbounded", discard: true }
  )
}

/** A store that keeps nothing: its commit only counts offsets. */
export const nullStore = (): LogStore => {
  let head = 0
  return {
    commit: (events) =>
      Effect.sync(() => {
        const first = head + 1
        head += events.length
        return first
      }),
    readPage: () => Effect.succeed([]),
    head: Effect.sync(() => head)
  }
}

const batchAppend = (log: EventLog["Type"], events: ReadonlyArray<MessageAccepted>) =>
  Effect.forEach(Arr.chunksOf(events, batchSize), (batch) => log.append(batch), { discard: true })

const readAll = (log: EventLog["Type"]) => Stream.runCount(log.read())

const expectCount = (what: string, expected: number) => (count: number) =>
  count === expected ? Effect.void : Effect.dieMessage(`${what}: expected ${expected} events, got ${count}`)

// ---------------------------------------------------------------------------

interface Measures {
  readonly writeBaseline: number
  /** Raw inserts in transactions of `fibers` rows: the most that (a) can ever do. */
  readonly groupCeiling: number
  /** (a) on a store that commits nothing: the most that the log's own work lets (a) do. */
  readonly machineryCeiling: number
  readonly readBaseline: number
  readonly concurrentAppend: number
  readonly batchAppend: number
  readonly read: number
}

/** The writes, each into a fresh file: the write baseline, (a) and (b). */
const measureWrites = (file: (name: string) => string, n: number) =>
  Effect.gen(function*() {
    const events = makeEvents(n)
    const rows = encodeAll(events)
    const writeBaseline = yield* Effect.scoped(
      Effect.flatMap(openRaw(file("baseline")), (db) => rate(n, baselineWrite(db, rows, baselineTransaction)))
    )
    const groupCeiling = yield* Effect.scoped(
      Effect.flatMap(openRaw(file("ceiling")), (db) => rate(n, baselineWrite(db, rows, fibers)))
    )
    const machineryCeiling = yield* Effect.scoped(
      Effect.flatMap(makeEventLog(nullStore()), (log) => rate(n, concurrentAppend(log, events)))
    )
    const concurrent = yield* withLog(file("concurrent"), (log) =>
      Effect.zipLeft(
        rate(n, concurrentAppend(log, events)),
        Effect.flatMap(log.head, expectCount("concurrent append", n))
      ))
    const batch = yield* withLog(file("batch"), (log) => rate(n, batchAppend(log, events)))
    return { writeBaseline, groupCeiling, machineryCeiling, concurrentAppend: concurrent, batchAppend: batch }
  })

/**
 * The reads of what the writes left, each from a file opened afresh: the read
 * baseline and (c). As after a restart, the events written are no longer held
 * in memory, so neither side pays for collecting garbage among them.
 */
const measureReads = (file: (name: string) => string, n: number) =>
  Effect.gen(function*() {
    const readBaseline = yield* Effect.scoped(
      Effect.flatMap(
        openRaw(file("baseline")),
        (db) => rate(n, Effect.flatMap(baselineRead(db), expectCount("baseline read", n)))
      )
    )
    const read = yield* withLog(file("batch"), (log) => rate(n, Effect.flatMap(readAll(log), expectCount("read", n))))
    return { readBaseline, read }
  })

/** Every measure once, on fresh files in `dir`. */
const measure = (dir: string, round: string, n: number) =>
  Effect.gen(function*() {
    const file = (name: string) => `${dir}/${round}-${name}.db`
    const writes = yield* measureWrites(file, n)
    const reads = yield* measureReads(file, n)
    return { ...writes, ...reads } satisfies Measures
  })

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const short = hasFlag(args, "short")
    const [requested, rounds] = yield* Effect.try(() =>
      [
        intOption(args, "events", "BENCH_EVENTS") ?? (short ? 10_000 : 50_000),
        intOption(args, "rounds", "BENCH_ROUNDS") ?? (short ? 1 : 3)
      ] as const
    )
    // Whole rounds for both the fibers and the batches.
    const n = Math.max(1, Math.round(requested / fibers)) * fibers

    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "switchboard-bench-" })
    if (!short) {
      yield* Console.log(
        `eventlog: ${formatNumber(n)} MessageAccepted events (${payload.length}-byte payloads) per round, ` +
          `best of ${rounds} rounds, SQLite WAL, durability full, in ${dir}`
      )
    }
    // A smaller round first, so the figures are of warmed-up code.
    yield* measure(dir, "warmup", Math.min(n, 10_000))
    const all: Array<Measures> = []
    for (let round = 1; round <= rounds; round++) all.push(yield* measure(dir, `round${round}`, n))
    const best = (figure: keyof Measures) => Math.max(...all.map((measures) => measures[figure]))
    const m: Measures = {
      writeBaseline: best("writeBaseline"),
      groupCeiling: best("groupCeiling"),
      machineryCeiling: best("machineryCeiling"),
      readBaseline: best("readBaseline"),
      concurrentAppend: best("concurrentAppend"),
      batchAppend: best("batchAppend"),
      read: best("read")
    }

    const comparisons = {
      concurrent_append: {
        label: `(a) ${fibers} fibers x 1`,
        figure: m.concurrentAppend,
        baseline: m.writeBaseline,
        target: 0.35
      },
      batch_append: { label: `(b) batches of ${batchSize}`, figure: m.batchAppend, baseline: m.writeBaseline },
      read: { label: "(c) read, decoded", figure: m.read, baseline: m.readBaseline, target: 0.3 },
      ceiling: { label: `raw, ${fibers}-row tx`, figure: m.groupCeiling, baseline: m.writeBaseline },
      concurrent_vs_ceiling: { label: `(a) vs raw ${fibers}-row`, figure: m.concurrentAppend, baseline: m.groupCeiling },
      machinery: { label: "(a), no SQL at all", figure: m.machineryCeiling, baseline: m.writeBaseline },
      serial: {
        label: "log + raw SQL, serial",
        figure: 1 / (1 / m.machineryCeiling + 1 / m.groupCeiling),
        baseline: m.writeBaseline
      }
    }
    if (!short) {
      yield* Console.log(
        `baselines: write ${formatNumber(m.writeBaseline)} events/s ` +
          `(better-sqlite3, ${baselineTransaction}-row transactions), ` +
          `read ${formatNumber(m.readBaseline)} events/s (better-sqlite3 + JSON.parse)`
      )
    }
    for (const comparison of Object.values(comparisons)) yield* printComparison(comparison)
    if (!short) {
      yield* Console.log(
        `(a) commits at most ${fibers} events per transaction, one from each fiber, and every commit waits for ` +
          `its fsync: raw better-sqlite3 doing the same (${fibers}-row transactions) reaches ${
            ratioOf(comparisons.ceiling).toFixed(3)
          } of the write baseline, which bounds (a)'s ratio from above; so does (a) on a store that commits ` +
          `nothing, ${ratioOf(comparisons.machinery).toFixed(3)}: the log's own work per append, without SQLite's. ` +
          `The driver commits on the same thread, so (a) pays both, one after the other: at most ${
            ratioOf(comparisons.serial).toFixed(3)
          }`
      )
    }

    yield* printResult({
      bench: "eventlog",
      figures: {
        events: n,
        write_baseline: Math.round(m.writeBaseline),
        group_ceiling: Math.round(m.groupCeiling),
        machinery_ceiling: Math.round(m.machineryCeiling),
        serial_ceiling: Math.round(comparisons.serial.figure),
        read_baseline: Math.round(m.readBaseline),
        concurrent_append: Math.round(m.concurrentAppend),
        batch_append: Math.round(m.batchAppend),
        read: Math.round(m.read)
      },
      ratios: {
        concurrent_append: ratioOf(comparisons.concurrent_append),
        batch_append: ratioOf(comparisons.batch_append),
        read: ratioOf(comparisons.read),
        group_ceiling: ratioOf(comparisons.ceiling),
        concurrent_vs_ceiling: ratioOf(comparisons.concurrent_vs_ceiling),
        machinery_ceiling: ratioOf(comparisons.machinery),
        serial_ceiling: ratioOf(comparisons.serial)
      }
    })
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
