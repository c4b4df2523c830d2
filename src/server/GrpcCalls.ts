/**
 * grpc-js's handlers as Effects: what a call's handler does is an Effect run
 * on the server's runtime, with the caller (`Caller`, from the bearer key in
 * the `authorization` metadata, as over HTTP) and the request decoded by a
 * Schema; what it answers, or fails with, becomes the call's response or its
 * status (`GrpcStatus.ts`). A failure is a status, never a throw into
 * grpc-js, and never another call's failure. A call the client cancels
 * interrupts its fiber.
 */
import type * as Grpc from "@grpc/grpc-js"
import { Metadata, status as Code } from "@grpc/grpc-js"
import { Cause, Clock, Effect, Either, Exit, type Fiber, FiberId, Option, type Scope } from "effect"
import { ValidationError } from "../schema/Errors.js"
import type { Principal } from "../schema/Keys.js"
import { Caller } from "./Api.js"
import type { Authenticate } from "./Auth.js"
import { Undecodable } from "./GrpcProto.js"
import { asciiValue, refusal, type Status, statusOf } from "./GrpcStatus.js"

/** Runs an effect on the server's runtime, as a fiber of its own. */
export type Run<R> = <A, E>(effect: Effect.Effect<A, E, R>) => Fiber.RuntimeFiber<A, E>

/** A request decoder: bytes that did not decode, or a message that breaks a rule, are a ValidationError. */
export type Decode<A> = (input: unknown) => Either.Either<A, ValidationError>

/** The bearer key of a call's metadata; empty when there is none. */
const tokenOf = (metadata: Grpc.Metadata) => {
  const [value] = metadata.get("authorization")
  const header = typeof value === "string" ? value : ""
  return header.toLowerCase().startsWith("bearer ") ? header.slice(7).trim() : ""
}

/** The client's address without its port (`127.0.0.1:5000`, `[::1]:5000`), for an open server's per-address limit. */
const addressOf = (peer: string) => Option.some(peer.replace(/^\[(.*)\](:\d+)?$/, "$1").replace(/^([^:]+):\d+$/, "$1"))

export const decodeRequest = <A>(input: unknown, decode: Decode<A>, name: string) =>
  input instanceof Undecodable
    ? Either.left(ValidationError.single("request", "", `is not a ${name} message: ${input.reason}`))
    : decode(input)

export const stopping = refusal(Code.UNAVAILABLE, "INTERNAL_ERROR", "the server is stopping; try again", true)

/** The status a call that did not succeed ends with. */
export const statusOfCause = (cause: Cause.Cause<unknown>): Status => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return statusOf(failure.value)
  return Cause.isInterruptedOnly(cause) ? stopping : statusOf(undefined)
}

/** The caller of a call, authenticated as over HTTP. */
export const callerOf = (authenticate: Authenticate["Type"], call: { readonly metadata: Grpc.Metadata; getPeer(): string }) =>
  authenticate(tokenOf(call.metadata), addressOf(call.getPeer()))

/** How long a call may still run by its deadline, on the runtime's clock; undefined when it has none. */
export const remainingMs = (call: { getDeadline(): Grpc.Deadline }) =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const deadline = call.getDeadline()
    const at = deadline instanceof Date ? deadline.getTime() : deadline
    return Number.isFinite(at) ? Math.max(0, at - now) : undefined
  })

/**
 * Response headers, sent before the answer: what a caller needs while it
 * waits, or if it stops waiting (the id of the task or the question it
 * made), where SW4RM's response message has no place for it.
 */
export const sendHeaders = (call: { sendMetadata(metadata: Grpc.Metadata): void }, headers: Record<string, string>) =>
  Effect.sync(() => {
    const metadata = new Metadata()
    for (const [key, value] of Object.entries(headers)) metadata.set(key, asciiValue(value))
    call.sendMetadata(metadata)
  })

/** A unary method: decode, handle as the caller, answer or fail with a status. */
export const unary = <Req, Res, R>(
  run: Run<R>,
  authenticate: Authenticate["Type"],
  name: string,
  decode: Decode<Req>,
  handle: (request: Req, call: Grpc.ServerUnaryCall<unknown, Res>) => Effect.Effect<Res, unknown, R | Caller>
): Grpc.handleUnaryCall<unknown, Res> =>
(call, callback) => {
  const program = Effect.gen(function*() {
    const caller: Principal = yield* callerOf(authenticate, call)
    const request = yield* decodeRequest(call.request, decode, name)
    return yield* Effect.provideService(handle(request, call), Caller, caller)
  }).pipe(
    Effect.onExit((exit) =>
      Effect.gen(function*() {
        if (Exit.isSuccess(exit)) return callback(null, exit.value)
        if (Cause.isDie(exit.cause)) yield* Effect.logError(`gRPC ${name}: a defect`, exit.cause)
        callback(statusOfCause(exit.cause))
      })
    )
  )
  const fiber = run(Effect.exit(program))
  call.once("cancelled", () => fiber.unsafeInterruptAsFork(FiberId.none))
}

/**
 * A server-streaming method: decode, then `handle` as the caller, in a
 * scope that lasts as long as the effect does; the handler writes to the
 * call, and ends once the call has ended (cancelled by the client) or its
 * own stream has. A failure before or while streaming ends the call with
 * its status.
 */
export const serverStream = <Req, Res, R>(
  run: Run<R>,
  authenticate: Authenticate["Type"],
  name: string,
  decode: Decode<Req>,
  handle: (request: Req, call: Grpc.ServerWritableStream<unknown, Res>) => Effect.Effect<void, unknown, R | Caller | Scope.Scope>
): Grpc.handleServerStreamingCall<unknown, Res> =>
(call) => {
  const fail = (status: Status) => {
    if (!call.cancelled && call.writable) call.emit("error", status)
  }
  const program = Effect.gen(function*() {
    const caller: Principal = yield* callerOf(authenticate, call)
    const request = yield* decodeRequest(call.request, decode, name)
    yield* Effect.provideService(Effect.scoped(handle(request, call)), Caller, caller)
  }).pipe(
    Effect.onExit((exit) =>
      Effect.gen(function*() {
        if (Exit.isSuccess(exit)) {
          if (!call.cancelled && call.writable) call.end()
          return
        }
        if (Cause.isDie(exit.cause)) yield* Effect.logError(`gRPC ${name}: a defect`, exit.cause)
        fail(statusOfCause(exit.cause))
      })
    )
  )
  const fiber = run(Effect.exit(program))
  call.once("cancelled", () => fiber.unsafeInterruptAsFork(FiberId.none))
}
