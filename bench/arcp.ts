/**
 * The ARCP bench: echo jobs end to end over a WebSocket on 127.0.0.1, one
 * client process, against `switchboard serve --echo-agent` as it runs
 * (`arcpProcess.ts`: its own process, the durable SQLite store, WAL,
 * durability `normal` by default as the reference runtime's file log is
 * not synced per write either; `--durability full` syncs every commit).
 *
 * Each echo job is a submit, its `job.accepted`, a `log` and a `progress`
 * event and its `job.result`, each durable before it is sent. Measured:
 *
 * - sequential: one job at a time, from submit to result (jobs/s, p50/p99);
 * - 50 in flight: as many jobs in flight at all times on one session;
 * - 1,000 sessions open at once (each welcomed), on a fresh server: its
 *   resident memory, after a full collection.
 *
 * Beside each rate, in the same run, the baseline: a bare `ws` server that
 * answers each submit with the same four frames and does nothing else (no
 * log, no state), the floor the transport and JSON set; and the reference
 * ARCP runtime's figures on this machine kind (`../shared/anchors.md`:
 * 903 jobs/s sequential, 1,559 with 50 in flight, SQLite file log; 645 and
 * 933 when its echo also emits a log and a progress, as this one does).
 * Targets: 2,000 and 3,500 jobs/s; under 200 MB with 1,000 sessions.
 *
 * Flags: `--jobs N` (default 2,000, after 200 warm-up), `--durability full`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Console, Effect } from "effect"
import WebSocket from "ws"
import type { ArcpProcessConfig } from "./arcpProcess.js"
import { formatNumber, intOption, printResult } from "./report.js"

const script = fileURLToPath(new URL("./arcpProcess.js", import.meta.url))

interface Child {
  readonly port: number
  readonly memory: () => Promise<NodeJS.MemoryUsage>
  readonly stop: () => void
}

const startProcess = (config: ArcpProcessConfig) =>
  new Promise<Child>((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean), "--expose-gc", script, JSON.stringify(config)], {
      stdio: ["ignore", "ignore", "inherit", "ipc"]
    })
    child.once("exit", (code) => reject(new Error(`the server exited (${code}) before listening`)))
    child.once("message", (message: any) => {
      if (message?.type !== "ready") return reject(new Error(`unexpected: ${JSON.stringify(message)}`))
      resolve({
        port: message.port,
        memory: () =>
          new Promise((done) => {
            const on = (answer: any) => {
              if (answer?.type !== "memory") return
              child.off("message", on)
              done(answer.usage)
            }
            child.on("message", on)
            child.send({ type: "memory" })
          }),
        stop: () => {
          child.removeAllListeners("exit")
          child.kill("SIGTERM")
        }
      })
    })
  })

interface Session {
  readonly submit: (input: unknown) => Promise<void>
  readonly close: () => void
}

let traces = 0

/** A lean client of the wire (the figure is the server's, not a client library's): submit, wait for the result, ACK every 64 events. */
const openSession = (port: number) =>
  new Promise<Session>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/arcp`)
    let session_id = ""
    const accepting: Array<{ readonly trace_id: string; readonly done: () => void }> = []
    const running = new Map<string, () => void>()
    let unacked = 0
    ws.on("error", reject)
    ws.on("open", () =>
      ws.send(JSON.stringify({
        arcp: "1.1",
        id: "msg_hello",
        type: "session.hello",
        payload: { client: { name: "bench", version: "1" }, auth: { scheme: "bearer", token: "" }, capabilities: { features: ["ack"] } }
      })))
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString())
      switch (frame.type) {
        case "session.welcome":
          session_id = frame.session_id
          return resolve({
            submit: (input) =>
              new Promise<void>((done) => {
                const trace_id = (++traces).toString(16).padStart(32, "0")
                accepting.push({ trace_id, done })
                ws.send(JSON.stringify({ arcp: "1.1", id: `msg_${trace_id}`, type: "job.submit", session_id, trace_id, payload: { agent: "echo", input } }))
              }),
            close: () => ws.close()
          })
        case "job.accepted": {
          const waiting = accepting.shift()!
          running.set(frame.payload.job_id, waiting.done)
          return
        }
        case "job.event":
        case "job.result":
        case "job.error":
          if (++unacked >= 64) {
            unacked = 0
            ws.send(JSON.stringify({ arcp: "1.1", id: `ack_${frame.event_seq}`, type: "session.ack", session_id, payload: { last_processed_seq: frame.event_seq } }))
          }
          if (frame.type !== "job.event") {
            running.get(frame.job_id)?.()
            running.delete(frame.job_id)
          }
          return
        case "session.error":
          return reject(new Error(JSON.stringify(frame.payload)))
      }
    })
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]
const input = { text: "x".repeat(180) }

interface Run {
  readonly rate: number
  readonly p50: number
  readonly p99: number
}

const run = async (session: Session, jobs: number, inFlight: number): Promise<Run> => {
  const latencies: Array<number> = []
  let started = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (started < jobs) {
      started++
      const t0 = performance.now()
      await session.submit(input)
      latencies.push(performance.now() - t0)
    }
  }))
  const seconds = (performance.now() - start) / 1000
  latencies.sort((a, b) => a - b)
  return { rate: jobs / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

const measure = async (port: number, jobs: number) => {
  const session = await openSession(port)
  await run(session, 200, 1)
  const seq = await run(session, jobs, 1)
  await run(session, 200, 50)
  const conc = await run(session, jobs, 50)
  session.close()
  return { seq, conc }
}

const line = (label: string, figure: Run, baseline: Run, target: number, reference: number) =>
  Console.log(
    `${label.padEnd(16)} ${formatNumber(figure.rate).padStart(7)} jobs/s  p50 ${figure.p50.toFixed(2)} ms  p99 ${figure.p99.toFixed(2)} ms` +
      `   baseline (bare ws) ${formatNumber(baseline.rate)} jobs/s, ratio ${(figure.rate / baseline.rate).toFixed(3)}` +
      `   reference runtime ${formatNumber(reference)} jobs/s, ratio ${(figure.rate / reference).toFixed(2)}` +
      `   target ${formatNumber(target)}: ${figure.rate >= target ? "met" : "MISSED"}`
  )

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const jobs = intOption(args, "jobs", "BENCH_JOBS") ?? 2_000
    const at = args.indexOf("--durability")
    const durability = at >= 0 && args[at + 1] === "full" ? "full" : "normal"
    const dir = mkdtempSync(join(tmpdir(), "switchboard-arcp-bench-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    yield* Console.log(`ARCP bench: echo jobs (a log, a progress, the input back) over ws://127.0.0.1, ${jobs} jobs after 200 warm-up, SQLite durability ${durability}`)

    const baseline = yield* Effect.promise(async () => {
      const child = await startProcess({ mode: "baseline", filename: "", durability })
      try {
        return await measure(child.port, jobs)
      } finally {
        child.stop()
      }
    })
    const rates = yield* Effect.promise(async () => {
      const child = await startProcess({ mode: "switchboard", filename: join(dir, "arcp.db"), durability })
      try {
        return await measure(child.port, jobs)
      } finally {
        child.stop()
      }
    })
    // Sessions on a server of their own: what 1,000 open sessions cost, not what the jobs above left;
    // beside the bare ws server's with as many.
    const sessionsOn = (mode: ArcpProcessConfig["mode"], filename: string) =>
      Effect.promise(async () => {
        const child = await startProcess({ mode, filename, durability })
        try {
          const idle = await child.memory()
          const sessions: Array<Session> = []
          for (let i = 0; i < 1000; i += 50) {
            sessions.push(...await Promise.all(Array.from({ length: 50 }, () => openSession(child.port))))
          }
          const open = await child.memory()
          for (const session of sessions) session.close()
          return { idleRss: idle.rss / 2 ** 20, sessionsRss: open.rss / 2 ** 20, sessionsHeap: open.heapUsed / 2 ** 20 }
        } finally {
          child.stop()
        }
      })
    const memory = yield* sessionsOn("switchboard", join(dir, "sessions.db"))
    const bareMemory = yield* sessionsOn("baseline", "")
    const measured = { ...rates, ...memory }
    yield* line("sequential", measured.seq, baseline.seq, 2_000, 903)
    yield* line("50 in flight", measured.conc, baseline.conc, 3_500, 1_559)
    yield* Console.log(
      `1,000 sessions   server RSS ${measured.sessionsRss.toFixed(1)} MB (heap ${measured.sessionsHeap.toFixed(1)} MB; ${measured.idleRss.toFixed(1)} MB before they opened)` +
        `   target < 200 MB: ${measured.sessionsRss < 200 ? "met" : "MISSED"}`
    )
    yield* Console.log(
      `                 per session ${((measured.sessionsRss - measured.idleRss) * 1024 / 1000).toFixed(0)} KB; ` +
        `the bare ws server (same process image) ${bareMemory.idleRss.toFixed(1)} MB idle, ${bareMemory.sessionsRss.toFixed(1)} MB with 1,000 ` +
        `(${((bareMemory.sessionsRss - bareMemory.idleRss) * 1024 / 1000).toFixed(0)} KB each)`
    )
    yield* printResult({
      bench: "arcp",
      figures: {
        seq_jobs_per_s: Math.round(measured.seq.rate),
        seq_p50_ms: Number(measured.seq.p50.toFixed(3)),
        seq_p99_ms: Number(measured.seq.p99.toFixed(3)),
        conc50_jobs_per_s: Math.round(measured.conc.rate),
        conc50_p50_ms: Number(measured.conc.p50.toFixed(3)),
        conc50_p99_ms: Number(measured.conc.p99.toFixed(3)),
        sessions_1000_rss_mb: Number(measured.sessionsRss.toFixed(1)),
        idle_rss_mb: Number(measured.idleRss.toFixed(1)),
        baseline_sessions_1000_rss_mb: Number(bareMemory.sessionsRss.toFixed(1)),
        baseline_seq_jobs_per_s: Math.round(baseline.seq.rate),
        baseline_conc50_jobs_per_s: Math.round(baseline.conc.rate)
      },
      ratios: {
        seq_vs_baseline: Number((measured.seq.rate / baseline.seq.rate).toFixed(3)),
        conc50_vs_baseline: Number((measured.conc.rate / baseline.conc.rate).toFixed(3)),
        seq_vs_reference: Number((measured.seq.rate / 903).toFixed(3)),
        conc50_vs_reference: Number((measured.conc.rate / 1_559).toFixed(3))
      }
    })
  }).pipe(Effect.scoped)
