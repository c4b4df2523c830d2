import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { maxDepth } from "../../src/internal/bounds.js"
import { guarded } from "../../src/internal/decode.js"
import { fastDecoder, fastValidator } from "../../src/internal/fastSchema.js"
import { AgentDescriptor } from "../../src/schema/Agent.js"
import {
  AckPayload,
  AckRequest,
  Envelope,
  maxIdLength,
  maxListLength,
  maxNoteLength
} from "../../src/schema/Envelope.js"
import { GatedAction } from "../../src/schema/GatewayEvents.js"
import { boundedHeaders } from "../support/headers.js"

type Parse = (input: unknown) => Either.Either<unknown, { readonly message: string }>

/** Over `inputs`, `ours` gives what `reference` gives: the same value, or a failure with the same message. */
const agreesWithSchema = (ours: Parse, reference: Parse, inputs: fc.Arbitrary<unknown>) =>
  fc.assert(
    fc.property(inputs, (input) => {
      const fast = ours(input)
      const slow = reference(input)
      expect(Either.isRight(fast)).toBe(Either.isRight(slow))
      if (Either.isRight(fast) && Either.isRight(slow)) expect(fast.right).toEqual(slow.right)
      if (Either.isLeft(fast) && Either.isLeft(slow)) expect(fast.left.message).toBe(slow.left.message)
    }),
    { numRuns: 1000 }
  )

const fast = fastValidator(Envelope)
const reference = Schema.validateEither(Envelope, { errors: "all" })

/** One field of a valid envelope replaced by something else, or removed. */
const broken = fc.tuple(Arbitrary.make(Envelope), fc.constantFrom(...Object.keys(Envelope.from.fields)), fc.anything())
  .map(([envelope, field, value]) => ({ ...envelope, [field]: value }) as unknown)

describe("fastValidator", () => {
  it("accepts what Schema accepts and refuses what it refuses, with Schema's own error", () => {
    agreesWithSchema(fast, reference, fc.oneof(Arbitrary.make(Envelope) as fc.Arbitrary<unknown>, broken, fc.anything()))
  })

  it("bounds the headers as Schema does, at and around the bound", () => {
    const nearBound = fc.tuple(
      Arbitrary.make(Envelope),
      fc.constantFrom(...boundedHeaders),
      fc.integer({ min: maxIdLength - 2, max: maxIdLength + 2 })
    ).map(([envelope, field, length]) => ({ ...envelope, [field]: "a".repeat(length) }) as unknown)
    agreesWithSchema(fast, reference, nearBound)
  })

  it("refuses an envelope whose content_length does not match its payload", () => {
    const envelope = fc.sample(Arbitrary.make(Envelope), 1)[0]
    expect(Either.isLeft(fast({ ...envelope, content_length: envelope.content_length + 1 }))).toBe(true)
  })
})

describe("fastDecoder", () => {
  it("decodes an ACK request as Schema does, to the same value or with the same error", () => {
    const request = fc.tuple(
      Arbitrary.make(AckRequest),
      fc.constantFrom("agent_id", "message_id", "stage", "error_code", "note", "extra"),
      fc.anything()
    ).map(([ack, field, value]) => ({ ...ack, [field]: value }) as unknown)
    agreesWithSchema(
      fastDecoder(AckRequest),
      Schema.decodeUnknownEither(AckRequest, { errors: "all" }),
      fc.oneof(Arbitrary.make(AckRequest) as fc.Arbitrary<unknown>, request, fc.anything())
    )
  })

  it("bounds a note, and an agent's names and lists, as Schema does", () => {
    const ack = fastDecoder(AckPayload, { onExcessProperty: "error" })
    const ackReference = Schema.decodeUnknownEither(AckPayload, { errors: "all", onExcessProperty: "error" })
    agreesWithSchema(
      ack,
      ackReference,
      fc.integer({ min: maxNoteLength - 2, max: maxNoteLength + 2 }).map((length) => ({
        ack_for_message_id: "m",
        ack_stage: "FAILED",
        note: "n".repeat(length)
      }))
    )
    const agent = fastDecoder(AgentDescriptor)
    const agentReference = Schema.decodeUnknownEither(AgentDescriptor, { errors: "all" })
    const around = (bound: number) => fc.integer({ min: bound - 2, max: bound + 2 })
    agreesWithSchema(
      agent,
      agentReference,
      fc.oneof(
        around(maxIdLength).map((length) => ({ agent_id: "a".repeat(length), name: "a" })),
        around(maxIdLength).map((length) => ({ agent_id: "a", name: "n".repeat(length) })),
        around(maxIdLength).map((length) => ({ agent_id: "a", name: "a", capabilities: ["c".repeat(length)] })),
        around(maxListLength).map((length) => ({ agent_id: "a", name: "a", capabilities: Array(length).fill("c") }))
      )
    )
  })

  const options = { onExcessProperty: "error" } as const
  const ours = fastDecoder(GatedAction, options)
  // Schema itself throws on a tag field that cannot become a string (`{ "toString": "" }`):
  // the reference is Schema with that throw as its error, as the decoder promises.
  const theirs = guarded(GatedAction.ast, Schema.decodeUnknownEither(GatedAction, { ...options, errors: "all" }))
  /** An action with one field replaced, removed or added. */
  const altered = fc.tuple(
    Arbitrary.make(GatedAction),
    fc.constantFrom("kind", "agent_id", "tool", "args", "to", "host", "model", "extra"),
    fc.anything()
  ).map(([action, field, value]) => ({ ...action, [field]: value }) as unknown)

  it("decodes what Schema decodes, to the same value, and refuses the rest with Schema's own error", () => {
    agreesWithSchema(ours, theirs, fc.oneof(Arbitrary.make(GatedAction) as fc.Arbitrary<unknown>, altered, fc.anything()))
  })

  it("refuses args nested more than maxDepth deep, as every decoder of outside input does, never with a throw", () => {
    const nested = (depth: number) => JSON.parse("[".repeat(depth) + "]".repeat(depth))
    const decoded = ours({ kind: "tool_call", agent_id: "a", tool: "t", args: nested(100_000) })
    expect(Either.isLeft(decoded) && decoded.left.message).toMatch(/^\["args"\]\[0\]\[0\].*nested more than 64 levels deep/s)
    // The action is the first level: args may nest one level less.
    expect(Either.isRight(ours({ kind: "tool_call", agent_id: "a", tool: "t", args: nested(maxDepth - 1) }))).toBe(true)
    expect(Either.isLeft(ours({ kind: "tool_call", agent_id: "a", tool: "t", args: nested(maxDepth) }))).toBe(true)
  })

  it("refuses an excess property", () => {
    const input = { kind: "network", agent_id: "a", host: "example.com", port: 443 }
    expect(Either.isLeft(ours(input))).toBe(true)
    expect(Either.isLeft(theirs(input))).toBe(true)
  })

  it("refuses an excess property that is not enumerable, or a symbol, as Schema does", () => {
    const action = { kind: "network", agent_id: "a", host: "example.com" }
    const hidden = Object.defineProperty({ ...action }, "port", { value: 443, enumerable: false })
    const symbol = { ...action, [Symbol("port")]: 443 }
    for (const input of [hidden, symbol]) {
      expect(Either.isLeft(theirs(input))).toBe(true)
      expect(Either.isLeft(ours(input))).toBe(true)
    }
  })
})
