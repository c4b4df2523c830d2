/**
 * §3 `job.cancel` → `job.cancelled`, then `job.error { final_status:
 * "cancelled", code: CANCELLED }` once the job has stopped; only the
 * submitting session's principal may cancel (a subscriber may not, draft
 * §7.6); an unknown job is JOB_NOT_FOUND; a finished job is never ended
 * twice. `max_runtime_sec` → `job.error { final_status: "timed_out", code:
 * TIMEOUT, retryable: true }`.
 */
import { describe, expect, it } from "vitest"
import { Conn, echo, errorsOf, type Frame, hello, isTerminal, openSession, submit, useServer } from "./harness.js"
import { script, scriptTests } from "./script.js"

const server = useServer({ fixture: true })
const itScript = scriptTests(server)

/** Sends a job.cancel for `jobId` and returns what the runtime answered before a barrier. */
const cancel = (conn: Conn, jobId: string | undefined, payload: Frame = {}, error = true) =>
  conn.exchange(() => conn.send({ type: "job.cancel", job_id: jobId, payload }), { error })

const running = async (conn: Conn) => {
  const submitted = await submit(conn, script([{ emit: { kind: "log", body: { level: "info", message: "started" } } }, { until_cancelled: true }]))
  expect(submitted.answer.type).toBe("job.accepted")
  await conn.find((f) => f.type === "job.event" && f.job_id === submitted.jobId, "the running job's first event")
  return submitted.jobId!
}

describe("job.cancel without a running job", () => {
  it("an unknown job is JOB_NOT_FOUND", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const frames = await cancel(conn, "job_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    const errors = errorsOf(frames)
    expect(errors[0]?.payload.code, JSON.stringify(frames)).toBe("JOB_NOT_FOUND")
    expect(frames.some((f) => f.type === "job.cancelled")).toBe(false)
  })

  it("a cancel without job_id is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const frames = await cancel(conn, undefined)
    expect(errorsOf(frames)[0]?.payload.code).toBe("INVALID_REQUEST")
  })

  it("another principal's job: JOB_NOT_FOUND or PERMISSION_DENIED, and the job is untouched", async () => {
    const alice = await openSession(server(), { token: server().keys.alice })
    const job = await echo(alice.conn, 1)
    const bob = await openSession(server(), { token: server().keys.bob })
    const frames = await cancel(bob.conn, job.jobId)
    expect(["JOB_NOT_FOUND", "PERMISSION_DENIED"]).toContain(errorsOf(frames)[0]?.payload.code)
    expect(frames.some((f) => f.type === "job.cancelled")).toBe(false)
  })

  it("a finished job is not ended a second time: no job.cancelled, no second job.error", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const job = await echo(conn, 1)
    const frames = await cancel(conn, job.jobId, { reason: "too late" }, false)
    expect(frames.some((f) => f.type === "job.cancelled")).toBe(false)
    expect(frames.filter((f) => f.job_id === job.jobId && isTerminal(f))).toEqual([])
    for (const error of errorsOf(frames)) expect(error.type).toBe("session.error")
  })
})

describe("job.cancel of a running job", () => {
  itScript("job.cancelled, then job.error cancelled/CANCELLED not retryable, and nothing of the job after it", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const jobId = await running(conn)
    conn.send({ type: "job.cancel", job_id: jobId, payload: { reason: "changed my mind" } })
    const cancelled = await conn.find((f) => f.type === "job.cancelled", "job.cancelled")
    expect(cancelled.job_id ?? cancelled.payload.job_id).toBe(jobId)
    const end = await conn.find((f) => f.job_id === jobId && isTerminal(f), "the cancelled job's end", 40_000)
    expect(end.type).toBe("job.error")
    expect(end.payload.final_status).toBe("cancelled")
    expect(end.payload.code).toBe("CANCELLED")
    expect(end.payload.retryable).toBe(false)
    expect(conn.frames.indexOf(cancelled)).toBeLessThan(conn.frames.indexOf(end))
    await conn.barrier()
    const after = conn.frames.slice(conn.frames.indexOf(end) + 1).filter((f) => f.job_id === jobId)
    expect(after).toEqual([])
    expect(conn.violations).toEqual([])
  }, 60_000)

  itScript("the cancelled job is listed as cancelled", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const jobId = await running(conn)
    conn.send({ type: "job.cancel", job_id: jobId, payload: {} })
    await conn.find((f) => f.job_id === jobId && isTerminal(f), "the end", 40_000)
    const request = conn.send({ type: "session.list_jobs", payload: {} })
    const listed = await conn.find((f) => f.type === "session.jobs" && f.payload.request_id === request.id, "session.jobs")
    expect((listed.payload.jobs as Array<any>).find((j) => j.job_id === jobId)?.status).toBe("cancelled")
  }, 60_000)

  itScript("a second cancel of the same job ends it only once", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const jobId = await running(conn)
    conn.send({ type: "job.cancel", job_id: jobId, payload: {} })
    conn.send({ type: "job.cancel", job_id: jobId, payload: {} })
    await conn.find((f) => f.job_id === jobId && isTerminal(f), "the end", 40_000)
    await conn.barrier()
    expect(conn.frames.filter((f) => f.job_id === jobId && isTerminal(f))).toHaveLength(1)
  }, 60_000)

  itScript("a subscriber in another session of the same principal may watch but not cancel (PERMISSION_DENIED)", async () => {
    const owner = await openSession(server(), { token: server().keys.alice })
    const jobId = await running(owner.conn)
    const watcher = await openSession(server(), { token: server().keys.alice })
    watcher.conn.send({ type: "job.subscribe", payload: { job_id: jobId } })
    await watcher.conn.find((f) => f.type === "job.subscribed", "job.subscribed")
    const frames = await cancel(watcher.conn, jobId)
    expect(errorsOf(frames)[0]?.payload.code).toBe("PERMISSION_DENIED")
    expect(frames.some((f) => f.type === "job.cancelled")).toBe(false)
    // Still running: the owner can cancel it.
    owner.conn.send({ type: "job.cancel", job_id: jobId, payload: {} })
    const end = await owner.conn.find((f) => f.job_id === jobId && isTerminal(f), "the end", 40_000)
    expect(end.payload.code).toBe("CANCELLED")
  }, 60_000)

  itScript("the submitting session, resumed on a new connection, keeps its cancel authority", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const jobId = await running(first.conn)
    const seen = first.conn.seqFrames()
    first.conn.drop()
    const conn = await Conn.open(server().wsUrl)
    await hello(conn, {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: first.resumeToken, last_event_seq: seen[seen.length - 1]!.event_seq }
    })
    conn.send({ type: "job.cancel", job_id: jobId, payload: {} })
    const end = await conn.find((f) => f.job_id === jobId && isTerminal(f), "the end", 40_000)
    expect(end.payload.code).toBe("CANCELLED")
  }, 60_000)
})

describe("max_runtime_sec", () => {
  itScript("a job that outlives max_runtime_sec ends with job.error timed_out/TIMEOUT, retryable", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, script([{ until_cancelled: true }], { max_runtime_sec: 1 }))
    expect(submitted.answer.type).toBe("job.accepted")
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the timeout", 40_000)
    expect(end.type).toBe("job.error")
    expect(end.payload.final_status).toBe("timed_out")
    expect(end.payload.code).toBe("TIMEOUT")
    expect(end.payload.retryable).toBe(true)
  }, 60_000)
})
