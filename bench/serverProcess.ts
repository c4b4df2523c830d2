/**
 * The server under test in the server bench, run in a child process of its
 * own (`node .bench/bench/serverProcess.js CONFIG`), so that its memory is
 * measured alone and the bench's clients do not share its event loop.
 *
 * It is what `switchboard serve` runs (`Server.layer` over `Switchboard.layer`
 * on `EventLogSqlite.layer`, open keys, an empty secret store), with the
 * bench's own settings: a rate limit far above what the bench sends (the
 * default, 1,000 requests a second per address, would be the figure), and the
 * router bench's runtime options, so that neither the mailbox nor the
 * in-flight limit bounds what is measured.
 *
 * With `grpc` in its config it also serves SW4RM's gRPC services
 * (`Grpc.layer`), as `switchboard serve --grpc-port` does.
 *
 * It talks to the bench over the IPC channel: `{ type: "ready", port, grpcPort }` once
 * it listens; asked `{ type: "memory" }`, it answers `{ type: "memory", usage }`
 * (asked `{ type: "cpu" }`, `{ type: "cpu", usage }`: `process.cpuUsage()`)
 * (with `collect`, after a full collection: node runs with `--expose-gc`);
 * `{ type: "profile-start" }` and `{ type: "profile-stop", file }` record a CPU
 * profile of what happens in between (node's inspector). SIGTERM closes
 * it as `switchboard serve` closes (and lets `--cpu-prof` write its profile).
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { writeFile } from "node:fs/promises"
import { Session } from "node:inspector"
import { writeHeapSnapshot } from "node:v8"
import * as KeysLive from "../src/layers/KeysLive.js"
import * as Switchboard from "../src/layers/Switchboard.js"
import * as EventLogSqlite from "../src/layers/EventLogSqlite.js"
import type { RuntimeOptions } from "../src/schema/Config.js"
import { SecretStore } from "../src/services/SecretStore.js"
import * as Grpc from "../src/server/Grpc.js"
import * as Server from "../src/server/Server.js"

export interface ServerProcessConfig {
  readonly filename: string
  readonly durability: "full" | "normal"
  readonly runtime: RuntimeOptions
  readonly server: Server.ServerOptions
  readonly grpc?: Grpc.GrpcOptions | undefined
}

const config = JSON.parse(process.argv[2] ?? "{}") as ServerProcessConfig

const send = (message: unknown) => process.send?.(message)

let profiler: Session | undefined

const post = <A>(session: Session, method: string) =>
  new Promise<A>((resolve, reject) =>
    session.post(method, (error, result) => (error === null ? resolve(result as A) : reject(error)))
  )

process.on("message", (message: { readonly type?: string; readonly collect?: boolean; readonly file?: string }) => {
  switch (message.type) {
    case "memory": {
      const gc = (globalThis as { gc?: () => void }).gc
      if (message.collect === true) gc?.()
      send({ type: "memory", usage: process.memoryUsage() })
      return
    }
    // A heap snapshot, for finding where the server's memory goes.
    case "heap-snapshot":
      send({ type: "heap-snapshot", file: writeHeapSnapshot(message.file) })
      return
    case "cpu":
      send({ type: "cpu", usage: process.cpuUsage() })
      return
    // The measured run only, not the start and the warm-up, as `--cpu-prof` would.
    case "profile-start": {
      const session = new Session()
      session.connect()
      profiler = session
      post(session, "Profiler.enable")
        .then(() => post(session, "Profiler.start"))
        .then(() => send({ type: "profile-started" }), (error) => send({ type: "profile-started", error: String(error) }))
      return
    }
    case "profile-stop": {
      const session = profiler
      if (session === undefined) return send({ type: "profile-stopped", error: "no profile was started" })
      profiler = undefined
      post<{ profile: unknown }>(session, "Profiler.stop")
        .then(({ profile }) => writeFile(message.file!, JSON.stringify(profile)))
        .then(() => {
          session.disconnect()
          send({ type: "profile-stopped" })
        }, (error) => send({ type: "profile-stopped", error: String(error) }))
      return
    }
  }
})
// The bench gone, nothing is left to serve.
process.on("disconnect", () => process.kill(process.pid, "SIGTERM"))

const runtime = Switchboard.layer(config.runtime).pipe(
  Layer.provideMerge(EventLogSqlite.layer({ filename: config.filename, durability: config.durability }))
)
const http = Server.layer({ port: 0, ...config.server })
const server = (config.grpc === undefined ? http : Layer.merge(http, Grpc.layer({ port: 0, ...config.grpc }))).pipe(
  Layer.provideMerge(runtime),
  Layer.provide(KeysLive.layerOpen),
  Layer.provide(SecretStore.layerMemory({}))
)

NodeRuntime.runMain(
  Effect.gen(function*() {
    const address = (yield* HttpServer.HttpServer).address as HttpServer.TcpAddress
    const grpc = yield* Effect.serviceOption(Grpc.GrpcServer)
    send({ type: "ready", port: address.port, grpcPort: grpc._tag === "Some" ? grpc.value.port : undefined })
    return yield* Effect.never
  }).pipe(Effect.provide(server))
)
