import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { Envelope } from "../src/schema/Envelope.js"
import { fastValidator } from "../src/schema/FastSchema.js"

const fast = fastValidator(Envelope)
const reference = Schema.validateEither(Envelope, { errors: "all" })

/** One field of a valid envelope replaced by something else, or removed. */
const broken = fc.tuple(Arbitrary.make(Envelope), fc.constantFrom(...Object.keys(Envelope.from.fields)), fc.anything())
  .map(([envelope, field, value]) => ({ ...envelope, [field]: value }) as unknown)

describe("fastValidator", () => {
  it("accepts what Schema accepts and refuses what it refuses, with Schema's own error", () => {
    fc.assert(
      fc.property(fc.oneof(Arbitrary.make(Envelope) as fc.Arbitrary<unknown>, broken, fc.anything()), (value) => {
        const ours = fast(value)
        const theirs = reference(value)
        expect(Either.isRight(ours)).toBe(Either.isRight(theirs))
        if (Either.isRight(ours) && Either.isRight(theirs)) expect(ours.right).toEqual(theirs.right)
        if (Either.isLeft(ours) && Either.isLeft(theirs)) expect(ours.left.message).toBe(theirs.left.message)
      }),
      { numRuns: 1000 }
    )
  })

  it("refuses an envelope whose content_length does not match its payload", () => {
    const envelope = fc.sample(Arbitrary.make(Envelope), 1)[0]
    expect(Either.isLeft(fast({ ...envelope, content_length: envelope.content_length + 1 }))).toBe(true)
  })
})
