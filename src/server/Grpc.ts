/**
 * SW4RM over gRPC (PROTOCOLS.md §1): `sw4rm.router.RouterService`,
 * `sw4rm.registry.RegistryService`, and coordination's
 * `sw4rm.scheduler.SchedulerService`, `sw4rm.worktree.WorktreeService`,
 * `sw4rm.negotiation_room.NegotiationRoomService` and
 * `sw4rm.hitl.HitlService`, on one port, over the runtime's services in
 * context, so that an unmodified SW4RM client uses Switchboard as its
 * router, registry, scheduler, worktree, negotiation and HITL services by
 * address. The same runtime, store and keys as the HTTP API: beside
 * `Server.layer`, or alone.
 *
 * The wire is SW4RM's own `.proto` (`proto/`, loaded by `GrpcProto.ts`),
 * served by grpc-js and wrapped in Effect at the edge (`GrpcCalls.ts`):
 * below it, each call is the same service method as over HTTP.
 *
 * Closing the layer stops accepting calls, ends the streams (with
 * UNAVAILABLE, so that clients reconnect; what they had not settled goes
 * back to the mailboxes), lets unary calls in flight finish for up to
 * `drainMs`, then closes what is left.
 */
import * as Grpc from "@grpc/grpc-js"
import { Context, Data, Deferred, Effect, FiberSet, Layer } from "effect"
import type { Gateway } from "../services/Gateway.js"
import type { Hitl } from "../services/Hitl.js"
import type { Keys } from "../services/Keys.js"
import type { Negotiation } from "../services/Negotiation.js"
import type { Registry } from "../services/Registry.js"
import type { Router } from "../services/Router.js"
import type { Scheduler } from "../services/Scheduler.js"
import type { Worktrees } from "../services/Worktrees.js"
import * as Auth from "./Auth.js"
import * as GrpcHitl from "./GrpcHitl.js"
import * as GrpcNegotiation from "./GrpcNegotiation.js"
import * as GrpcProto from "./GrpcProto.js"
import * as GrpcRegistry from "./GrpcRegistry.js"
import * as GrpcRouter from "./GrpcRouter.js"
import * as GrpcScheduler from "./GrpcScheduler.js"
import * as GrpcWorktree from "./GrpcWorktree.js"

/** What the services served need of the runtime. */
export type Services = Router | Registry | Gateway | Scheduler | Worktrees | Negotiation | Hitl

export interface GrpcOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** Default 50051, SW4RM's router port; 0 picks a free port. */
  readonly port?: number | undefined
  /**
   * The largest request taken, in bytes (default 4 MiB, gRPC's own): past
   * it grpc-js refuses the call with RESOURCE_EXHAUSTED before it is read.
   * A payload within it and over the runtime's payload limit (1 MiB by
   * default) is refused as OVERSIZE_PAYLOAD.
   */
  readonly maxReceiveMessageBytes?: number | undefined
  /**
   * Per key (or per address on an open server); default 10,000 calls a
   * second, bursts of 20,000: ten times HTTP's, since SW4RM's wire has no
   * batch, and every message is a call (and its ACK another).
   */
  readonly rateLimit?: Auth.RateLimit | undefined
  /** What a stream may have written and not yet sent before its consumer counts as not reading (default 16 MiB). */
  readonly maxBufferedBytes?: number | undefined
  /** How long unary calls in flight may take to finish once the server closes (default 10 s). */
  readonly drainMs?: number | undefined
}

export const defaults = {
  host: "127.0.0.1",
  port: 50051,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  rateLimit: { ratePerSecond: 10_000, burst: 20_000 },
  drainMs: 10_000
} as const

/** Where the gRPC services listen. */
export class GrpcServer extends Context.Tag("switchboard/server/GrpcServer")<GrpcServer, {
  readonly host: string
  /** The port bound (the one picked, when asked for 0). */
  readonly port: number
}>() {}

/** The address could not be bound (in use, not an address of this machine, ...). */
export class GrpcBindError extends Data.TaggedError("GrpcBindError")<{ readonly address: string; readonly reason: string }> {
  override get message() {
    return `cannot serve gRPC on ${this.address}: ${this.reason}`
  }
}

const address = (host: string, port: number) => `${host.includes(":") ? `[${host}]` : host}:${port}`

const make = (options: GrpcOptions) =>
  Effect.gen(function*() {
    const host = options.host ?? defaults.host
    const services = yield* Effect.try({
      try: () => GrpcProto.load(),
      catch: (error) => new GrpcBindError({ address: address(host, options.port ?? defaults.port), reason: String(error) })
    })
    const authenticate = yield* Auth.Authenticate
    // Unary calls and streams apart: on closing, streams are ended, unary calls let finish.
    const calls = yield* FiberSet.make()
    const streams = yield* FiberSet.make()
    const runCall = yield* FiberSet.runtime(calls)<Router | Registry | Gateway>()
    const runStream = yield* FiberSet.runtime(streams)<Router | Registry | Gateway>()
    const router = yield* GrpcRouter.make(runCall, runStream, authenticate, { maxBufferedBytes: options.maxBufferedBytes })
    const registry = yield* GrpcRegistry.make(runCall, authenticate)
    const scheduler = yield* GrpcScheduler.make(runCall, authenticate)
    const worktree = yield* GrpcWorktree.make(runCall, authenticate)
    const negotiation = yield* GrpcNegotiation.make(runCall, authenticate)
    const hitl = yield* GrpcHitl.make(runCall, authenticate)
    const maxReceive = options.maxReceiveMessageBytes ?? defaults.maxReceiveMessageBytes
    const server = new Grpc.Server({
      "grpc.max_receive_message_length": maxReceive,
      "grpc.max_send_message_length": -1,
      // grpc-js's own call accounting (channelz), on every call and read by nothing here.
      "grpc.enable_channelz": 0
    })
    server.addService(services.router, router)
    server.addService(services.registry, registry)
    server.addService(services.scheduler, scheduler)
    server.addService(services.worktree, worktree)
    server.addService(services.negotiation, negotiation)
    server.addService(services.hitl, hitl)
    const wanted = address(host, options.port ?? defaults.port)
    const port = yield* Effect.async<number, GrpcBindError>((resume) => {
      server.bindAsync(wanted, Grpc.ServerCredentials.createInsecure(), (error, port) => {
        resume(error === null ? Effect.succeed(port) : Effect.fail(new GrpcBindError({ address: wanted, reason: error.message })))
      })
    })
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const drained = yield* Deferred.make<void>()
        server.tryShutdown(() => Deferred.unsafeDone(drained, Effect.void))
        yield* FiberSet.clear(streams)
        yield* Deferred.await(drained).pipe(
          Effect.timeoutTo({ duration: options.drainMs ?? defaults.drainMs, onTimeout: () => false, onSuccess: () => true }),
          Effect.flatMap((done) => done ? Effect.void : Effect.sync(() => server.forceShutdown()))
        )
      })
    )
    return { host, port }
  })

/**
 * The SW4RM services on `host:port`, over the runtime's services in context
 * and the server's keys, until the scope closes.
 */
export const layer = (options: GrpcOptions = {}): Layer.Layer<GrpcServer, GrpcBindError, Services | Keys> =>
  Layer.scoped(GrpcServer, make(options)).pipe(
    Layer.provide(Auth.layerAuthenticate(options.rateLimit ?? defaults.rateLimit))
  )
