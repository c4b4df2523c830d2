/**
 * ULIDs (`01J...`, 26 characters of Crockford base32: 48 bits of time in ms,
 * 80 random bits), for ARCP's ids (`sess_<ULID>`, `job_<ULID>`): time from
 * the Clock, bits from `RandomBytes`, so tests can fix both.
 */
import { Clock, Effect } from "effect"
import { RandomBytes } from "../services/RandomBytes.js"

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

export const encodeUlid = (time: number, random: Uint8Array): string => {
  let out = ""
  let t = Math.max(0, Math.floor(time))
  for (let i = 0; i < 10; i++) {
    out = alphabet[t % 32] + out
    t = Math.floor(t / 32)
  }
  // 80 bits: 16 characters of 5 bits each, from 10 bytes.
  let bits = 0
  let value = 0
  for (let i = 0; i < 10; i++) {
    value = (value << 8) | random[i]
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  return out
}

export const ulid: Effect.Effect<string> = Effect.gen(function*() {
  const random = yield* RandomBytes
  const time = yield* Clock.currentTimeMillis
  return encodeUlid(time, yield* random.next(10))
})
