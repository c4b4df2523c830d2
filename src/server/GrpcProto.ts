/**
 * SW4RM's services as gRPC service definitions, from the project's own
 * `.proto` files (`proto/` at the package's root, shipped with it): the
 * server is built from the very files a client is given.
 *
 * The definitions' request decoders never throw: bytes that are not the
 * request message (a truncated field, a wrong wire type) become an
 * `Undecodable`, which the handler answers INVALID_ARGUMENT like any other
 * bad input. grpc-js would answer a throwing decoder INTERNAL, the class of
 * a server's own fault.
 */
import type * as Grpc from "@grpc/grpc-js"
import * as ProtoLoader from "@grpc/proto-loader"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** What the decoder gives every field (see `src/schema/Sw4rm.ts`). */
export const loaderOptions: ProtoLoader.Options = { keepCase: true, longs: Number, defaults: true, oneofs: true }

/** The `.proto` files of the services served. */
export const protoFiles = [
  "router.proto",
  "registry.proto",
  "scheduler.proto",
  "worktree.proto",
  "negotiation_room.proto",
  "hitl.proto"
] as const

/**
 * The folder of the `.proto` files: `proto/` beside the nearest package root
 * up from this module (`src/server/` and `dist/server/` alike, and the
 * benches' compiled copy), unless `SWITCHBOARD_PROTO_DIR` names another.
 */
export const protoDir = (): string => {
  const given = process.env.SWITCHBOARD_PROTO_DIR
  if (given !== undefined && given !== "") return given
  for (let dir = dirname(fileURLToPath(import.meta.url));; dir = dirname(dir)) {
    if (existsSync(join(dir, "proto", "router.proto"))) return join(dir, "proto")
    if (dirname(dir) === dir) throw new Error("the SW4RM .proto files (proto/router.proto) are not beside this package")
  }
}

/** Bytes that do not decode as the request message, and why. */
export class Undecodable {
  constructor(readonly reason: string) {}
}

type MethodDefinition = Grpc.MethodDefinition<unknown, unknown>

const constants = new WeakSet<object>()

/**
 * An answer given as it is to many calls (`{ accepted: true }`,
 * `{ recorded: true }`): serialized once per method, not once per call,
 * as nearly every call of the hot methods answers one of these.
 */
export const constant = <A extends object>(answer: A): A => {
  constants.add(answer)
  return Object.freeze(answer)
}

const safely = (method: MethodDefinition): MethodDefinition => ({
  ...method,
  responseSerialize: ((serialize) => {
    const cached = new WeakMap<object, Buffer>()
    return (value: unknown) => {
      if (typeof value !== "object" || value === null || !constants.has(value)) return serialize(value)
      let bytes = cached.get(value)
      if (bytes === undefined) {
        bytes = serialize(value)
        cached.set(value, bytes)
      }
      return bytes
    }
  })(method.responseSerialize),
  requestDeserialize: (bytes: Buffer) => {
    try {
      return method.requestDeserialize(bytes)
    } catch (error) {
      return new Undecodable(error instanceof Error ? error.message : "not a protobuf message of this type")
    }
  }
})

const serviceOf = (definition: ProtoLoader.PackageDefinition, name: string): Grpc.ServiceDefinition =>
  Object.fromEntries(
    Object.entries(definition[name] as Record<string, MethodDefinition>).map(([method, spec]) => [method, safely(spec)])
  )

export interface Services {
  readonly router: Grpc.ServiceDefinition
  readonly registry: Grpc.ServiceDefinition
  readonly scheduler: Grpc.ServiceDefinition
  readonly worktree: Grpc.ServiceDefinition
  readonly negotiation: Grpc.ServiceDefinition
  readonly hitl: Grpc.ServiceDefinition
}

/** SW4RM's six services (router, registry, and the four of coordination), loaded from `dir`. */
export const load = (dir: string = protoDir()): Services => {
  const definition = ProtoLoader.loadSync([...protoFiles], { ...loaderOptions, includeDirs: [dir] })
  return {
    router: serviceOf(definition, "sw4rm.router.RouterService"),
    registry: serviceOf(definition, "sw4rm.registry.RegistryService"),
    scheduler: serviceOf(definition, "sw4rm.scheduler.SchedulerService"),
    worktree: serviceOf(definition, "sw4rm.worktree.WorktreeService"),
    negotiation: serviceOf(definition, "sw4rm.negotiation_room.NegotiationRoomService"),
    hitl: serviceOf(definition, "sw4rm.hitl.HitlService")
  }
}
