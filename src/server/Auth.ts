/**
 * Who calls, for every transport of the server: the bearer key names the
 * caller (`Keys`), and each caller's requests are rate limited on their own.
 * On a server run open (no keys file) a request without a key is the
 * operator's, limited per client address, so one noisy local client cannot
 * starve the others.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as RateLimiter from "../layers/RateLimiter.js"
import { type RateLimited, Unauthorized } from "../schema/Errors.js"
import { openKeyId, type Principal } from "../schema/Keys.js"
import { Keys } from "../services/Keys.js"
import { Authorization } from "./Api.js"

export interface RateLimit {
  /** Requests per second each key (or address) may make, on average. */
  readonly ratePerSecond: number
  /** How many it may make at once after a quiet spell. */
  readonly burst: number
}

/** The caller a bearer key (empty when none was sent) makes, from a client address. */
export class Authenticate extends Context.Tag("switchboard/server/Authenticate")<
  Authenticate,
  (token: string, address: Option.Option<string>) => Effect.Effect<Principal, Unauthorized | RateLimited>
>() {}

export const layerAuthenticate = (rate: RateLimit): Layer.Layer<Authenticate, never, Keys> =>
  Layer.effect(
    Authenticate,
    Effect.gen(function*() {
      const keys = yield* Keys
      const limiter = yield* RateLimiter.make({ ...rate, maxKeys: 100_000 })
      return (token, address) =>
        Effect.gen(function*() {
          if (token === "" && keys.open) {
            yield* limiter.enforce(`address:${Option.getOrElse(address, () => "")}`)
            return { _tag: "Operator" as const, key_id: openKeyId }
          }
          const principal = yield* keys.authenticate(token)
          if (Option.isNone(principal)) {
            return yield* new Unauthorized({
              reason: token === "" ? "an API key is required (Authorization: Bearer ...)" : "unknown API key"
            })
          }
          yield* limiter.enforce(`key:${principal.value.key_id}`)
          return principal.value
        })
    })
  )

/** The API's `Authorization` middleware, over `Authenticate`. */
export const layer: Layer.Layer<Authorization, never, Authenticate> = Layer.effect(
  Authorization,
  Effect.map(Authenticate, (authenticate) =>
    Authorization.of({
      bearer: (token) =>
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request) => authenticate(Redacted.value(token), request.remoteAddress)
        )
    }))
)
