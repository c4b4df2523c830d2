/**
 * The server under test in the ARCP bench, in a child process of its own
 * (`node .bench/bench/arcpProcess.js CONFIG`), so that its memory is
 * measured alone and the bench's client does not share its event loop.
 *
 * `mode: "switchboard"` is what `switchboard serve --echo-agent` runs
 * (`Server.layer` over `Switchboard.layer` on `EventLogSqlite.layer`, open
 * keys, the `echo` agent). `mode: "baseline"` is the floor under it in the
 * same run: a bare `ws` server on the same machine that answers each
 * `job.submit` with the very frames an echo job gets (accepted, a log, a
 * progress, the result), with no log, no state, no checks: what the
 * transport and JSON alone cost.
 *
 * Over the IPC channel: `{ type: "ready", port }` once it listens; asked
 * `{ type: "memory" }`, it answers `{ type: "memory", usage }` after a full
 * collection (node runs with `--expose-gc`).
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { WebSocketServer } from "ws"
import * as KeysLive from "../src/layers/KeysLive.js"
import * as Switchboard from "../src/layers/Switchboard.js"
import * as EventLogSqlite from "../src/layers/EventLogSqlite.js"
import { echoAgent } from "../src/services/Arcp.js"
import { SecretStore } from "../src/services/SecretStore.js"
import * as Server from "../src/server/Server.js"

export interface ArcpProcessConfig {
  readonly mode: "switchboard" | "baseline"
  readonly filename: string
  readonly durability: "full" | "normal"
}

const config = JSON.parse(process.argv[2] ?? "{}") as ArcpProcessConfig
const send = (message: unknown) => process.send?.(message)

process.on("message", (message: { readonly type?: string }) => {
  if (message.type === "memory") {
    ;(globalThis as { gc?: () => void }).gc?.()
    send({ type: "memory", usage: process.memoryUsage() })
  }
})
process.on("disconnect", () => process.kill(process.pid, "SIGTERM"))

if (config.mode === "baseline") {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  server.on("connection", (ws) => {
    let seq = 0
    let jobs = 0
    let session_id = ""
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString())
      const out = (type: string, payload: unknown, extra: Record<string, unknown> = {}) =>
        ws.send(JSON.stringify({ arcp: "1.1", id: `msg_${seq}_${type}`, type, session_id, ...extra, payload }))
      if (frame.type === "session.hello") {
        session_id = `sess_${Math.floor(Math.random() * 1e9)}`
        out("session.welcome", { resume_token: "rt_x", resume_window_sec: 600, capabilities: { features: ["ack"], agents: ["echo"] } })
      } else if (frame.type === "job.submit") {
        const job_id = `job_${++jobs}`
        const ts = new Date().toISOString()
        out("job.accepted", { job_id, agent: "echo@1.0.0", lease: {}, accepted_at: ts }, { job_id, trace_id: frame.trace_id })
        out("job.event", { kind: "log", ts, body: { level: "info", message: "echo" } }, { job_id, event_seq: ++seq })
        out("job.event", { kind: "progress", ts, body: { current: 1, total: 1 } }, { job_id, event_seq: ++seq })
        out("job.result", { final_status: "success", result: frame.payload.input }, { job_id, event_seq: ++seq })
      }
    })
  })
  server.on("listening", () => send({ type: "ready", port: (server.address() as { port: number }).port }))
} else {
  const runtime = Switchboard.layer().pipe(
    Layer.provideMerge(EventLogSqlite.layer({ filename: config.filename, durability: config.durability }))
  )
  const server = Server.layer({ port: 0, rateLimit: { ratePerSecond: 1e9, burst: 1e9 } }).pipe(
    Layer.provideMerge(Layer.provideMerge(echoAgent, runtime)),
    Layer.provide(KeysLive.layerOpen),
    Layer.provide(SecretStore.layerMemory({}))
  )
  NodeRuntime.runMain(
    Effect.gen(function*() {
      const address = (yield* HttpServer.HttpServer).address as HttpServer.TcpAddress
      send({ type: "ready", port: address.port })
      return yield* Effect.never
    }).pipe(Effect.provide(server))
  )
}
