/**
 * What every request meets before and after its handler: the body bound,
 * and the translation of the platform's own failures into the runtime's
 * typed errors. A body that is not JSON, a path or query that does not
 * decode, a body over the limit: each becomes the problem a client can act
 * on (400 naming the field, 413), never a 500, and none reaches the loop.
 *
 * A body is JSON, said so by its content type, in UTF-8, and nested at most
 * `maxDepth` deep. The platform would also take a form, multipart or text
 * for the same routes: that is what any web page can make a browser post to
 * a server on localhost without asking, so it is refused. Bytes that are
 * not UTF-8 are refused rather than read as U+FFFD, and a deeper body is
 * refused before Schema's decoders, which recurse once per level, meet it.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Effect, Option } from "effect"
import { Readable } from "node:stream"
import { clip, maxDepth } from "../internal/bounds.js"
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

/**
 * The problem answer of a typed error: its status, and for a retryable 429
 * or 503 when to retry. A 429 that is not retryable (a budget spent) gets no
 * `Retry-After`: waiting would not help.
 */
export const problemResponse = (error: unknown) => {
  const problem = problemOf(error)
  const response = HttpServerResponse.unsafeJson(problem, { status: problem.status, contentType: "application/problem+json" })
  if (!retryAfterStatuses.has(problem.status) || !problem.retryable) return response
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

/** `application/json`, with or without parameters: what the API decodes as JSON. */
const jsonMediaType = /^application\/json\s*(?:;|$)/i

const notJson = (contentType: string | undefined) =>
  ValidationError.single(
    "request",
    "content-type",
    contentType === undefined ? "must be application/json for a body" : `must be application/json, got ${contentType}`
  )

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/** Whether JSON `text` nests more than `limit` arrays and objects, counted in one pass without parsing it. */
const nestsDeeper = (text: string, limit: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // a backslash: the next character is escaped
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      if (++depth > limit) return true
    } else if (c === 93 || c === 125) depth--
  }
  return false
}

/**
 * The body's bytes, at most `maxBytes` of them. From Node, read in one pass:
 * the platform's own reader copies all it has read again for each chunk, a
 * cost that grows with the square of the body (a batch of sends is large).
 */
const bytesOf = (
  request: HttpServerRequest.HttpServerRequest,
  maxBytes: number
): Effect.Effect<Uint8Array, unknown> => {
  const source = request.source
  if (!(source instanceof Readable)) return Effect.map(request.arrayBuffer, (buffer) => new Uint8Array(buffer))
  return Effect.async((resume) => {
    const chunks: Array<Buffer> = []
    let bytes = 0
    const stop = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    const finish = (outcome: Effect.Effect<Uint8Array, OversizePayload | ValidationError>) => {
      stop()
      resume(outcome)
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > maxBytes) finish(Effect.fail(new OversizePayload({ size: bytes, limit: maxBytes })))
      else chunks.push(chunk)
    }
    const onEnd = () => finish(Effect.succeed(Buffer.concat(chunks, bytes)))
    const onError = () => finish(Effect.fail(ValidationError.single("body", "", "could not be read to its end")))
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    return Effect.sync(stop)
  })
}

/** The body of a request with a JSON content type (or none), read once and checked; an empty body is `null`. */
const readJson = (request: HttpServerRequest.HttpServerRequest, contentType: string | undefined, maxBytes: number) =>
  Effect.flatMap(bytesOf(request, maxBytes), (buffer) => {
    if (buffer.byteLength === 0) return Effect.succeed({ buffer, text: "", json: null as unknown })
    if (contentType === undefined) return Effect.fail(notJson(undefined))
    let text: string
    try {
      text = strictUtf8.decode(buffer)
    } catch {
      return Effect.fail(ValidationError.single("body", "", "must be UTF-8 text"))
    }
    if (nestsDeeper(text, maxDepth)) {
      return Effect.fail(ValidationError.single("body", "", `is nested more than ${maxDepth} levels deep (arrays and objects)`))
    }
    try {
      return Effect.succeed({ buffer, text, json: JSON.parse(text) as unknown })
    } catch {
      return Effect.fail(ValidationError.single("body", "", "must be a JSON document"))
    }
  })

/** `request`, whose body is read (when a handler asks for it) through `readJson`. */
const checkedBody = (request: HttpServerRequest.HttpServerRequest, contentType: string | undefined, maxBytes: number) => {
  const body = Effect.runSync(Effect.cached(readJson(request, contentType, maxBytes)))
  return Object.create(request, {
    arrayBuffer: {
      get: () =>
        Effect.map(body, ({ buffer }) => buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer)
    },
    text: { get: () => Effect.map(body, (read) => read.text) },
    json: { get: () => Effect.map(body, (read) => read.json) }
  }) as HttpServerRequest.HttpServerRequest
}

/**
 * Around the API's routes: a declared body over the limit is refused before
 * it is read, the body is read within the limit (JSON only), and every
 * failure is answered as its problem (429 and 503 with `Retry-After`). A
 * failure that is no typed error (a bug) stays a defect, which the server
 * answers 500.
 */
export const edge = (maxBodyBytes: number) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.gen(function*() {
    const original = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(original.headers["content-length"] ?? NaN)
    if (declared > maxBodyBytes) return problemResponse(new OversizePayload({ size: declared, limit: maxBodyBytes }))
    const contentType = original.headers["content-type"]
    if (HttpMethod.hasBody(original.method) && contentType !== undefined && !jsonMediaType.test(contentType.trim())) {
      return problemResponse(notJson(contentType))
    }
    const request = HttpMethod.hasBody(original.method) ? checkedBody(original, contentType, maxBodyBytes) : original
    return yield* (app as App).pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, request),
      Effect.provideService(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(maxBodyBytes))),
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
        const error = typed(cause, maxBodyBytes, declared)
        return isTypedError(error) ? Effect.succeed(problemResponse(error)) : Effect.failCause(cause)
      })
    )
  }) as HttpApp.Default
