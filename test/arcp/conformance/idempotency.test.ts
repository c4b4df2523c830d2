/**
 * §3 idempotency keys: a second submit with the same key and the same
 * parameters answers with the first job; with other parameters it is
 * DUPLICATE_KEY (never retryable); keys are kept durably — across a SIGKILL
 * of the server and a restart on the same store — and never hand one
 * principal another's job.
 */
import { describe, expect, it } from "vitest"
import { echo, kill9, openSession, restart, submit, useServer } from "./harness.js"

const server = useServer()

let counter = 0
const freshKey = () => `key-${Date.now()}-${counter++}`

describe("idempotency_key", () => {
  it("the same key and parameters answer with the first job's job_id", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const key = freshKey()
    const first = await echo(conn, { a: 1 }, { idempotency_key: key })
    const second = await submit(conn, { agent: "echo", input: { a: 1 }, idempotency_key: key })
    expect(second.answer.type).toBe("job.accepted")
    expect(second.answer.payload.job_id).toBe(first.jobId)
    expect(second.answer.payload.agent).toBe(first.answer.payload.agent)
  })

  it("the job of a repeated submit runs once: one job.result for it in the session", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const key = freshKey()
    const first = await echo(conn, "once", { idempotency_key: key })
    await submit(conn, { agent: "echo", input: "once", idempotency_key: key })
    await conn.barrier()
    // A repeat may replay the job's frames, but never with new event_seq for a second run of it.
    const results = conn.frames.filter((f) => f.type === "job.result" && f.job_id === first.jobId)
    expect(new Set(results.map((r) => r.event_seq)).size).toBe(1)
    const listed = await (async () => {
      const request = conn.send({ type: "session.list_jobs", payload: {} })
      return conn.find((f) => f.type === "session.jobs" && f.payload.request_id === request.id, "session.jobs")
    })()
    expect((listed.payload.jobs as Array<any>).filter((j) => j.job_id === first.jobId)).toHaveLength(1)
  })

  it("the same key with another input is DUPLICATE_KEY, not retryable", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const key = freshKey()
    await echo(conn, { a: 1 }, { idempotency_key: key })
    const second = await submit(conn, { agent: "echo", input: { a: 2 }, idempotency_key: key })
    expect(["job.error", "session.error"]).toContain(second.answer.type)
    expect(second.answer.payload.code).toBe("DUPLICATE_KEY")
    expect(second.answer.payload.retryable).toBe(false)
    expect(conn.violations).toEqual([])
  })

  it("the same key with another lease_request is DUPLICATE_KEY too", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const key = freshKey()
    await echo(conn, 1, { idempotency_key: key })
    const other = await submit(conn, { agent: "echo", input: 1, idempotency_key: key, lease_request: { "fs.read": ["/x/**"] } })
    expect(other.answer.payload.code).toBe("DUPLICATE_KEY")
  })

  it("different keys give different jobs", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const a = await echo(conn, 1, { idempotency_key: freshKey() })
    const b = await echo(conn, 1, { idempotency_key: freshKey() })
    expect(a.jobId).not.toBe(b.jobId)
  })

  it("a key holds across sessions of the same principal", async () => {
    const key = freshKey()
    const one = await openSession(server(), { token: server().keys.alice })
    const first = await echo(one.conn, "x", { idempotency_key: key })
    const two = await openSession(server(), { token: server().keys.alice })
    const second = await submit(two.conn, { agent: "echo", input: "x", idempotency_key: key })
    expect(second.answer.payload.job_id).toBe(first.jobId)
  })

  it("another principal's submit with the same key never gets the first principal's job", async () => {
    const key = freshKey()
    const alice = await openSession(server(), { token: server().keys.alice })
    const first = await echo(alice.conn, "x", { idempotency_key: key })
    const bob = await openSession(server(), { token: server().keys.bob })
    const second = await submit(bob.conn, { agent: "echo", input: "x", idempotency_key: key })
    expect(second.answer.payload.job_id ?? second.answer.job_id).not.toBe(first.jobId)
  })

  it("a refused submit (unknown agent) does not take the key", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const key = freshKey()
    const refused = await submit(conn, { agent: "nobody", input: 1, idempotency_key: key })
    expect(refused.answer.payload.code).toBe("AGENT_NOT_AVAILABLE")
    const accepted = await submit(conn, { agent: "echo", input: 1, idempotency_key: key })
    expect(accepted.answer.type).toBe("job.accepted")
  })

  it("keys survive a SIGKILL and a restart on the same store", async () => {
    const key = freshKey()
    const otherKey = freshKey()
    const before = await openSession(server(), { token: server().keys.alice })
    const first = await echo(before.conn, { durable: true }, { idempotency_key: key })
    await echo(before.conn, { durable: 2 }, { idempotency_key: otherKey })
    await kill9(server())
    await restart(server())
    const after = await openSession(server(), { token: server().keys.alice })
    const again = await submit(after.conn, { agent: "echo", input: { durable: true }, idempotency_key: key })
    expect(again.answer.type).toBe("job.accepted")
    expect(again.answer.payload.job_id).toBe(first.jobId)
    const conflicting = await submit(after.conn, { agent: "echo", input: { durable: false }, idempotency_key: otherKey })
    expect(conflicting.answer.payload.code).toBe("DUPLICATE_KEY")
  }, 180_000)
})
