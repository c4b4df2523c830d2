/**
 * §3 `session.list_jobs` → `session.jobs`: request_id is the request
 * envelope's id, the job summaries' fields, filters (status, agent,
 * created_after, created_before), `limit` and a keyset cursor (opaque; no
 * job twice, none skipped, even when jobs are added between pages), and the
 * scope: never another principal's jobs.
 */
import { beforeAll, describe, expect, it } from "vitest"
import { type Conn, echo, type Frame, JOB_ID, openSession, submit, useServer } from "./harness.js"

const server = useServer()

const list = async (conn: Conn, payload: Frame) => {
  const start = conn.frames.length
  const request = conn.send({ type: "session.list_jobs", payload })
  const answer = await conn.find(
    (f) => (f.type === "session.jobs" && f.payload?.request_id === request.id) || (f.type === "session.error" && conn.frames.indexOf(f) >= start),
    `the answer to list_jobs ${request.id}`
  )
  return { request, answer }
}

/** Every page, following next_cursor; fails on a page that repeats a job. */
const listAll = async (conn: Conn, payload: Frame) => {
  const ids: Array<string> = []
  let cursor: string | null | undefined = undefined
  let pages = 0
  do {
    const { answer } = await list(conn, { ...payload, ...(cursor ? { cursor } : {}) })
    expect(answer.type, JSON.stringify(answer.payload)).toBe("session.jobs")
    if (payload.limit !== undefined) expect(answer.payload.jobs.length).toBeLessThanOrEqual(payload.limit)
    for (const job of answer.payload.jobs) {
      expect(ids, `job ${job.job_id} on two pages`).not.toContain(job.job_id)
      ids.push(job.job_id)
    }
    cursor = answer.payload.next_cursor
    pages++
    expect(pages, "the cursor never ends").toBeLessThan(100)
  } while (cursor !== null && cursor !== undefined)
  return { ids, pages }
}

describe("session.list_jobs", () => {
  let alice: Awaited<ReturnType<typeof openSession>>
  const jobs: Array<string> = []
  let createdBetween: string

  beforeAll(async () => {
    alice = await openSession(server(), { token: server().keys.alice })
    for (let i = 0; i < 4; i++) jobs.push((await echo(alice.conn, i)).jobId!)
    await new Promise((resolve) => setTimeout(resolve, 20))
    createdBetween = new Date().toISOString()
    await new Promise((resolve) => setTimeout(resolve, 20))
    for (let i = 4; i < 7; i++) jobs.push((await echo(alice.conn, i)).jobId!)
  }, 60_000)

  it("session.jobs names the request envelope's id and lists the session's jobs with §3's fields", async () => {
    const { request, answer } = await list(alice.conn, {})
    expect(answer.type).toBe("session.jobs")
    expect(answer.payload.request_id).toBe(request.id)
    const listed = answer.payload.jobs as Array<any>
    for (const id of jobs) expect(listed.map((j) => j.job_id)).toContain(id)
    for (const job of listed) {
      expect(job.job_id).toMatch(JOB_ID)
      expect(job.agent).toBe("echo@1.0.0")
      expect(job.status).toBe("success")
      expect(typeof job.lease).toBe("object")
      expect(Number.isNaN(Date.parse(job.created_at))).toBe(false)
      expect(Number.isInteger(job.last_event_seq)).toBe(true)
    }
    expect(answer.payload.next_cursor ?? null).toBeNull()
    expect(alice.conn.violations).toEqual([])
  })

  it("a listed job carries its submit's trace_id", async () => {
    const submitted = await echo(alice.conn, "traced")
    jobs.push(submitted.jobId!)
    const { answer } = await list(alice.conn, {})
    expect((answer.payload.jobs as Array<any>).find((j) => j.job_id === submitted.jobId)?.trace_id).toBe(submitted.trace_id)
  })

  it("last_event_seq of a finished job is the event_seq of its job.result", async () => {
    const { answer } = await list(alice.conn, {})
    for (const job of answer.payload.jobs as Array<any>) {
      const result = alice.conn.frames.find((f) => f.type === "job.result" && f.job_id === job.job_id)
      if (result !== undefined) expect(job.last_event_seq).toBe(result.event_seq)
    }
  })

  it("paging with limit 3 walks every job once, in three pages", async () => {
    const { ids, pages } = await listAll(alice.conn, { limit: 3 })
    expect([...ids].sort()).toEqual([...jobs].sort())
    expect(pages).toBe(3)
  })

  it("paging with limit 1 walks every job once", async () => {
    const { ids } = await listAll(alice.conn, { limit: 1 })
    expect([...ids].sort()).toEqual([...jobs].sort())
  })

  it("a job added between pages neither repeats nor hides an earlier one (keyset cursor)", async () => {
    const first = await list(alice.conn, { limit: 2 })
    expect(first.answer.payload.next_cursor).toBeTruthy()
    const added = await echo(alice.conn, "added")
    const rest = await listAll(alice.conn, { limit: 2, cursor: first.answer.payload.next_cursor })
    const seen = [...first.answer.payload.jobs.map((j: any) => j.job_id), ...rest.ids]
    expect(new Set(seen).size).toBe(seen.length)
    for (const id of jobs) expect(seen).toContain(id)
    jobs.push(added.jobId!)
  })

  it("filter.status: success lists them, running lists none of them", async () => {
    const success = await listAll(alice.conn, { filter: { status: ["success"] } })
    for (const id of jobs) expect(success.ids).toContain(id)
    const running = await listAll(alice.conn, { filter: { status: ["running", "pending"] } })
    for (const id of jobs) expect(running.ids).not.toContain(id)
  })

  it("filter.agent: echo lists them, another agent none", async () => {
    const echoJobs = await listAll(alice.conn, { filter: { agent: "echo" } })
    for (const id of jobs) expect(echoJobs.ids).toContain(id)
    const other = await listAll(alice.conn, { filter: { agent: "somebody-else" } })
    expect(other.ids).toEqual([])
  })

  it("filter.created_after and created_before split the jobs at a time between them", async () => {
    const after = await listAll(alice.conn, { filter: { created_after: createdBetween } })
    const before = await listAll(alice.conn, { filter: { created_before: createdBetween } })
    for (const id of jobs.slice(0, 4)) {
      expect(before.ids).toContain(id)
      expect(after.ids).not.toContain(id)
    }
    for (const id of jobs.slice(4, 7)) {
      expect(after.ids).toContain(id)
      expect(before.ids).not.toContain(id)
    }
  })

  it("filters combine: created_after in the future lists nothing", async () => {
    const { ids } = await listAll(alice.conn, { filter: { status: ["success"], created_after: "2999-01-01T00:00:00Z" } })
    expect(ids).toEqual([])
  })

  it("another session of the same principal lists the jobs too", async () => {
    const other = await openSession(server(), { token: server().keys.alice })
    const { ids } = await listAll(other.conn, {})
    for (const id of jobs) expect(ids).toContain(id)
  })

  it("another principal never sees them", async () => {
    const bob = await openSession(server(), { token: server().keys.bob })
    const own = await echo(bob.conn, "bob's")
    const { ids } = await listAll(bob.conn, {})
    for (const id of jobs) expect(ids).not.toContain(id)
    expect(ids).toContain(own.jobId)
  })

  it("a garbage cursor is INVALID_REQUEST, or an empty last page: never jobs from nowhere", async () => {
    // §3 leaves it open; the cursor is opaque.
    const { answer } = await list(alice.conn, { cursor: "not-a-cursor-%%%" })
    if (answer.type === "session.error") expect(answer.payload.code).toBe("INVALID_REQUEST")
    else {
      expect(answer.payload.jobs).toEqual([])
      expect(answer.payload.next_cursor ?? null).toBeNull()
    }
  })

  it.each([["limit 0", 0], ["limit -1", -1], ["limit 1.5", 1.5], ["limit a string", "10"]])("%s is INVALID_REQUEST", async (_name, limit) => {
    const { answer } = await list(alice.conn, { limit })
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
  })

  it("a filter.status that is not a list is INVALID_REQUEST", async () => {
    const { answer } = await list(alice.conn, { filter: { status: "success" } })
    expect(answer.type).toBe("session.error")
    expect(answer.payload.code).toBe("INVALID_REQUEST")
  })

  it("a refused submit's job is not listed as accepted work of another status than error", async () => {
    const refused = await submit(alice.conn, { agent: "nobody", input: 1 })
    const { answer } = await list(alice.conn, {})
    const listed = (answer.payload.jobs as Array<any>).find((j) => j.job_id === refused.answer.job_id)
    if (listed !== undefined) expect(listed.status).toBe("error")
  })
})
