/**
 * Rate limiting: the token bucket lets a burst through, then refuses with a
 * wait that is enough and not much more, refills with time, keeps its
 * arithmetic sane for any number it is given and any clock, and the limiter
 * over it keeps a bounded number of buckets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, TestClock } from "effect"
import * as RateLimiter from "../src/layers/RateLimiter.js"
import { type Bucket, never, refill, take } from "../src/model/RateLimit.js"
import { RateLimited } from "../src/schema/Errors.js"

/** `n` requests at `now`, threading the bucket. */
const takeMany = (n: number, now: number, options: { ratePerSecond: number; burst: number }, start?: Bucket) => {
  let bucket = start
  const results = []
  for (let i = 0; i < n; i++) {
    const taken = take(bucket, now, options)
    bucket = taken.bucket
    results.push(taken)
  }
  return { results, bucket }
}

describe("take", () => {
  const options = { ratePerSecond: 2, burst: 3 }

  it("allows a burst, then refuses with the wait until the next token", () => {
    const { bucket, results } = takeMany(4, 1_000, options)
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false])
    expect(results.map((r) => r.retryAfterMs)).toEqual([0, 0, 0, 500])
    expect(take(bucket, 1_499, options).allowed).toBe(false)
    expect(take(bucket, 1_499, options).retryAfterMs).toBe(1)
    expect(take(bucket, 1_500, options).allowed).toBe(true)
  })

  it("refills at the rate, up to the burst and no further", () => {
    const { bucket } = takeMany(3, 0, options)
    expect(refill(bucket, 1_000, options).tokens).toBeCloseTo(2)
    expect(refill(bucket, 60_000, options).tokens).toBe(3)
    expect(takeMany(5, 60_000, options, bucket).results.map((r) => r.allowed)).toEqual([true, true, true, false, false])
  })

  it("refills nothing while the clock goes backwards, and does not count that time twice", () => {
    const { bucket } = takeMany(3, 10_000, options)
    const back = take(bucket, 0, options)
    expect(back.allowed).toBe(false)
    expect(back.bucket.at).toBe(10_000)
    expect(back.retryAfterMs).toBe(500)
    expect(take(back.bucket, 10_499, options).allowed).toBe(false)
    expect(take(back.bucket, 10_500, options).allowed).toBe(true)
  })

  it("treats a rate or burst that is zero, negative or NaN as zero, and Infinity as no limit", () => {
    for (const burst of [0, -1, Number.NaN, 0.5, -Infinity]) {
      const refused = take(undefined, 0, { ratePerSecond: 10, burst })
      expect(refused).toEqual({ allowed: false, bucket: { tokens: Math.max(0, burst) || 0, at: 0 }, retryAfterMs: never })
    }
    for (const ratePerSecond of [0, -5, Number.NaN, -Infinity]) {
      const { bucket, results } = takeMany(3, 0, { ratePerSecond, burst: 2 })
      expect(results.map((r) => r.allowed)).toEqual([true, true, false])
      expect(results[2].retryAfterMs).toBe(never)
      expect(take(bucket, 1e15, { ratePerSecond, burst: 2 }).allowed).toBe(false)
    }
    expect(takeMany(1_000, 0, { ratePerSecond: Infinity, burst: 1 }).results.every((r) => r.allowed)).toBe(true)
    expect(takeMany(1_000, 0, { ratePerSecond: 0, burst: Infinity }).results.every((r) => r.allowed)).toBe(true)
  })

  it("copes with huge and tiny numbers, and with a clock or a bucket that is not a number", () => {
    expect(take(undefined, 0, { ratePerSecond: 1e-320, burst: 1 }).allowed).toBe(true)
    const starved = takeMany(2, 0, { ratePerSecond: 1e-320, burst: 1 }).results[1]
    expect(starved).toMatchObject({ allowed: false, retryAfterMs: never })
    const { bucket } = takeMany(2, -Number.MAX_VALUE, { ratePerSecond: 1e300, burst: 1e300 })
    expect(take(bucket, Number.MAX_VALUE, { ratePerSecond: 1e300, burst: 1e300 }).allowed).toBe(true)
    for (const now of [Number.NaN, Infinity, -Infinity]) {
      const taken = take({ tokens: 0, at: 5 }, now, options)
      expect(taken).toEqual({ allowed: false, bucket: { tokens: 0, at: 5 }, retryAfterMs: 500 })
    }
    expect(take({ tokens: Number.NaN, at: Number.NaN }, 7, options)).toEqual({
      allowed: false,
      bucket: { tokens: 0, at: 7 },
      retryAfterMs: 500
    })
    expect(take({ tokens: 1e9, at: 0 }, 0, options).bucket.tokens).toBe(2)
  })

  it("lets a caller through exactly when the wait it was told is over, whatever the numbers", () => {
    const rate = fc.oneof(fc.double({ min: 1e-3, max: 1e9, noNaN: true }), fc.integer({ min: 1, max: 1_000 }))
    fc.assert(
      fc.property(
        rate,
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 30 }),
        (ratePerSecond, burst, start, gaps) => {
          const options = { ratePerSecond, burst }
          let bucket: Bucket | undefined
          let now = start
          for (const gap of gaps) {
            now += gap
            const taken = take(bucket, now, options)
            bucket = taken.bucket
            expect(Number.isSafeInteger(taken.retryAfterMs)).toBe(true)
            expect(bucket.tokens).toBeGreaterThanOrEqual(0)
            expect(bucket.tokens).toBeLessThanOrEqual(burst)
            if (!taken.allowed) {
              expect(taken.retryAfterMs).toBeGreaterThanOrEqual(1)
              expect(take(bucket, now + taken.retryAfterMs - 1, options).allowed).toBe(false)
              if (taken.retryAfterMs < never) expect(take(bucket, now + taken.retryAfterMs, options).allowed).toBe(true)
            }
          }
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("RateLimiter", () => {
  it.effect("allows a burst per key, refuses with retryAfterMs, and refills with the clock", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ratePerSecond: 1, burst: 3, maxKeys: 100 })
      const first = yield* Effect.forEach([1, 2, 3, 4], () => limiter.take("a"))
      expect(first).toEqual([
        { allowed: true, retryAfterMs: 0 },
        { allowed: true, retryAfterMs: 0 },
        { allowed: true, retryAfterMs: 0 },
        { allowed: false, retryAfterMs: 1_000 }
      ])
      expect(yield* limiter.take("b")).toEqual({ allowed: true, retryAfterMs: 0 })

      yield* TestClock.adjust("400 millis")
      expect(yield* limiter.take("a")).toEqual({ allowed: false, retryAfterMs: 600 })
      yield* TestClock.adjust("600 millis")
      expect(yield* limiter.take("a")).toEqual({ allowed: true, retryAfterMs: 0 })
      expect(yield* limiter.take("a")).toEqual({ allowed: false, retryAfterMs: 1_000 })

      yield* TestClock.adjust("1 hour")
      const later = yield* Effect.forEach([1, 2, 3, 4], () => limiter.take("a"))
      expect(later.map((r) => r.allowed)).toEqual([true, true, true, false])
    }))

  it.effect("fails enforce with RateLimited and its retry_after_ms", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ratePerSecond: 4, burst: 1, maxKeys: 10 })
      yield* limiter.enforce("k")
      const refused = yield* Effect.flip(limiter.enforce("k"))
      expect(refused).toEqual(new RateLimited({ retry_after_ms: 250 }))
      expect(refused).toMatchObject({ code: "RATE_LIMITED", retryable: true })
    }))

  it.effect("lets concurrent takes of one key spend each token once", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ratePerSecond: 1, burst: 5, maxKeys: 10 })
      const taken = yield* Effect.all(Array.from({ length: 50 }, () => limiter.take("k")), { concurrency: "unbounded" })
      expect(taken.filter((r) => r.allowed)).toHaveLength(5)
    }))

  it.effect("keeps at most maxKeys buckets, forgetting the least recently used", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ratePerSecond: 1, burst: 1, maxKeys: 3 })
      for (const key of ["a", "b", "c"]) yield* limiter.take(key)
      yield* limiter.take("a")
      for (let i = 0; i < 10_000; i++) yield* limiter.take(`flood-${i}`)
      expect(yield* limiter.size).toBe(3)
      // The flood pushed `a` out: it starts again with a full bucket.
      expect(yield* limiter.take("a")).toEqual({ allowed: true, retryAfterMs: 0 })
      // The last flooder is still known, and still empty.
      expect((yield* limiter.take("flood-9999")).allowed).toBe(false)
    }))

  it.effect("forgets buckets that have filled up again, so memory shrinks when traffic moves on", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ ratePerSecond: 10, burst: 2, maxKeys: 1_000 })
      for (let i = 0; i < 100; i++) yield* limiter.take(`k${i}`)
      expect(yield* limiter.size).toBe(100)
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 60; i++) yield* limiter.take("steady")
      expect(yield* limiter.size).toBe(1)
      // A bucket in debt is kept, however long the others are idle.
      yield* limiter.take("x")
      yield* limiter.take("x")
      yield* limiter.take("x")
      for (let i = 0; i < 10; i++) yield* limiter.take("steady")
      expect(yield* limiter.size).toBe(2)
    }))

  it.effect("dies on options that could never let a request through", () =>
    Effect.gen(function*() {
      for (
        const options of [
          { ratePerSecond: 0, burst: 1, maxKeys: 1 },
          { ratePerSecond: Number.NaN, burst: 1, maxKeys: 1 },
          { ratePerSecond: 1, burst: 0.5, maxKeys: 1 },
          { ratePerSecond: 1, burst: 1, maxKeys: 0 },
          { ratePerSecond: 1, burst: 1, maxKeys: 1.5 }
        ]
      ) {
        const exit = yield* Effect.exit(RateLimiter.make(options))
        expect(Exit.isFailure(exit) && !Exit.isInterrupted(exit)).toBe(true)
      }
    }))
})
