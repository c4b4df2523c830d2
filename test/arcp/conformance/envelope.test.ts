/**
 * §3 "Transport and envelope": text frames only, `arcp` exactly "1.1", a
 * non-empty id, session_id on everything after the handshake, trace ids of
 * 32 lowercase hex, event_seq only on job.event/result/error, extensions
 * (x-vendor types, `extensions.optional`), unknown session.* / job.* types.
 * Every refusal is a typed session.error that carries a session_id, and the
 * session and the server survive it.
 */
import { describe, expect, it } from "vitest"
import { Conn, echo, errorsOf, type Frame, isAlive, openSession, SESSION_ID, submit, traceId, useServer } from "./harness.js"

const server = useServer()

/** Sends on an open session and returns what the runtime sent back (waiting for an error when one is expected). */
const answersTo = (conn: Conn, send: () => void, error = true) => conn.exchange(send, { error })

const expectInvalid = (frames: ReadonlyArray<Frame>, conn: Conn, code = "INVALID_REQUEST") => {
  const errors = errorsOf(frames)
  expect(errors.length, JSON.stringify(frames)).toBeGreaterThanOrEqual(1)
  expect(errors[0]!.type).toBe("session.error")
  expect(errors[0]!.payload.code).toBe(code)
  expect(errors[0]!.payload.retryable).toBe(false)
  expect(errors[0]!.session_id).toBe(conn.sessionId)
  expect(conn.violations).toEqual([])
}

describe("frames", () => {
  it("a binary frame is refused with session.error INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const hello = JSON.stringify({ arcp: "1.1", id: "msg_1", type: "session.list_jobs", session_id: conn.sessionId, payload: {} })
    const frames = await answersTo(conn, () => conn.sendRaw(Buffer.from(hello), { binary: true }))
    expectInvalid(frames, conn)
  })

  it("a binary frame before the hello is refused with a session.error that carries a session_id", async () => {
    const conn = await Conn.open(server().wsUrl)
    conn.sendRaw(Buffer.from([0, 1, 2, 3, 255]), { binary: true })
    const answer = await conn.next(() => true, "the answer to a binary frame")
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
    expect(answer.session_id).toMatch(SESSION_ID)
  })

  it("a text frame that is not JSON is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.sendRaw("{not json")), conn)
  })

  it("a JSON value that is not an object is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    for (const value of ["[]", "42", "\"session.hello\"", "null", "true"]) {
      expectInvalid(await answersTo(conn, () => conn.sendRaw(value)), conn)
    }
  })
})

describe("envelope fields", () => {
  it.each([
    ["arcp 1.0", { arcp: "1.0" }],
    ["arcp 2.0", { arcp: "2.0" }],
    ["arcp 1.1.0", { arcp: "1.1.0" }],
    ["arcp as the number 1.1", { arcp: 1.1 }],
    ["no arcp", { arcp: undefined }]
  ])("an unknown version (%s) is INVALID_REQUEST", async (_name, override) => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.send({ type: "session.list_jobs", payload: {}, ...override })), conn)
  })

  it("an unknown version on the hello is refused, with a session_id, and opens no session", async () => {
    const conn = await Conn.open(server().wsUrl)
    conn.send({
      arcp: "1.0",
      type: "session.hello",
      payload: { client: { name: "c", version: "1" }, auth: { scheme: "bearer", token: server().keys.alice } }
    })
    const answer = await conn.next(() => true, "the answer to a 1.0 hello")
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
    expect(answer.session_id).toMatch(SESSION_ID)
  })

  it.each([
    ["an empty id", { id: "" }],
    ["no id", { id: undefined }],
    ["a numeric id", { id: 7 }]
  ])("%s is INVALID_REQUEST", async (_name, override) => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.send({ type: "session.list_jobs", payload: {}, ...override })), conn)
  })

  it("a message after the hello without session_id is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const frames = await answersTo(conn, () => conn.send({ type: "job.submit", session_id: undefined, payload: { agent: "echo", input: 1 } }))
    expectInvalid(frames, conn)
    expect(frames.some((f) => f.type === "job.accepted")).toBe(false)
  })

  it("a message naming another session's id is refused, and nothing is done in that session", async () => {
    const a = await openSession(server(), { token: server().keys.alice })
    const b = await openSession(server(), { token: server().keys.alice })
    const frames = await answersTo(a.conn, () => a.conn.send({ type: "job.submit", session_id: b.sessionId, payload: { agent: "echo", input: 1 } }))
    const errors = errorsOf(frames)
    expect(errors.length, JSON.stringify(frames)).toBeGreaterThanOrEqual(1)
    expect(["INVALID_REQUEST", "PERMISSION_DENIED", "UNAUTHENTICATED"]).toContain(errors[0]!.payload.code)
    await b.conn.barrier()
    expect(b.conn.frames.some((f) => f.type === "job.accepted" || f.type === "job.event")).toBe(false)
  })

  it.each([
    ["uppercase hex", "0AF7651916CD43DD8448EB211C80319C"],
    ["31 digits", "0af7651916cd43dd8448eb211c80319"],
    ["not hex", "zzf7651916cd43dd8448eb211c80319c"],
    ["a traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
  ])("a trace_id that is not 32 lowercase hex (%s) is INVALID_REQUEST", async (_name, trace_id) => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const frames = await answersTo(conn, () => conn.send({ type: "job.submit", trace_id, payload: { agent: "echo", input: 1 } }))
    expect(errorsOf(frames)[0]?.payload.code, JSON.stringify(frames)).toBe("INVALID_REQUEST")
    expect(frames.some((f) => f.type === "job.accepted")).toBe(false)
  })

  it("a valid trace_id rides on job.accepted and on the job's events", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const trace = traceId()
    const job = await echo(conn, "traced")
    expect(job.answer.trace_id ?? job.answer.payload.trace_id).toBe(job.trace_id)
    const second = await submit(conn, { agent: "echo", input: 2 }, { trace_id: trace })
    expect(second.answer.type).toBe("job.accepted")
    expect(second.answer.trace_id ?? second.answer.payload.trace_id).toBe(trace)
  })

  it("unknown top-level envelope fields are ignored (draft §5)", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const frames = await answersTo(conn, () => conn.send({ type: "session.list_jobs", payload: {}, x_future_field: { a: 1 } }), false)
    expect(errorsOf(frames)).toEqual([])
  })

  it("a payload that is not an object is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.send({ type: "job.submit", payload: "echo" })), conn)
    expectInvalid(await answersTo(conn, () => conn.send({ type: "job.submit", payload: [1, 2] })), conn)
  })

  it("a payload null is INVALID_REQUEST: every envelope has an object payload", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.send({ type: "session.list_jobs", payload: null })), conn)
  })

  it("event_seq on a client's message does not set the session's numbering", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const first = await echo(conn, 1)
    await answersTo(conn, () => conn.send({ type: "session.list_jobs", payload: {}, event_seq: 1_000_000 }), false)
    const second = await echo(conn, 2)
    const seqs = conn.seqFrames().map((f) => f.event_seq)
    expect(Math.max(...seqs)).toBeLessThan(1_000_000)
    expect(second.frames[0]!.event_seq).toBe(first.terminal.event_seq + 1)
  })
})

describe("types and extensions", () => {
  it.each(["session.nonsense", "job.nonsense", "session.welcome", "job.accepted", "job.event"])(
    "an unknown or runtime-only type %s from a client is INVALID_REQUEST",
    async (type) => {
      const { conn } = await openSession(server(), { token: server().keys.alice })
      expectInvalid(await answersTo(conn, () => conn.send({ type, payload: {} })), conn)
    }
  )

  it("an unknown session.* type is INVALID_REQUEST even with extensions.optional", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.send({ type: "session.nonsense", payload: {}, extensions: { optional: true } })), conn)
  })

  it("an unknown extension type with extensions.optional true is dropped silently", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const frames = await answersTo(conn, () => conn.send({ type: "x-vendor.acme.poke", payload: { a: 1 }, extensions: { optional: true } }), false)
    expect(frames).toEqual([])
    const other = await answersTo(conn, () => conn.send({ type: "acme.poke", payload: {}, extensions: { optional: true } }), false)
    expect(other).toEqual([])
  })

  it("an unknown extension type without extensions.optional is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.send({ type: "acme.poke", payload: {} })), conn)
  })

  it("a type that is not a string is INVALID_REQUEST", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    expectInvalid(await answersTo(conn, () => conn.send({ type: 12, payload: {} })), conn)
    expectInvalid(await answersTo(conn, () => conn.send({ type: undefined, payload: {} })), conn)
  })
})

describe("after refusals", () => {
  it("a session that was sent bad frames still runs jobs, with a gap-free event_seq", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    await echo(conn, "before")
    await answersTo(conn, () => conn.sendRaw("junk"))
    await answersTo(conn, () => conn.send({ type: "job.nonsense", payload: {} }))
    await echo(conn, "after")
    const seqs = conn.seqFrames().map((f) => f.event_seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1)
    expect(conn.violations).toEqual([])
    expect(isAlive(server())).toBe(true)
  })

  it("every frame the runtime sent in this file kept the envelope rules", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    await echo(conn, { deep: { a: [1, 2, 3] } })
    expect(conn.violations).toEqual([])
  })
})
