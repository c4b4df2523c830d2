/**
 * What the reference runtime loses and Switchboard must not (§3 "Where the
 * reference runtime falls short"): a resume while the job still runs
 * replays the events it emitted while the client was away and then
 * continues live; the same after a SIGKILL of the server mid-job and a
 * restart on the same store (the job then ends, by running again or with a
 * typed error: nothing hangs); a live subscription from another session;
 * heartbeat loss never ends a job.
 *
 * All need a job that runs until told to stop: the script agent
 * (script.ts).
 */
import { describe, expect } from "vitest"
import { Conn, type Frame, gapFree, hello, isTerminal, kill9, openSession, restart, submit, useServer } from "./harness.js"
import { script, scriptTests } from "./script.js"

const server = useServer({ fixture: true })
const itScript = scriptTests(server)

const tick = (n: number) => ({ emit: { kind: "progress", body: { current: n, total: 1_000 } } })

/** A job that emits a progress every 50 ms for `ticks` ticks, then returns "done". */
const ticking = (ticks: number) => script([...Array.from({ length: ticks }, (_, i) => [tick(i), { sleep_ms: 50 }]).flat(), { return: "done" }])

const resume = async (token: string, session: { sessionId: string; resumeToken: string }, last_event_seq: number) => {
  const conn = await Conn.open(server().wsUrl)
  const welcome = await hello(conn, { token, resume: { session_id: session.sessionId, resume_token: session.resumeToken, last_event_seq } })
  return { conn, welcome }
}

const lastSeq = (frames: ReadonlyArray<Frame>) => (frames.length === 0 ? 0 : frames[frames.length - 1]!.event_seq)

describe("resume while the job runs", () => {
  itScript("events emitted while away are replayed, then the stream continues live to the result, gap-free", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(first.conn, ticking(60))
    await first.conn.find((f) => f.type === "job.event" && f.job_id === submitted.jobId, "a first event")
    first.conn.drop()
    const seen = first.conn.seqFrames()
    const { conn } = await resume(server().keys.alice, first, lastSeq(seen))
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the job's end after the resume", 60_000)
    expect(end.type).toBe("job.result")
    expect(end.payload.result).toBe("done")
    const all = [...seen, ...conn.seqFrames()]
    expect(gapFree(all.map((f) => f.event_seq))).toBe(true)
    // Every tick, once, in order.
    const ticks = all.filter((f) => f.payload?.kind === "progress").map((f) => f.payload.body.current)
    expect(ticks).toEqual([...Array(60).keys()])
  }, 90_000)

  itScript("a client away for the job's whole run gets all of it on resume", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(first.conn, ticking(10))
    first.conn.drop()
    const seen = first.conn.seqFrames()
    // Resumes once the job has ended, as list_jobs from another session says.
    const watcher = await openSession(server(), { token: server().keys.alice })
    const guard = Date.now() + 60_000
    while (true) {
      const request = watcher.conn.send({ type: "session.list_jobs", payload: {} })
      const listed = await watcher.conn.find((f) => f.type === "session.jobs" && f.payload.request_id === request.id, "session.jobs")
      if ((listed.payload.jobs as Array<any>).find((j) => j.job_id === submitted.jobId)?.status === "success") break
      if (Date.now() > guard) throw new Error("the job did not end within 60 s")
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const { conn } = await resume(server().keys.alice, first, lastSeq(seen))
    await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the replayed end")
    const ticks = [...seen, ...conn.seqFrames()].filter((f) => f.payload?.kind === "progress").map((f) => f.payload.body.current)
    expect(ticks).toEqual([...Array(10).keys()])
  }, 90_000)
})

describe("SIGKILL mid-job", () => {
  itScript("a job running when the server is killed ends after the restart, and the resumed session sees its end gap-free", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(first.conn, ticking(400))
    await first.conn.find((f) => f.type === "job.event" && f.job_id === submitted.jobId, "a first event")
    await kill9(server())
    const seen = first.conn.seqFrames()
    await restart(server())
    const { conn } = await resume(server().keys.alice, first, lastSeq(seen))
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the job's end after the restart", 90_000)
    if (end.type === "job.error") expect(["INTERNAL_ERROR", "CANCELLED", "TIMEOUT"]).toContain(end.payload.code)
    expect(gapFree([...seen, ...conn.seqFrames()].map((f) => f.event_seq))).toBe(true)
    expect(conn.violations).toEqual([])
  }, 240_000)
})

describe("live subscription", () => {
  itScript("another session of the principal subscribes mid-job with history and sees every event once, then the result", async () => {
    const owner = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(owner.conn, ticking(40))
    await owner.conn.find((f) => f.type === "job.event" && f.job_id === submitted.jobId, "a first event")
    const watcher = await openSession(server(), { token: server().keys.alice })
    watcher.conn.send({ type: "job.subscribe", payload: { job_id: submitted.jobId, from_event_seq: 0, history: true } })
    const subscribed = await watcher.conn.find((f) => f.type === "job.subscribed", "job.subscribed")
    expect(["running", "pending"]).toContain(subscribed.payload.current_status)
    const end = await watcher.conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the result, live", 60_000)
    expect(end.payload.result).toBe("done")
    const ticks = watcher.conn.seqFrames().filter((f) => f.payload?.kind === "progress").map((f) => f.payload.body.current)
    expect(ticks).toEqual([...Array(40).keys()])
    expect(gapFree(watcher.conn.seqFrames().map((f) => f.event_seq))).toBe(true)
  }, 90_000)

  itScript("without history a live subscriber sees only what comes after job.subscribed", async () => {
    const owner = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(owner.conn, ticking(40))
    await owner.conn.find((f) => f.type === "job.event" && f.job_id === submitted.jobId && f.payload.body.current >= 2, "a third event")
    const watcher = await openSession(server(), { token: server().keys.alice })
    watcher.conn.send({ type: "job.subscribe", payload: { job_id: submitted.jobId } })
    const subscribed = await watcher.conn.find((f) => f.type === "job.subscribed", "job.subscribed")
    expect(subscribed.payload.replayed).toBe(false)
    await watcher.conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the result, live", 60_000)
    const ticks = watcher.conn.seqFrames().filter((f) => f.payload?.kind === "progress").map((f) => f.payload.body.current)
    expect(ticks[0]).toBeGreaterThan(0)
    expect(ticks).toEqual(Array.from({ length: ticks.length }, (_, i) => ticks[0] + i))
  }, 90_000)

  itScript("after job.unsubscribe no more of the job's events arrive", async () => {
    const owner = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(owner.conn, ticking(60))
    const watcher = await openSession(server(), { token: server().keys.alice })
    watcher.conn.send({ type: "job.subscribe", payload: { job_id: submitted.jobId } })
    await watcher.conn.find((f) => f.type === "job.subscribed", "job.subscribed")
    await watcher.conn.find((f) => f.type === "job.event" && f.job_id === submitted.jobId, "a live event")
    watcher.conn.send({ type: "job.unsubscribe", payload: { job_id: submitted.jobId } })
    await watcher.conn.barrier()
    await owner.conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the owner's result", 60_000)
    await watcher.conn.barrier()
    // The job ran on for about 3 s after the unsubscribe: its later ticks and its end never reached the watcher.
    expect(watcher.conn.frames.some((f) => f.job_id === submitted.jobId && isTerminal(f))).toBe(false)
    const ticks = watcher.conn.seqFrames().filter((f) => f.job_id === submitted.jobId && f.payload?.kind === "progress")
    expect(ticks.length).toBeLessThan(60)
    expect(ticks.map((f) => f.payload.body.current)).not.toContain(59)
  }, 90_000)
})

describe("the job outlives its client", () => {
  itScript("a dropped connection does not stop the job: it ends with its result", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(first.conn, ticking(20))
    first.conn.drop()
    const { conn } = await resume(server().keys.alice, first, 0)
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end", 60_000)
    expect(end.type).toBe("job.result")
  }, 90_000)

  itScript("session.bye does not stop the job: a resume gets its result", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(first.conn, ticking(10))
    first.conn.send({ type: "session.bye", payload: { reason: "going away" } })
    await first.conn.waitClosed().catch(() => first.conn.drop())
    const seen = first.conn.seqFrames()
    const { conn } = await resume(server().keys.alice, first, lastSeq(seen))
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end", 60_000)
    expect(end.type).toBe("job.result")
    expect(end.payload.result).toBe("done")
  }, 90_000)

  itScript("list_jobs shows a running job as running, with its trace_id, and its last_event_seq growing", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, ticking(40))
    await conn.find((f) => f.type === "job.event" && f.job_id === submitted.jobId, "a first event")
    const request = conn.send({ type: "session.list_jobs", payload: { filter: { status: ["running"] } } })
    const listed = await conn.find((f) => f.type === "session.jobs" && f.payload.request_id === request.id, "session.jobs")
    const job = (listed.payload.jobs as Array<any>).find((j) => j.job_id === submitted.jobId)
    expect(job?.status).toBe("running")
    expect(job?.trace_id).toBe(submitted.trace_id)
    expect(job?.last_event_seq).toBeGreaterThanOrEqual(1)
    await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end", 60_000)
  }, 90_000)

  // Heartbeat loss during a running job: windows.test.ts (a fixture server with a short interval).
})
