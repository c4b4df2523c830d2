/**
 * §3 resume: `session.hello` with `resume { session_id, resume_token,
 * last_event_seq }` replays every later event, gap-free, then continues;
 * the token rotates; the newest seq is a valid point that replays nothing; a
 * stale token or another principal is UNAUTHENTICATED; `session.resume` (the
 * spec's prose) is accepted too. And what the reference runtime cannot do:
 * a resume after a SIGKILL of the server and a restart on the same store,
 * and of events emitted while the client was away.
 */
import { describe, expect, it } from "vitest"
import {
  Conn,
  echo,
  type Frame,
  hello,
  kill9,
  openSession,
  restart,
  RESUME_TOKEN,
  type Server,
  SESSION_ID,
  tryHello,
  useServer
} from "./harness.js"

const server = useServer()

/** The fields a replayed frame must share with the original. */
const same = (f: Frame) => ({ type: f.type, job_id: f.job_id, event_seq: f.event_seq, payload: f.payload })

/** Resumes `sessionId` on a new connection after `last_event_seq`; returns the welcome and the connection. */
const resume = async (srv: Server, token: string, sessionId: string, resumeToken: string, last_event_seq: number) => {
  const conn = await Conn.open(srv.wsUrl)
  const welcome = await hello(conn, { token, resume: { session_id: sessionId, resume_token: resumeToken, last_event_seq } })
  return { conn, welcome }
}

describe("resume after the job finished", () => {
  it("replays every event after last_event_seq, identical and gap-free, under the same session id", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, { replay: "me" })
    const frames = job.frames
    expect(frames.length).toBeGreaterThanOrEqual(3)
    first.conn.drop()
    const from = frames[0]!.event_seq
    const { conn, welcome } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, from)
    expect(welcome.session_id).toBe(first.sessionId)
    await conn.until(() => conn.seqFrames().length >= frames.length - 1, "the replay")
    await conn.barrier()
    expect(conn.seqFrames().map(same)).toEqual(frames.slice(1).map(same))
    expect(conn.violations).toEqual([])
  })

  it("the token rotates on every welcome, and the old one no longer resumes (UNAUTHENTICATED)", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const last = job.terminal.event_seq
    const second = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, last)
    const rotated = second.welcome.payload.resume_token
    expect(rotated).toMatch(RESUME_TOKEN)
    expect(rotated).not.toBe(first.resumeToken)
    second.conn.drop()
    const stale = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: first.resumeToken, last_event_seq: last }
    })
    expect(stale.answer.type).toBe("session.error")
    expect(stale.answer.payload.code).toBe("UNAUTHENTICATED")
    expect(stale.answer.session_id).toMatch(SESSION_ID)
    const third = await resume(server(), server().keys.alice, first.sessionId, rotated, last)
    expect(third.welcome.session_id).toBe(first.sessionId)
  })

  it("a resume whose last_event_seq is the newest event is valid and replays nothing", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const { conn, welcome } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, job.terminal.event_seq)
    expect(welcome.type).toBe("session.welcome")
    await conn.barrier()
    expect(conn.seqFrames()).toEqual([])
  })

  it("after a resume, new jobs continue the session's event_seq without a gap", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const { conn } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, job.terminal.event_seq)
    const next = await echo(conn, 2)
    expect(next.frames[0]!.event_seq).toBe(job.terminal.event_seq + 1)
  })

  it("last_event_seq 0 replays the whole session", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    await echo(first.conn, 1)
    await echo(first.conn, 2)
    const all = first.conn.seqFrames()
    first.conn.drop()
    const { conn } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, 0)
    await conn.until(() => conn.seqFrames().length >= all.length, "the whole replay")
    expect(conn.seqFrames().map(same)).toEqual(all.map(same))
  })

  it("a resume after a graceful session.bye works: jobs and the session outlive the transport", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.send({ type: "session.bye", payload: { reason: "done for now" } })
    await first.conn.waitClosed().catch(() => first.conn.close())
    const { welcome } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, job.terminal.event_seq)
    expect(welcome.session_id).toBe(first.sessionId)
  })

  it("session.close (the spec's prose) is accepted like session.bye", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.send({ type: "session.close", payload: {} })
    const closed = await first.conn.waitClosed().then(() => true, () => false)
    expect(closed || first.conn.frames.some((f) => f.type === "session.bye" || f.type === "session.closed")).toBe(true)
    expect(first.conn.frames.some((f) => f.type === "session.error")).toBe(false)
    const { welcome } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, job.terminal.event_seq)
    expect(welcome.session_id).toBe(first.sessionId)
  })

  it("session.resume (the spec's prose) resumes like a hello with resume", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const conn = await Conn.open(server().wsUrl)
    conn.send({
      type: "session.resume",
      session_id: first.sessionId,
      payload: {
        client: { name: "arcp-conformance", version: "0.0.1" },
        auth: { scheme: "bearer", token: server().keys.alice },
        session_id: first.sessionId,
        resume_token: first.resumeToken,
        last_event_seq: job.frames[0]!.event_seq
      }
    })
    const welcome = await conn.next((f) => f.type === "session.welcome" || f.type === "session.error", "the answer to session.resume")
    expect(welcome.type, JSON.stringify(welcome.payload)).toBe("session.welcome")
    expect(welcome.session_id).toBe(first.sessionId)
    conn.sessionId = welcome.session_id
    await conn.until(() => conn.seqFrames().length >= job.frames.length - 1, "the replay")
  })
})

describe("refused resumes", () => {
  it("another principal with the right token is UNAUTHENTICATED", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const { conn, answer } = await tryHello(server(), {
      token: server().keys.bob,
      resume: { session_id: first.sessionId, resume_token: first.resumeToken, last_event_seq: job.terminal.event_seq }
    })
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("UNAUTHENTICATED")
    expect(answer.session_id).toMatch(SESSION_ID)
    await conn.waitClosed()
    // The refusal did not burn the token: its owner still resumes.
    const { welcome } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, job.terminal.event_seq)
    expect(welcome.session_id).toBe(first.sessionId)
  })

  it("a wrong token is UNAUTHENTICATED and replays nothing", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    await echo(first.conn, 1)
    first.conn.drop()
    const { conn, answer } = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: "rt_" + "f".repeat(64), last_event_seq: 0 }
    })
    expect(answer.payload.code).toBe("UNAUTHENTICATED")
    expect(conn.seqFrames()).toEqual([])
  })

  it("an unknown session is refused (RESUME_WINDOW_EXPIRED) with a session_id", async () => {
    const { answer } = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: "sess_01ARZ3NDEKTSV4RRFFQ69G5FAV", resume_token: "rt_" + "a".repeat(64), last_event_seq: 0 }
    })
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("RESUME_WINDOW_EXPIRED")
    expect(answer.session_id).toMatch(SESSION_ID)
  })

  it("a last_event_seq past the session's newest event is INVALID_REQUEST", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const { answer } = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: first.resumeToken, last_event_seq: job.terminal.event_seq + 100 }
    })
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
  })

  it.each([
    ["a negative last_event_seq", -1],
    ["a fractional last_event_seq", 1.5],
    ["a string last_event_seq", "3"]
  ])("%s is INVALID_REQUEST", async (_name, last_event_seq) => {
    const first = await openSession(server(), { token: server().keys.alice })
    first.conn.drop()
    const { answer } = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: first.resumeToken, last_event_seq: last_event_seq as number }
    })
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
  })

  // After the resume window: windows.test.ts (a fixture server with a short window).
})

describe("events emitted while the client is away", () => {
  it("jobs accepted just before a dropped connection: every one of their events is replayed, gap-free", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const count = 20
    for (let i = 0; i < count; i++) first.conn.send({ type: "job.submit", payload: { agent: "echo", input: i } })
    await first.conn.until(() => first.conn.frames.filter((f) => f.type === "job.accepted").length === count, "every job.accepted")
    first.conn.drop()
    const seen = first.conn.seqFrames()
    const last = seen.length === 0 ? 0 : seen[seen.length - 1]!.event_seq
    const { conn } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, last)
    await conn.until(
      () => seen.filter((f) => f.type === "job.result").length + conn.frames.filter((f) => f.type === "job.result").length >= count,
      "every job's result, before the drop or replayed",
      30_000
    )
    const seqs = [...seen, ...conn.seqFrames()].map((f) => f.event_seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1)
  })
})

describe("resume across a server SIGKILL and restart on the same store", () => {
  it("a session whose jobs finished resumes after the restart: replay, rotation, and numbering continue", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    await echo(first.conn, { before: "kill" })
    const job = await echo(first.conn, { before: "kill", n: 2 })
    const frames = first.conn.seqFrames()
    await kill9(server())
    await restart(server())
    const from = frames[1]!.event_seq
    const { conn, welcome } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, from)
    expect(welcome.session_id).toBe(first.sessionId)
    expect(welcome.payload.resume_token).not.toBe(first.resumeToken)
    await conn.until(() => conn.seqFrames().length >= frames.length - 2, "the replay after the restart")
    await conn.barrier()
    expect(conn.seqFrames().map(same)).toEqual(frames.slice(2).map(same))
    const next = await echo(conn, "after")
    expect(next.frames[0]!.event_seq).toBe(job.terminal.event_seq + 1)
  }, 180_000)

  it("jobs accepted right before the SIGKILL all end after the restart (result or typed error), replayed gap-free", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const count = 30
    for (let i = 0; i < count; i++) first.conn.send({ type: "job.submit", payload: { agent: "echo", input: i } })
    await first.conn.until(() => first.conn.frames.filter((f) => f.type === "job.accepted").length === count, "every job.accepted")
    await kill9(server())
    const accepted = first.conn.frames.filter((f) => f.type === "job.accepted").map((f) => f.payload.job_id)
    const seen = first.conn.seqFrames()
    const last = seen.length === 0 ? 0 : seen[seen.length - 1]!.event_seq
    await restart(server())
    const { conn } = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, last)
    const ended = () => new Set([...seen, ...conn.frames].filter((f) => f.type === "job.result" || f.type === "job.error").map((f) => f.job_id))
    await conn.until(() => accepted.every((id) => ended().has(id)), "an end for every accepted job", 60_000)
    const seqs = [...seen, ...conn.seqFrames()].map((f) => f.event_seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1)
    expect(conn.violations).toEqual([])
  }, 180_000)

  it("the token rotated before the kill is the one that resumes after it", async () => {
    const first = await openSession(server(), { token: server().keys.alice })
    const job = await echo(first.conn, 1)
    first.conn.drop()
    const second = await resume(server(), server().keys.alice, first.sessionId, first.resumeToken, job.terminal.event_seq)
    const rotated = second.welcome.payload.resume_token
    await kill9(server())
    await restart(server())
    const stale = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: first.sessionId, resume_token: first.resumeToken, last_event_seq: job.terminal.event_seq }
    })
    expect(stale.answer.payload.code).toBe("UNAUTHENTICATED")
    const third = await resume(server(), server().keys.alice, first.sessionId, rotated, job.terminal.event_seq)
    expect(third.welcome.session_id).toBe(first.sessionId)
  }, 180_000)
})
