/**
 * §3: `event_seq` is session-scoped, strictly increasing and gap-free —
 * under many jobs in flight in one session, and under several sessions at
 * once, none of which sees another's jobs.
 */
import { describe, expect, it } from "vitest"
import { type Conn, gapFree, openSession, useServer } from "./harness.js"

const server = useServer()

const flood = async (conn: Conn, count: number, tag: string) => {
  for (let i = 0; i < count; i++) conn.send({ type: "job.submit", payload: { agent: "echo", input: { tag, i } } })
  await conn.until(() => conn.count("job.result") + conn.count("job.error") >= count, `${count} ends`, 60_000)
}

describe("gap-free event_seq", () => {
  it("50 jobs in flight in one session: every stamped frame is seq + 1 of the one before, each job complete", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    await flood(conn, 50, "one")
    const stamped = conn.seqFrames()
    expect(gapFree(stamped.map((f) => f.event_seq)), JSON.stringify(stamped.map((f) => f.event_seq))).toBe(true)
    const accepted = conn.frames.filter((f) => f.type === "job.accepted").map((f) => f.payload.job_id)
    expect(accepted).toHaveLength(50)
    for (const id of accepted) {
      const own = stamped.filter((f) => f.job_id === id)
      expect(own[own.length - 1]!.type).toBe("job.result")
      expect(own.filter((f) => f.type === "job.result")).toHaveLength(1)
      // A job's own frames keep their order within the session's stream.
      for (let i = 1; i < own.length; i++) expect(own[i]!.event_seq).toBeGreaterThan(own[i - 1]!.event_seq)
    }
    expect(conn.violations).toEqual([])
  })

  it("four sessions with 25 jobs each at once: each has its own gap-free numbering and only its own jobs", async () => {
    const sessions = await Promise.all([0, 1, 2, 3].map(() => openSession(server(), { token: server().keys.alice })))
    await Promise.all(sessions.map((s, n) => flood(s.conn, 25, `s${n}`)))
    const owners = new Map<string, number>()
    sessions.forEach((s, n) => {
      for (const f of s.conn.frames.filter((f) => f.type === "job.accepted")) owners.set(f.payload.job_id, n)
    })
    sessions.forEach((s, n) => {
      const stamped = s.conn.seqFrames()
      expect(gapFree(stamped.map((f) => f.event_seq))).toBe(true)
      expect(stamped.every((f) => owners.get(f.job_id) === n)).toBe(true)
      expect(stamped.every((f) => f.session_id === s.sessionId)).toBe(true)
      const results = stamped.filter((f) => f.type === "job.result")
      expect(results.map((r) => r.payload.result.tag).every((t) => t === `s${n}`)).toBe(true)
      expect(s.conn.violations).toEqual([])
    })
  })

  it("two principals at once: neither stream carries the other's jobs", async () => {
    const [a, b] = await Promise.all([
      openSession(server(), { token: server().keys.alice }),
      openSession(server(), { token: server().keys.bob })
    ])
    await Promise.all([flood(a!.conn, 20, "alice"), flood(b!.conn, 20, "bob")])
    expect(a!.conn.frames.filter((f) => f.type === "job.result").every((f) => f.payload.result.tag === "alice")).toBe(true)
    expect(b!.conn.frames.filter((f) => f.type === "job.result").every((f) => f.payload.result.tag === "bob")).toBe(true)
    expect(gapFree(a!.conn.seqFrames().map((f) => f.event_seq))).toBe(true)
    expect(gapFree(b!.conn.seqFrames().map((f) => f.event_seq))).toBe(true)
  })

  it("numbering is per session: two fresh sessions start at the same event_seq", async () => {
    const a = await openSession(server(), { token: server().keys.alice })
    await flood(a.conn, 5, "a")
    const b = await openSession(server(), { token: server().keys.alice })
    await flood(b.conn, 1, "b")
    expect(b.conn.seqFrames()[0]!.event_seq).toBe(a.conn.seqFrames()[0]!.event_seq)
  })
})
