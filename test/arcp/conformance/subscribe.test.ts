/**
 * §3 `job.subscribe` → `job.subscribed` and `job.unsubscribe`: history from
 * an event_seq (the job's numbering in its own session, as `list_jobs`'
 * `last_event_seq` gives it), replayed into the subscriber's own gap-free
 * numbering; JOB_NOT_FOUND for an unknown job; another principal cannot
 * subscribe. Live subscription to a running job is in running.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest"
import { type Conn, echo, errorsOf, type Frame, gapFree, openSession, useServer } from "./harness.js"

const server = useServer()

const subscribe = async (conn: Conn, payload: Frame) => {
  const start = conn.frames.length
  conn.send({ type: "job.subscribe", payload })
  return conn.find(
    (f) => conn.frames.indexOf(f) >= start && (f.type === "job.subscribed" || f.type === "session.error" || f.type === "job.error"),
    "the answer to job.subscribe"
  )
}

describe("job.subscribe", () => {
  let job: Awaited<ReturnType<typeof echo>>

  beforeAll(async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    job = await echo(conn, { subscribe: "me" })
  }, 60_000)

  it("history from 0 on a finished job: job.subscribed says so, then its events and result are replayed", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const answer = await subscribe(conn, { job_id: job.jobId, from_event_seq: 0, history: true })
    expect(answer.type, JSON.stringify(answer.payload)).toBe("job.subscribed")
    expect(answer.payload.job_id).toBe(job.jobId)
    expect(answer.payload.current_status).toBe("success")
    expect(answer.payload.agent).toBe("echo@1.0.0")
    expect(typeof answer.payload.lease).toBe("object")
    expect(Number.isInteger(answer.payload.subscribed_from)).toBe(true)
    expect(answer.payload.replayed).toBe(true)
    await conn.until(() => conn.frames.some((f) => f.type === "job.result" && f.job_id === job.jobId), "the replayed result")
    const replayed = conn.seqFrames().filter((f) => f.job_id === job.jobId)
    expect(replayed.map((f) => [f.type, f.payload])).toEqual(job.frames.map((f) => [f.type, f.payload]))
    expect(conn.violations).toEqual([])
  })

  it("replayed frames take the subscriber session's own gap-free numbering", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    await echo(conn, "own first")
    await subscribe(conn, { job_id: job.jobId, from_event_seq: 0, history: true })
    await conn.until(() => conn.frames.some((f) => f.type === "job.result" && f.job_id === job.jobId), "the replayed result")
    await echo(conn, "own after")
    expect(gapFree(conn.seqFrames().map((f) => f.event_seq))).toBe(true)
  })

  it("from_event_seq replays only what came after it in the job's numbering", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const from = job.frames[0]!.event_seq
    await subscribe(conn, { job_id: job.jobId, from_event_seq: from, history: true })
    await conn.until(() => conn.frames.some((f) => f.type === "job.result" && f.job_id === job.jobId), "the replayed result")
    const replayed = conn.seqFrames().filter((f) => f.job_id === job.jobId)
    expect(replayed.map((f) => f.payload)).toEqual(job.frames.slice(1).map((f) => f.payload))
  })

  it("history false on a finished job: subscribed, replayed false, and no events", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const answer = await subscribe(conn, { job_id: job.jobId, history: false })
    expect(answer.type).toBe("job.subscribed")
    expect(answer.payload.replayed).toBe(false)
    await conn.barrier()
    expect(conn.seqFrames().filter((f) => f.type === "job.event")).toEqual([])
  })

  it("history defaults to false", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const answer = await subscribe(conn, { job_id: job.jobId })
    expect(answer.type).toBe("job.subscribed")
    expect(answer.payload.replayed).toBe(false)
    await conn.barrier()
    expect(conn.seqFrames().filter((f) => f.type === "job.event")).toEqual([])
  })

  it("the submitting session may subscribe to its own job again", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const own = await echo(conn, "own")
    const answer = await subscribe(conn, { job_id: own.jobId, from_event_seq: 0, history: true })
    expect(answer.type).toBe("job.subscribed")
  })

  it("an unknown job is JOB_NOT_FOUND", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const answer = await subscribe(conn, { job_id: "job_01ARZ3NDEKTSV4RRFFQ69G5FAV", history: true })
    expect(answer.type).not.toBe("job.subscribed")
    expect(answer.payload.code).toBe("JOB_NOT_FOUND")
    expect(answer.payload.retryable).toBe(false)
  })

  it("another principal cannot subscribe (PERMISSION_DENIED, or JOB_NOT_FOUND so as not to leak it) and gets no event", async () => {
    const { conn } = await openSession(server(), { token: server().keys.bob })
    const answer = await subscribe(conn, { job_id: job.jobId, from_event_seq: 0, history: true })
    expect(answer.type).not.toBe("job.subscribed")
    expect(["PERMISSION_DENIED", "JOB_NOT_FOUND"]).toContain(answer.payload.code)
    await conn.barrier()
    expect(conn.seqFrames()).toEqual([])
  })

  it.each([
    ["no job_id", {}],
    ["job_id not a string", { job_id: 5 }],
    ["from_event_seq negative", { from_event_seq: -1, history: true }],
    ["history not a boolean", { history: "yes" }]
  ])("%s is INVALID_REQUEST", async (_name, payload) => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const answer = await subscribe(conn, { job_id: job.jobId, ...payload, ...(_name === "no job_id" ? { job_id: undefined } : {}) })
    expect(answer.type).not.toBe("job.subscribed")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
  })
})

describe("job.unsubscribe", () => {
  it("unsubscribing from a subscribed job is accepted silently", async () => {
    const a = await openSession(server(), { token: server().keys.alice })
    const job = await echo(a.conn, 1)
    const { conn } = await openSession(server(), { token: server().keys.alice })
    await subscribe(conn, { job_id: job.jobId })
    const start = conn.frames.length
    conn.send({ type: "job.unsubscribe", payload: { job_id: job.jobId } })
    await conn.barrier()
    expect(errorsOf(conn.frames.slice(start))).toEqual([])
  })

  it("unsubscribe without job_id is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const frames = await conn.exchange(() => conn.send({ type: "job.unsubscribe", payload: {} }), { error: true })
    expect(errorsOf(frames)[0]?.payload.code).toBe("INVALID_REQUEST")
  })

  it("unsubscribing from a job never subscribed is a typed error or nothing, and the session goes on", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const start = conn.frames.length
    conn.send({ type: "job.unsubscribe", payload: { job_id: "job_01ARZ3NDEKTSV4RRFFQ69G5FAV" } })
    await conn.barrier()
    for (const error of errorsOf(conn.frames.slice(start))) expect(["JOB_NOT_FOUND", "INVALID_REQUEST"]).toContain(error.payload.code)
    await echo(conn, "still working")
  })
})
