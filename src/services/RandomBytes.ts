/**
 * Where secret random bytes come from (API keys, temporary file names): a
 * service, so tests can make them deterministic. The platform's
 * cryptographic generator when nothing else is provided: it is a
 * `Context.Reference` with that default, so a program needs no layer for
 * it, and any `RandomBytes` layer provided overrides it.
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { Context, Effect, Layer } from "effect"

export interface RandomBytesService {
  /** `length` fresh bytes. */
  readonly next: (length: number) => Effect.Effect<Uint8Array>
}

// `getRandomValues` refuses more than 65,536 bytes a call.
const chunk = 65_536

// Small requests (an id's 10 bytes, a token's 32) are cut from a pool filled
// 4 KiB at a time: a call to the generator costs as much as the bytes of a
// whole pool. Each byte is handed out once, and as a copy.
const poolSize = 4096
const pooledUpTo = 256
let pool = new Uint8Array(0)
let poolAt = 0

const fresh = (length: number) => {
  const bytes = new Uint8Array(length)
  for (let start = 0; start < length; start += chunk) {
    globalThis.crypto.getRandomValues(bytes.subarray(start, Math.min(length, start + chunk)))
  }
  return bytes
}

const crypto: RandomBytesService = {
  next: (length) =>
    Effect.sync(() => {
      if (length > pooledUpTo) return fresh(length)
      if (poolAt + length > pool.length) {
        pool = fresh(poolSize)
        poolAt = 0
      }
      const bytes = pool.slice(poolAt, poolAt + length)
      // Handed out, then forgotten: a byte of the pool is never seen twice.
      pool.fill(0, poolAt, poolAt + length)
      poolAt += length
      return bytes
    })
}

const encoder = new TextEncoder()

export class RandomBytes extends Context.Reference<RandomBytes>()("switchboard/RandomBytes", {
  defaultValue: (): RandomBytesService => crypto
}) {
  /** The platform's cryptographic generator (`crypto.getRandomValues`): the default. */
  static readonly layerCrypto: Layer.Layer<RandomBytes> = Layer.succeed(RandomBytes, crypto)

  /**
   * Bytes that look random but are fixed by `seed`: each call takes the next
   * blocks of SHA-256(`seed:call:block`), so every call differs from the
   * others and two runs with the same seed agree. For tests only: anyone who
   * knows the seed knows every key made with it.
   */
  static readonly layerSeeded = (seed: string): Layer.Layer<RandomBytes> =>
    Layer.sync(RandomBytes, () => {
      let calls = 0
      return {
        next: (length) =>
          Effect.sync(() => {
            const call = calls++
            const bytes = new Uint8Array(length)
            for (let block = 0; block * 32 < length; block++) {
              const digest = sha256(encoder.encode(`${seed}:${call}:${block}`))
              bytes.set(digest.subarray(0, Math.min(32, length - block * 32)), block * 32)
            }
            return bytes
          })
      }
    })
}
