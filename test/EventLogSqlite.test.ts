/**
 * What only the SQL backends promise: refusing files that are not a store,
 * SQLite's durability settings, and atomicity enforced by the database itself
 * (a trigger refuses some rows, so a transaction fails halfway through).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import Database from "better-sqlite3"
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Context, Effect, Either, Exit, Fiber, Layer, Random, Redacted, Scope, Stream } from "effect"
import { EventLog, NotAStore, PersistenceError, StoreInUse } from "../src/index.js"
import { EventLogPg, EventLogSqlite } from "../src/node.js"
import { pgUrl, tempFile } from "./support/backends.js"
import { start, writeInBackground } from "./support/child.js"
import { nameOf, registered } from "./support/events.js"

const build = <E>(layer: Layer.Layer<EventLog, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, EventLog))

/** Opens the SQLite store and closes it again: the error of opening, if any. */
const openFailure = (options: EventLogSqlite.SqliteEventLogOptions) => Effect.flip(Effect.scoped(build(EventLogSqlite.layer(options))))

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const offsets = (records: ReadonlyArray<{ readonly offset: number }>) => records.map((record) => record.offset)
const readAll = (log: EventLog["Type"]) => Effect.map(Stream.runCollect(log.read()), Chunk.toReadonlyArray)

/** The messages of an error and of its causes, outermost first. */
const causeMessages = (error: unknown): Array<string> => {
  const messages: Array<string> = []
  for (let current = error; current instanceof Error || (typeof current === "object" && current !== null);) {
    if ("message" in current && typeof current.message === "string") messages.push(current.message)
    current = "cause" in current ? current.cause : undefined
  }
  return messages
}

const sqliteJournalMode = (filename: string) => {
  const db = new Database(filename, { readonly: true })
  try {
    return db.pragma("journal_mode", { simple: true })
  } finally {
    db.close()
  }
}

describe("SQLite: what it opens", () => {
  it.scoped("refuses a file that is not SQLite with NotAStore, and leaves it untouched", () =>
    Effect.gen(function*() {
      const contents = [
        randomBytes(4096),
        Buffer.from("name,balance\nalice,10\nbob,20\n"),
        Buffer.from("SQLite"), // shorter than the header
        Buffer.from("SQLite format 2\0 and then more than sixteen bytes")
      ]
      for (const [i, bytes] of contents.entries()) {
        const filename = yield* tempFile(`not-a-store-${i}.db`)
        writeFileSync(filename, bytes)
        const error = yield* openFailure({ filename })
        expect(error).toBeInstanceOf(NotAStore)
        expect(error._tag).toBe("NotAStore")
        const notAStore = error as NotAStore
        expect(notAStore.location).toBe(filename)
        expect(notAStore.message).toBe(`${filename} is not a Switchboard store: the file is not an SQLite database`)
        expect(notAStore.retryable).toBe(false)
        expect(readFileSync(filename).equals(bytes)).toBe(true)
        expect(existsSync(`${filename}-lock`)).toBe(false)
      }
    }))

  it.scoped("refuses an SQLite database holding another application's tables, and leaves it untouched", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("other-app.db")
      const other = new Database(filename)
      other.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
      other.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER)")
      other.prepare("INSERT INTO customers (name) VALUES (?)").run("alice")
      expect(other.pragma("journal_mode", { simple: true })).toBe("delete")
      other.close()

      const error = yield* openFailure({ filename })
      expect(error._tag).toBe("NotAStore")
      const notAStore = error as NotAStore
      expect(notAStore.location).toBe(filename)
      expect(notAStore.reason).toMatch(/customers/)
      expect(notAStore.reason).toMatch(/orders/)
      expect(notAStore.message).toContain(`${filename} is not a Switchboard store`)

      const after = new Database(filename, { readonly: true })
      try {
        const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()
        expect(tables).toEqual(["customers", "orders"])
        expect(after.prepare("SELECT name FROM customers").pluck().all()).toEqual(["alice"])
        // Switching another application's database to WAL would change how that application must open it.
        expect(after.pragma("journal_mode", { simple: true })).toBe("delete")
      } finally {
        after.close()
      }
    }))

  it.scoped("refuses another application's SQLite database with no tables, or marked as its own, untouched", () =>
    Effect.gen(function*() {
      const schemas = [
        "CREATE VIEW answer AS SELECT 42 AS value",
        "PRAGMA application_id = 1234",
        "PRAGMA user_version = 3"
      ]
      for (const [i, schema] of schemas.entries()) {
        const filename = yield* tempFile(`other-app-${i}.db`)
        const other = new Database(filename)
        other.exec(schema)
        other.close()
        const before = readFileSync(filename)
        const error = yield* openFailure({ filename })
        expect(error._tag).toBe("NotAStore")
        expect(readFileSync(filename).equals(before)).toBe(true)
        expect(sqliteJournalMode(filename)).toBe("delete")
      }
    }))

  it.scoped("layerReadonly refuses an empty file, never making it a store", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("empty.db")
      writeFileSync(filename, "")
      const error = yield* Effect.flip(Effect.scoped(build(EventLogSqlite.layerReadonly({ filename }))))
      expect(error._tag).toBe("NotAStore")
      expect(readFileSync(filename).length).toBe(0)
      const log = yield* build(EventLogSqlite.layer({ filename }))
      yield* log.append([registered("first")])
      const again = yield* build(EventLogSqlite.layerReadonly({ filename }))
      expect(yield* again.head).toBe(1)
    }))

  it.scoped("layerReadonly reads a store while it is written, follows its appends, and refuses to append as a defect", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("live.db")
      const writerScope = yield* Scope.make()
      const writer = yield* build(EventLogSqlite.layer({ filename })).pipe(Scope.extend(writerScope))
      yield* writer.append([registered("a")])
      const reader = yield* build(EventLogSqlite.layerReadonly({ filename }))
      const following = yield* reader.follow(1).pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* writer.append([registered("b"), registered("c")])
      expect(yield* reader.head).toBe(3)
      const followed = yield* Fiber.join(following).pipe(Effect.timeout("5 seconds"))
      expect(Chunk.toReadonlyArray(followed).map((record) => nameOf(record.event))).toEqual(["a", "b", "c"])
      const append = yield* Effect.exit(reader.append([registered("d")]))
      expect(Exit.isFailure(append) && Cause.isDie(append.cause)).toBe(true)
      yield* Scope.close(writerScope, Exit.void)
      // Closed cleanly, the store has no WAL files left for a reader to find.
      const later = yield* build(EventLogSqlite.layerReadonly({ filename }))
      expect((yield* readAll(later)).map((record) => nameOf(record.event))).toEqual(["a", "b", "c"])
      expect(sqliteJournalMode(filename)).toBe("wal")
    }))

  it.scoped("opens an empty (0-byte) file and a missing file as new stores", () =>
    Effect.gen(function*() {
      const empty = yield* tempFile("empty.db")
      writeFileSync(empty, "")
      const missing = yield* tempFile("missing.db")
      for (const filename of [empty, missing]) {
        yield* Effect.scoped(Effect.gen(function*() {
          const log = yield* build(EventLogSqlite.layer({ filename }))
          expect(yield* log.head).toBe(0)
          expect(offsets(yield* log.append([registered("first")]))).toEqual([1])
        }))
        const again = yield* build(EventLogSqlite.layer({ filename }))
        expect(yield* again.head).toBe(1)
        expect((yield* readAll(again)).map((record) => nameOf(record.event))).toEqual(["first"])
      }
    }))

  it.scoped("a file with the SQLite header and garbage after it fails with a typed error, not a defect", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("corrupt.db")
      writeFileSync(filename, Buffer.concat([Buffer.from("SQLite format 3\0"), randomBytes(8192)]))
      const exit = yield* Effect.exit(Effect.scoped(build(EventLogSqlite.layer({ filename }))))
      expect(exit._tag).toBe("Failure")
      const error = yield* openFailure({ filename })
      expect(["NotAStore", "PersistenceError"]).toContain(error._tag)
    }))
})

describe("SQLite: durability", () => {
  for (const durability of ["normal", "full"] as const) {
    it.scoped(`durability "${durability}" appends and reads back, in WAL mode, across a reopen`, () =>
      Effect.gen(function*() {
        const filename = yield* tempFile(`${durability}.db`)
        yield* Effect.scoped(Effect.gen(function*() {
          const log = yield* build(EventLogSqlite.layer({ filename, durability }))
          expect(offsets(yield* log.append([registered("a"), registered("b")]))).toEqual([1, 2])
          expect(offsets(yield* log.append([registered("c")]))).toEqual([3])
          expect((yield* readAll(log)).map((record) => nameOf(record.event))).toEqual(["a", "b", "c"])
        }))
        expect(sqliteJournalMode(filename)).toBe("wal")
        const again = yield* build(EventLogSqlite.layer({ filename, durability }))
        expect(yield* again.head).toBe(3)
        expect((yield* readAll(again)).map((record) => record.event)).toEqual([
          registered("a"),
          registered("b"),
          registered("c")
        ])
      }))
  }
})

describe("SQLite: one writer at a time", () => {
  it.scoped("refuses a second writer in this process with StoreInUse, not a reader, and takes one again once the first closes", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("one-writer.db")
      const firstScope = yield* Scope.make()
      const first = yield* build(EventLogSqlite.layer({ filename })).pipe(Scope.extend(firstScope))
      yield* first.append([registered("a")])
      const refused = yield* openFailure({ filename })
      expect(refused).toBeInstanceOf(StoreInUse)
      expect(refused).toMatchObject({ location: filename, retryable: true })
      expect(refused.message).toBe(`${filename} is in use: another process (or another log of this one) writes it`)
      const reader = yield* build(EventLogSqlite.layerReadonly({ filename }))
      expect(yield* reader.head).toBe(1)
      yield* Scope.close(firstScope, Exit.void)
      const second = yield* build(EventLogSqlite.layer({ filename }))
      expect(offsets(yield* second.append([registered("b")]))).toEqual([2])
    }))

  it.scopedLive("while another process writes a store, a writer here is refused and a reader reads; once that process is SIGKILLed, the store opens here", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("other-writer.db")
      const writer = writeInBackground({ filename, run: "other", timeoutMs: 30_000 })
      // Also when an expectation fails first.
      yield* Effect.addFinalizer(() => Effect.ignore(Effect.tryPromise(() => writer.kill())))
      yield* Effect.promise(() => writer.acknowledged(1))

      const refused = yield* openFailure({ filename })
      expect(refused).toBeInstanceOf(StoreInUse)
      const read = yield* Effect.scoped(Effect.flatMap(build(EventLogSqlite.layerReadonly({ filename })), readAll))
      expect(read.length).toBeGreaterThan(0)

      yield* Effect.promise(() => writer.kill())
      // The killed writer's lock went with it.
      const log = yield* build(EventLogSqlite.layer({ filename }))
      const head = yield* log.head
      expect(head).toBeGreaterThanOrEqual(read.length)
      expect(offsets(yield* log.append([registered("after")]))).toEqual([head + 1])
    }), 60_000)

  it.scopedLive("while this process writes a store, a writer in another process is refused with StoreInUse", () =>
    Effect.gen(function*() {
      const filename = yield* tempFile("this-writer.db")
      const log = yield* build(EventLogSqlite.layer({ filename }))
      yield* log.append([registered("mine")])
      const other = yield* Effect.promise(() =>
        start({ script: "test/support/crash-writer.ts", args: [filename, "other"], timeoutMs: 30_000 }).finished
      )
      expect(other.code).toBe(1)
      expect(other.stdout).toBe("")
      expect(other.stderr).toContain(`${filename} is in use`)
      expect((yield* readAll(log)).map((record) => nameOf(record.event))).toEqual(["mine"])
    }), 60_000)
})

// ---------------------------------------------------------------------------
// Atomicity enforced by the database: a trigger refuses any row whose payload
// mentions "poison", so a transaction fails after some of its rows went in.

const poison = (name: string) => registered(`poison-${name}`)
const isPoison = (name: string) => name.startsWith("poison-")

const atomicitySuite = (openPoisoned: Effect.Effect<EventLog["Type"], unknown, Scope.Scope>) => {
  it.scoped("a failing append lands not at all, even across several INSERT statements", () =>
    Effect.gen(function*() {
      const log = yield* openPoisoned
      yield* log.append([registered("a")])

      const failed = yield* Effect.flip(log.append([registered("good"), poison("1")]))
      expect(failed).toBeInstanceOf(PersistenceError)
      expect(failed.retryable).toBe(true)
      expect(causeMessages(failed).join(" | ")).toMatch(/poisoned/)
      expect(yield* log.head).toBe(1)

      // 500 rows go in one INSERT; the poison is in the second, so the first has already run.
      const big = yield* Effect.flip(log.append([...range(1, 500).map((i) => registered(`big${i}`)), poison("2")]))
      expect(big).toBeInstanceOf(PersistenceError)
      expect(yield* log.head).toBe(1)

      expect(offsets(yield* log.append([registered("b")]))).toEqual([2])
      expect((yield* readAll(log)).map((record) => nameOf(record.event))).toEqual(["a", "b"])
    }))

  it.scoped("in concurrent appends, each poisoned one fails alone and the log holds exactly the others, gap-free", () =>
    Effect.gen(function*() {
      const log = yield* openPoisoned
      const batches = range(1, 60).map((caller) => {
        const good = range(1, 1 + (caller % 3)).map((i) => `c${caller}.${i}`)
        return caller % 10 === 0 ? [good[0], `poison-c${caller}`, ...good.slice(1)] : good
      })
      const results = yield* Effect.forEach(
        batches,
        (names) => Effect.either(log.append(names.map(registered))),
        { concurrency: "unbounded" }
      )

      const expectedGood: Array<string> = []
      for (const [i, result] of results.entries()) {
        const names = batches[i]
        if (names.some(isPoison)) {
          expect(Either.isLeft(result) && result.left).toBeInstanceOf(PersistenceError)
        } else {
          expect(Either.isRight(result)).toBe(true)
          expectedGood.push(...names)
        }
      }
      expect(results.filter(Either.isLeft).length).toBe(6)

      const all = yield* readAll(log)
      expect(yield* log.head).toBe(expectedGood.length)
      expect(offsets(all)).toEqual(range(1, expectedGood.length))
      expect(all.map((record) => nameOf(record.event)).sort()).toEqual([...expectedGood].sort())
      for (const result of results) {
        if (Either.isLeft(result)) continue
        const first = result.right[0].offset
        expect(offsets(result.right)).toEqual(range(first, first + result.right.length - 1))
        for (const record of result.right) expect(all[record.offset - 1].event).toEqual(record.event)
      }
      expect(offsets(yield* log.append([registered("after")]))).toEqual([expectedGood.length + 1])
    }))
}

describe("SQLite: atomicity enforced by the database", () => {
  const openPoisoned = Effect.gen(function*() {
    const filename = yield* tempFile("poisoned.db")
    yield* Effect.scoped(build(EventLogSqlite.layer({ filename })))
    const db = new Database(filename)
    db.exec(`CREATE TRIGGER poison BEFORE INSERT ON switchboard_events WHEN NEW.payload LIKE '%poison%'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
    db.close()
    return yield* build(EventLogSqlite.layer({ filename }))
  })
  atomicitySuite(openPoisoned)
})

const pgSuite = (url: string) =>
  describe("PostgreSQL: atomicity enforced by the database", () => {
    const openPoisoned = Effect.gen(function*() {
      const table = `test_${(yield* Random.nextInt).toString(36).replace("-", "n")}_${Date.now().toString(36)}`
      const raw = yield* PgClient.make({ url: Redacted.make(url) }).pipe(Effect.provide(Reactivity.layer))
      yield* Effect.addFinalizer(() =>
        Effect.ignore(Effect.zipRight(
          raw`DROP TABLE IF EXISTS ${raw(table)}, ${raw(`${table}_migrations`)}`,
          raw`DROP FUNCTION IF EXISTS ${raw(`${table}_poison`)}()`
        ))
      )
      yield* Effect.scoped(build(EventLogPg.layer({ url, table })))
      yield* raw.unsafe(`CREATE FUNCTION ${table}_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.payload LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned'; END IF;
          RETURN NEW;
        END $$`)
      yield* raw.unsafe(`CREATE TRIGGER poison BEFORE INSERT ON ${table}
        FOR EACH ROW EXECUTE FUNCTION ${table}_poison()`)
      return yield* build(EventLogPg.layer({ url, table }))
    })
    atomicitySuite(openPoisoned)
  })

if (pgUrl) {
  pgSuite(pgUrl)
} else {
  console.warn("EventLogSqlite: SKIPPING the PostgreSQL atomicity tests: SWITCHBOARD_PG_URL is not set")
  describe.skip("PostgreSQL: atomicity enforced by the database (SWITCHBOARD_PG_URL not set)", () => {
    it("atomicity", () => {})
  })
}
