/**
 * The writer killed by test/EventLogCrash.test.ts. Opens the SQLite store at
 * argv[2] with durability "full" and appends forever from many fibers. Each
 * append is printed as one JSON line `{ first, count, names }`, and only after
 * it returned: a line the parent has read is a promise the store must keep.
 *
 * Names are `<run>.w<fiber>.<seq>.<i>of<count>`, so the parent can tell every
 * batch in the log apart and check that it is whole.
 *
 * Run: node --import tsx test/support/crash-writer.ts <file> <run> [fibers, default 20]
 */
import { Effect } from "effect"
import { EventLog } from "../../src/index.js"
import { EventLogSqlite } from "../../src/node.js"
import { registered } from "./events.js"

const [filename, run = "r", fiberCount = "20"] = process.argv.slice(2)
if (!filename) {
  process.stderr.write("usage: crash-writer.ts <file> [run] [fibers]\n")
  process.exit(2)
}

const fibers = Number(fiberCount)

const writer = (fiber: number) =>
  Effect.gen(function*() {
    const log = yield* EventLog
    for (let seq = 1;; seq++) {
      const count = 1 + ((fiber * 7 + seq * 3) % 5)
      const names = Array.from({ length: count }, (_, i) => `${run}.w${fiber}.${seq}.${i + 1}of${count}`)
      const records = yield* log.append(names.map(registered))
      process.stdout.write(JSON.stringify({ first: records[0].offset, count: records.length, names }) + "\n")
    }
  })

Effect.forEach(Array.from({ length: fibers }, (_, i) => i + 1), writer, { concurrency: "unbounded", discard: true })
  .pipe(
    Effect.provide(EventLogSqlite.layer({ filename, durability: "full" })),
    Effect.runPromise
  )
  .catch((error) => {
    process.stderr.write(`crash-writer failed: ${error}\n`)
    process.exit(1)
  })
