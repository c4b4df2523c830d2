/**
 * The gRPC bench: SW4RM over gRPC end to end, unicast. The server
 * (`switchboard serve --grpc-port` as it runs: `Server.layer` and
 * `Grpc.layer` over `Switchboard.layer` on SQLite, WAL, durability `full`)
 * runs in a child process of its own (`serverProcess.ts`), fresh for each
 * configuration. The bench is an SW4RM client built from the project's own
 * `.proto` files, two of them, each on a fresh server: a lean one over
 * `node:http2` with gRPC's framing and protobufjs (`grpcWire.ts`; the
 * `grpc` figures, at every level) and grpc-js's own client (the `grpcjs`
 * figures, with 1,000 in flight; `--grpc-js` at every level). grpc-js's
 * client costs about twice the lean one's CPU a message, on the same
 * cores as the server under test. A producer sends each message with `SendMessage` (one
 * unary call a message, its recipient in the `sw4rm-to` metadata, as SW4RM's
 * wire has no batch), one consumer agent receives its deliveries on
 * `StreamIncoming` and settles each with `AckDelivery` (DELIVERED); a message
 * counts FULFILLED when its `AckDelivery` answers `recorded: true`.
 *
 * "N in flight" is the router bench's definition: N producers, each sending
 * one message and waiting until it is FULFILLED before sending the next. In
 * the same run, with the same harness (`router.ts`, `server.ts`):
 *
 * - the server bench over HTTP (`POST /messages` with 1 in flight, the sends
 *   of a turn as one `POST /messages/batch` with 100 and 1,000, a WebSocket
 *   consumer acking each delivery), on a fresh server of the same kind;
 * - NATS JetStream over its own protocol (file storage, `js.publish`
 *   awaiting its PubAck, a durable pull consumer acking with `ackAck`), when
 *   reachable at SWITCHBOARD_NATS_URL (default 127.0.0.1:4222).
 *
 * Figures: messages/s from the first send to the last FULFILLED; latency from
 * a message's send to its delivery reaching the consumer (p50, p99); the CPU
 * time the server process spends per message, and the bench's own (its
 * clients').
 *
 * Flags: `--messages N` (BENCH_MESSAGES; default 20,000) with 100 and 1,000
 * in flight; `--serial-messages N` (BENCH_SERIAL_MESSAGES; default 2,000)
 * with 1; `--profile DIR` records a CPU profile of the gRPC server during the
 * measured run with 1,000 in flight and prints where the time went;
 * `--in-flight N` runs that level only, and `--no-baselines` skips the HTTP
 * and JetStream runs (both for quick looks while tuning: the ratios then
 * lack their baselines).
 */
import { NodeFileSystem } from "@effect/platform-node"
import * as Grpc from "@grpc/grpc-js"
import * as ProtoLoader from "@grpc/proto-loader"
import { Console, Effect, Option } from "effect"
import type protobuf from "protobufjs"
import { loaderOptions, protoDir, protoFiles } from "../src/server/GrpcProto.js"
import { connectWire, frame, types } from "./grpcWire.js"
import { formatNumber, intOption, latencies, ms, perS, printComparison, printResult, ratio, textOption } from "./report.js"
import {
  connectNats,
  drive,
  type Figures,
  jetStreamRun,
  makeRun,
  onDelivery,
  onFulfilled,
  payload,
  tempDatabases
} from "./router.js"
import { measureServer, profileStop, type ServerFigures, type ServerHandle, startServer } from "./server.js"

const inFlights = [1, 100, 1_000] as const
const targetVsJetStream = 1.0

// ---------------------------------------------------------------------------
// An SW4RM client from the project's .proto files

const sw4rm = Grpc.loadPackageDefinition(
  ProtoLoader.loadSync([...protoFiles], { ...loaderOptions, includeDirs: [protoDir()] })
).sw4rm as any

interface Sw4rmClient {
  readonly router: any
  readonly registry: any
}

const unary = <A>(client: any, method: string, request: unknown, metadata = new Grpc.Metadata()) =>
  Effect.async<A, Error>((resume) => {
    client[method](request, metadata, (error: Grpc.ServiceError | null, answer: A) =>
      resume(error === null ? Effect.succeed(answer) : Effect.fail(new Error(`${method}: ${error.code} ${error.details}`))))
  })

const openClient = (port: number) =>
  Effect.acquireRelease(
    Effect.sync((): Sw4rmClient => {
      const address = `127.0.0.1:${port}`
      const credentials = Grpc.credentials.createInsecure()
      return {
        router: new sw4rm.router.RouterService(address, credentials),
        registry: new sw4rm.registry.RegistryService(address, credentials)
      }
    }),
    ({ registry, router }) =>
      Effect.sync(() => {
        router.close()
        registry.close()
      })
  )

const indexOf = (message_id: string) => Number(message_id.slice(message_id.lastIndexOf("-") + 1))

let runs = 0

/** One measured run against a running server with gRPC: fresh agents, `count` messages, `inFlight` at a time. */
const grpcRun = (server: ServerHandle, label: string, inFlight: number, count: number) =>
  Effect.gen(function*() {
    const client = yield* openClient(server.grpcPort!)
    const tag = `g${runs++}`
    const producer = `bench-producer-${tag}`
    const consumer = `bench-consumer-${tag}`
    for (const agent_id of [producer, consumer]) {
      yield* unary(client.registry, "RegisterAgent", { agent: { agent_id, name: agent_id } })
    }
    const run = makeRun(count)
    const stream = yield* Effect.acquireRelease(
      Effect.sync(() => client.router.StreamIncoming({ agent_id: consumer })),
      (stream) => Effect.sync(() => stream.cancel())
    )
    stream.on("data", ({ msg, seq }: { msg: { message_id: string }; seq: number }) => {
      if (seq === 0) return
      const i = indexOf(msg.message_id)
      onDelivery(run, i)
      client.router.AckDelivery(
        { agent_id: consumer, seq, message_id: msg.message_id, outcome: 0 },
        (error: Grpc.ServiceError | null, answer: { recorded: boolean }) => {
          if (error !== null) run.failure = `AckDelivery: ${error.code} ${error.details}`
          else if (answer.recorded && run.isFulfilled[i] === 0) onFulfilled(run, i)
        }
      )
    })
    stream.on("error", (error: Grpc.ServiceError) => {
      if (error.code !== Grpc.status.CANCELLED) run.failure = `the consumer's stream failed: ${error.code} ${error.details}`
    })
    const template = envelopeTemplate(producer, payload)
    const metadata = new Grpc.Metadata()
    metadata.set("sw4rm-to", consumer)
    const serverBefore = yield* Effect.promise(() => server.cpu())
    const clientBefore = process.cpuUsage()
    const figures = yield* drive(label, run, inFlight, (i) => {
      const message_id = `${tag}-${i}`
      // Numbered, as the HTTP bench's: the payloads are alike, and a number with a like payload is a retry.
      const msg = { ...template, message_id, correlation_id: message_id, sequence_number: i + 1 }
      return unary(client.router, "SendMessage", { msg }, metadata)
    })
    const clientUsed = process.cpuUsage(clientBefore)
    const serverAfter = yield* Effect.promise(() => server.cpu())
    return {
      ...figures,
      serverCpuUs: (serverAfter.user - serverBefore.user + serverAfter.system - serverBefore.system) / count,
      clientCpuUs: (clientUsed.user + clientUsed.system) / count
    }
  }).pipe(Effect.scoped)

/** The same run with the lean client (`grpcWire.ts`): the same calls and frames, without grpc-js's client's own costs. */
const wireRun = (server: ServerHandle, label: string, inFlight: number, count: number) =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => connectWire(server.grpcPort!)),
      (client) => Effect.sync(() => client.close())
    )
    const call = <A>(path: string, request: Buffer, response: protobuf.Type, metadata?: Record<string, string>) =>
      Effect.async<A, Error>((resume) => {
        client.unary<A>(path, request, response, (error, answer) =>
          resume(error === undefined ? Effect.succeed(answer!) : Effect.fail(new Error(`${path}: ${error.message}`))), metadata)
      })
    const tag = `w${runs++}`
    const producer = `bench-producer-${tag}`
    const consumer = `bench-consumer-${tag}`
    for (const agent_id of [producer, consumer]) {
      yield* call(register, frame(types.RegisterAgentRequest, { agent: { agent_id, name: agent_id } }), types.RegisterAgentResponse)
    }
    const run = makeRun(count)
    type Item = { msg: { message_id: string }; seq: number | { toNumber(): number } }
    const onAcked = (i: number) => (error: Error | undefined, answer: { recorded: boolean } | undefined) => {
      if (error !== undefined) run.failure = `AckDelivery: ${error.message}`
      else if (answer!.recorded && run.isFulfilled[i] === 0) onFulfilled(run, i)
    }
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        client.serverStream<Item>(streamIncoming, frame(types.StreamRequest, { agent_id: consumer }), types.StreamItem, (item) => {
          const seq = typeof item.seq === "number" ? item.seq : item.seq.toNumber()
          if (seq === 0) return
          const message_id = item.msg.message_id
          const i = indexOf(message_id)
          onDelivery(run, i)
          const ack = frame(types.DeliveryAckRequest, { agent_id: consumer, seq, message_id, outcome: 0 })
          client.unary(ackDelivery, ack, types.DeliveryAckResponse, onAcked(i))
        }, (error) => {
          if (error !== undefined) run.failure = `the consumer's stream failed: ${error.message}`
        })
      ),
      (stream) => Effect.sync(() => stream.cancel())
    )
    const template = envelopeTemplate(producer, payload)
    const metadata = { "sw4rm-to": consumer }
    const serverBefore = yield* Effect.promise(() => server.cpu())
    const clientBefore = process.cpuUsage()
    const figures = yield* drive(label, run, inFlight, (i) => {
      const message_id = `${tag}-${i}`
      const msg = { ...template, message_id, correlation_id: message_id, sequence_number: i + 1 }
      return call(sendMessage, frame(types.SendMessageRequest, { msg }), types.SendMessageResponse, metadata)
    })
    const clientUsed = process.cpuUsage(clientBefore)
    const serverAfter = yield* Effect.promise(() => server.cpu())
    return {
      ...figures,
      serverCpuUs: (serverAfter.user - serverBefore.user + serverAfter.system - serverBefore.system) / count,
      clientCpuUs: (clientUsed.user + clientUsed.system) / count
    }
  }).pipe(Effect.scoped)

const register = "/sw4rm.registry.RegistryService/RegisterAgent"
const sendMessage = "/sw4rm.router.RouterService/SendMessage"
const streamIncoming = "/sw4rm.router.RouterService/StreamIncoming"
const ackDelivery = "/sw4rm.router.RouterService/AckDelivery"

/** The fields every bench envelope shares (DATA, SENT, no TTL); each send adds its own id and sequence number. */
const envelopeTemplate = (producer: string, payload: Uint8Array) => {
  const now = Date.now()
  return {
    producer_id: producer,
    retry_count: 0,
    message_type: 2,
    content_type: "application/octet-stream",
    content_length: payload.length,
    ttl_ms: 0,
    timestamp: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1_000_000 },
    payload: Buffer.from(payload),
    state: 1
  }
}

// ---------------------------------------------------------------------------

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const messages = (yield* Effect.try(() => intOption(args, "messages", "BENCH_MESSAGES"))) ?? 20_000
    const serialMessages = (yield* Effect.try(() => intOption(args, "serial-messages", "BENCH_SERIAL_MESSAGES"))) ?? 2_000
    const profileDir = textOption(args, "profile")
    const only = textOption(args, "in-flight")
    const levels = only === undefined ? inFlights : inFlights.filter((level) => level === Number(only))
    const baselines = !args.includes("--no-baselines")
    const allGrpcJs = args.includes("--grpc-js")
    const countFor = (inFlight: number) => inFlight === 1 ? serialMessages : messages
    const warmup = Math.min(2_000, messages)
    const { fresh: sqlite } = yield* tempDatabases("switchboard-bench-grpc-")
    const natsUrl = process.env.SWITCHBOARD_NATS_URL ?? "127.0.0.1:4222"
    const nats = baselines ? Option.getRight(yield* connectNats(natsUrl)) : Option.none()

    yield* Console.log(
      `grpc: ${formatNumber(messages)} messages per configuration (${formatNumber(serialMessages)} with 1 in flight), ` +
        `${payload.length}-byte payloads; the server in its own process on SQLite (WAL, durability full); an SW4RM client ` +
        `from the project's .proto files: SendMessage per message (sw4rm-to), StreamIncoming, AckDelivery per delivery; ` +
        `beside the server bench over HTTP and JetStream, a fresh server and file per configuration, each warmed up with ${
          formatNumber(warmup)
        } messages`
    )
    yield* Console.log(
      Option.isNone(nats)
        ? `JetStream baseline skipped: no NATS server with JetStream reachable at ${natsUrl}`
        : `JetStream baseline at ${natsUrl}: file storage, js.publish awaiting its PubAck, durable pull consumer acking with ackAck`
    )
    if (Option.isSome(nats)) yield* jetStreamRun(nats.value, "warmup jetstream", 100, warmup, "confirmed")

    const results: Record<string, Figures> = {}
    const cpu: Record<string, number> = {}
    for (const inFlight of levels) {
      const count = countFor(inFlight)
      yield* Console.log(`${inFlight} in flight, ${formatNumber(count)} messages:`)
      // Each client on a fresh server: the lean one at every level, grpc-js's own with 1,000 in flight (`--grpc-js`: at every level).
      const measureGrpc = (client: "wire" | "grpc-js") =>
        sqlite((filename) =>
          Effect.gen(function*() {
            const runner = client === "wire" ? wireRun : grpcRun
            const name = client === "wire" ? "grpc" : "grpcjs"
            const server = yield* startServer(filename, "full", { grpc: true })
            yield* runner(server, `warmup ${name} ${inFlight}`, Math.max(100, inFlight), warmup)
            const profiled = profileDir !== undefined && client === "wire" && (inFlight === 1_000 || levels.length === 1)
            if (profiled) yield* Effect.promise(() => server.profile.start())
            const figures = yield* runner(server, `${name} ${inFlight}`, inFlight, count)
            if (profiled) yield* profileStop(server, profileDir, `grpc-${inFlight}`)
            return figures
          }).pipe(Effect.scoped)
        )
      const grpc = yield* measureGrpc("wire")
      if (inFlight === 1_000 || allGrpcJs) {
        const grpcjs = yield* measureGrpc("grpc-js")
        results[`grpcjs_${inFlight}`] = grpcjs
        cpu[`grpcjs_${inFlight}_cpu_us_per_msg`] = Math.round(grpcjs.serverCpuUs)
        cpu[`grpcjs_${inFlight}_client_cpu_us_per_msg`] = Math.round(grpcjs.clientCpuUs)
      }
      const http: ServerFigures | undefined = !baselines ? undefined : yield* sqlite((filename) =>
        measureServer(filename, "full", "http", inFlight, count, {
          mode: inFlight === 1 ? "single" : "batch",
          maxConnections: undefined,
          warmup
        })
      )
      results[`grpc_${inFlight}`] = grpc
      cpu[`grpc_${inFlight}_cpu_us_per_msg`] = Math.round(grpc.serverCpuUs)
      cpu[`grpc_${inFlight}_client_cpu_us_per_msg`] = Math.round(grpc.clientCpuUs)
      if (http !== undefined) {
        results[`http_${inFlight}`] = http
        cpu[`http_${inFlight}_cpu_us_per_msg`] = Math.round(http.serverCpuUs)
      }
      if (Option.isSome(nats)) {
        results[`jetstream_${inFlight}`] = yield* jetStreamRun(nats.value, `jetstream ${inFlight}`, inFlight, count, "confirmed")
      }
      const js = results[`jetstream_${inFlight}`]
      for (const name of ["grpc", "grpcjs", "http", "jetstream"]) {
        const figures = results[`${name}_${inFlight}`]
        if (figures === undefined) continue
        const against = name === "jetstream"
          ? ""
          : `   vs JetStream ${js === undefined ? "-" : (figures.msgsPerS / js.msgsPerS).toFixed(3)}` +
            (name.startsWith("grpc") && http !== undefined ? `   vs HTTP ${(figures.msgsPerS / http.msgsPerS).toFixed(3)}` : "")
        yield* Console.log(`  ${name.padEnd(10)} ${perS(figures.msgsPerS)}   ${latencies(figures)}${against}`)
      }
      yield* Console.log(
        `  server CPU per message: gRPC ${formatNumber(grpc.serverCpuUs)} µs` +
          (cpu[`grpcjs_${inFlight}_cpu_us_per_msg`] === undefined
            ? ""
            : ` (with grpc-js's client ${formatNumber(cpu[`grpcjs_${inFlight}_cpu_us_per_msg`])} µs)`) +
          (http === undefined ? "" : `, HTTP ${formatNumber(http.serverCpuUs)} µs`) +
          `; the gRPC client's ${formatNumber(grpc.clientCpuUs)} µs` +
          (cpu[`grpcjs_${inFlight}_client_cpu_us_per_msg`] === undefined
            ? ""
            : ` (grpc-js's ${formatNumber(cpu[`grpcjs_${inFlight}_client_cpu_us_per_msg`])} µs)`)
      )
    }

    const grpc1000 = results["grpc_1000"]?.msgsPerS
    const js1000 = results["jetstream_1000"]?.msgsPerS
    const http1000 = results["http_1000"]?.msgsPerS
    if (grpc1000 !== undefined && js1000 !== undefined) {
      yield* printComparison({ label: "grpc 1000 vs JS", figure: grpc1000, baseline: js1000, target: targetVsJetStream, unit: "msgs/s" })
    }
    if (grpc1000 !== undefined && http1000 !== undefined) {
      yield* printComparison({ label: "grpc 1000 vs HTTP", figure: grpc1000, baseline: http1000, unit: "msgs/s" })
    }

    const figures: Record<string, number> = { ...cpu, messages, serial_messages: serialMessages }
    for (const [key, f] of Object.entries(results)) {
      figures[`${key}_msgs_per_s`] = Math.round(f.msgsPerS)
      figures[`${key}_p50_ms`] = ms(f.p50Ms)
      figures[`${key}_p99_ms`] = ms(f.p99Ms)
    }
    const ratios: Record<string, number> = {}
    for (const inFlight of levels) {
      const grpc = results[`grpc_${inFlight}`].msgsPerS
      const js = results[`jetstream_${inFlight}`]
      const http = results[`http_${inFlight}`]
      if (js !== undefined) ratios[`vs_jetstream_${inFlight}`] = ratio(grpc, js.msgsPerS)
      if (http !== undefined) ratios[`vs_http_${inFlight}`] = ratio(grpc, http.msgsPerS)
    }
    yield* printResult({ bench: "grpc", figures, ratios })
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
