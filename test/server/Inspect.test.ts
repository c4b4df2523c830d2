/**
 * The read-only views beyond what `Routes.test.ts` checks of each route:
 * the log read backwards a page at a time sees every record once, in order,
 * whatever the page size; its filters; a rare filter answers a short page
 * and a `next` rather than reading the whole log in one request; a
 * message's timeline outlives the runtime's memory of it, for its agents
 * only; ARCP sessions and jobs are each key's own, and all the operator's.
 */
import { NodeSocket } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { expect } from "vitest"
import { ArcpClient } from "../../src/index.js"
import { buildEnvelope } from "../../src/model/Envelopes.js"
import { serve } from "../console/harness.js"
import { request, start } from "./harness.js"
import { envelope, keys, keysFile } from "./wire.js"

describe("GET /log", () => {
  it.scoped("pages backwards through every record once, newest first, and filters", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined } })
      const get = (path: string, key: string = keys.operator) => request(`${url}${path}`, { key })
      yield* request(`${url}/agents`, { body: { agent_id: "a", name: "A" }, key: keys.a })
      yield* request(`${url}/agents`, { body: { agent_id: "b", name: "B" }, key: keys.b })
      const sent: Array<string> = []
      for (let i = 0; i < 12; i++) {
        sent.push((yield* request(`${url}/messages`, { body: { to: "b", envelope: envelope("a") }, key: keys.a })).body.message_id)
      }
      yield* request(`${url}/acks`, { body: { agent_id: "b", message_id: sent[3], stage: "FULFILLED" }, key: keys.b })
      const head = (yield* get("/log/head")).body.offset as number

      const seen: Array<number> = []
      let before: number | undefined = undefined
      do {
        const page: any = (yield* get(`/log?limit=5${before === undefined ? "" : `&before=${before}`}`)).body
        expect(page.head).toBe(head)
        seen.push(...page.records.map((record: any) => record.offset))
        before = page.next
      } while (before !== undefined)
      expect(seen).toEqual(Array.from({ length: head }, (_, i) => head - i))

      const accepted = (yield* get("/log?type=MessageAccepted")).body.records
      expect(accepted.map((record: any) => record.event.envelope.message_id)).toEqual([...sent].reverse())
      const both = (yield* get("/log?type=AgentRegistered,MessageAcked")).body.records
      expect(both.map((record: any) => record.event._tag)).toEqual(["MessageAcked", "AgentRegistered", "AgentRegistered"])
      expect((yield* get("/log?stage=FULFILLED")).body.records.map((record: any) => record.event.message_id)).toEqual([sent[3]])
      expect((yield* get(`/log?message_id=${sent[5]}`)).body.records.map((record: any) => record.event._tag)).toEqual(["MessageAccepted"])
      expect((yield* get("/log?agent_id=a&type=AgentRegistered")).body.records).toHaveLength(1)
      expect((yield* get(`/log?before=${head + 100}&limit=1`)).body.records[0].offset).toBe(head)
      expect((yield* get("/log?before=1")).body).toEqual({ records: [], head })
    }))

  it.scoped("reads at most 20,000 records for a page: a rare filter answers a short page and where to go on", () =>
    Effect.gen(function*() {
      const started = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined, mailboxCapacity: 30_000 } })
      yield* started.registry.register({ agent_id: "a", name: "A" })
      yield* started.registry.register({ agent_id: "b", name: "B" })
      for (let batch = 0; batch < 25; batch++) {
        yield* started.router.sendMany(Array.from({ length: 1000 }, (_, i) => ({
          to: "b",
          envelope: buildEnvelope({ producer_id: "a", payload: {} }, `bulk-${batch * 1000 + i}`, 0)
        })))
      }
      const get = (path: string) => request(`${started.url}${path}`, { key: keys.operator })
      const head = (yield* get("/log/head")).body.offset as number
      const first = (yield* get("/log?type=AgentRegistered")).body
      expect(first.records).toEqual([])
      expect(first.next).toBe(head - 20_000 + 1)
      const second = (yield* get(`/log?type=AgentRegistered&before=${first.next}`)).body
      expect(second.records.map((record: any) => record.event.agent.agent_id)).toEqual(["b", "a"])
      expect(second.next).toBeUndefined()
    }))
})

describe("GET /state/summary", () => {
  it.scoped("is the state /state?at=N folds to, forward a step at a time and back, with its messages a page at a time", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined } })
      const get = (path: string) => Effect.map(request(`${url}${path}`, { key: keys.operator }), (answer) => answer.body)
      yield* request(`${url}/agents`, { body: { agent_id: "a", name: "A" }, key: keys.a })
      yield* request(`${url}/agents`, { body: { agent_id: "b", name: "B" }, key: keys.b })
      const sent: Array<string> = []
      for (let i = 0; i < 7; i++) {
        sent.push((yield* request(`${url}/messages`, { body: { to: "b", envelope: envelope("a") }, key: keys.a })).body.message_id)
      }
      yield* request(`${url}/acks`, { body: { agent_id: "b", message_id: sent[2], stage: "FULFILLED" }, key: keys.b })
      yield* request(`${url}/agents/b/suspend`, { body: { reason: "r" }, key: keys.operator })
      const head = (yield* get("/log/head")).offset as number
      for (const at of [0, 3, 4, head - 1, head, 2, head]) {
        const summary = yield* get(`/state/summary?at=${at}&limit=1000`)
        const { state } = yield* get(`/state?at=${at}`)
        const stages: Record<string, number> = {}
        for (const message of Object.values<any>(state.messages)) stages[message.stage] = (stages[message.stage] ?? 0) + 1
        expect({ at, summary: summary.offset, agents: summary.agents.registered, stages: summary.messages.by_stage, suspended: summary.gateway.suspended, page: summary.page.map((m: any) => m.message_id).sort() })
          .toEqual({ at, summary: at, agents: Object.keys(state.agents).length, stages, suspended: Object.keys(state.gateway.suspended), page: Object.keys(state.messages).sort() })
      }
      const first = yield* get("/state/summary?limit=3")
      expect(first.page.map((m: any) => m.message_id)).toEqual(sent.slice(0, 3))
      const second = yield* get(`/state/summary?limit=3&after=${first.next}`)
      expect(second.page.map((m: any) => m.message_id)).toEqual(sent.slice(3, 6))
      expect((yield* get("/state/summary?stage=FULFILLED")).page.map((m: any) => m.message_id)).toEqual([sent[2]])
      expect((yield* get(`/state/summary?at=${head + 50}`)).offset).toBe(head)
    }))
})

describe("GET /messages/{id}/timeline", () => {
  it.scoped("tells a message's story after the runtime let it go, to its agents and the operator only", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined, retentionMs: 1_000, dedupWindowMs: 1_000 } })
      yield* request(`${url}/agents`, { body: { agent_id: "a", name: "A" }, key: keys.a })
      yield* request(`${url}/agents`, { body: { agent_id: "b", name: "B" }, key: keys.b })
      yield* request(`${url}/agents`, { body: { agent_id: "c", name: "C" }, key: keys.operator })
      const { message_id } = (yield* request(`${url}/messages`, { body: { to: "c", envelope: envelope("a") }, key: keys.a })).body
      yield* request(`${url}/acks`, { body: { agent_id: "c", message_id, stage: "FULFILLED" }, key: keys.operator })
      yield* TestClock.adjust("2 seconds")
      // Anything that turns the loop lets the finished message go.
      yield* request(`${url}/agents/a/keepalive`, { method: "POST", key: keys.a })
      expect((yield* request(`${url}/messages/${message_id}`, { key: keys.operator })).status).toBe(404)

      const story = yield* request(`${url}/messages/${message_id}/timeline`, { key: keys.a })
      expect(story.status).toBe(200)
      expect(story.body.status).toBeUndefined()
      expect(story.body.entries.map((entry: any) => entry.text)).toEqual([
        expect.stringContaining(`${message_id} DATA from a accepted for c`),
        `${message_id} FULFILLED by c`
      ])
      expect((yield* request(`${url}/messages/${message_id}/timeline`, { key: keys.operator })).status).toBe(200)
      expect((yield* request(`${url}/messages/${message_id}/timeline`, { key: keys.b })).status).toBe(403)
    }))
})

describe("GET /messages/{id}/timeline, on a clock set back", () => {
  it.scoped("still finds every record of a message accepted before the clock went back", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined } })
      yield* request(`${url}/agents`, { body: { agent_id: "a", name: "A" }, key: keys.a })
      yield* request(`${url}/agents`, { body: { agent_id: "b", name: "B" }, key: keys.b })
      yield* TestClock.setTime(50_000)
      const { message_id } = (yield* request(`${url}/messages`, { body: { to: "b", envelope: envelope("a") }, key: keys.a })).body
      // Records committed earlier than it by the clock, then later: halving by time lands past it.
      yield* TestClock.setTime(0)
      for (let i = 0; i < 20; i++) yield* request(`${url}/agents/a/keepalive`, { method: "POST", key: keys.a })
      yield* TestClock.setTime(200_000)
      for (let i = 0; i < 20; i++) yield* request(`${url}/agents/a/keepalive`, { method: "POST", key: keys.a })
      yield* request(`${url}/acks`, { body: { agent_id: "b", message_id, stage: "FULFILLED" }, key: keys.b })
      expect((yield* request(`${url}/log/head`, { key: keys.operator })).body.offset).toBeGreaterThan(40)
      const story = yield* request(`${url}/messages/${message_id}/timeline`, { key: keys.operator })
      expect(story.body.entries.map((entry: any) => entry.event._tag)).toEqual(["MessageAccepted", "MessageAcked"])
    }))
})

describe("GET /arcp/sessions and /arcp/jobs", () => {
  it("show a key its own sessions and jobs, and the operator all of them", async () => {
    const server = await serve({ keys: keysFile, directory: "/nonexistent", echoAgent: true })
    try {
      const submit = (token: string) =>
        Effect.scoped(Effect.gen(function*() {
          const session = yield* ArcpClient.connect({ url: `${server.url.replace("http", "ws")}/arcp`, token })
          const job = yield* session.submit({ agent: "echo", input: { from: token.slice(0, 5) } })
          yield* job.result
          return { session: session.session_id, job: job.job_id }
        })).pipe(Effect.provide(NodeSocket.layerWebSocketConstructor))
      const mine = await Effect.runPromise(submit(keys.a))
      const theirs = await Effect.runPromise(submit(keys.operator))
      const get = async (path: string, key: string) =>
        (await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${key}` } })).json() as Promise<any>

      expect((await get("/arcp/sessions", keys.a)).map((session: any) => session.session_id)).toEqual([mine.session])
      expect((await get("/arcp/sessions", keys.operator)).map((session: any) => session.session_id).sort()).toEqual([mine.session, theirs.session].sort())
      expect((await get("/arcp/jobs", keys.a)).jobs.map((job: any) => job.job_id)).toEqual([mine.job])
      const all = await get("/arcp/jobs", keys.operator)
      expect(all.jobs.map((job: any) => [job.job_id, job.agent, job.status])).toEqual([
        [mine.job, "echo", "success"],
        [theirs.job, "echo", "success"]
      ])
      const page = await get("/arcp/jobs?limit=1", keys.operator)
      expect(page.jobs.map((job: any) => job.job_id)).toEqual([mine.job])
      expect((await get(`/arcp/jobs?limit=1&after=${page.next}`, keys.operator)).jobs.map((job: any) => job.job_id)).toEqual([theirs.job])
      expect((await get(`/arcp/jobs?session_id=${theirs.session}`, keys.operator)).jobs).toHaveLength(1)
    } finally {
      await server.close()
    }
  })
})
