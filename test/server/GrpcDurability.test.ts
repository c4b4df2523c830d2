/**
 * Durability over SW4RM's gRPC surface: `switchboard serve --grpc-port` on
 * an SQLite store runs as a child process; a producer sends to one agent
 * (`sw4rm-to`) and another sends to every agent, each retrying a send with
 * the very same envelope until the server answers it; two consumers stream
 * their deliveries, answer each with a RECEIVED ACK envelope (as SW4RM's
 * clients do) and settle it with `AckDelivery`, reconnecting whenever their
 * stream drops. Meanwhile the server is killed with SIGKILL twice, at points
 * counted in answers and deliveries, and started again on the same store.
 *
 * Once drained, every accepted send (or, retried after a kill,
 * ALREADY_EXISTS: its first try was durable) has reached each of its
 * recipients and is FULFILLED, once: the log says so, read back on its own
 * terms and folded by `Replay` to the very state the server reports; no
 * consumer was told `recorded: true` twice for one delivery of a message.
 * No assertion is about time: waits are bounded only so that a stuck run
 * fails with what it was waiting for.
 */
import { status as Code } from "@grpc/grpc-js"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { copyId } from "../../src/model/Broadcast.js"
import { readFacts, readStore } from "../support/logFacts.js"
import { bundleServer, freePort, killAll, killServer, sleep, startServer } from "../support/serverProcess.js"
import { ackEnvelope, type CallError, type Client, connect, envelope } from "./grpcClient.js"

const unicasts = 120
const broadcasts = 40
const consumers = ["consumer-a", "consumer-b"] as const

/** Reconnect soon after a restart: grpc-js waits a second, growing, by default. */
const channel = { "grpc.initial_reconnect_backoff_ms": 50, "grpc.max_reconnect_backoff_ms": 500 }

/** Failures a client retries: the server is down, or was killed mid-call. */
const transient = new Set<number>([Code.UNAVAILABLE, Code.CANCELLED, Code.INTERNAL, Code.UNKNOWN, Code.DEADLINE_EXCEEDED])

const call = async (url: string) => (await fetch(url)).json() as Promise<any>

describe("durability over gRPC", () => {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-grpc-durable-"))
  afterAll(() => {
    killAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it("every accepted send reaches each recipient and is FULFILLED once while the server is killed and restarted", async () => {
    const store = join(dir, "store.db")
    const [port, grpcPort] = [await freePort(), await freePort()]
    const url = `http://127.0.0.1:${port}`
    const command = [await bundleServer(dir)]
    const serve = () => startServer(command, store, port, ["--grpc-port", String(grpcPort)])
    let server = await serve()
    const problems: Array<string> = []
    const clients: Array<Client> = []
    const client = () => {
      const made = connect(grpcPort, undefined, channel)
      clients.push(made)
      return made
    }
    try {
      const admin = client()
      for (const agent of consumers) expect(await admin.register(agent)).toMatchObject({ accepted: true })

      // The consumers: every delivery (agent, message id, seq), the AckDelivery answers.
      const deliveries = new Map<string, Array<number>>()
      const recorded = new Map<string, number>()
      let delivered = 0
      const consume = (agent: string) => {
        const sw4rm = client()
        const open = () => {
          let reopened = false
          sw4rm.stream(agent, {
            item: ({ msg, seq }) => {
              if (seq === 0) return
              const key = `${agent} ${msg.message_id}`
              deliveries.set(key, [...(deliveries.get(key) ?? []), seq])
              delivered++
              // SW4RM's way: RECEIVED by envelope at once, then the delivery settled.
              sw4rm.send(ackEnvelope(agent, msg.message_id, 1)).catch(() => undefined)
              setTimeout(() => {
                sw4rm.ack(agent, seq, msg.message_id).then(
                  ({ recorded: yes }) => {
                    if (yes) recorded.set(key, (recorded.get(key) ?? 0) + 1)
                  },
                  (error: CallError) => {
                    if (!transient.has(error.code)) problems.push(`${agent}: AckDelivery ${seq}: ${error.code} ${error.details}`)
                  }
                )
              }, Math.floor(Math.random() * 10))
            },
            // The stream dropped with the server: open it again until it comes back.
            end: () => {
              if (reopened || stopped) return
              reopened = true
              setTimeout(open, 50)
            }
          })
        }
        open()
      }
      let stopped = false
      for (const agent of consumers) consume(agent)

      // The producers: each send retried, with the same envelope, until answered.
      const answers = new Map<string, "accepted" | "duplicate">()
      let retries = 0
      const send = async (sw4rm: Client, message: ReturnType<typeof envelope>, to?: string) => {
        for (;;) {
          try {
            const answer = await sw4rm.send(message, to)
            if (!answer.accepted) problems.push(`${message.message_id}: not accepted: ${answer.reason}`)
            return answers.set(message.message_id, "accepted")
          } catch (error) {
            const { code, details, metadata } = error as CallError
            if (code === Code.ALREADY_EXISTS) {
              expect(metadata.get("sw4rm-original-message-id")[0]).toMatch(new RegExp(`^${message.message_id}`))
              return answers.set(message.message_id, "duplicate")
            }
            if (!transient.has(code)) return problems.push(`${message.message_id}: ${code} ${details}`)
            retries++
            await sleep(30)
          }
        }
      }
      const run = async (count: number, make: (i: number) => Promise<unknown>, concurrency: number) => {
        let next = 0
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (next < count) await make(next++)
        }))
      }
      const unicaster = client()
      const broadcaster = client()
      const unicast = (i: number) =>
        send(unicaster, envelope("producer-u", { i }, { message_id: `u-${i}`, idempotency_token: `u-${i}` }), "consumer-a")
      // SW4RM's clients number every message 1: the payload tells two apart.
      const broadcast = (i: number) => send(broadcaster, envelope("producer-b", { i }, { message_id: `b-${i}` }))
      const producing = Promise.all([run(unicasts, unicast, 4), run(broadcasts, broadcast, 2)])

      const waitFor = async (what: string, ready: () => boolean) => {
        const guard = Date.now() + 45_000
        while (!ready()) {
          if (problems.length > 0) throw new Error(`waiting for ${what}: ${problems.join("; ")}`)
          if (Date.now() > guard) throw new Error(`waited 45 s for ${what}: ${answers.size} answered, ${delivered} delivered`)
          await sleep(20)
        }
      }
      const kills = [() => answers.size >= (unicasts + broadcasts) * 0.3, () => delivered >= (unicasts + 2 * broadcasts) * 0.6]
      for (const [i, due] of kills.entries()) {
        await waitFor(`kill point ${i + 1}`, due)
        await killServer(server)
        server = await serve()
      }
      await producing
      expect(problems).toEqual([])
      expect(answers.size).toBe(unicasts + broadcasts)

      // Drained: every message at each recipient FULFILLED (within the ack wait of 30 s: nothing waited it out).
      const expected = [
        ...Array.from({ length: unicasts }, (_, i) => ({ id: `u-${i}`, to: "consumer-a", internal: `u-${i}` })),
        ...Array.from({ length: broadcasts }, (_, i) =>
          consumers.map((to) => ({ id: `b-${i}`, to, internal: copyId(`b-${i}`, to) }))).flat()
      ]
      let state: any = { offset: 0, state: { messages: {} } }
      const unfinished = () => expected.filter(({ internal }) => state.state.messages[internal]?.stage !== "FULFILLED")
      const guard = Date.now() + 25_000
      while (true) {
        state = await call(`${url}/state`)
        if (unfinished().length === 0) break
        if (Date.now() > guard) {
          expect.fail(`${unfinished().length} messages never finished, e.g. ${JSON.stringify(unfinished().slice(0, 3))}`)
        }
        await sleep(100)
      }
      stopped = true
      for (const sw4rm of clients) sw4rm.close()
      await sleep(100)
      expect(problems).toEqual([])
      state = await call(`${url}/state`)

      // The log: each message (each copy) accepted once, finished by one ACK, none timed out.
      const { records, replayed } = await readStore(store, state.offset)
      const facts = readFacts(records)
      expect(facts.timedOut).toEqual([])
      expect(facts.requeued.get("ack_wait") ?? []).toEqual([])
      expect([...facts.accepted.keys()].sort()).toEqual(expected.map(({ internal }) => internal).sort())
      for (const { id, internal, to } of expected) {
        expect(facts.accepted.get(internal), internal).toHaveLength(1)
        expect(facts.finishes.get(internal) ?? [], internal).toHaveLength(1)
        // Its recipient had it, with the producer's id, and heard `recorded: true` at most once.
        expect(deliveries.has(`${to} ${id}`), `${to} never got ${id}`).toBe(true)
        expect(recorded.get(`${to} ${id}`) ?? 0, `${to} ${id}`).toBeLessThanOrEqual(1)
      }
      expect(JSON.parse(JSON.stringify(replayed.state))).toEqual(state.state)
      const redelivered = [...deliveries.values()].filter((seqs) => seqs.length > 1).length
      console.log(
        `gRPC durability: ${expected.length} deliveries due (${unicasts} sent to one agent, ${broadcasts} to both), ` +
          `${[...answers.values()].filter((answer) => answer === "duplicate").length} answered ALREADY_EXISTS after ${retries} retries, ` +
          `${redelivered} delivered more than once; log head ${state.offset}`
      )
      await killServer(server)
    } finally {
      for (const sw4rm of clients) sw4rm.close()
      killAll()
    }
  }, 150_000)
})
