/**
 * §3 heartbeats (feature `heartbeat`): `session.ping { nonce, sent_at }` is
 * answered by `session.pong { ping_nonce, received_at }`; pings and pongs
 * take no event_seq; the runtime pings an idle client; a client silent for
 * two intervals is lost (`session.error HEARTBEAT_LOST`, then close), but
 * its session and jobs live on for the resume window.
 *
 * The interval is the welcome's `heartbeat_interval_sec` (30 s by default):
 * the tests that wait for the runtime's own pings and for the loss run on
 * the fixture server (fixtures/scriptServer.js) with a 1 s interval, which
 * `serve` does not expose, and wait up to a few intervals, concurrently.
 */
import { describe, expect, it } from "vitest"
import { Conn, echo, gapFree, hello, openSession, useServer } from "./harness.js"
import { scriptTests } from "./script.js"

const server = useServer()
const short = useServer({ fixture: true, fixtureArgs: ["--heartbeat-sec", "1"] })
const itShort = scriptTests(short)

const withHeartbeat = ["heartbeat", "list_jobs"]

describe("ping and pong", () => {
  it("a client's ping is answered with a pong naming its nonce", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice, features: withHeartbeat })
    conn.send({ type: "session.ping", payload: { nonce: "p_1", sent_at: new Date().toISOString() } })
    const pong = await conn.next((f) => f.type === "session.pong", "session.pong")
    expect(pong.payload.ping_nonce).toBe("p_1")
    expect(Number.isNaN(Date.parse(pong.payload.received_at))).toBe(false)
    expect(pong.session_id).toBe(conn.sessionId)
    expect(pong.event_seq).toBeUndefined()
    expect(conn.violations).toEqual([])
  })

  it("pings and pongs take no event_seq: jobs around them stay gap-free", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice, features: withHeartbeat })
    await echo(conn, 1)
    for (let i = 0; i < 3; i++) conn.send({ type: "session.ping", payload: { nonce: `n${i}`, sent_at: new Date().toISOString() } })
    await conn.until(() => conn.frames.filter((f) => f.type === "session.pong").length === 3, "three pongs")
    await echo(conn, 2)
    expect(gapFree(conn.seqFrames().map((f) => f.event_seq))).toBe(true)
  })

  it("a ping without a nonce is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice, features: withHeartbeat })
    conn.send({ type: "session.ping", payload: { sent_at: new Date().toISOString() } })
    const answer = await conn.next((f) => f.type === "session.error" || f.type === "session.pong", "the answer to a bad ping")
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
  })

  it("a pong from the client for no ping is accepted without an error", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice, features: withHeartbeat })
    const start = conn.frames.length
    conn.send({ type: "session.pong", payload: { ping_nonce: "never-sent", received_at: new Date().toISOString() } })
    await conn.barrier()
    expect(conn.frames.slice(start).filter((f) => f.type === "session.error")).toEqual([])
  })
})

describe.concurrent("liveness", () => {
  itShort("the runtime pings an idle client that negotiated heartbeat; answering keeps the session open past two intervals", async () => {
    const { conn, welcome } = await openSession(short(), { token: short().keys.alice, features: withHeartbeat })
    const interval = welcome.payload.heartbeat_interval_sec as number
    expect(interval).toBeGreaterThan(0)
    const ping = await conn.next((f) => f.type === "session.ping", "the runtime's ping", (interval * 1.5 + 10) * 1000)
    expect(typeof ping.payload.nonce).toBe("string")
    expect(Number.isNaN(Date.parse(ping.payload.sent_at))).toBe(false)
    expect(ping.event_seq).toBeUndefined()
    // The harness answers every ping; after more than two intervals the session must still be open.
    await conn.until(
      () => conn.frames.filter((f) => f.type === "session.ping").length >= 3,
      "three of the runtime's pings",
      (interval * 4 + 10) * 1000
    )
    expect(conn.isOpen).toBe(true)
    expect(conn.frames.filter((f) => f.type === "session.error")).toEqual([])
  }, 60_000)

  itShort("a client silent for two intervals is HEARTBEAT_LOST, then closed; its session is still resumable", async () => {
    const conn = await Conn.open(short().wsUrl)
    conn.autoPong = false
    const welcome = await hello(conn, { token: short().keys.alice, features: withHeartbeat })
    const interval = welcome.payload.heartbeat_interval_sec as number
    const lost = await conn.next((f) => f.type === "session.error", "HEARTBEAT_LOST", (interval * 3 + 10) * 1000)
    expect(lost.payload.code).toBe("HEARTBEAT_LOST")
    expect(lost.session_id).toBe(welcome.session_id)
    await conn.waitClosed()
    const again = await Conn.open(short().wsUrl)
    const resumed = await hello(again, {
      token: short().keys.alice,
      resume: { session_id: welcome.session_id, resume_token: welcome.payload.resume_token, last_event_seq: 0 }
    })
    expect(resumed.session_id).toBe(welcome.session_id)
  }, 60_000)

  itShort("without heartbeat negotiated the runtime neither pings nor drops a silent client", async () => {
    const { conn } = await openSession(short(), { token: short().keys.alice, features: ["list_jobs"] })
    conn.autoPong = false
    // Two intervals of the server's (1 s) and a margin pass in silence.
    await new Promise((resolve) => setTimeout(resolve, 4_000))
    expect(conn.frames.filter((f) => f.type === "session.ping" || f.type === "session.error")).toEqual([])
    expect(conn.isOpen).toBe(true)
    await conn.barrier()
  }, 30_000)
})
