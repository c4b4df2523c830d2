import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { Envelope } from "../src/schema/Envelope.js"
import { fastDecoder, fastValidator } from "../src/schema/FastSchema.js"
import { GatedAction } from "../src/schema/GatewayEvents.js"

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

describe("fastDecoder", () => {
  const options = { onExcessProperty: "error" } as const
  const ours = fastDecoder(GatedAction, options)
  const theirs = Schema.decodeUnknownEither(GatedAction, { ...options, errors: "all" })
  /** An action with one field replaced, removed or added. */
  const altered = fc.tuple(
    Arbitrary.make(GatedAction),
    fc.constantFrom("kind", "agent_id", "tool", "args", "to", "host", "model", "extra"),
    fc.anything()
  ).map(([action, field, value]) => ({ ...action, [field]: value }) as unknown)

  it("decodes what Schema decodes, to the same value, and refuses the rest with Schema's own error", () => {
    fc.assert(
      fc.property(fc.oneof(Arbitrary.make(GatedAction) as fc.Arbitrary<unknown>, altered, fc.anything()), (input) => {
        const fast = ours(input)
        const reference = theirs(input)
        expect(Either.isRight(fast)).toBe(Either.isRight(reference))
        if (Either.isRight(fast) && Either.isRight(reference)) expect(fast.right).toEqual(reference.right)
        if (Either.isLeft(fast) && Either.isLeft(reference)) expect(fast.left.message).toBe(reference.left.message)
      }),
      { numRuns: 1000 }
    )
  })

  it("refuses an excess property", () => {
    const input = { kind: "network", agent_id: "a", host: "example.com", port: 443 }
    expect(Either.isLeft(ours(input))).toBe(true)
    expect(Either.isLeft(theirs(input))).toBe(true)
  })
})
