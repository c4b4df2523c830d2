/**
 * Durability over the network: `switchboard serve` on an SQLite store runs as
 * a child process, producers (test/server/fixtures/durable-producer.ts) send
 * over HTTP and keep every receipt, a consumer (durable-consumer.ts) takes
 * its deliveries over a WebSocket and acknowledges them, and meanwhile the
 * server is killed with SIGKILL three times and started again on the same
 * store. Once everything has drained, every send that got a receipt (or,
 * retried after a kill, a DUPLICATE_DETECTED naming itself: its first try was
 * made durable) must be FULFILLED, once: the API says so, and so does the
 * log, read back independently of the runtime's own fold and folded by
 * `Replay` to the very state the server reports.
 *
 * The kills come at points counted in receipts and deliveries, not in wall
 * time, drawn from a seed (`SWITCHBOARD_DURABILITY_SEED` replays one; a
 * failure names it). No assertion is about time: the waits are bounded only
 * so that a stuck run fails with what it was waiting for.
 *
 * The server runs from one esbuild bundle of `src/bin.ts`, made once for the
 * file: started through tsx, each restart spends several times as long
 * transpiling and resolving modules (`SWITCHBOARD_DURABILITY_TSX=1` does that
 * instead). esbuild is the one tsx depends on.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { start as startScript } from "../support/child.js"
import { readFacts, readStore, terminal } from "../support/logFacts.js"
import { bundleServer, freePort, killAll, killServer, sleep, startServer, track } from "../support/serverProcess.js"

const producers = 2
const perProducer = 200
const total = producers * perProducer
const kills = 3

/** A JSON request to the server; throws on a connection failure. */
const call = async (url: string, init: { readonly method?: string; readonly body?: unknown } = {}) => {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: init.body === undefined ? {} : { "content-type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
}

/** mulberry32: the kill points, reproducible from the seed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// ---------------------------------------------------------------------------
// What the clients report

interface Receipt {
  readonly id: string
  readonly kind: "receipt" | "duplicate"
  readonly offset?: number
  readonly original?: string
}

interface Progress {
  readonly receipts: Map<string, Receipt>
  /** Message ids the consumer was handed, with each delivery (seq, attempt). */
  readonly delivered: Map<string, Array<{ readonly seq: number; readonly attempt: number }>>
  /** Per message, the ACK answers the consumer got. */
  readonly acked: Map<string, Array<{ readonly seq: number; readonly late: boolean; readonly stage: string }>>
  readonly problems: Array<string>
  producersDone: number
  retries: number
  duplicates: number
  connections: number
}

/** Resolves once `ready()` holds, checked after every line the clients print; rejects on a client's failure or after 45 s. */
const waitFor = (progress: Progress, checks: Array<() => void>, what: string, ready: () => boolean) =>
  new Promise<void>((resolve, reject) => {
    const guard = setTimeout(() => {
      remove()
      reject(new Error(`waited 45 s for ${what}: ${describeProgress(progress)}`))
    }, 45_000)
    const check = () => {
      if (progress.problems.length > 0) {
        remove()
        reject(new Error(`waiting for ${what}: ${progress.problems.join("; ")}`))
      } else if (ready()) {
        remove()
        resolve()
      }
    }
    const remove = () => {
      clearTimeout(guard)
      checks.splice(checks.indexOf(check), 1)
    }
    checks.push(check)
    check()
  })

const describeProgress = (progress: Progress) =>
  `${progress.receipts.size} of ${total} sends answered, ${progress.delivered.size} messages delivered, ` +
  `${progress.producersDone} of ${producers} producers done`

// ---------------------------------------------------------------------------

describe("durability over the network", () => {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-durable-"))
  afterAll(() => {
    killAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it("every receipted send is FULFILLED exactly once while the server is killed and restarted on its store", async () => {
    const seed = Number(process.env.SWITCHBOARD_DURABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31))
    const context = `seed ${seed} (SWITCHBOARD_DURABILITY_SEED=${seed} replays these kill points)`
    const draw = random(seed)
    const store = join(dir, "store.db")
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const progress: Progress = {
      receipts: new Map(),
      delivered: new Map(),
      acked: new Map(),
      problems: [],
      producersDone: 0,
      retries: 0,
      duplicates: 0,
      connections: 0
    }
    const checks: Array<() => void> = []
    const checkAll = () => {
      for (const check of [...checks]) check()
    }

    try {
      // The clients start while the server is bundled and started; they wait for a line on stdin.
      const producerScripts = Array.from({ length: producers }, (_, p) =>
        startScript({
          script: "test/server/fixtures/durable-producer.ts",
          args: [url, `producer-${p}`, "consumer", "m", String(perProducer), "4"],
          timeoutMs: 150_000,
          onLine: (text) => {
            const line = JSON.parse(text)
            if (line.kind === "receipt" || line.kind === "duplicate") {
              if (progress.receipts.has(line.id)) progress.problems.push(`${line.id} answered twice`)
              progress.receipts.set(line.id, line)
              if (line.kind === "duplicate") progress.duplicates++
            } else if (line.kind === "done") {
              progress.producersDone++
              progress.retries += line.retries
            } else {
              progress.problems.push(`producer-${p}: ${text}`)
            }
            checkAll()
          }
        }))
      const consumerScript = startScript({
        script: "test/server/fixtures/durable-consumer.ts",
        args: [url, "consumer", "15", "10"],
        timeoutMs: 150_000,
        onLine: (text) => {
          const line = JSON.parse(text)
          if (line.kind === "delivery") {
            progress.delivered.set(line.id, [...(progress.delivered.get(line.id) ?? []), { seq: line.seq, attempt: line.attempt }])
          } else if (line.kind === "acked") {
            progress.acked.set(line.id, [...(progress.acked.get(line.id) ?? []), { seq: line.seq, late: line.late, stage: line.stage }])
          } else if (line.kind === "connected") {
            progress.connections++
          } else if (line.kind === "ack-error") {
            progress.problems.push(`consumer: ${text}`)
          }
          checkAll()
        }
      })
      for (const script of [...producerScripts, consumerScript]) track(script.child)
      for (const [i, script] of producerScripts.entries()) {
        script.finished.then(
          ({ code, stderr }) => {
            if (code !== 0) progress.problems.push(`producer-${i} exited with ${code}: ${stderr}`)
            checkAll()
          },
          (error) => {
            progress.problems.push(`producer-${i}: ${error}`)
            checkAll()
          }
        )
      }

      const command = process.env.SWITCHBOARD_DURABILITY_TSX === "1"
        ? ["--import", "tsx", "src/bin.ts"]
        : [await bundleServer(dir)]
      let server = await startServer(command, store, port)
      // serve says where its console is (stdout may trail the first /health answer a little).
      const consoleLine = `switchboard: console at http://127.0.0.1:${port}/console`
      for (let waited = 0; !server.output().includes(consoleLine) && waited < 5_000; waited += 50) await sleep(50)
      expect(server.output()).toContain(consoleLine)

      for (const agent_id of ["consumer", ...Array.from({ length: producers }, (_, p) => `producer-${p}`)]) {
        const registered = await call(`${url}/agents`, { body: { agent_id, name: agent_id } })
        expect(registered.status, JSON.stringify(registered.body)).toBe(200)
      }
      for (const script of producerScripts) script.child.stdin!.write("go\n")

      // Kill points, in sends answered and messages delivered. The consumer
      // starts after the first restart: that kill finds a backlog and nothing
      // in flight, the others deliveries and ACKs in flight as well as sends.
      const between = (low: number, high: number) => Math.floor(total * (low + (high - low) * draw()))
      const schedule = [
        { on: "receipts", at: between(0.1, 0.25) },
        { on: "delivered", at: between(0.35, 0.55) },
        { on: "receipts", at: between(0.7, 0.9) }
      ] as const
      expect(schedule.length).toBe(kills)
      const killedAt: Array<string> = []
      for (const point of schedule) {
        await waitFor(progress, checks, `${point.at} ${point.on}`, () =>
          (point.on === "receipts" ? progress.receipts.size : progress.delivered.size) >= point.at)
        await killServer(server)
        killedAt.push(`${point.on} ${point.at} (${progress.receipts.size} answered, ${progress.delivered.size} delivered)`)
        server = await startServer(command, store, port)
        if (killedAt.length === 1) consumerScript.child.stdin!.write("go\n")
      }

      // Drained: every send answered, and every receipted message finished.
      await waitFor(progress, checks, "the producers to finish", () => progress.producersDone === producers)
      expect(progress.receipts.size).toBe(total)
      let state: { offset: number; state: any } = { offset: 0, state: { messages: {} } }
      const unfinished = () => [...progress.receipts.keys()].filter((id) => !terminal.has(state.state.messages[id]?.stage))
      // Shorter than the server's ack wait (30 s): a delivery lost at a kill
      // must go out again at the restart, not when its ack wait runs out.
      const drainGuard = Date.now() + 25_000
      while (true) {
        state = (await call(`${url}/state`)).body
        if (unfinished().length === 0) break
        if (Date.now() > drainGuard) {
          const stuck = unfinished().slice(0, 5).map((id) => `${id}: ${JSON.stringify(state.state.messages[id])}`)
          expect.fail(`${unfinished().length} receipted messages never finished (${context}), e.g. ${stuck.join("; ")}`)
        }
        await sleep(100)
      }
      // Every ACK it sent has its answer, or never will: the consumer is stopped.
      consumerScript.child.kill("SIGKILL")
      await consumerScript.finished
      expect(progress.problems, context).toEqual([])
      state = (await call(`${url}/state`)).body

      // The API: every receipted message is FULFILLED, not a dead letter.
      const ids = [...progress.receipts.keys()]
      const statuses = new Map<string, any>()
      for (let i = 0; i < ids.length; i += 16) {
        await Promise.all(ids.slice(i, i + 16).map(async (id) => statuses.set(id, await call(`${url}/messages/${id}`))))
      }
      for (const id of ids) {
        const status = statuses.get(id)
        expect(status, `${id} (${context})`).toMatchObject({ status: 200, body: { message_id: id, stage: "FULFILLED", dead_letter: false } })
      }
      // A retried send answered DUPLICATE_DETECTED names itself: the first try was made durable.
      for (const receipt of progress.receipts.values()) {
        if (receipt.kind === "duplicate") expect(receipt.original, context).toBe(receipt.id)
      }

      // The log, read back: each message accepted once, at its receipt's offset, and finished once.
      const { records, replayed } = await readStore(store, state.offset)
      expect(records.length).toBe(state.offset)
      const facts = readFacts(records)
      expect(facts.timedOut, context).toEqual([])
      // Nothing waited out its ack wait: what a kill cut off was delivered again at the restart.
      expect(facts.requeued.get("ack_wait") ?? [], `requeued when their ack wait ran out (${context})`).toEqual([])
      expect(facts.other, context).toEqual([])
      expect([...facts.accepted.keys()].sort(), `accepted messages are the receipted ones (${context})`).toEqual(ids.sort())
      for (const receipt of progress.receipts.values()) {
        const accepted = facts.accepted.get(receipt.id) ?? []
        expect(accepted.length, `${receipt.id} accepted ${accepted.length} times (${context})`).toBe(1)
        if (receipt.kind === "receipt") expect(receipt.offset, `${receipt.id}'s receipt offset (${context})`).toBe(accepted[0])
        // One terminal ACK finished it; the runtime took that one, and took every other for late.
        const finishes = facts.finishes.get(receipt.id) ?? []
        expect(finishes.length, `${receipt.id} has ${finishes.length} finishing ACKs (${context})`).toBe(1)
        expect(statuses.get(receipt.id).body.finished_at, `${receipt.id} finished by the ACK at ${finishes[0].offset} (${context})`)
          .toBe(finishes[0].at)
        expect(state.state.messages[receipt.id].late_acks, `${receipt.id}'s late ACKs (${context})`)
          .toBe(facts.lateAcks.get(receipt.id) ?? 0)
      }

      // The consumer: handed every message, told of at most one ACK that finished it, the one the log holds.
      for (const id of ids) {
        expect(progress.delivered.has(id), `${id} was never delivered (${context})`).toBe(true)
        const answers = progress.acked.get(id) ?? []
        const effective = answers.filter((answer) => !answer.late)
        expect(effective.length, `${id}: ${JSON.stringify(answers)} (${context})`).toBeLessThanOrEqual(1)
        if (effective.length === 1) expect(effective[0].seq, `${id} (${context})`).toBe(facts.finishes.get(id)![0].seq)
        for (const answer of answers) expect(answer.stage, `${id} (${context})`).toBe("FULFILLED")
      }

      // Replay folds the log to the very state the server reports.
      expect(replayed.offset).toBe(state.offset)
      expect(JSON.parse(JSON.stringify(replayed.state)), context).toEqual(state.state)

      const lateAnswers = [...progress.acked.values()].flat().filter((answer) => answer.late).length
      const redelivered = [...progress.delivered.values()].filter((deliveries) => deliveries.length > 1).length
      console.log(
        `durability: ${context}; killed at ${killedAt.join(", ")}; ${total} receipted (${progress.duplicates} as duplicates ` +
          `after ${progress.retries} retries); ${redelivered} delivered more than once; requeued ${
            JSON.stringify(Object.fromEntries([...facts.requeued].map(([reason, ids]) => [reason, ids.length])))
          }; ${[...facts.lateAcks.values()].reduce((a, b) => a + b, 0)} late ACKs in the log (${lateAnswers} answered late); ` +
          `${progress.connections} WebSocket connections; log head ${state.offset}`
      )
      await killServer(server)
    } finally {
      killAll()
    }
  }, 150_000)
})
