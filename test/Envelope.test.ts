/**
 * The wire schemas: envelopes and ACK payloads round-trip exactly, and any bad
 * input fails with a ValidationError naming the field (never a throw, never a
 * defect). Also the retry classes of the errors, and the event codec.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Cause, Effect, Either, Exit, FastCheck as fc, Option, Schema } from "effect"
import * as Errors from "../src/schema/Errors.js"
import {
  AckPayload,
  AckStage,
  decodeAckPayload,
  decodeEnvelope,
  decodeEnvelopeJson,
  encodeAckPayload,
  encodeEnvelope,
  encodeEnvelopeJson,
  Envelope,
  EnvelopeState,
  ErrorCode,
  Event,
  MessageType,
  UndecodableRecord,
  ValidationError
} from "../src/index.js"
import { AckStageNumber, ErrorCodeNumber, maxIdLength, maxNoteLength } from "../src/schema/Envelope.js"
import { AgentRegistered } from "../src/schema/RouterEvents.js"
import { decodeEvent, encodeEvent, eventVersions } from "../src/schema/Event.js"
import { registered } from "./support/events.js"
import { boundedHeaders } from "./support/headers.js"

// ---------------------------------------------------------------------------
// Helpers

/** Runs a codec on `input` and returns its ValidationError; anything else (success, throw, defect) fails the test. */
const validationFailure = (run: () => Effect.Effect<unknown, ValidationError>): ValidationError => {
  let exit: Exit.Exit<unknown, ValidationError>
  try {
    exit = Effect.runSyncExit(run())
  } catch (thrown) {
    throw new Error(`the codec threw instead of failing: ${String(thrown)}`)
  }
  if (Exit.isSuccess(exit)) throw new Error(`accepted: ${JSON.stringify(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure) || Cause.isDie(exit.cause)) {
    throw new Error(`not a plain ValidationError: ${Cause.pretty(exit.cause)}`)
  }
  expect(failure.value).toBeInstanceOf(ValidationError)
  expect(failure.value._tag).toBe("ValidationError")
  expect(failure.value.issues.length).toBeGreaterThan(0)
  return failure.value
}

/** Every issue is about `field` (or something inside it). */
const expectIssuesAt = (error: ValidationError, field: string) => {
  const paths = error.issues.map((issue) => issue.path)
  if (!paths.every((path) => path === field || path.startsWith(`${field}.`))) {
    throw new Error(`expected every issue at ${field}, got ${JSON.stringify(error.issues)}`)
  }
}

/** JSON has no `undefined`: an optional field set to undefined comes back absent. */
const withoutUndefined = <A extends object>(value: A): A =>
  Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as A

const runSync = Effect.runSync

type Kind = "id" | "string" | "uint" | "enum" | "timestamp" | "base64"
interface FieldSpec {
  readonly kind: Kind
  readonly optional?: boolean
  readonly members?: ReadonlyArray<string>
  /** For an enum also taken by its protocol number (an ACK's stage and error code): the numbers taken. */
  readonly numbers?: ReadonlyArray<number>
  /** The longest string taken, for "id" and "string" (`maxIdLength` unless said). */
  readonly max?: number
}

const envelopeFields: Record<string, FieldSpec> = {
  message_id: { kind: "id" },
  idempotency_token: { kind: "id", optional: true },
  producer_id: { kind: "id" },
  correlation_id: { kind: "string" },
  sequence_number: { kind: "uint" },
  retry_count: { kind: "uint" },
  message_type: { kind: "enum", members: MessageType.literals },
  content_type: { kind: "id" },
  content_length: { kind: "uint" },
  repo_id: { kind: "string", optional: true },
  worktree_id: { kind: "string", optional: true },
  hlc_timestamp: { kind: "string", optional: true },
  ttl_ms: { kind: "uint" },
  timestamp: { kind: "timestamp" },
  payload: { kind: "base64" },
  state: { kind: "enum", members: EnvelopeState.literals }
}

const ackFields: Record<string, FieldSpec> = {
  ack_for_message_id: { kind: "id" },
  ack_stage: { kind: "enum", members: AckStage.literals, numbers: Object.values(AckStageNumber) },
  error_code: { kind: "enum", optional: true, members: ErrorCode.literals, numbers: [0, ...Object.values(ErrorCodeNumber)] },
  note: { kind: "string", optional: true, max: maxNoteLength }
}

const notAString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 })
)

/** Characters outside the base64 alphabet (line breaks are allowed by the decoder, so not among them). */
const notBase64 = fc.oneof(
  fc.tuple(fc.base64String(), fc.constantFrom(..."!*#$%&()-_.~ ,;:?"), fc.nat()).map(([valid, bad, at]) => {
    const i = at % (valid.length + 1)
    return valid.slice(0, i) + bad + valid.slice(i)
  }),
  fc.base64String({ minLength: 4 }).map((valid) => `${valid}A`),
  fc.base64String({ minLength: 4 }).map((valid) => `=${valid.slice(1)}`)
)

/** A string just longer than `spec` takes, up to many times longer. */
const tooLong = (spec: FieldSpec) =>
  fc.oneof(fc.nat({ max: 3 }), fc.nat({ max: 100_000 })).map((extra) => "x".repeat((spec.max ?? maxIdLength) + 1 + extra))

const wrongValue = (spec: FieldSpec): fc.Arbitrary<unknown> => {
  switch (spec.kind) {
    case "id":
      return fc.oneof(fc.constant(""), notAString, tooLong(spec))
    case "string":
      return fc.oneof(notAString, tooLong(spec))
    case "uint":
      return fc.oneof(
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.integer({ max: -1 }),
        fc.double({ noInteger: true }),
        fc.constantFrom(2 ** 53, 2 ** 64, 1e300)
      )
    case "enum": {
      const members = spec.members ?? []
      return fc.oneof(
        fc.string().filter((name) => !members.includes(name)),
        fc.constantFrom(...members).map((name) => name.toLowerCase()),
        fc.integer({ min: 0, max: 120 }).filter((number) => !(spec.numbers ?? []).includes(number)),
        fc.constant(null)
      )
    }
    case "timestamp":
      return fc.oneof(
        fc.integer(),
        fc.constantFrom(
          "",
          "yesterday",
          "2024-13-45T99:99:99Z",
          "not a date",
          "2024",
          "May 1, 2024",
          "2024-05-01 12:00"
        ),
        fc.constant(null)
      )
    case "base64":
      return fc.oneof(notBase64, fc.integer(), fc.constant(null), fc.array(fc.integer({ min: 0, max: 255 })))
  }
}

interface Mutated {
  readonly input: Record<string, unknown>
  /** The field every issue must name. */
  readonly field: string
  readonly how: string
}

/** Valid wire values, each broken in exactly one way. */
const mutations = (
  valid: fc.Arbitrary<Record<string, unknown>>,
  fields: Record<string, FieldSpec>,
  extra: ReadonlyArray<fc.Arbitrary<(input: Record<string, unknown>) => Mutated>> = []
): fc.Arbitrary<Mutated> => {
  const names = Object.keys(fields)
  const required = names.filter((name) => !fields[name].optional)
  const removed = fc.constantFrom(...required).map((field) => (input: Record<string, unknown>): Mutated => {
    const { [field]: _, ...rest } = input
    return { input: rest, field, how: "removed" }
  })
  const wrong = fc.constantFrom(...names).chain((field) =>
    wrongValue(fields[field]).map((value) => (input: Record<string, unknown>): Mutated => ({
      input: { ...input, [field]: value },
      field,
      how: `set to ${JSON.stringify(value)}`
    }))
  )
  const unknownField = fc.string({ minLength: 1 }).filter((key) => !names.includes(key)).map((key) =>
    (input: Record<string, unknown>): Mutated => ({ input: { ...input, [key]: 1 }, field: key, how: "extra field" })
  )
  return fc.tuple(valid, fc.oneof(removed, wrong, unknownField, ...extra)).map(([input, mutate]) => mutate(input))
}

const validEnvelopeWire = Arbitrary.make(Envelope).map((envelope) =>
  withoutUndefined(runSync(encodeEnvelope(envelope))) as Record<string, unknown>
)
const validAckWire = Arbitrary.make(AckPayload).map((ack) =>
  withoutUndefined(runSync(encodeAckPayload(ack))) as Record<string, unknown>
)

const contentLengthOffByOne = fc.constantFrom(-1, 1).map((delta) => (input: Record<string, unknown>): Mutated => ({
  input: { ...input, content_length: (input.content_length as number) + delta },
  field: "content_length",
  how: `content_length ${delta > 0 ? "+" : ""}${delta}`
}))

// ---------------------------------------------------------------------------
// Envelope

describe("Envelope", () => {
  const equivalent = Schema.equivalence(Envelope)

  it.prop("encode then decode gives the same envelope and wire form", { envelope: Envelope }, ({ envelope }) => {
    const wire = runSync(encodeEnvelope(envelope))
    const decoded = runSync(decodeEnvelope(wire))
    expect(equivalent(decoded, envelope)).toBe(true)
    expect(decoded.payload).toEqual(envelope.payload)
    expect(runSync(encodeEnvelope(decoded))).toEqual(wire)
  })

  it.prop("round-trips through JSON text, byte for byte", { envelope: Envelope }, ({ envelope }) => {
    const text = runSync(encodeEnvelopeJson(envelope))
    const decoded = runSync(decodeEnvelopeJson(text))
    expect(equivalent(decoded, withoutUndefined(envelope))).toBe(true)
    expect(Array.from(decoded.payload)).toEqual(Array.from(envelope.payload))
    expect(runSync(encodeEnvelopeJson(decoded))).toBe(text)
    expect(JSON.parse(text)).toEqual(withoutUndefined(runSync(encodeEnvelope(envelope))))
  })

  it.prop("any junk fails with a ValidationError", [fc.anything()], ([junk]) => {
    const error = validationFailure(() => decodeEnvelope(junk))
    expect(error.subject).toBe("envelope")
  })

  it.prop(
    "any junk text fails with a ValidationError",
    [fc.oneof(fc.string(), fc.json(), fc.anything().map((value) => JSON.stringify(value) ?? "undefined"))],
    ([text]) => {
      validationFailure(() => decodeEnvelopeJson(text))
    }
  )

  it.prop(
    "an envelope broken in one field fails with a ValidationError naming that field",
    [mutations(validEnvelopeWire, envelopeFields, [contentLengthOffByOne])],
    ([mutated]) => {
      expectIssuesAt(validationFailure(() => decodeEnvelope(mutated.input)), mutated.field)
      expectIssuesAt(validationFailure(() => decodeEnvelopeJson(JSON.stringify(mutated.input))), mutated.field)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop("encoding refuses an envelope whose content_length is wrong", { envelope: Envelope }, ({ envelope }) => {
    const bad = { ...envelope, content_length: envelope.payload.length + 1 }
    expectIssuesAt(validationFailure(() => encodeEnvelope(bad)), "content_length")
    expectIssuesAt(validationFailure(() => encodeEnvelopeJson(bad)), "content_length")
  })

  const example = {
    message_id: "m-1",
    producer_id: "agent-a",
    correlation_id: "c-1",
    sequence_number: 1,
    retry_count: 0,
    message_type: "DATA",
    content_type: "text/plain",
    content_length: 5,
    ttl_ms: 0,
    timestamp: "2024-05-01T12:00:00.000Z",
    payload: "aGVsbG8=", // "hello"
    state: "SENT"
  }

  it.effect("decodes a hand-written envelope", () =>
    Effect.gen(function*() {
      const envelope = yield* decodeEnvelope(example)
      expect(new TextDecoder().decode(envelope.payload)).toBe("hello")
      expect(envelope.timestamp.epochMillis).toBe(Date.UTC(2024, 4, 1, 12))
      expect(yield* encodeEnvelope(envelope)).toEqual(example)
    }))

  it("a content_length mismatch says so, with the payload's byte length", () => {
    const error = validationFailure(() => decodeEnvelope({ ...example, content_length: 4 }))
    expect(error.issues).toEqual([
      { path: "content_length", message: "must equal the payload's byte length (5), got 4" }
    ])
    expect(error.message).toBe("invalid envelope: content_length: must equal the payload's byte length (5), got 4")
    expect(error.code).toBe("VALIDATION_ERROR")
    expect(error.retryable).toBe(false)
  })

  it("names a missing field, an unexpected one, and every field at fault at once", () => {
    const { message_id: _, ...missing } = example
    expect(validationFailure(() => decodeEnvelope(missing)).message).toBe("invalid envelope: message_id: is missing")
    expect(validationFailure(() => decodeEnvelope({ ...example, priority: 1 })).issues.map((issue) => issue.path))
      .toEqual(["priority"])
    const several = validationFailure(() => decodeEnvelope({ ...example, producer_id: "", ttl_ms: -1, payload: "a!" }))
    expect(new Set(several.issues.map((issue) => issue.path))).toEqual(new Set(["producer_id", "ttl_ms", "payload"]))
  })

  it("a uint64 beyond 2^53 - 1 is refused as out of range, not as a non-integer", () => {
    for (const value of [2 ** 53, 2 ** 64]) {
      const error = validationFailure(() => decodeEnvelope({ ...example, sequence_number: value }))
      expect(error.issues).toEqual([{ path: "sequence_number", message: "must be between 0 and 9007199254740991" }])
    }
    const fraction = validationFailure(() => decodeEnvelope({ ...example, ttl_ms: 1.5 }))
    expect(fraction.issues).toEqual([{ path: "ttl_ms", message: "must be an integer" }])
    const big = validationFailure(() => decodeEnvelope({ ...example, retry_count: 2 ** 32 }))
    expect(big.issues).toEqual([{ path: "retry_count", message: "must be between 0 and 4294967295" }])
  })

  it.effect("a timestamp must be an RFC 3339 date-time; it is kept to the millisecond, in UTC", () =>
    Effect.gen(function*() {
      const refused = [
        "2024",
        "2024-05-01",
        "May 1, 2024",
        "2024-05-01 12:00",
        "2024-05-01T12:00Z",
        "2024-02-30T12:00:00Z",
        "Wed, 01 May 2024 12:00:00 GMT"
      ]
      for (const timestamp of refused) {
        expect(validationFailure(() => decodeEnvelope({ ...example, timestamp })).issues).toEqual([
          { path: "timestamp", message: "must be an RFC 3339 date-time, e.g. 2024-05-01T12:00:00Z" }
        ])
      }
      const offset = yield* decodeEnvelope({ ...example, timestamp: "2024-05-01T14:00:00+02:00" })
      expect(offset.timestamp.epochMillis).toBe(Date.UTC(2024, 4, 1, 12))
      const fine = yield* decodeEnvelope({ ...example, timestamp: "2024-05-01T12:00:00.123456Z" })
      expect((yield* encodeEnvelope(fine)).timestamp).toBe("2024-05-01T12:00:00.123Z")
    }))

  it.effect("a payload in base64 whose unused bits are not zero is refused, not read as another", () =>
    Effect.gen(function*() {
      for (const payload of ["QR==", "QUJ="]) {
        const content_length = payload.endsWith("==") ? 1 : 2
        const error = validationFailure(() => decodeEnvelope({ ...example, payload, content_length }))
        expect(error.issues.map((issue) => issue.path)).toEqual(["payload"])
      }
      for (const payload of ["QQ==", "QUI="]) {
        const envelope = yield* decodeEnvelope({ ...example, payload, content_length: payload.endsWith("==") ? 1 : 2 })
        expect((yield* encodeEnvelope(envelope)).payload).toBe(payload)
      }
    }))

  it("text that is not JSON fails with a ValidationError about the whole input", () => {
    const error = validationFailure(() => decodeEnvelopeJson("{\"message_id\": "))
    expect(error.subject).toBe("envelope")
    expect(error.issues.map((issue) => issue.path)).toEqual([""])
    expect(error.message).toMatch(/^invalid envelope: .*JSON/)
  })

  it("takes ids and headers up to maxIdLength characters, and names the field and the limit beyond", () => {
    for (const field of boundedHeaders) {
      expect(runSync(decodeEnvelope({ ...example, [field]: "é".repeat(maxIdLength) }))).toMatchObject({
        [field]: "é".repeat(maxIdLength)
      })
      const error = validationFailure(() => decodeEnvelope({ ...example, [field]: "x".repeat(1_000_000) }))
      // An optional field also says it is not `undefined`, as Schema does for every optional field.
      expectIssuesAt(error, field)
      expect(error.issues[0]).toEqual({
        path: field,
        message: "must be at most 256 characters (UTF-16 code units), got 1000000"
      })
    }
  })
})

// ---------------------------------------------------------------------------
// ACK payload

describe("AckPayload", () => {
  const equivalent = Schema.equivalence(AckPayload)

  it.prop("encode then decode gives the same ACK, also through JSON text", { ack: AckPayload }, ({ ack }) => {
    const wire = runSync(encodeAckPayload(ack))
    expect(equivalent(runSync(decodeAckPayload(wire)), ack)).toBe(true)
    const fromText = runSync(decodeAckPayload(JSON.parse(JSON.stringify(wire))))
    expect(equivalent(fromText, withoutUndefined(ack))).toBe(true)
    expect(runSync(encodeAckPayload(fromText))).toEqual(withoutUndefined(wire))
  })

  it.prop("any junk fails with a ValidationError", [fc.anything()], ([junk]) => {
    expect(validationFailure(() => decodeAckPayload(junk)).subject).toBe("ack")
  })

  it.prop(
    "an ACK broken in one field fails with a ValidationError naming that field",
    [mutations(validAckWire, ackFields)],
    ([mutated]) => {
      expectIssuesAt(validationFailure(() => decodeAckPayload(mutated.input)), mutated.field)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("an unknown stage or error code names the field", () => {
    const ack = { ack_for_message_id: "m-1", ack_stage: "FULFILLED" }
    expect(runSync(decodeAckPayload(ack))).toEqual(ack)
    const stage = validationFailure(() => decodeAckPayload({ ...ack, ack_stage: "DONE" }))
    expect(stage.message).toMatch(/^invalid ack: ack_stage: /)
    expect(stage.message).toContain("\"DONE\"")
    expectIssuesAt(stage, "ack_stage")
    expectIssuesAt(validationFailure(() => decodeAckPayload({ ...ack, error_code: "OOPS" })), "error_code")
  })

  it("takes the stage and the error code by number too, as SW4RM's own clients write them", () => {
    expect(runSync(decodeAckPayload({ ack_for_message_id: "m-1", ack_stage: 1 }))).toEqual({
      ack_for_message_id: "m-1",
      ack_stage: "RECEIVED"
    })
    // SW4RM's Python client writes every field, an unset error code as 0.
    expect(runSync(decodeAckPayload({ ack_for_message_id: "m-1", ack_stage: 3, error_code: 0, note: "" }))).toEqual({
      ack_for_message_id: "m-1",
      ack_stage: "FULFILLED",
      error_code: undefined,
      note: ""
    })
    expect(runSync(decodeAckPayload({ ack_for_message_id: "m-1", ack_stage: 5, error_code: 99 }))).toMatchObject({
      ack_stage: "FAILED",
      error_code: "INTERNAL_ERROR"
    })
    expect(runSync(decodeAckPayload({ ack_for_message_id: "m-1", ack_stage: "FAILED", error_code: 14 })).error_code)
      .toBe("DUPLICATE_DETECTED")
    for (const [field, value] of [["ack_stage", 0], ["ack_stage", 7], ["error_code", 11], ["error_code", 1.5]] as const) {
      const error = validationFailure(() => decodeAckPayload({ ack_for_message_id: "m-1", ack_stage: 1, [field]: value }))
      expectIssuesAt(error, field)
    }
    expect(validationFailure(() => decodeAckPayload({ ack_for_message_id: "m-1", ack_stage: 7 })).message)
      .toBe("invalid ack: ack_stage: Expected an AckStage (one of RECEIVED, READ, FULFILLED, REJECTED, FAILED, TIMED_OUT) or its number, actual 7")
  })

  it("takes a note of up to maxNoteLength characters", () => {
    const ack = { ack_for_message_id: "m-1", ack_stage: "FAILED", error_code: "INTERNAL_ERROR" }
    expect(runSync(decodeAckPayload({ ...ack, note: "n".repeat(maxNoteLength) })).note).toHaveLength(maxNoteLength)
    expect(validationFailure(() => decodeAckPayload({ ...ack, note: "n".repeat(maxNoteLength + 1) })).message).toMatch(
      /^invalid ack: note: must be at most 4096 characters \(UTF-16 code units\), got 4097;/
    )
  })
})

// ---------------------------------------------------------------------------
// Errors and their retry classes (PROTOCOLS.md §1)

describe("errors", () => {
  type ErrorClass = Schema.Schema<any, any> & (abstract new(...args: any) => unknown)
  const retryClasses: ReadonlyArray<readonly [ErrorClass, string, boolean]> =
    [
      [Errors.ValidationError, "VALIDATION_ERROR", false],
      [Errors.PermissionDenied, "PERMISSION_DENIED", false],
      [Errors.OversizePayload, "OVERSIZE_PAYLOAD", false],
      [Errors.UnsupportedMessageType, "UNSUPPORTED_MESSAGE_TYPE", false],
      [Errors.TtlExpired, "TTL_EXPIRED", false],
      [Errors.NoRoute, "NO_ROUTE", false],
      [Errors.LeaseExpired, "LEASE_EXPIRED", false],
      [Errors.BudgetExhausted, "BUDGET_EXHAUSTED", false],
      [Errors.BufferFull, "BUFFER_FULL", true],
      [Errors.AgentUnavailable, "AGENT_UNAVAILABLE", true],
      [Errors.AgentShutdown, "AGENT_SHUTDOWN", true],
      [Errors.AckTimeout, "ACK_TIMEOUT", true],
      [Errors.ToolTimeout, "TOOL_TIMEOUT", true],
      [Errors.ForcedPreemption, "FORCED_PREEMPTION", true],
      [Errors.InternalError, "INTERNAL_ERROR", true]
    ]
  const retryableByCode = new Map(retryClasses.map(([, code, retryable]) => [code, retryable]))
  // INTERNAL_ERROR is also the code of store failures that are not retryable (NotAStore, UndecodableRecord).
  retryableByCode.delete("INTERNAL_ERROR")

  const sample = (schema: Schema.Schema<any, any>) =>
    fc.sample(Arbitrary.make(schema), { numRuns: 1, seed: 42 })[0] as { code: unknown; retryable: unknown }

  for (const [errorClass, code, retryable] of retryClasses) {
    const name = (errorClass as unknown as { name: string }).name
    it(`${name} carries ${code}, ${retryable ? "retryable" : "not retryable"}, also on the wire`, () => {
      const error = sample(errorClass)
      expect(error).toBeInstanceOf(errorClass)
      expect(error).toBeInstanceOf(Error)
      expect(error.code).toBe(code)
      expect(error.retryable).toBe(retryable)
      const wire = Schema.encodeUnknownSync(errorClass)(error) as Record<string, unknown>
      expect(wire.code).toBe(code)
      expect(wire.retryable).toBe(retryable)
      // The retry class is fixed by the class: a wire form claiming otherwise does not decode.
      expect(Either.isLeft(Schema.decodeUnknownEither(errorClass)({ ...wire, retryable: !retryable }))).toBe(true)
      expect(Either.isRight(Schema.decodeUnknownEither(errorClass)(wire))).toBe(true)
    })
  }

  it("every error class in Errors.ts carries a code and a retry class consistent with its code", () => {
    const classes = Object.entries(Errors).filter(([, value]) =>
      typeof value === "function" && Schema.isSchema(value) && value.prototype instanceof Error
    ) as Array<[string, Schema.Schema<any, any>]>
    expect(classes.length).toBeGreaterThanOrEqual(retryClasses.length)
    for (const [name, errorClass] of classes) {
      const error = sample(errorClass)
      expect(typeof error.code, name).toBe("string")
      expect(typeof error.retryable, name).toBe("boolean")
      const expected = retryableByCode.get(error.code as string)
      if (expected !== undefined) expect(error.retryable, `${name} (${error.code})`).toBe(expected)
    }
  })
})

// ---------------------------------------------------------------------------
// Events as stored in the log

/** Whether a value holds a number JSON cannot carry (NaN, ±Infinity). */
const holdsNonFinite = (value: unknown): boolean => {
  if (typeof value === "number") return !Number.isFinite(value)
  if (typeof value !== "object" || value === null || value instanceof Uint8Array) return false
  return Object.values(value).some(holdsNonFinite)
}

describe("Event codec", () => {
  expect.addEqualityTesters([(a, b) => typeof a === "number" && typeof b === "number" ? a === b : undefined])

  it.prop(
    "what encodeEvent accepts, decodeEvent gives back; what it refuses could not have been read back",
    { event: Event },
    ({ event }) => {
      const stored = encodeEvent(event)
      if (holdsNonFinite(event)) {
        // JSON would write null: a record no later read could decode.
        expect(Either.isLeft(stored) && stored.left).toBeInstanceOf(ValidationError)
        return
      }
      if (Either.isLeft(stored)) throw new Error(`refused a valid event: ${stored.left.message}`)
      expect(stored.right.type).toBe(event._tag)
      expect(stored.right.version).toBe(eventVersions[event._tag])
      const decoded = decodeEvent(7, stored.right)
      if (Either.isLeft(decoded)) throw new Error(`cannot read back what was written: ${decoded.left.reason}`)
      expect(decoded.right._tag).toBe(event._tag)
      // toEqual, not equivalence: an optional field set to undefined comes back absent from
      // JSON. JSON also writes -0 as 0, which the tester below lets pass.
      expect(decoded.right).toEqual(event)
      const again = encodeEvent(decoded.right)
      expect(Either.isRight(again) && again.right.payload).toBe(stored.right.payload)
    },
    { fastCheck: { numRuns: 300 } }
  )

  const agent = registered("a").agent

  it("refuses to encode a number JSON cannot carry, naming the field", () => {
    for (const at of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const stored = encodeEvent(AgentRegistered.make({ agent, at }, true))
      if (Either.isRight(stored)) throw new Error(`encoded at=${at} as ${stored.right.payload}`)
      expect(stored.left).toBeInstanceOf(ValidationError)
      expect(stored.left.issues.map((issue) => issue.path)).toEqual(["at"])
    }
  })

  it("refuses a record with an invalid version or stored under another type", () => {
    const stored = encodeEvent(AgentRegistered.make({ agent, at: 1 }))
    if (Either.isLeft(stored)) throw stored.left
    for (const version of [0, -1, 1.5]) {
      const result = decodeEvent(3, { ...stored.right, version })
      expect(Either.isLeft(result) && result.left).toBeInstanceOf(UndecodableRecord)
      expect(Either.isLeft(result) && result.left.reason).toBe(`invalid version ${version}`)
    }
    const mislabelled = decodeEvent(4, { ...stored.right, type: "AgentDeregistered" })
    expect(Either.isLeft(mislabelled) && mislabelled.left.offset).toBe(4)
    expect(Either.isLeft(mislabelled) && mislabelled.left.reason).toBe(
      "payload is a AgentRegistered, stored as AgentDeregistered"
    )
  })
})
