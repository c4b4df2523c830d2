/**
 * The server bench: durable messaging end to end over the network. The server
 * (`Server.layer` over `Switchboard.layer` on SQLite, WAL, durability `full`,
 * as `switchboard serve` runs it) runs in a child process of its own
 * (`serverProcess.ts`), fresh for each configuration, so that its memory is
 * its own and the bench's clients do not share its event loop. Producers
 * send over keep-alive HTTP connections (an undici Pool): with 100 and 1,000
 * in flight, the sends made in the same turn of the bench's event loop go
 * together as one `POST /messages/batch` (`batchSender`, over 4 connections),
 * as a client library coalesces its callers' writes (nats.js writes all the
 * publishes of a turn at once); each still waits for its own receipt. With 1
 * in flight, and with `--single` at every level, each send is its own
 * `POST /messages`, one connection per message in flight unless
 * `--connections` says fewer. One consumer agent receives its deliveries over a WebSocket
 * (`/agents/{id}/stream`) and acknowledges each with an `ack` frame
 * (FULFILLED), which the server answers with `acked` once the ack is durable.
 *
 * The server's rate limit is raised far above what the bench sends: the
 * default (1,000 requests a second per address, all the bench's producers
 * sharing one address) would be the figure otherwise. Its idle keep-alive
 * timeout is raised from 5 s to 60 s (as the producers' own), so that a
 * producer waiting long for its message does not lose its connection.
 *
 * "N in flight" is the router bench's definition: N producers, each sending
 * one message and waiting until it is FULFILLED (here: until the consumer
 * has the server's `acked` for it) before sending the next. Beside it, in the
 * same run and with the same harness (`router.ts`):
 *
 * - NATS JetStream over its own protocol (file storage, `js.publish` awaiting
 *   its PubAck, a durable pull consumer acking with `ackAck`), when reachable
 *   at SWITCHBOARD_NATS_URL (default 127.0.0.1:4222);
 * - the in-process router on the same SQLite setup, its consumer settling
 *   each chunk of deliveries with one `ackMany`.
 *
 * Figures: messages/s from the first send to the last FULFILLED; latency from
 * a message's send to its delivery reaching the consumer (p50, p99); the CPU
 * time the server process spends per message (user and system, from its
 * `process.cpuUsage()`: on a busy machine a steadier measure of its cost than
 * a rate), and the bench's own (its clients'); and the server's resident
 * memory with 1,000 idle WebSocket consumers connected (1,000 agents
 * registered, each with its stream open), beside the same server's memory
 * with the agents registered and no stream open.
 *
 * The producers use undici (the HTTP client @effect/platform-node itself
 * depends on), the consumer `ws`.
 *
 * Flags: `--messages N` (BENCH_MESSAGES; default 20,000) with 100 and 1,000 in
 * flight; `--serial-messages N` (BENCH_SERIAL_MESSAGES; default 2,000) with 1;
 * `--connections N` (BENCH_CONNECTIONS) caps the producers' HTTP connections
 * (default: one per message in flight); `--durability normal` runs the server
 * and the in-process router with synchronous=NORMAL (JetStream's own
 * durability is closer to it); `--profile DIR` records a CPU profile of the
 * server during the measured run with 1,000 in flight (or the level
 * `--profile-in-flight N` names; node's inspector, in the server process),
 * writes it to DIR and prints where the time went; `--single` sends each
 * message as its own `POST /messages` at every level; BENCH_NODE_FLAGS adds
 * node flags to the server's process (`--max-semi-space-size=1`, ...).
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Console, Effect, Option, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Pool } from "undici"
import WebSocket from "ws"
import { buildEnvelope } from "../src/index.js"
import { Envelope } from "../src/schema/Envelope.js"
import { formatNumber, hasFlag, intOption, latencies, ms, perS, printComparison, printResult, ratio, textOption } from "./report.js"
import {
  connectNats,
  drive,
  type Figures,
  jetStreamRun,
  makeRun,
  onDelivery,
  onFulfilled,
  payload,
  routerConfig,
  routerRun,
  type Run,
  sqliteLog,
  tempDatabases
} from "./router.js"
import type { ServerProcessConfig } from "./serverProcess.js"
import { EventLogSqlite } from "../src/node.js"
import { summarize } from "./profile.js"

const inFlights = [1, 100, 1_000] as const
type InFlight = (typeof inFlights)[number]

const targetVsJetStream = 1.0
const targetVsInProcess = 0.5
const targetIdleRssMb = 100
const idleConsumers = 1_000
/** The producers' connections when they batch: each carries a request of up to 1,024 sends. */
const batchConnections = 4

/**
 * How long an idle keep-alive connection stays open, on both ends. The
 * server's default (5 s) is shorter than a producer may wait for its message
 * to be FULFILLED at 1,000 in flight on a loaded machine: connections would
 * close and reopen mid-run, and the handshakes (and a full accept queue)
 * would be measured instead of the messages.
 */
const keepAliveMs = 60_000

/** Far above what the bench sends: the limit must not be what is measured. */
const benchRateLimit = { ratePerSecond: 1_000_000_000, burst: 1_000_000_000 }

// ---------------------------------------------------------------------------
// The server, in a child process

export interface ServerHandle {
  readonly url: string
  readonly wsUrl: string
  /** SW4RM's gRPC port, when the server was started with it. */
  readonly grpcPort: number | undefined
  readonly pid: number
  /** The server's `process.memoryUsage()`, after a full collection when `collect` (the child runs with `--expose-gc`). */
  readonly memory: (collect: boolean) => Promise<NodeJS.MemoryUsage>
  /** The server's `process.cpuUsage()`. */
  readonly cpu: () => Promise<NodeJS.CpuUsage>
  /** Starts the server's CPU profiler; `stop` writes the profile to `file`. */
  readonly profile: {
    readonly start: () => Promise<void>
    readonly stop: (file: string) => Promise<void>
  }
}

const serverScript = fileURLToPath(new URL("./serverProcess.js", import.meta.url))

/** Asks the child something over IPC and waits for the answer of the same type. */
const ask = <A>(
  child: ChildProcess,
  message: { readonly type: string; readonly [field: string]: unknown },
  answer: string,
  pick: (reply: any) => A
) =>
  new Promise<A>((resolve, reject) => {
    const onMessage = (reply: any) => {
      if (reply?.type !== answer) return
      child.off("message", onMessage)
      child.off("exit", onExit)
      if (reply.error !== undefined) reject(new Error(reply.error))
      else resolve(pick(reply))
    }
    const onExit = (code: number | null) => reject(new Error(`the server exited (${code}) before answering ${message.type}`))
    child.on("message", onMessage)
    child.once("exit", onExit)
    child.send(message)
  })

export const startServer = (filename: string, durability: "full" | "normal", options: { readonly grpc?: boolean } = {}) =>
  Effect.acquireRelease(
    Effect.tryPromise(() =>
      new Promise<{ handle: ServerHandle; child: ChildProcess }>((resolve, reject) => {
        const config: ServerProcessConfig = {
          filename,
          durability,
          runtime: routerConfig,
          server: { rateLimit: benchRateLimit, idleTimeoutMs: keepAliveMs },
          grpc: options.grpc === true ? { rateLimit: benchRateLimit } : undefined
        }
        const child = spawn(process.execPath, [...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean), "--expose-gc", serverScript, JSON.stringify(config)], {
          stdio: ["ignore", "inherit", "inherit", "ipc"]
        })
        const onExit = (code: number | null) => reject(new Error(`the server exited (${code}) before listening`))
        child.once("exit", onExit)
        child.once("message", (message: any) => {
          child.off("exit", onExit)
          if (message?.type !== "ready") return reject(new Error(`unexpected message from the server: ${JSON.stringify(message)}`))
          const url = `http://127.0.0.1:${message.port}`
          resolve({
            child,
            handle: {
              url,
              wsUrl: `ws://127.0.0.1:${message.port}`,
              grpcPort: message.grpcPort,
              pid: child.pid!,
              cpu: () => ask(child, { type: "cpu" }, "cpu", (reply) => reply.usage),
              memory: (collect) => ask(child, { type: "memory", collect }, "memory", (reply) => reply.usage),
              profile: {
                start: () => ask(child, { type: "profile-start" }, "profile-started", () => undefined),
                stop: (file) => ask(child, { type: "profile-stop", file }, "profile-stopped", () => undefined)
              }
            }
          })
        })
      })
    ),
    ({ child }) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve()
          const kill = setTimeout(() => child.kill("SIGKILL"), 10_000)
          child.once("exit", () => {
            clearTimeout(kill)
            resolve()
          })
          child.kill("SIGTERM")
        })
      )
  ).pipe(Effect.map(({ handle }) => handle))

// ---------------------------------------------------------------------------
// Clients: producers over keep-alive HTTP, one consumer over a WebSocket

const json = { "content-type": "application/json" }

export const post = (pool: Pool, path: string, body: string) =>
  Effect.tryPromise(async () => {
    const response = await pool.request({ path, method: "POST", headers: json, body })
    const text = await response.body.text()
    if (response.statusCode !== 200) throw new Error(`POST ${path}: ${response.statusCode} ${text}`)
  })

/**
 * Sends made in the same turn of the event loop, POSTed together to
 * `/messages/batch` (at most 1,024 a request), as a client library
 * coalesces what its callers send at once (nats.js writes all the publishes
 * of a turn in one write). Each send still waits for its own receipt.
 */
export const batchSender = (pool: Pool) => {
  let queue: Array<{ readonly body: string; readonly done: (error?: Error) => void }> = []
  const stats = { requests: 0, sends: 0 }
  const post = (batch: typeof queue) => {
    stats.requests++
    stats.sends += batch.length
    return pool.request({
      path: "/messages/batch",
      method: "POST",
      headers: json,
      body: `{"sends":[${batch.map((send) => send.body).join(",")}]}`
    }).then(async (response) => {
      const text = await response.body.text()
      if (response.statusCode !== 200) throw new Error(`POST /messages/batch: ${response.statusCode} ${text}`)
      const results = JSON.parse(text) as Array<{ ok: boolean; error?: unknown }>
      batch.forEach((send, i) => send.done(results[i]?.ok ? undefined : new Error(`send refused: ${JSON.stringify(results[i])}`)))
    }).catch((error) => batch.forEach((send) => send.done(error)))
  }
  const flush = () => {
    const all = queue
    queue = []
    for (let at = 0; at < all.length; at += 1024) post(all.slice(at, at + 1024))
  }
  const send = (body: string) =>
    Effect.async<void, Error>((resume) => {
      if (queue.length === 0) setImmediate(flush)
      queue.push({ body, done: (error) => resume(error === undefined ? Effect.void : Effect.fail(error)) })
    })
  return { send, stats }
}

export const register = (pool: Pool, agent_id: string) => post(pool, "/agents", JSON.stringify({ agent_id, name: agent_id }))

/** The JSON body of `POST /messages` for message `i` of a run: the encoded envelope, its id and sequence changed. */
export const sendBodies = (producer_id: string, to: string, prefix: string) => {
  const template = Schema.encodeSync(Envelope)(buildEnvelope({ producer_id, payload }, "template", Date.now()))
  return (i: number) => {
    const message_id = `${prefix}-${i}`
    return JSON.stringify({
      to,
      envelope: { ...template, message_id, correlation_id: message_id, sequence_number: i + 1 }
    })
  }
}

const indexOf = (message_id: string) => Number(message_id.slice(message_id.lastIndexOf("-") + 1))

export const openSocket = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise(() =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(url, { perMessageDeflate: false })
        socket.once("open", () => {
          socket.off("error", reject)
          resolve(socket)
        })
        socket.once("error", reject)
      })
    ),
    (socket) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          if (socket.readyState === WebSocket.CLOSED) return resolve()
          socket.once("close", () => resolve())
          socket.close()
        })
      )
  )

/** The ACKs of one read's deliveries leave in one write, as the server's deliveries came. */
const corkUntilNextTick = (socket: WebSocket) => {
  const connection = (socket as unknown as { _socket?: import("node:net").Socket })._socket
  if (connection === undefined || connection.writableCorked > 0) return
  connection.cork()
  process.nextTick(() => connection.uncork())
}

/** Takes each delivery, acknowledges it FULFILLED on the socket, and counts it FULFILLED once the server says `acked`. */
export const consume = (socket: WebSocket, run: Run) => {
  socket.on("message", (data: Buffer) => {
    const frame = JSON.parse(data.toString())
    switch (frame.type) {
      case "delivery": {
        const message_id: string = frame.envelope.message_id
        onDelivery(run, indexOf(message_id))
        corkUntilNextTick(socket)
        socket.send(`{"type":"ack","message_id":${JSON.stringify(message_id)},"stage":"FULFILLED","delivery_seq":${frame.delivery_seq}}`)
        return
      }
      case "acked": {
        const i = indexOf(frame.receipt.message_id)
        if (run.isFulfilled[i] === 0) onFulfilled(run, i)
        return
      }
      case "error":
        run.failure = `ack refused: ${JSON.stringify(frame.error)}`
        return
    }
  })
  socket.on("close", (code, reason) => {
    if (run.fulfilled < run.count) run.failure = `the consumer's socket closed: ${code} ${String(reason)}`
  })
}

let runs = 0

export interface ServerFigures extends Figures {
  /** CPU time (user and system) the server process spent per message during the run, in µs. */
  readonly serverCpuUs: number
  /** The same of the bench process: the producers and the consumer. */
  readonly clientCpuUs: number
  /** HTTP connections the producers opened during the run (after a warm-up at the same concurrency: none, unless some were closed). */
  readonly connects: number
}

/**
 * The producers' keep-alive connections to `server`: at most `connections`,
 * opened on first use and kept while they are used (`keepAliveMs`).
 */
export const producerPool = (server: ServerHandle, connections: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // A server slow to accept a thousand connections at once is measured, not failed.
      const pool = new Pool(server.url, {
        connections,
        pipelining: 1,
        keepAliveTimeout: keepAliveMs,
        keepAliveMaxTimeout: keepAliveMs,
        connectTimeout: 60_000
      })
      const counted = { pool, connects: 0 }
      pool.on("connect", () => counted.connects++)
      return counted
    }),
    ({ pool }) => Effect.promise(() => pool.close())
  )

/** One measured run against a running server: fresh agents, `count` messages, `inFlight` at a time. */
export const serverRun = (
  server: ServerHandle,
  producers: { readonly pool: Pool; readonly connects: number },
  label: string,
  inFlight: number,
  count: number,
  mode: "single" | "batch"
) =>
  Effect.gen(function*() {
    const { pool } = producers
    const tag = `r${runs++}`
    const producer = `bench-producer-${tag}`
    const consumer = `bench-consumer-${tag}`
    yield* register(pool, producer)
    yield* register(pool, consumer)
    const run = makeRun(count)
    const socket = yield* openSocket(`${server.wsUrl}/agents/${consumer}/stream`)
    consume(socket, run)
    const body = sendBodies(producer, consumer, tag)
    const connectsBefore = producers.connects
    const serverBefore = yield* Effect.promise(() => server.cpu())
    const clientBefore = process.cpuUsage()
    const batched = batchSender(pool)
    const figures = yield* drive(
      label,
      run,
      inFlight,
      mode === "single" ? (i) => post(pool, "/messages", body(i)) : (i) => batched.send(body(i))
    )
    if (mode === "batch") {
      yield* Console.log(`  ${label}: ${batched.stats.requests} batch requests, ${(batched.stats.sends / Math.max(1, batched.stats.requests)).toFixed(1)} sends each on average`)
    }
    const client = process.cpuUsage(clientBefore)
    const serverAfter = yield* Effect.promise(() => server.cpu())
    const usPerMessage = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / count
    return {
      ...figures,
      serverCpuUs: usPerMessage({
        user: serverAfter.user - serverBefore.user,
        system: serverAfter.system - serverBefore.system
      }),
      clientCpuUs: usPerMessage(client),
      connects: producers.connects - connectsBefore
    } satisfies ServerFigures
  }).pipe(Effect.scoped)

/** The server's RSS with `idleConsumers` agents registered, then each with its WebSocket stream open and idle. */
export const idleMemory = (server: ServerHandle) =>
  Effect.gen(function*() {
    const mb = (bytes: number) => bytes / (1024 * 1024)
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => new Pool(server.url, { connections: 16 })),
      (pool) => Effect.promise(() => pool.close())
    )
    const started = yield* Effect.promise(() => server.memory(false))
    const ids = Array.from({ length: idleConsumers }, (_, i) => `idle-${i}`)
    yield* Effect.forEach(ids, (id) => register(pool, id), { concurrency: 16, discard: true })
    yield* Effect.sleep("1 second")
    const registered = yield* Effect.promise(() => server.memory(false))
    const sockets = yield* Effect.forEach(ids, (id) => openSocket(`${server.wsUrl}/agents/${id}/stream`), {
      concurrency: 50
    })
    yield* Effect.sleep("2 seconds")
    const connected = yield* Effect.promise(() => server.memory(false))
    const collected = yield* Effect.promise(() => server.memory(true))
    const open = sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length
    if (open !== idleConsumers) return yield* Effect.fail(new Error(`only ${open} of ${idleConsumers} idle sockets stayed open`))
    return {
      startedRssMb: mb(started.rss),
      registeredRssMb: mb(registered.rss),
      connectedRssMb: mb(connected.rss),
      connectedHeapMb: mb(connected.heapUsed),
      collectedRssMb: mb(collected.rss),
      collectedHeapMb: mb(collected.heapUsed)
    }
  }).pipe(Effect.scoped)

/**
 * One level of the server bench over HTTP: a fresh server on `filename`,
 * warmed up (which opens the connections the run uses, so that the run
 * measures messages, not handshakes), then measured; with `profileDir`, the
 * measured run's CPU profile of the server is written there and summarised.
 */
export const measureServer = (
  filename: string,
  durability: "full" | "normal",
  label: string,
  inFlight: number,
  count: number,
  options: {
    readonly mode: "single" | "batch"
    readonly maxConnections: number | undefined
    readonly warmup: number
    readonly profileDir?: string | undefined
  }
) =>
  Effect.gen(function*() {
    const server = yield* startServer(filename, durability)
    const { mode } = options
    const producers = yield* producerPool(
      server,
      Math.min(inFlight, options.maxConnections ?? (mode === "batch" ? batchConnections : inFlight))
    )
    yield* serverRun(server, producers, `warmup ${label} ${inFlight}`, Math.max(100, inFlight), options.warmup, mode)
    if (options.profileDir !== undefined) yield* Effect.promise(() => server.profile.start())
    const figures = yield* serverRun(server, producers, `${label} ${inFlight}`, inFlight, count, mode)
    if (options.profileDir !== undefined) yield* profileStop(server, options.profileDir, `${label}-${inFlight}`)
    return figures
  }).pipe(Effect.scoped)

/** Stops the server's CPU profiler, writes the profile to `dir` and prints where the time went. */
export const profileStop = (server: ServerHandle, dir: string, name: string) =>
  Effect.gen(function*() {
    const file = `${dir}/${name}-${Date.now()}.cpuprofile`
    yield* Effect.promise(() => server.profile.stop(file))
    yield* Console.log(`  server CPU profile (measured run only): ${file}`)
    yield* Effect.flatMap(Effect.promise(() => summarize(file, 25)), Console.log)
  })

// ---------------------------------------------------------------------------

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const messages = (yield* Effect.try(() => intOption(args, "messages", "BENCH_MESSAGES"))) ?? 20_000
    const serialMessages = (yield* Effect.try(() => intOption(args, "serial-messages", "BENCH_SERIAL_MESSAGES"))) ??
      2_000
    const maxConnections = yield* Effect.try(() => intOption(args, "connections", "BENCH_CONNECTIONS"))
    const durability = textOption(args, "durability") === "normal" || hasFlag(args, "normal") ? "normal" : "full"
    const profileDir = textOption(args, "profile")
    const profileInFlight = Number(textOption(args, "profile-in-flight") ?? 1_000)
    const countFor = (inFlight: InFlight) => inFlight === 1 ? serialMessages : messages
    const single = hasFlag(args, "single")
    const modeFor = (inFlight: InFlight) => single || inFlight === 1 ? "single" as const : "batch" as const
    const warmup = Math.min(2_000, messages)

    const { fresh: sqlite } = yield* tempDatabases("switchboard-bench-server-")
    const inProcessLog = (filename: string) =>
      durability === "full" ? sqliteLog(filename) : EventLogSqlite.layer({ filename, durability })

    const natsUrl = process.env.SWITCHBOARD_NATS_URL ?? "127.0.0.1:4222"
    const nats = Option.getRight(yield* connectNats(natsUrl))

    yield* Console.log(
      `server: ${formatNumber(messages)} messages per configuration (${formatNumber(serialMessages)} with 1 in flight), ` +
        `${payload.length}-byte payloads; the server in its own process on SQLite (WAL, durability ${durability}), ` +
        `rate limit raised to ${formatNumber(benchRateLimit.ratePerSecond)}/s and idle keep-alive to ${keepAliveMs / 1_000} s for the bench; producers send ` +
        `over keep-alive HTTP (${single ? "each its own POST /messages" : `with 1 in flight each its own POST /messages, else the sends of a turn as one POST /messages/batch over ${batchConnections} connections`}${maxConnections === undefined ? "" : `, at most ${maxConnections} connections`}), ` +
        `one consumer acks each delivery on its WebSocket; a fresh server and file per configuration, warmed up with ${
          formatNumber(warmup)
        } messages`
    )
    yield* Console.log(
      Option.isNone(nats)
        ? `JetStream baseline skipped: no NATS server with JetStream reachable at ${natsUrl}`
        : `JetStream baseline at ${natsUrl}: file storage, js.publish awaiting its PubAck, durable pull consumer acking with ackAck`
    )
    yield* Console.log(`in-process baseline: the router on SQLite (durability ${durability}), its consumer acking each chunk with ackMany`)

    // The server's memory first, on a server that has carried no traffic.
    const memory = yield* sqlite((filename) => Effect.flatMap(startServer(filename, durability), idleMemory).pipe(Effect.scoped))
    yield* Console.log(
      `server memory: ${memory.startedRssMb.toFixed(1)} MB RSS at start, ${memory.registeredRssMb.toFixed(1)} MB with ${
        formatNumber(idleConsumers)
      } agents registered, ${memory.connectedRssMb.toFixed(1)} MB with each one's WebSocket open and idle ` +
        `(heap used ${memory.connectedHeapMb.toFixed(1)} MB; after a full GC ${memory.collectedRssMb.toFixed(1)} MB RSS, heap ${
          memory.collectedHeapMb.toFixed(1)
        } MB): ${((memory.connectedRssMb - memory.registeredRssMb) * 1024 / idleConsumers).toFixed(1)} KB per socket  (target < ${targetIdleRssMb} MB: ${
          memory.connectedRssMb < targetIdleRssMb ? "met" : "MISSED"
        })`
    )

    // Warm-ups of the baselines, as the router bench does; each server warms up on its own.
    yield* sqlite((filename) => routerRun("warmup in-process", inProcessLog(filename), 100, warmup))
    if (Option.isSome(nats)) yield* jetStreamRun(nats.value, "warmup jetstream", 100, warmup, "confirmed")

    const results: Record<string, Figures> = {}
    const serverCosts: Record<number, ServerFigures> = {}
    for (const inFlight of inFlights) {
      const count = countFor(inFlight)
      yield* Console.log(`${inFlight} in flight, ${formatNumber(count)} messages:`)
      const measured: Array<[string, Figures]> = []
      const figures = yield* sqlite((filename) =>
        measureServer(filename, durability, "server", inFlight, count, {
          mode: modeFor(inFlight),
          maxConnections,
          warmup,
          profileDir: profileDir !== undefined && inFlight === profileInFlight ? profileDir : undefined
        })
      )
      serverCosts[inFlight] = figures
      measured.push(["server", figures])
      if (Option.isSome(nats)) {
        measured.push(["jetstream", yield* jetStreamRun(nats.value, `jetstream ${inFlight}`, inFlight, count, "confirmed")])
      }
      measured.push([
        "inprocess",
        yield* sqlite((filename) => routerRun(`in-process ${inFlight}`, inProcessLog(filename), inFlight, count))
      ])
      const js = measured.find(([name]) => name === "jetstream")?.[1]
      const inProcess = measured.find(([name]) => name === "inprocess")![1]
      for (const [name, figures] of measured) {
        results[`${name}_${inFlight}`] = figures
        const against = name !== "server"
          ? ""
          : `   vs JetStream ${js === undefined ? "-" : (figures.msgsPerS / js.msgsPerS).toFixed(3)}` +
            `   vs in-process ${(figures.msgsPerS / inProcess.msgsPerS).toFixed(3)}`
        yield* Console.log(`  ${name.padEnd(10)} ${perS(figures.msgsPerS)}   ${latencies(figures)}${against}`)
      }
      const costs = serverCosts[inFlight]
      yield* Console.log(
        `  server CPU ${formatNumber(costs.serverCpuUs)} µs per message (the bench's clients ${
          formatNumber(costs.clientCpuUs)
        } µs); producers opened ${costs.connects} connections during the run`
      )
    }

    const server1000 = results["server_1000"].msgsPerS
    const js1000 = results["jetstream_1000"]?.msgsPerS
    const inProcess1000 = results["inprocess_1000"].msgsPerS
    if (js1000 !== undefined) {
      yield* printComparison({ label: "server 1000 vs JS", figure: server1000, baseline: js1000, target: targetVsJetStream, unit: "msgs/s" })
    }
    yield* printComparison({
      label: "server 1000 vs in-proc",
      figure: server1000,
      baseline: inProcess1000,
      target: targetVsInProcess,
      unit: "msgs/s"
    })
    const serial = results["server_1"]
    yield* Console.log(`server, 1 in flight: send to delivery ${latencies(serial)}`)

    const figures: Record<string, number> = {}
    for (const [key, f] of Object.entries(results)) figures[`${key}_msgs_per_s`] = Math.round(f.msgsPerS)
    for (const [key, f] of Object.entries(results)) {
      figures[`${key}_p50_ms`] = ms(f.p50Ms)
      figures[`${key}_p99_ms`] = ms(f.p99Ms)
    }
    for (const inFlight of inFlights) {
      figures[`server_${inFlight}_cpu_us_per_msg`] = Math.round(serverCosts[inFlight].serverCpuUs)
      figures[`client_${inFlight}_cpu_us_per_msg`] = Math.round(serverCosts[inFlight].clientCpuUs)
    }
    const mb = (value: number) => Math.round(value * 10) / 10
    figures.idle_ws_1000_rss_mb = mb(memory.connectedRssMb)
    figures.idle_ws_1000_heap_mb = mb(memory.connectedHeapMb)
    figures.idle_ws_1000_rss_after_gc_mb = mb(memory.collectedRssMb)
    figures.registered_1000_rss_mb = mb(memory.registeredRssMb)
    figures.started_rss_mb = mb(memory.startedRssMb)
    figures.messages = messages
    figures.serial_messages = serialMessages
    if (maxConnections !== undefined) figures.max_connections = maxConnections

    const ratios: Record<string, number> = {}
    if (js1000 !== undefined) ratios.vs_jetstream_1000 = ratio(server1000, js1000)
    ratios.vs_inprocess_1000 = ratio(server1000, inProcess1000)
    for (const inFlight of inFlights) {
      const server = results[`server_${inFlight}`].msgsPerS
      const js = results[`jetstream_${inFlight}`]
      if (inFlight !== 1_000 && js !== undefined) ratios[`vs_jetstream_${inFlight}`] = ratio(server, js.msgsPerS)
      if (inFlight !== 1_000) ratios[`vs_inprocess_${inFlight}`] = ratio(server, results[`inprocess_${inFlight}`].msgsPerS)
    }
    ratios.idle_ws_1000_rss_vs_registered = ratio(memory.connectedRssMb, memory.registeredRssMb)
    ratios.idle_ws_1000_rss_vs_target = ratio(memory.connectedRssMb, targetIdleRssMb)
    yield* printResult({ bench: "server", figures, ratios })
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
