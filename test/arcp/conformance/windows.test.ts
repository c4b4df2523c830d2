/**
 * The rules that need short windows, on the fixture server
 * (fixtures/scriptServer.js: serve's composition plus the script agent)
 * started with a 3 s resume window and a 1 s heartbeat interval, which
 * `serve` does not expose:
 *
 * - the welcome says the configured window and interval;
 * - a session detached for longer than its window is RESUME_WINDOW_EXPIRED;
 * - a client silent for two intervals is HEARTBEAT_LOST, and the runtime does
 *   not end its running job: a resume within the window gets all of it.
 *
 * The waits beyond a window are preconditions, not assertions: each is
 * several windows long.
 */
import { describe, expect } from "vitest"
import { Conn, echo, gapFree, hello, isTerminal, openSession, sleep, submit, tryHello, useServer } from "./harness.js"
import { script, scriptTests } from "./script.js"

const windowSec = 3
const intervalSec = 1

const server = useServer({ fixture: true, fixtureArgs: ["--resume-window-sec", String(windowSec), "--heartbeat-sec", String(intervalSec)] })
const itFixture = scriptTests(server)

describe("resume window", () => {
  itFixture("the welcome says the configured resume window", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.alice })
    expect(welcome.payload.resume_window_sec).toBe(windowSec)
  })

  itFixture("within the window a dropped session resumes; past it, RESUME_WINDOW_EXPIRED with a session_id", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const within = await Conn.open(server().wsUrl)
    const resumed = await hello(within, {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: first.resumeToken, last_event_seq: job.terminal.event_seq }
    })
    within.drop()
    await sleep(windowSec * 3 * 1000)
    const { answer } = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: resumed.payload.resume_token, last_event_seq: job.terminal.event_seq }
    })
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("RESUME_WINDOW_EXPIRED")
    expect(answer.payload.retryable).toBe(false)
    expect(answer.session_id).toMatch(/^sess_/)
  }, 60_000)

  itFixture("a session whose transport is still open never expires", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    await sleep(windowSec * 2 * 1000)
    const job = await echo(conn, "still here")
    expect(job.terminal.type).toBe("job.result")
  }, 60_000)
})

describe("heartbeat loss", () => {
  itFixture("the welcome says the configured interval when heartbeat is negotiated", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.alice, features: ["heartbeat", "list_jobs"] })
    expect(welcome.payload.heartbeat_interval_sec).toBe(intervalSec)
  })

  itFixture("a silent client is HEARTBEAT_LOST; its running job still ends with its result, all of it replayed on resume", async () => {
    const conn = await Conn.open(server().wsUrl)
    conn.autoPong = false
    const welcome = await hello(conn, { token: server().keys.alice, features: ["heartbeat", "list_jobs"] })
    const steps = Array.from({ length: 30 }, (_, i) => [{ emit: { kind: "progress", body: { current: i } } }, { sleep_ms: 200 }]).flat()
    const submitted = await submit(conn, script([...steps, { return: "survived" }]))
    expect(submitted.answer.type).toBe("job.accepted")
    const lost = await conn.find((f) => f.type === "session.error", "HEARTBEAT_LOST", 20_000)
    expect(lost.payload.code).toBe("HEARTBEAT_LOST")
    await conn.waitClosed()
    const seen = conn.seqFrames()
    const again = await Conn.open(server().wsUrl)
    await hello(again, {
      token: server().keys.alice,
      features: ["heartbeat", "list_jobs"],
      resume: { session_id: welcome.session_id, resume_token: welcome.payload.resume_token, last_event_seq: seen.length === 0 ? 0 : seen[seen.length - 1]!.event_seq }
    })
    const end = await again.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the job's end after the loss", 40_000)
    expect(end.type).toBe("job.result")
    expect(end.payload.result).toBe("survived")
    const all = [...seen, ...again.seqFrames()]
    expect(gapFree(all.map((f) => f.event_seq))).toBe(true)
    expect(all.filter((f) => f.payload?.kind === "progress").map((f) => f.payload.body.current)).toEqual([...Array(30).keys()])
  }, 90_000)

  itFixture("a client that answers pings stays connected across many intervals", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice, features: ["heartbeat", "list_jobs"] })
    await conn.until(() => conn.count("session.ping") >= 4, "four pings", 20_000)
    expect(conn.isOpen).toBe(true)
    expect(conn.frames.filter((f) => f.type === "session.error")).toEqual([])
  }, 60_000)
})
