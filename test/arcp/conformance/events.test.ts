/**
 * §3 "Event kinds": every kind an agent emits reaches the client as a
 * `job.event { kind, ts, body }` with its body intact — log, thought,
 * tool_call/tool_result, status, metric, artifact_ref, progress,
 * result_chunk (reassembled on the client side, the result then carrying
 * `result_id`, never an inline result too), and `x-vendor.*` untouched.
 * Needs the script agent (script.ts); echo's own log and progress are in
 * jobs.test.ts.
 */
import { describe, expect } from "vitest"
import { echo, isTerminal, openSession, submit, useServer } from "./harness.js"
import { script, scriptTests } from "./script.js"

const server = useServer({ fixture: true })
const itScript = scriptTests(server)

const bodies = {
  log: { level: "warn", message: "careful", attributes: { file: "a.ts" } },
  thought: { text: "thinking about it" },
  status: { phase: "running", message: "halfway" },
  metric: { name: "tokens.in", value: 1234, unit: "tokens", dims: { model: "m1" } },
  artifact_ref: { uri: "file:///tmp/report.pdf", content_type: "application/pdf", byte_size: 10, sha256: "a".repeat(64) },
  progress: { current: 47, total: 120, units: "files", message: "refactoring" },
  "x-vendor.acme.custom": { anything: [1, { goes: true }] }
}

describe("event kinds", () => {
  itScript("every kind's body reaches the client unchanged, in order", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const steps = Object.entries(bodies).map(([kind, body]) => ({ emit: { kind, body } }))
    const submitted = await submit(conn, script([...steps, { return: "ok" }]))
    await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end")
    const events = conn.frames.filter((f) => f.type === "job.event" && f.job_id === submitted.jobId)
    const emitted = events.filter((e) => e.payload.kind in bodies)
    expect(emitted.map((e) => [e.payload.kind, e.payload.body])).toEqual(Object.entries(bodies))
    expect(conn.violations).toEqual([])
  })

  itScript("a tool_call the lease covers and its tool_result share a call_id", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, script([{ tool_call: { tool: "search.web", args: { q: "arcp" } } }, { return: 1 }], {
      lease_request: { "tool.call": ["search.*"] }
    }))
    await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end")
    const events = conn.frames.filter((f) => f.type === "job.event" && f.job_id === submitted.jobId)
    const call = events.find((e) => e.payload.kind === "tool_call")!
    expect(call.payload.body.tool).toBe("search.web")
    expect(call.payload.body.args).toEqual({ q: "arcp" })
    const result = events.find((e) => e.payload.kind === "tool_result")
    if (result !== undefined) expect(result.payload.body.call_id).toBe(call.payload.body.call_id)
  })

  itScript("result_chunk: chunks in order, more until the last, and a job.result naming result_id without an inline result", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const parts = ["Hello, ", "chunked ", "world ✓"]
    const submitted = await submit(conn, script([{ chunks: { parts, encoding: "utf8" } }]))
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end")
    const chunks = conn.frames.filter((f) => f.type === "job.event" && f.job_id === submitted.jobId && f.payload.kind === "result_chunk")
    expect(chunks.map((c) => c.payload.body.chunk_seq)).toEqual([0, 1, 2])
    expect(chunks.map((c) => c.payload.body.more)).toEqual([true, true, false])
    expect(new Set(chunks.map((c) => c.payload.body.result_id)).size).toBe(1)
    expect(end.type).toBe("job.result")
    expect(end.payload.result_id).toBe(chunks[0]!.payload.body.result_id)
    expect(end.payload.result).toBeUndefined()
    const assembled = chunks.map((c) => c.payload.body.encoding === "base64" ? Buffer.from(c.payload.body.data, "base64").toString("utf8") : c.payload.body.data).join("")
    expect(assembled).toBe(parts.join(""))
  })

  itScript("a metric with the spec's `dimensions` is accepted and sent with the SDK's `dims`", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, script([{ emit: { kind: "metric", body: { name: "latency", value: 12, unit: "ms", dimensions: { region: "eu" } } } }, { return: 1 }]))
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end")
    expect(end.type).toBe("job.result")
    const metric = conn.frames.find((f) => f.type === "job.event" && f.job_id === submitted.jobId && f.payload.kind === "metric")!
    expect(metric.payload.body.dims).toEqual({ region: "eu" })
    expect(metric.payload.body.dimensions).toBeUndefined()
  })

  itScript("base64 result chunks reassemble to the bytes", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255])
    const parts = [bytes.subarray(0, 4).toString("base64"), bytes.subarray(4).toString("base64")]
    const submitted = await submit(conn, script([{ chunks: { parts, encoding: "base64" } }]))
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end")
    const chunks = conn.frames.filter((f) => f.type === "job.event" && f.job_id === submitted.jobId && f.payload.kind === "result_chunk")
    expect(chunks.every((c) => c.payload.body.encoding === "base64")).toBe(true)
    expect(Buffer.concat(chunks.map((c) => Buffer.from(c.payload.body.data, "base64")))).toEqual(bytes)
    expect(end.payload.result_id).toBe(chunks[0]!.payload.body.result_id)
  })

  itScript("an agent's own failure ends the job with job.error final_status error and its code", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, script([{ fail: { code: "INTERNAL_ERROR", message: "boom" } }]))
    const end = await conn.find((f) => f.job_id === submitted.jobId && isTerminal(f), "the end")
    expect(end.type).toBe("job.error")
    expect(end.payload.final_status).toBe("error")
    expect(end.payload.code).toBe("INTERNAL_ERROR")
    expect(end.payload.retryable).toBe(true)
  })

  itScript("echo and script jobs interleaved in one session keep a gap-free numbering", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const s = await submit(conn, script([{ emit: { kind: "thought", body: { text: "a" } } }, { sleep_ms: 100 }, { return: 1 }]))
    await echo(conn, "between")
    await conn.find((f) => f.job_id === s.jobId && isTerminal(f), "the end")
    const seqs = conn.seqFrames().map((f) => f.event_seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1)
  })
})
