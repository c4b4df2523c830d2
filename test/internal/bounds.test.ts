/**
 * Error messages are bounded whatever the input: a value is shown within
 * `maxShownValue` characters, ids and keys within `maxShownText`, at most
 * `maxProblems` problems. For small inputs they read exactly as Schema's own.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, Either, FastCheck as fc, ParseResult, Schema } from "effect"
import * as Inspectable from "effect/Inspectable"
import {
  clip,
  maxMessage,
  maxProblems,
  maxShownText,
  maxShownValue,
  preview,
  tooDeep
} from "../../src/internal/bounds.js"
import { inputDecoder } from "../../src/internal/decode.js"
import { AckPayload, decodeAckPayload, Envelope } from "../../src/schema/Envelope.js"
import { NoRoute, UnknownPlaceholder, ValidationError } from "../../src/schema/Errors.js"
import { parsePolicy } from "../../src/schema/Policy.js"

/** What Schema prints for a value: Effect's own formatter (exported, though not in its typings). */
const formatUnknown = (Inspectable as unknown as { readonly formatUnknown: (value: unknown) => string }).formatUnknown

/** Bounded, whatever the input: each problem within its limits, and few of them. */
const expectBounded = (error: ValidationError) => {
  expect(error.issues.length).toBeLessThanOrEqual(maxProblems + 1)
  for (const issue of error.issues) {
    expect(issue.path.length).toBeLessThanOrEqual(maxMessage + 1)
    expect(issue.message.length).toBeLessThanOrEqual(maxMessage + 1)
  }
}

const failure = <A>(result: Either.Either<A, ValidationError>) => {
  if (Either.isRight(result)) throw new Error("accepted")
  return result.left
}

describe("preview", () => {
  it("writes what Schema writes for a value that fits", () => {
    fc.assert(
      fc.property(fc.anything({ withDate: true, withMap: true, withSet: true, withBigInt: true }), (value) => {
        const full = formatUnknown(value)
        expect(preview(value, full.length)).toBe(full)
        if (full.length <= maxShownValue) expect(preview(value)).toBe(full)
      }),
      { numRuns: 1000 }
    )
  })

  it("cuts what does not fit to its start, marked …", () => {
    fc.assert(
      fc.property(fc.anything(), fc.integer({ min: 1, max: 40 }), (value, limit) => {
        const full = formatUnknown(value)
        const shown = preview(value, limit)
        if (full.length <= limit) expect(shown).toBe(full)
        else expect(full.startsWith(shown.slice(0, -1)) && shown.endsWith("…")).toBe(true)
      }),
      { numRuns: 1000 }
    )
  })

  it("costs no more for a huge or deeply nested value than for a small one", () => {
    const deep = JSON.parse("[".repeat(100_000) + "]".repeat(100_000))
    expect(preview(deep)).toBe(`${"[".repeat(maxShownValue)}…`)
    expect(preview("x".repeat(10_000_000))).toBe(`"${"x".repeat(maxShownValue - 1)}…`)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(preview(cyclic)).toBe(`{"self":[Circular]}`)
  })

  it("never cuts a surrogate pair in two", () => {
    expect(clip("a😀", 2)).toBe("a…")
  })
})

describe("tooDeep", () => {
  /** Levels of arrays and objects, by plain recursion: the reference, for values small enough for it. */
  const depthOf = (value: unknown): number =>
    typeof value !== "object" || value === null
      ? 0
      : 1 + Math.max(0, ...(Array.isArray(value) ? value : Object.values(value)).map(depthOf))
  const at = (value: unknown, path: ReadonlyArray<PropertyKey>) =>
    path.reduce((inner: unknown, key) => (inner as Record<PropertyKey, unknown>)[key], value)

  it("finds a value nested deeper than the limit, and the path to it, in small and in wide values (property)", () => {
    const values = fc.oneof(
      fc.jsonValue({ maxDepth: 12 }),
      // Wide enough that the quick walk hands over to the thorough one.
      fc.array(fc.jsonValue({ maxDepth: 6 }), { minLength: 600, maxLength: 900 })
    )
    fc.assert(
      fc.property(values, fc.integer({ min: 1, max: 14 }), (value, limit) => {
        const path = tooDeep(value, limit)
        expect(path === undefined).toBe(depthOf(value) <= limit)
        if (path !== undefined) {
          expect(path).toHaveLength(limit)
          expect(depthOf(at(value, path))).toBeGreaterThanOrEqual(1)
        }
      }),
      { numRuns: 300 }
    )
  })

  it("finds it past the first thousand arrays and objects, where the quick walk hands over", () => {
    const deep = JSON.parse("[".repeat(100) + "]".repeat(100))
    const wide = [...Array.from({ length: 2_000 }, () => ({ a: [1] })), { b: deep }]
    expect(tooDeep(wide)).toEqual([2_000, "b", ...Array(62).fill(0)])
  })
})

describe("ValidationError.fromParseError", () => {
  const decodeEnvelope = inputDecoder(Envelope, "envelope", { onExcessProperty: "error" })

  it("gives each of Schema's problems as it is, or cut short where it shows a value", () => {
    const reference = Schema.decodeUnknownEither(Envelope, { errors: "all", onExcessProperty: "error" })
    const junk = fc.oneof(
      fc.anything(),
      fc.tuple(Arbitrary.make(Envelope), fc.string(), fc.anything()).map(([envelope, key, value]) => ({
        ...Schema.encodeSync(Envelope)(envelope),
        [key]: value
      }))
    )
    fc.assert(
      fc.property(junk, (input) => {
        const ours = decodeEnvelope(input)
        const theirs = reference(input)
        expect(Either.isLeft(ours)).toBe(Either.isLeft(theirs))
        if (Either.isLeft(ours) && Either.isLeft(theirs)) {
          const expected = ParseResult.ArrayFormatter.formatErrorSync(theirs.left)
          expect(ours.left.issues.map((issue) => issue.path)).toEqual(
            expected.map((issue) => issue.path.map(String).join("."))
          )
          ours.left.issues.forEach((issue, i) => {
            const message = expected[i].message
            if (issue.message !== message) {
              expect(issue.message.endsWith("…") && message.startsWith(issue.message.slice(0, -1))).toBe(true)
            }
          })
        }
      }),
      { numRuns: 500 }
    )
  })

  it("shows a huge value by its start", () => {
    const error = Effect.runSync(Effect.flip(decodeAckPayload({ ack_for_message_id: "m", ack_stage: "x".repeat(10_000_000) })))
    // One problem, naming the stages (by name or number) and showing the start of the value.
    expect(error.issues.map((issue) => issue.path)).toEqual(["ack_stage"])
    expect(error.issues[0].message).toMatch(/^Expected an AckStage \(one of RECEIVED, .*\) or its number, actual "x+…$/)
    expect(error.issues[0].message.length).toBeLessThan(200 + maxShownValue)
  })

  it("lists at most maxProblems problems, then how many more", () => {
    const excess = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]))
    const error = failure(inputDecoder(AckPayload, "ack", { onExcessProperty: "error" })(excess))
    expectBounded(error)
    expect(error.issues.at(-1)?.message).toMatch(/^and \d+ more problems$/)
  })

  it("clips a key as long as the input made it", () => {
    const error = failure(decodeEnvelope({ ["k".repeat(1_000_000)]: 1 }))
    expectBounded(error)
    expect(error.message.length).toBeLessThan(20 * maxShownText)
  })
})

describe("error messages", () => {
  it("show what a caller sent clipped", () => {
    expect(new NoRoute({ to: "a".repeat(1_000_000) }).message).toBe(`no route to ${"a".repeat(maxShownText)}…`)
    const names = Array.from({ length: 100_000 }, (_, i) => `SECRET_${i}`)
    expect(new UnknownPlaceholder({ names }).message.length).toBeLessThanOrEqual(maxMessage + 100)
    expect(ValidationError.single("policy", "id", `no policy ${"p".repeat(1_000_000)}`).message.length)
      .toBeLessThanOrEqual(maxMessage + 100)
  })

  it("of a policy list at most maxProblems problems", () => {
    const yaml = Array.from({ length: 5_000 }, (_, i) => `k${i}: [`).join("\n")
    const result = parsePolicy(yaml)
    expect(Either.isLeft(result) && result.left.problems.length).toBeLessThanOrEqual(maxProblems + 1)
  })
})
