/**
 * Crash durability of the SQLite store: a writer process appending from many
 * fibers is killed with SIGKILL, and every append it had acknowledged must be
 * in the reopened store, at the offsets it was given, whole.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import { EventLog } from "../src/index.js"
import { EventLogSqlite } from "../src/node.js"
import { runUntilKilled } from "./support/child.js"
import { nameOf, registered } from "./support/events.js"

interface Ack {
  readonly first: number
  readonly count: number
  readonly names: ReadonlyArray<string>
}

const writerScript = "test/support/crash-writer.ts"

/**
 * Runs the writer on `filename` until it has acknowledged `killAfter` appends,
 * kills it with SIGKILL, and returns every append it acknowledged (lines still
 * in the pipe when it died included).
 */
const runAndKill = async (filename: string, run: string, killAfter: number) => {
  const acks: Array<Ack> = []
  await runUntilKilled({
    script: writerScript,
    args: [filename, run],
    timeoutMs: 25_000,
    onLine: (line) => acks.push(JSON.parse(line)) >= killAfter,
    name: "the writer",
    progress: () => `acknowledged only ${acks.length} appends`
  })
  return acks
}

const batchName = /^(.+)\.(\d+)of(\d+)$/

/** Reopens the store and checks it against the acknowledgements; returns the head. */
const verify = (filename: string, acks: ReadonlyArray<Ack>) =>
  Effect.gen(function*() {
    const log = Context.get(yield* Layer.build(EventLogSqlite.layer({ filename })), EventLog)
    const head = yield* log.head
    const records = Chunk.toReadonlyArray(yield* Stream.runCollect(log.read()))
    const names = records.map((record) => nameOf(record.event))

    // Gap-free from 1 to the head.
    expect(records.length).toBe(head)
    for (const [i, record] of records.entries()) {
      if (record.offset !== i + 1) expect.fail(`offset ${i + 1} holds record ${record.offset}`)
    }

    // Every acknowledged append, at exactly its offsets, with exactly its events.
    for (const ack of acks) {
      expect(ack.first + ack.count - 1).toBeLessThanOrEqual(head)
      const found = names.slice(ack.first - 1, ack.first - 1 + ack.count)
      if (found.join() !== ack.names.join()) {
        expect.fail(`append acknowledged at ${ack.first}: expected ${ack.names.join()}, found ${found.join()}`)
      }
    }

    // Every batch in the log is whole, and each fiber's batches are there in
    // order with none missing: a fiber appends its next batch only after the
    // previous one returned, so a later batch implies every earlier one.
    const lastSeq = new Map<string, number>()
    for (let i = 0; i < names.length;) {
      const match = batchName.exec(names[i])
      if (!match) {
        i++ // a probe appended by the test itself
        continue
      }
      const [, batch, , total] = match
      const count = Number(total)
      for (let k = 1; k <= count; k++) {
        if (names[i + k - 1] !== `${batch}.${k}of${count}`) {
          expect.fail(`batch ${batch} is not whole at offset ${i + k}: found ${names[i + k - 1]}`)
        }
      }
      const fiber = batch.slice(0, batch.lastIndexOf("."))
      const seq = Number(batch.slice(batch.lastIndexOf(".") + 1))
      const previous = lastSeq.get(fiber) ?? 0
      if (seq !== previous + 1) expect.fail(`${fiber}: batch ${seq} follows batch ${previous}`)
      lastSeq.set(fiber, seq)
      i += count
    }

    // The store takes appends again, right after the head.
    const probe = yield* log.append([registered(`probe-after-${head}`)])
    expect(probe.map((record) => record.offset)).toEqual([head + 1])
    return head + 1
  }).pipe(Effect.scoped)

describe("SQLite crash durability", () => {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-crash-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("every acknowledged append survives SIGKILL of the writer, twice over on one store", async () => {
    const filename = join(dir, "crash.db")
    const allAcks: Array<Ack> = []
    let head = 0
    for (const [run, killAfter] of [["r1", 733], ["r2", 2_000]] as const) {
      const acks = await runAndKill(filename, run, killAfter)
      expect(acks.length).toBeGreaterThanOrEqual(killAfter)
      // The writer of a reopened store continues after what was already there.
      expect(Math.min(...acks.map((ack) => ack.first))).toBeGreaterThan(head)
      allAcks.push(...acks)
      head = await Effect.runPromise(verify(filename, allAcks))
    }
  }, 60_000)
})
