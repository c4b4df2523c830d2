/**
 * Per-key rate limiting for the network edge: one token bucket
 * (`model/RateLimit.ts`) per key (an API key's id, an agent id), on Effect's
 * `Clock`, so TestClock drives it in tests.
 *
 * Memory is bounded whatever the callers do: at most `maxKeys` buckets are
 * kept. Buckets are kept in the order they were last used; each request
 * forgets a few of the least recently used ones that have filled up again
 * (forgetting a full bucket changes nothing: a new one starts full), and
 * past `maxKeys` the least recently used bucket goes even if not full. That
 * forgives a little of that key's debt, so `maxKeys` should be well above
 * the number of keys active at once.
 */
import { Clock, Effect } from "effect"
import { type Bucket, isFull, type RateLimitOptions, take as takeToken } from "../model/RateLimit.js"
import { RateLimited } from "../schema/Errors.js"

export interface RateLimiterOptions extends RateLimitOptions {
  /** The most buckets kept at once (a positive integer). */
  readonly maxKeys: number
}

export interface RateLimiter {
  /** Spends one token of `key`'s bucket, if it has one; never waits. */
  readonly take: (key: string) => Effect.Effect<{ readonly allowed: boolean; readonly retryAfterMs: number }>
  /** As `take`, failing with `RateLimited` (and its `retry_after_ms`) when refused. */
  readonly enforce: (key: string) => Effect.Effect<void, RateLimited>
  /** How many buckets are kept now. */
  readonly size: Effect.Effect<number>
}

/** Idle buckets forgotten per request, at most: enough to shrink the map, never a long pause. */
const sweepPerTake = 2

const invalidOptions = (options: RateLimiterOptions): string | undefined => {
  if (!(options.ratePerSecond > 0)) return `ratePerSecond must be more than 0, got ${options.ratePerSecond}`
  if (!(options.burst >= 1)) return `burst must be 1 or more, got ${options.burst}`
  if (!Number.isSafeInteger(options.maxKeys) || options.maxKeys < 1) {
    return `maxKeys must be a whole number, 1 or more, got ${options.maxKeys}`
  }
  return undefined
}

/**
 * A rate limiter of its own (two limiters share nothing). Options that could
 * never let a request through are a programming error: the limiter dies.
 */
export const make = (options: RateLimiterOptions): Effect.Effect<RateLimiter> =>
  Effect.suspend(() => {
    const invalid = invalidOptions(options)
    if (invalid !== undefined) return Effect.dieMessage(`RateLimiter.make: ${invalid}`)
    const { burst, maxKeys, ratePerSecond } = options
    const config = { burst, ratePerSecond }
    // A Map iterates in insertion order: deleting and setting a key on each
    // use keeps the least recently used bucket first.
    const buckets = new Map<string, Bucket>()

    const forget = (now: number, keep: string) => {
      let swept = 0
      for (const [key, bucket] of buckets) {
        if (swept >= sweepPerTake || key === keep || !isFull(bucket, now, config)) break
        buckets.delete(key)
        swept++
      }
      while (buckets.size > maxKeys) {
        const oldest = buckets.keys().next()
        if (oldest.done === true) break
        buckets.delete(oldest.value)
      }
    }

    // The clock is read inside the same synchronous step that updates the
    // map, so concurrent takes of one key cannot both spend the same token.
    const take = (key: string) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.unsafeCurrentTimeMillis()
          const taken = takeToken(buckets.get(key), now, config)
          buckets.delete(key)
          buckets.set(key, taken.bucket)
          forget(now, key)
          return { allowed: taken.allowed, retryAfterMs: taken.retryAfterMs }
        })
      )

    return Effect.succeed<RateLimiter>({
      take,
      enforce: (key) =>
        Effect.flatMap(take(key), (taken) =>
          taken.allowed ? Effect.void : Effect.fail(new RateLimited({ retry_after_ms: taken.retryAfterMs }))),
      size: Effect.sync(() => buckets.size)
    })
  })
