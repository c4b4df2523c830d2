/**
 * Bad frames, fuzzed with fast-check (fixed seeds, so every run sends the
 * same frames): junk text, JSON that is not an envelope, envelopes with a
 * field of the wrong type, unknown versions and types, binary frames, huge
 * strings, deep nesting, `__proto__` keys, and every client message type
 * with arbitrary payloads built from §3's table. What must hold:
 *
 * - a frame that is certainly invalid gets a typed `session.error` (or
 *   `job.error`) that keeps the error-object rules and carries a session_id;
 * - whatever is sent, every frame the runtime sends keeps the envelope rules,
 *   it never goes silent (a barrier is answered, or the socket is closed
 *   after a session.error), the server process stays up, and another open
 *   session keeps working.
 */
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  Conn,
  echo,
  errorObjectProblems,
  type Frame,
  isAlive,
  openSession,
  type Session,
  SESSION_ID,
  useServer
} from "./harness.js"

const server = useServer()

let witness: Session
let current: Session | undefined

beforeAll(async () => {
  witness = await openSession(server(), { token: server().keys.bob })
}, 60_000)

afterAll(() => current?.conn.close())

/** The fuzzed session: the same one while it lives, a new one after the runtime closed it. */
const session = async () => {
  if (current === undefined || !current.conn.isOpen) current = await openSession(server(), { token: server().keys.alice })
  return current
}

/**
 * Sends, then proves the runtime is still answering (a list_jobs barrier),
 * first waiting for the typed error when one is due. Returns what it sent
 * back in between; a closed socket is fine only after a session.error.
 */
const probe = (conn: Conn, send: () => void, error = true) => conn.exchange(send, { error, timeoutMs: 10_000 })

const expectTypedError = (frames: ReadonlyArray<Frame>, what: string) => {
  const errors = frames.filter((f) => f.type === "session.error" || f.type === "job.error")
  if (errors.length === 0) throw new Error(`${what}: no typed error, got ${JSON.stringify(frames).slice(0, 500)}`)
  for (const error of errors) {
    const problems = errorObjectProblems(error.payload, what)
    if (problems.length > 0) throw new Error(problems.join("; "))
    if (typeof error.session_id !== "string" || error.session_id.length === 0) throw new Error(`${what}: an error without session_id`)
  }
}

const expectHealthy = async () => {
  expect(isAlive(server()), server().output).toBe(true)
  const job = await echo(witness.conn, "witness")
  expect(job.terminal.type).toBe("job.result")
  expect(witness.conn.violations).toEqual([])
}

const KNOWN_TYPES = new Set([
  "session.hello",
  "session.resume",
  "session.bye",
  "session.close",
  "session.ping",
  "session.pong",
  "session.ack",
  "session.list_jobs",
  "job.submit",
  "job.cancel",
  "job.subscribe",
  "job.unsubscribe"
])

/** Values that are certainly not a non-empty string. */
const notAString = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue(), { maxKeys: 3 }),
  fc.constant("")
)

/** Values that are certainly not an object. */
const notAnObject = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }))

const seed = 13

describe("certainly invalid frames get a typed error, and the server lives", () => {
  it("junk text that is not JSON", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 200 }).filter((s) => {
        try {
          JSON.parse(s)
          return false
        } catch {
          return true
        }
      }), async (text) => {
        const { conn } = await session()
        expectTypedError(await probe(conn, () => conn.sendRaw(text)), `junk ${JSON.stringify(text)}`)
      }),
      { numRuns: 60, seed }
    )
    await expectHealthy()
  }, 120_000)

  it("JSON that is not an object", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue().filter((v) => typeof v !== "object" || v === null || Array.isArray(v)), async (value) => {
        const { conn } = await session()
        expectTypedError(await probe(conn, () => conn.sendRaw(JSON.stringify(value))), `value ${JSON.stringify(value)}`)
      }),
      { numRuns: 60, seed }
    )
    await expectHealthy()
  }, 120_000)

  it("binary frames", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 512 }), async (bytes) => {
        const { conn } = await session()
        expectTypedError(await probe(conn, () => conn.sendRaw(Buffer.from(bytes), { binary: true })), "a binary frame")
      }),
      { numRuns: 40, seed }
    )
    await expectHealthy()
  }, 120_000)

  it("unknown versions", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string().filter((s) => s !== "1.1"), fc.double(), fc.constant(null), fc.constant(["1.1"])), async (arcp) => {
        const { conn } = await session()
        expectTypedError(
          await probe(conn, () => conn.send({ arcp, type: "session.list_jobs", payload: {} })),
          `arcp ${JSON.stringify(arcp)}`
        )
      }),
      { numRuns: 50, seed }
    )
    await expectHealthy()
  }, 120_000)

  it("unknown types without extensions.optional", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string().map((s) => `session.${s}`), fc.string().map((s) => `job.${s}`)).filter((t) => !KNOWN_TYPES.has(t)), async (type) => {
        const { conn } = await session()
        expectTypedError(await probe(conn, () => conn.send({ type, payload: {} })), `type ${JSON.stringify(type)}`)
      }),
      { numRuns: 60, seed }
    )
    await expectHealthy()
  }, 120_000)

  it("an envelope field of the wrong type (id, type, session_id, payload)", async () => {
    const field = fc.oneof(
      notAString.map((value) => ({ id: value })),
      notAString.map((value) => ({ type: value })),
      notAString.map((value) => ({ session_id: value })),
      // payload: null has a test of its own (envelope.test.ts)
      notAnObject.filter((value) => value !== null).map((value) => ({ payload: value }))
    )
    await fc.assert(
      fc.asyncProperty(field, fc.constantFrom("session.list_jobs", "job.submit", "job.subscribe", "session.ack"), async (override, type) => {
        const { conn } = await session()
        const payload = type === "job.submit" ? { agent: "echo", input: 1 } : type === "job.subscribe" ? { job_id: "job_x" } : type === "session.ack" ? { last_processed_seq: 0 } : {}
        const frames = await probe(conn, () => conn.send({ type, payload, ...override }))
        expectTypedError(frames, `${type} with ${JSON.stringify(override).slice(0, 100)}`)
        expect(frames.some((f) => f.type === "job.accepted")).toBe(false)
      }),
      { numRuns: 80, seed }
    )
    await expectHealthy()
  }, 180_000)

  it("a job.submit payload field of the wrong type", async () => {
    const bad = fc.oneof(
      notAString.map((agent) => ({ agent, input: 1 })),
      fc.oneof(fc.string(), fc.boolean(), fc.constant(0), fc.integer({ max: 0 })).map((max_runtime_sec) => ({ agent: "echo", input: 1, max_runtime_sec })),
      notAnObject.filter((v) => v !== null).map((lease_request) => ({ agent: "echo", input: 1, lease_request })),
      notAString.filter((v) => v !== "").map((idempotency_key) => ({ agent: "echo", input: 1, idempotency_key })),
      fc.oneof(fc.string(), fc.integer()).map((expires_at) => ({ agent: "echo", input: 1, lease_constraints: { expires_at } }))
    )
    await fc.assert(
      fc.asyncProperty(bad, async (payload) => {
        const { conn } = await session()
        const frames = await probe(conn, () => conn.send({ type: "job.submit", payload }))
        expectTypedError(frames, `job.submit ${JSON.stringify(payload).slice(0, 200)}`)
        expect(frames.some((f) => f.type === "job.accepted")).toBe(false)
      }),
      { numRuns: 80, seed }
    )
    await expectHealthy()
  }, 180_000)

  it("junk before the hello: a typed session.error with a session_id, never a welcome", async () => {
    const frame = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record({ arcp: fc.constant("1.1"), id: fc.string(), type: fc.constant("session.hello"), payload: fc.jsonValue() }).map((v) => JSON.stringify(v))
    )
    await fc.assert(
      fc.asyncProperty(frame, async (text) => {
        const conn = await Conn.open(server().wsUrl)
        try {
          conn.sendRaw(text)
          const answer = await conn.next(() => true, `the answer to ${JSON.stringify(text).slice(0, 100)}`, 10_000)
          expect(answer.type).toBe("session.error")
          expect(answer.session_id).toMatch(SESSION_ID)
          expect(errorObjectProblems(answer.payload, "pre-hello")).toEqual([])
          expect(conn.violations).toEqual([])
        } finally {
          conn.drop()
        }
      }),
      { numRuns: 60, seed }
    )
    await expectHealthy()
  }, 180_000)
})

describe("strange but maybe valid frames: never a crash, a hang or a malformed answer", () => {
  it("every client message type with arbitrary payload fields", async () => {
    const value = fc.jsonValue({ maxDepth: 3 })
    const payloads = fc.oneof(
      fc.record({ agent: fc.oneof(fc.constant("echo"), fc.string()), input: value, lease_request: fc.option(value), idempotency_key: fc.option(fc.string()), max_runtime_sec: fc.option(value) }, { requiredKeys: ["agent"] }).map((payload) => ({ type: "job.submit", payload })),
      fc.record({ filter: fc.option(value), limit: fc.option(value), cursor: fc.option(value) }).map((payload) => ({ type: "session.list_jobs", payload })),
      fc.record({ job_id: value, from_event_seq: fc.option(value), history: fc.option(value) }).map((payload) => ({ type: "job.subscribe", payload })),
      fc.record({ job_id: value }).map((payload) => ({ type: "job.unsubscribe", payload })),
      fc.record({ reason: fc.option(value) }).map((payload) => ({ type: "job.cancel", job_id: "job_01ARZ3NDEKTSV4RRFFQ69G5FAV", payload })),
      fc.record({ last_processed_seq: value }).map((payload) => ({ type: "session.ack", payload })),
      fc.record({ nonce: value, sent_at: value }).map((payload) => ({ type: "session.ping", payload })),
      fc.record({ ping_nonce: value, received_at: value }).map((payload) => ({ type: "session.pong", payload }))
    )
    await fc.assert(
      fc.asyncProperty(payloads, async (message) => {
        const { conn } = await session()
        await probe(conn, () => conn.send(message), false)
        expect(conn.violations).toEqual([])
      }),
      { numRuns: 150, seed }
    )
    await expectHealthy()
  }, 240_000)

  it("huge strings: a 1 MiB id, agent, idempotency key and input", async () => {
    const huge = "x".repeat(1024 * 1024)
    for (const message of [
      { id: huge, type: "session.list_jobs", payload: {} },
      { type: "job.submit", payload: { agent: huge, input: 1 } },
      { type: "job.submit", payload: { agent: "echo", input: 1, idempotency_key: huge } },
      { type: "job.submit", payload: { agent: "echo", input: huge } },
      { type: huge, payload: {} }
    ]) {
      const { conn } = await session()
      await probe(conn, () => conn.send(message), false)
      expect(conn.violations).toEqual([])
    }
    await expectHealthy()
  }, 120_000)

  it("a 32 MiB frame is refused (a typed error or a close), never a hang", async () => {
    const conn = (await openSession(server(), { token: server().keys.alice })).conn
    conn.sendRaw(JSON.stringify({ arcp: "1.1", id: "msg_big", type: "job.submit", session_id: conn.sessionId, payload: { agent: "echo", input: "y".repeat(32 * 1024 * 1024) } }))
    // Either an answer or a close (1009, message too big) ends the wait; neither within 60 s is a hang.
    const answered = await conn
      .find((f) => f.type === "session.error" || f.type === "job.error" || f.type === "job.result", "an answer to a 32 MiB frame", 60_000)
      .then(() => true, () => false)
    expect(answered || conn.closed !== undefined, "neither an answer nor a close").toBe(true)
    if (answered) {
      const answer = conn.frames.find((f) => f.type === "session.error" || f.type === "job.error" || f.type === "job.result")!
      if (answer.type !== "job.result") expect(errorObjectProblems(answer.payload, "32 MiB")).toEqual([])
    }
    await expectHealthy()
  }, 120_000)

  it("deep nesting: 10,000 levels in a job's input, and in an envelope field", async () => {
    const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
    const deepObject = (depth: number) => "{\"a\":".repeat(depth) + "1" + "}".repeat(depth)
    for (const nested of [deep(10_000), deepObject(10_000), deep(100_000)]) {
      const { conn } = await session()
      const inInput = await probe(conn, () =>
        conn.sendRaw(`{"arcp":"1.1","id":"msg_deep","type":"job.submit","session_id":"${conn.sessionId}","payload":{"agent":"echo","input":${nested}}}`), false)
      expect(conn.violations).toEqual([])
      for (const error of inInput.filter((f) => f.type === "session.error" || f.type === "job.error")) {
        expect(errorObjectProblems(error.payload, "deep input")).toEqual([])
      }
      const { conn: again } = await session()
      const inId = await probe(again, () =>
        again.sendRaw(`{"arcp":"1.1","id":${nested},"type":"session.list_jobs","session_id":"${again.sessionId}","payload":{}}`)
      )
      expectTypedError(inId, "a deeply nested id")
    }
    await expectHealthy()
  }, 180_000)

  it("__proto__, constructor and prototype keys pollute nothing and are echoed back as data", async () => {
    const { conn } = await session()
    const polluting = [
      `{"arcp":"1.1","id":"msg_p1","type":"session.list_jobs","session_id":"${conn.sessionId}","__proto__":{"polluted":true},"payload":{}}`,
      `{"arcp":"1.1","id":"msg_p2","type":"session.list_jobs","session_id":"${conn.sessionId}","payload":{"__proto__":{"limit":1},"constructor":{"prototype":{"polluted":true}}}}`,
      `{"arcp":"1.1","id":"msg_p3","type":"job.submit","session_id":"${conn.sessionId}","payload":{"agent":"echo","__proto__":{"agent":"nobody"},"input":1}}`,
      `{"__proto__":{"arcp":"1.1","type":"session.list_jobs"},"id":"msg_p4","payload":{}}`
    ]
    for (const text of polluting) {
      const { conn: c } = await session()
      await probe(c, () => c.sendRaw(text), false)
      expect(c.violations).toEqual([])
    }
    // The envelope-level __proto__ without arcp/type of its own is not an envelope.
    // Data with such keys is data: echo returns it as it came.
    const { conn: c } = await session()
    c.sendRaw(`{"arcp":"1.1","id":"msg_p5","type":"job.submit","session_id":"${c.sessionId}","trace_id":"${"ab".repeat(16)}","payload":{"agent":"echo","input":{"__proto__":{"x":1},"constructor":{"prototype":{"y":2}}}}}`)
    const accepted = await c.find((f) => f.type === "job.accepted" && (f.trace_id ?? f.payload.trace_id) === "ab".repeat(16), "the accepted __proto__ job")
    const end = await c.find((f) => f.job_id === accepted.payload.job_id && (f.type === "job.result" || f.type === "job.error"), "its end")
    expect(end.type).toBe("job.result")
    const result = end.payload.result
    expect(Object.prototype.hasOwnProperty.call(result, "__proto__")).toBe(true)
    expect(JSON.parse(JSON.stringify(result))).toEqual(JSON.parse(`{"__proto__":{"x":1},"constructor":{"prototype":{"y":2}}}`))
    // A fresh hello still works: nothing in the server's prototypes changed.
    const fresh = await openSession(server(), { token: server().keys.alice })
    expect(fresh.sessionId).toMatch(SESSION_ID)
    await expectHealthy()
  }, 120_000)

  it("a hello with a __proto__ auth is refused and opens nothing", async () => {
    const conn = await Conn.open(server().wsUrl)
    conn.sendRaw(`{"arcp":"1.1","id":"msg_h","type":"session.hello","payload":{"client":{"name":"c","version":"1"},"auth":{"__proto__":{"scheme":"bearer","token":"${server().keys.alice}"}}}}`)
    const answer = await conn.next(() => true, "the answer to a __proto__ hello")
    expect(answer.type).toBe("session.error")
    expect(["UNAUTHENTICATED", "INVALID_REQUEST"]).toContain(answer.payload.code)
    await expectHealthy()
  })

  it("many connections sending junk at once leave the witness session working", async () => {
    const conns = await Promise.all(Array.from({ length: 20 }, () => Conn.open(server().wsUrl)))
    for (const [i, conn] of conns.entries()) {
      conn.sendRaw(i % 2 === 0 ? "\u0000\u0001junk" : Buffer.from([0xff, 0xfe]))
    }
    await Promise.all(conns.map((conn) => conn.next(() => true, "an answer to junk", 15_000)))
    for (const conn of conns) {
      expect(conn.frames[0]!.type).toBe("session.error")
      conn.drop()
    }
    await expectHealthy()
  }, 60_000)
})
