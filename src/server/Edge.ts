/**
 * What every request meets before and after its handler: the body bound,
 * and the translation of the platform's own failures into the runtime's
 * typed errors. A body that is not JSON, a path or query that does not
 * decode, a body over the limit: each becomes the problem a client can act
 * on (400 naming the field, 413), never a 500, and none reaches the loop.
 */
import {
  FileSystem,
  type HttpApp,
  HttpApiError,
  HttpIncomingMessage,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cause, Effect, Option } from "effect"
import { clip } from "../internal/bounds.js"
import { OversizePayload, RouteNotFound, ValidationError, ValidationIssue } from "../schema/Errors.js"
import { isTypedError, problemOf, retryAfterStatuses } from "./Problem.js"

/** `maxBytes exceeded` is how the Node platform says a body ran over `MaxBodySize`. */
type App = Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>

const isOversize = (cause: unknown) => cause instanceof Error && cause.message === "maxBytes exceeded"

const fromDecodeError = (error: HttpApiError.HttpApiDecodeError) =>
  new ValidationError({
    subject: "request",
    issues: error.issues.slice(0, 32).map((issue) =>
      new ValidationIssue({ path: clip(issue.path.map(String).join("."), 256), message: clip(issue.message, 512) })
    )
  })

/** The problem answer of a typed error: its status, and for 429 and 503 when to retry. */
export const problemResponse = (error: unknown) => {
  const problem = problemOf(error)
  const response = HttpServerResponse.unsafeJson(problem, { status: problem.status, contentType: "application/problem+json" })
  if (!retryAfterStatuses.has(problem.status)) return response
  const waitMs = typeof (error as { retry_after_ms?: unknown }).retry_after_ms === "number"
    ? (error as { retry_after_ms: number }).retry_after_ms
    : 1000
  return HttpServerResponse.setHeader(response, "retry-after", String(Math.max(1, Math.ceil(waitMs / 1000))))
}

/** The platform's failures as the runtime's typed errors; anything else as it is. */
const typed = (cause: Cause.Cause<unknown>, maxBodyBytes: number, declared: number): unknown => {
  const error = Cause.squash(cause)
  if (error instanceof HttpApiError.HttpApiDecodeError) return fromDecodeError(error)
  if (HttpServerError.isServerError(error)) {
    switch (error._tag) {
      case "RouteNotFound":
        return new RouteNotFound({ method: error.request.method, url: error.request.url })
      case "RequestError":
        // The platform reads a JSON body as a defect when it is not JSON, or too long.
        return isOversize(error.cause)
          ? new OversizePayload({ size: Number.isFinite(declared) ? declared : maxBodyBytes + 1, limit: maxBodyBytes })
          : ValidationError.single("body", "", "must be a JSON document")
    }
  }
  return error
}

/**
 * Around the API's routes: a declared body over the limit is refused before
 * it is read, the body is read within the limit, and every failure is
 * answered as its problem (429 and 503 with `Retry-After`). A failure that is
 * no typed error (a bug) stays a defect, which the server answers 500.
 */
export const edge = (maxBodyBytes: number) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? NaN)
    if (declared > maxBodyBytes) return problemResponse(new OversizePayload({ size: declared, limit: maxBodyBytes }))
    return yield* (app as App).pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(maxBodyBytes))),
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
        const error = typed(cause, maxBodyBytes, declared)
        return isTypedError(error) ? Effect.succeed(problemResponse(error)) : Effect.failCause(cause)
      })
    )
  }) as HttpApp.Default
