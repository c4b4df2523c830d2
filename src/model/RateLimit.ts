/**
 * A token bucket, as a pure function of the bucket and the time: a key may
 * make `burst` requests at once, then `ratePerSecond` a second. Kept apart
 * from any map or clock so the arithmetic can be tested on its own, against
 * every number a configuration or a clock might produce.
 *
 * It never throws and never yields NaN, whatever it is given:
 * - a rate or burst that is NaN, negative or zero counts as zero (a rate of
 *   zero never refills; a burst under one never allows), and `Infinity` as
 *   unlimited;
 * - a clock that goes backwards refills nothing, and the bucket keeps the
 *   later time, so time lost going back is not counted twice going forward
 *   (a wait is then counted from that later time);
 * - `retryAfterMs` is a whole number of milliseconds, at least 1 when
 *   refused, and `never` (Number.MAX_SAFE_INTEGER) when no wait can help,
 *   so it is always safe to put in JSON or a header.
 */

export interface Bucket {
  /** Tokens left, between 0 and the burst. */
  readonly tokens: number
  /** When `tokens` was last brought up to date, in epoch milliseconds. */
  readonly at: number
}

export interface RateLimitOptions {
  /** Tokens added per second. */
  readonly ratePerSecond: number
  /** Most tokens a bucket holds, and what a new bucket starts with. */
  readonly burst: number
}

export interface Taken {
  readonly allowed: boolean
  /** The bucket to keep for the next call. */
  readonly bucket: Bucket
  /** 0 when allowed; otherwise how long until a request can be allowed. */
  readonly retryAfterMs: number
}

/** The `retryAfterMs` of a request no wait will let through. */
export const never = Number.MAX_SAFE_INTEGER

/**
 * Float sums of many small refills land a hair under a whole token: such a
 * bucket counts as holding it, so a caller that waited the `retryAfterMs` it
 * was given is let through.
 */
const epsilon = 1e-9

// `> 0` is false for NaN too.
const nonNegative = (n: number): number => (n > 0 ? n : 0)

/** `bucket` refilled up to `now`; a new, full bucket when there is none. */
export const refill = (bucket: Bucket | undefined, now: number, options: RateLimitOptions): Bucket => {
  const capacity = nonNegative(options.burst)
  const rate = nonNegative(options.ratePerSecond)
  const time = Number.isFinite(now) ? now : undefined
  if (bucket === undefined) return { tokens: capacity, at: time ?? 0 }
  const tokens = Math.min(capacity, nonNegative(bucket.tokens))
  const at = Number.isFinite(bucket.at) ? bucket.at : time ?? 0
  const later = time === undefined || time <= at ? at : time
  // An unlimited rate refills even within the same millisecond.
  if (rate === Infinity) return { tokens: capacity, at: later }
  if (later === at || rate === 0) return { tokens, at: later }
  // Between far-apart instants the gain may be Infinity: the bucket is then full, never NaN.
  return { tokens: Math.min(capacity, tokens + ((later - at) / 1000) * rate), at: later }
}

/** Whether `bucket` would be full at `now`: forgetting it then changes nothing. */
export const isFull = (bucket: Bucket, now: number, options: RateLimitOptions): boolean =>
  refill(bucket, now, options).tokens >= nonNegative(options.burst)

/** One request at `now` against `bucket` (`undefined`: this key has none yet). */
export const take = (bucket: Bucket | undefined, now: number, options: RateLimitOptions): Taken => {
  const current = refill(bucket, now, options)
  if (current.tokens >= 1 - epsilon) {
    return { allowed: true, bucket: { tokens: Math.max(0, current.tokens - 1), at: current.at }, retryAfterMs: 0 }
  }
  const rate = nonNegative(options.ratePerSecond)
  if (rate === 0 || nonNegative(options.burst) < 1 - epsilon) return { allowed: false, bucket: current, retryAfterMs: never }
  const wait = Math.min(never, Math.max(1, Math.ceil(((1 - current.tokens) / rate) * 1000)))
  return { allowed: false, bucket: current, retryAfterMs: exactWait(current, wait, options) }
}

/**
 * `wait`, moved by the millisecond that rounding may have put it off either
 * way, so that it is exactly the first whole millisecond at which `refill`
 * (the very function the next `take` runs) gives a token.
 */
const exactWait = (bucket: Bucket, wait: number, options: RateLimitOptions): number => {
  if (wait >= never) return never
  const ready = (ms: number) => refill(bucket, bucket.at + ms, options).tokens >= 1 - epsilon
  if (wait > 1 && ready(wait - 1)) return wait - 1
  return ready(wait) ? wait : wait + 1
}
