/**
 * The child killed by the crash test in test/RouterRestart.test.ts. Opens the
 * router on the SQLite store at argv[2] (durability "full"), registers the
 * agents, and runs the producers and the consumers of router-workload.ts,
 * the consumers recording processed tokens in the file at argv[3].
 *
 * stdout carries one JSON line per event the parent may rely on:
 * - `{ token, id, dup }` once `send` returned for the token: a promise the
 *   store must keep;
 * - `{ holding: token }` when the `hold`-th token processed in this run is
 *   recorded: its handler then never returns, so the kill finds it processed
 *   but not acknowledged;
 * - `{ done: true }` once every token was sent.
 * Logs go to stderr.
 *
 * Run: node --import tsx test/support/router-crash-worker.ts <store> <processed> <run> <fibers> <perFiber> <hold>
 */
import { Effect, Logger } from "effect"
import { openProcessed } from "./processed-tokens.js"
import { consume, produce, registerAll, routerOn } from "./router-workload.js"

const [store, processedFile, run, fibersArg, perFiberArg, holdArg] = process.argv.slice(2)
if (!store || !processedFile || !run || !fibersArg || !perFiberArg || !holdArg) {
  process.stderr.write("usage: router-crash-worker.ts <store> <processed> <run> <fibers> <perFiber> <hold>\n")
  process.exit(2)
}

const line = (value: unknown) => process.stdout.write(JSON.stringify(value) + "\n")

const processed = openProcessed(processedFile)
let fresh = 0

Effect.gen(function*() {
  yield* registerAll
  yield* consume({
    processed,
    run,
    afterProcess: (token) => {
      if (++fresh !== Number(holdArg)) return undefined
      return Effect.zipRight(Effect.sync(() => line({ holding: token })), Effect.never)
    }
  }).pipe(Effect.forkScoped)
  yield* produce(Number(fibersArg), Number(perFiberArg), line)
  line({ done: true })
  yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(routerOn(store)),
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.map(Logger.logfmtLogger, (text) => process.stderr.write(text + "\n")))),
  Effect.runPromise
).catch((error) => {
  process.stderr.write(`router-crash-worker failed: ${error}\n`)
  process.exit(1)
})
