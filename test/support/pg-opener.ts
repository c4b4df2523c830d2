/**
 * One of the processes of the concurrent first opens in
 * test/EventLogPgWriters.test.ts. Says `ready` once loaded, waits for a line
 * on stdin, then opens the PostgreSQL store, appends one event named `name`
 * and prints its offset.
 *
 * Run: node --import tsx test/support/pg-opener.ts <url> <table> <name>
 */
import { createInterface } from "node:readline"
import { Effect } from "effect"
import { EventLog } from "../../src/index.js"
import { EventLogPg } from "../../src/node.js"
import { registered } from "./events.js"

const [url, table, name] = process.argv.slice(2)
if (!url || !table || !name) {
  process.stderr.write("usage: pg-opener.ts <url> <table> <name>\n")
  process.exit(2)
}

const open = () =>
  Effect.flatMap(EventLog, (log) => log.append([registered(name)])).pipe(
    Effect.provide(EventLogPg.layer({ url, table, maxConnections: 2 })),
    Effect.runPromise
  )

const input = createInterface({ input: process.stdin })
input.once("line", () => {
  input.close()
  open().then(
    (records) => {
      process.stdout.write(`${records[0].offset}\n`)
      process.exit(0)
    },
    (error) => {
      process.stderr.write(`pg-opener failed: ${error}\n`)
      process.exit(1)
    }
  )
})
process.stdout.write("ready\n")
