/**
 * What only a network adds to a call: the server cannot be reached, answers
 * a status the API does not declare, answers something that does not
 * decode, or slows the caller down. The in-process runtime never fails that
 * way, so its service interfaces have no name for it; the remote layers
 * report it as the one failure they all declare and that says "try again":
 * `InternalError` (retryable), its message naming the server and the cause.
 *
 * A refusal that retrying never changes is not turned into a retryable
 * error: see `dieOn`.
 */
import type * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpClientError from "@effect/platform/HttpClientError"
import { Effect, ParseResult, Predicate } from "effect"
import { InternalError, type RateLimited } from "../schema/Errors.js"

/**
 * A failure of the wire rather than of the runtime. `HttpApiDecodeError` is
 * the server finding a request of the client malformed, which the client's
 * own encoding with the same Schemas rules out unless the two are of
 * different versions.
 */
export type TransportError =
  | HttpClientError.HttpClientError
  | ParseResult.ParseError
  | HttpApiError.HttpApiDecodeError
  | RateLimited

export const isTransportError = (error: unknown): error is TransportError =>
  HttpClientError.isHttpClientError(error) || ParseResult.isParseError(error) ||
  Predicate.isTagged(error, "HttpApiDecodeError") || Predicate.isTagged(error, "RateLimited")

/** True when the server was not reached at all (refused, reset, timed out): the call may simply be made again. */
export const isUnreachable = (error: unknown): boolean =>
  HttpClientError.isHttpClientError(error) && error._tag === "RequestError"

/** The innermost reason of a failed request: `fetch failed` says less than `connect ECONNREFUSED`. */
const causeOf = (error: Error): string => error.cause instanceof Error ? causeOf(error.cause) : error.message

const describe = (error: TransportError): string =>
  ParseResult.isParseError(error)
    ? `an answer that does not decode: ${error.message}`
    : Predicate.isTagged(error, "HttpApiDecodeError")
    ? `a request it cannot decode (a client of another version?): ${error.message}`
    : error._tag === "RequestError" && error.cause instanceof Error
    ? `${error.message}: ${causeOf(error.cause)}`
    : error.message

/** The transport failure as the runtime's retryable `InternalError`. */
export const toInternal = (baseUrl: string, error: TransportError): InternalError =>
  new InternalError({ message: `switchboard at ${baseUrl}: ${describe(error)}` })

/** The call with its transport failures reported as `InternalError`. */
export const settle = (baseUrl: string) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, TransportError> | InternalError, R> =>
  Effect.catchIf(
    effect,
    (error): error is Extract<E, TransportError> => isTransportError(error),
    (error) => Effect.fail(toInternal(baseUrl, error))
  ) as Effect.Effect<A, Exclude<E, TransportError> | InternalError, R>

const hasTag = <T extends string>(tags: ReadonlyArray<T>) => (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") && (tags as ReadonlyArray<unknown>).includes(error._tag)

/**
 * The call with the errors of `tags` as defects. For a refused key (unknown,
 * revoked), or one that does not allow what the call asks, where the
 * service's interface has no typed error for it: a deployment mistake that no
 * retry repairs, surfaced with the server's own error instead of being
 * retried forever as a retryable one would be.
 */
export const dieOn = <T extends string>(...tags: ReadonlyArray<T>) => {
  const is = hasTag(tags)
  return <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, { readonly _tag: T }>, R> =>
    Effect.catchIf(effect, (error): error is Extract<E, { readonly _tag: T }> => is(error), Effect.die) as Effect.Effect<
      A,
      Exclude<E, { readonly _tag: T }>,
      R
    >
}

/**
 * The call with the errors of `tags` as `InternalError`: answers of the
 * server that the method cannot be failing with in process (a 413 on a body
 * the client built, a store error on a read the runtime answers from memory).
 */
export const internalOn = <T extends string>(baseUrl: string, ...tags: ReadonlyArray<T>) => {
  const is = hasTag(tags)
  return <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, { readonly _tag: T }> | InternalError, R> =>
    Effect.catchIf(
      effect,
      (error): error is Extract<E, { readonly _tag: T }> => is(error),
      (error) =>
        Effect.fail(
          new InternalError({
            message: `switchboard at ${baseUrl}: ${(error as { readonly message?: unknown }).message ?? String(error)}`
          })
        )
    ) as Effect.Effect<A, Exclude<E, { readonly _tag: T }> | InternalError, R>
}
