/**
 * `switchboard serve`: the runtime on a durable store, reachable over the
 * network. It loads the policies it is given before it accepts a request,
 * prints where it listens, and on SIGTERM or SIGINT stops accepting, lets
 * requests in flight finish, closes the streams, then the log.
 *
 * Without `--keys` every caller is the operator: fine on the loopback
 * interface for local development, and said loudly; refused on any other.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpServer from "@effect/platform/HttpServer"
import { Console, Effect, Layer, Option } from "effect"
import * as EventLogPg from "../layers/EventLogPg.js"
import * as EventLogSqlite from "../layers/EventLogSqlite.js"
import * as KeysLive from "../layers/KeysLive.js"
import * as Switchboard from "../layers/Switchboard.js"
import * as Telemetry from "../layers/Telemetry.js"
import { echoAgent } from "../services/Arcp.js"
import { Gateway } from "../services/Gateway.js"
import { SecretStore } from "../services/SecretStore.js"
import * as Grpc from "./Grpc.js"
import * as Server from "./Server.js"

/** Where the log lives: `sqlite:FILE` (or a bare file name), or a `postgres://` URL. */
export const storeLayer = (store: string) =>
  /^postgres(ql)?:\/\//.test(store)
    ? EventLogPg.layer({ url: store })
    : EventLogSqlite.layer({ filename: store.startsWith("sqlite:") ? store.slice("sqlite:".length) : store })

const loopback = (host: string) => host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)

export class OpenOnNetwork extends Error {
  constructor(readonly host: string) {
    super(`refusing to run without --keys on ${host}: anyone who reaches it would be the operator (use --keys FILE)`)
  }
}

const loadPolicies = (files: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const gateway = yield* Gateway
    for (const file of files) {
      const yaml = yield* fs.readFileString(file)
      const info = yield* gateway.loadPolicy(yaml).pipe(
        Effect.mapError((error) => new Error(`${file}: ${error.message}`))
      )
      yield* Console.log(`switchboard: policy ${info.policy_id} (version ${info.version}) from ${file}`)
    }
  })

export const serveCommand = Command.make(
  "serve",
  {
    store: Options.text("store").pipe(
      Options.withDefault("sqlite:switchboard.db"),
      Options.withDescription("sqlite:FILE (the default, switchboard.db) or a postgres:// URL")
    ),
    host: Options.text("host").pipe(Options.withDefault("127.0.0.1"), Options.withDescription("the address to listen on")),
    port: Options.integer("port").pipe(
      Options.withDefault(Server.defaults.port),
      Options.withDescription("the port to listen on (0: any free port)")
    ),
    policy: Options.file("policy", { exists: "yes" }).pipe(
      Options.repeated,
      Options.withDescription("a policy YAML file to load at start (repeatable)")
    ),
    keys: Options.file("keys", { exists: "yes" }).pipe(
      Options.optional,
      Options.withDescription("the API keys file (`switchboard keys create`); without it the server is open")
    ),
    echoAgent: Options.boolean("echo-agent").pipe(
      Options.withDescription("register the ARCP agent `echo` (version 1.0.0): a log, a progress, and its input back")
    ),
    grpcPort: Options.integer("grpc-port").pipe(
      Options.optional,
      Options.withDescription("also serve SW4RM's gRPC services (router, registry, scheduler, worktree, negotiation room, HITL) on this port (SW4RM's default is 50051; 0: any free port)")
    ),
    secretsPrefix: Options.text("secrets-prefix").pipe(
      Options.withDefault("SWITCHBOARD_SECRET_"),
      Options.withDescription("secret NAME of a ${NAME} placeholder is the environment variable PREFIX + NAME")
    )
  },
  (options) =>
    Effect.gen(function*() {
      const keysFile = Option.getOrUndefined(options.keys)
      if (keysFile === undefined && !loopback(options.host)) return yield* Effect.fail(new OpenOnNetwork(options.host))
      const runtime = Switchboard.layer().pipe(Layer.provideMerge(storeLayer(options.store)))
      const withAgents = options.echoAgent ? Layer.provideMerge(echoAgent, runtime) : runtime
      const ready = Layer.effectDiscard(loadPolicies(options.policy)).pipe(Layer.provideMerge(withAgents))
      const http = Server.layer({ host: options.host, port: options.port })
      const grpcPort = Option.getOrUndefined(options.grpcPort)
      // SW4RM over gRPC, beside the HTTP API, on the same runtime, store and keys.
      const served = grpcPort === undefined ? http : Layer.merge(http, Grpc.layer({ host: options.host, port: grpcPort }))
      const server = served.pipe(
        Layer.provideMerge(ready),
        Layer.provide(keysFile === undefined ? KeysLive.layerOpen : KeysLive.layerFile(keysFile)),
        Layer.provide(SecretStore.layerEnv({ prefix: options.secretsPrefix })),
        // Spans are exported when OTEL_EXPORTER_OTLP_ENDPOINT is set; the requests' fibers see the tracer.
        Layer.provide(Telemetry.layerFromEnv.pipe(Layer.mapError((error) => new Error(`OpenTelemetry: ${String(error)}`))))
      )
      yield* Effect.gen(function*() {
        const address = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
        yield* Console.log(`switchboard: store ${options.store}`)
        if (keysFile === undefined) {
          yield* Console.error(
            "switchboard: WARNING: running OPEN, without --keys: every caller is the operator. For local development only."
          )
        }
        yield* Console.log(`switchboard: listening on ${address}; API documentation at ${address}/docs; ARCP at ${address.replace(/^http/, "ws")}/arcp`)
        yield* Console.log(`switchboard: console at ${address}/console`)
        const grpc = yield* Effect.serviceOption(Grpc.GrpcServer)
        if (Option.isSome(grpc)) {
          yield* Console.log(`switchboard: SW4RM gRPC (router, registry, scheduler, worktree, negotiation room, HITL) on ${grpc.value.host}:${grpc.value.port}`)
        }
        return yield* Effect.never
      }).pipe(Effect.provide(server))
    })
).pipe(Command.withDescription("serve the HTTP API, the live streams and the metrics over a durable store"))
