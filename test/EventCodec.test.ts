/**
 * encodeEvent and decodeEvent take a fast path past Schema's interpreter; Schema
 * stays the reference. For any event, and for any damage done to a stored one,
 * they must give exactly what Schema gives: the same JSON text, the same
 * decoded value, the same error.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { Event } from "../src/index.js"
import { treeOf } from "../src/internal/bounds.js"
import { guarded } from "../src/internal/decode.js"
import { decodeEvent, encodeEvent, eventVersions, type EventType } from "../src/schema/Event.js"

// Guarded as the codecs' own fallback is: Schema throws for some damaged values (a tag that cannot be stringified).
const schemaEncode = guarded(Event.ast, Schema.encodeEither(Event))
const schemaDecode = guarded(Event.ast, Schema.decodeUnknownEither(Event, { onExcessProperty: "error" }))

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

/** Every path to a value inside `json`, the root excluded. */
const paths = (json: Json, prefix: ReadonlyArray<string> = []): Array<ReadonlyArray<string>> => {
  if (typeof json !== "object" || json === null) return []
  return Object.entries(json).flatMap(([key, value]) => [[...prefix, key], ...paths(value, [...prefix, key])])
}

type Damage =
  | { readonly op: "drop" }
  | { readonly op: "replace"; readonly value: Json }
  | { readonly op: "add"; readonly key: string; readonly value: Json }

/** A copy of `json` with `damage` done at `path` (to the parent object for "add"). */
const damaged = (json: Json, path: ReadonlyArray<string>, damage: Damage): Json => {
  if (typeof json !== "object" || json === null) return json
  const copy = (Array.isArray(json) ? [...json] : { ...json }) as Record<string, Json>
  const [key, ...rest] = path
  if (damage.op === "add" && rest.length === 0) {
    const target = copy[key]
    if (typeof target === "object" && target !== null && !Array.isArray(target)) {
      copy[key] = { ...target, [damage.key]: damage.value }
    } else {
      // An array's length is not a key to add: setting it to a fraction throws, in the test, not the codec.
      copy[Array.isArray(copy) && damage.key === "length" ? "length_" : damage.key] = damage.value
    }
  } else if (rest.length === 0) {
    if (damage.op === "drop") delete copy[key]
    else if (damage.op === "replace") copy[key] = damage.value
  } else {
    copy[key] = damaged(copy[key], rest, damage)
  }
  return copy
}

const reference = (type: string, payload: Json) => {
  const decoded = schemaDecode(payload)
  // Schema's own error, written as every error message is: with values shown within bounds.
  if (Either.isLeft(decoded)) return Either.left(treeOf(decoded.left.issue))
  return decoded.right._tag === type ? Either.right(decoded.right) : Either.left(`stored as ${type}`)
}

describe("Event codec fast path", () => {
  it.prop("encodes every event to the very JSON text Schema gives", { event: Event }, ({ event }) => {
    const stored = encodeEvent(event)
    const expected = schemaEncode(event)
    expect(Either.isRight(stored)).toBe(Either.isRight(expected))
    if (Either.isRight(stored) && Either.isRight(expected)) {
      expect(stored.right.payload).toBe(JSON.stringify(expected.right))
    }
  }, { fastCheck: { numRuns: 300 } })

  it.prop(
    "decodes any stored payload, intact or damaged, exactly as Schema does",
    {
      event: Event,
      at: fc.nat(),
      damage: fc.oneof(
        fc.constant<Damage>({ op: "drop" }),
        fc.record({ op: fc.constant("replace" as const), value: fc.jsonValue() as fc.Arbitrary<Json> }),
        fc.record({
          op: fc.constant("add" as const),
          key: fc.oneof(fc.string(), fc.constantFrom("_tag", "to", "payload", "message_id", "at")),
          value: fc.jsonValue() as fc.Arbitrary<Json>
        })
      ),
      intact: fc.boolean()
    },
    ({ at, damage, event, intact }) => {
      const stored = encodeEvent(event)
      if (Either.isLeft(stored)) return
      const original = JSON.parse(stored.right.payload) as Json
      const all = paths(original)
      const payload = intact ? original : damaged(original, all[at % all.length], damage)
      const type = stored.right.type
      const actual = decodeEvent(1, { type, version: eventVersions[type as EventType], payload: JSON.stringify(payload) })
      const expected = reference(type, JSON.parse(JSON.stringify(payload)))
      if (Either.isRight(expected)) {
        if (Either.isLeft(actual)) throw new Error(`refused what Schema accepts: ${actual.left.reason}`)
        expect(actual.right).toEqual(expected.right)
        expect(Object.getPrototypeOf(actual.right)).toBe(Object.getPrototypeOf(expected.right))
        expect(JSON.stringify(actual.right)).toBe(JSON.stringify(expected.right))
      } else {
        if (Either.isRight(actual)) throw new Error(`accepted what Schema refuses: ${expected.left}`)
        expect(actual.left.reason).toContain(expected.left)
      }
    },
    { fastCheck: { numRuns: 1_000 } }
  )

  it.prop(
    "refuses to encode a damaged event exactly when Schema refuses, and otherwise gives Schema's text",
    {
      event: Event,
      // Which field to damage, at the top or one level down, and with what.
      at: fc.tuple(fc.nat(), fc.nat(), fc.boolean()),
      value: fc.anything()
    },
    ({ at: [i, j, deeper], event, value }) => {
      const keys = Object.keys(event)
      const key = keys[i % keys.length]
      const inner = (event as Record<string, unknown>)[key]
      const innerKeys = typeof inner === "object" && inner !== null ? Object.keys(inner) : []
      const damaged = deeper && innerKeys.length > 0
        ? { ...event, [key]: { ...(inner as object), [innerKeys[j % innerKeys.length]]: value } }
        : { ...event, [key]: value }
      const stored = encodeEvent(damaged as never)
      const expected = schemaEncode(damaged as never)
      expect(Either.isRight(stored)).toBe(Either.isRight(expected))
      if (Either.isRight(stored) && Either.isRight(expected)) {
        expect(stored.right.payload).toBe(JSON.stringify(expected.right))
      }
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it("gives errors, never throws, for an event nested too deeply to be checked", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000)
    const payload =
      `{"_tag":"ApprovalOpened","approval_id":"x","action":{"kind":"tool_call","agent_id":"a","tool":"t","args":${deep}},` +
      `"reason":"r","rule":"r","expires_at":1,"at":1}`
    const decoded = decodeEvent(7, { type: "ApprovalOpened", version: 1, payload })
    expect(Either.isLeft(decoded) && decoded.left).toMatchObject({ _tag: "UndecodableRecord", offset: 7 })
    const encoded = encodeEvent(JSON.parse(payload))
    expect(Either.isLeft(encoded) && encoded.left._tag).toBe("ValidationError")
  })

  it("refuses an event that JSON.stringify throws on", () => {
    // Json args are checked by their enumerable values; `JSON.stringify` also calls a hidden toJSON.
    const args = Object.defineProperty({}, "toJSON", {
      value: () => {
        throw new Error("no JSON here")
      }
    })
    const action = { kind: "tool_call", agent_id: "a", tool: "t", args }
    const event = { _tag: "ApprovalOpened", approval_id: "x", action, reason: "r", rule: "r", expires_at: 1, at: 1 }
    const encoded = encodeEvent(event as never)
    expect(Either.isLeft(encoded) && encoded.left.message).toMatch(/no JSON here/)
  })

  it("reads the version 1 records of the events widened since, as they were written", () => {
    const requeued = { _tag: "MessageRequeued", message_id: "m", to: "b", reason: "ack_wait", at: 5 }
    const opened = {
      _tag: "ApprovalOpened",
      approval_id: "approval-1",
      action: { kind: "tool_call", agent_id: "a", tool: "t", args: { n: 1 } },
      reason: "r",
      rule: "r",
      expires_at: 9,
      at: 5
    }
    const timedOut = { _tag: "MessageTimedOut", message_id: "m", error_code: "ACK_TIMEOUT", at: 5 }
    for (const payload of [requeued, opened, timedOut]) {
      const decoded = decodeEvent(3, { type: payload._tag, version: 1, payload: JSON.stringify(payload) })
      expect(Either.getOrThrow(decoded)).toEqual(payload)
      expect(eventVersions[payload._tag as EventType]).toBeGreaterThanOrEqual(2)
    }
    // Version 2 of MessageRequeued, before the reason "released", reads as it was written too.
    const left = { ...requeued, reason: "subscriber_left" }
    expect(Either.getOrThrow(decodeEvent(3, { type: "MessageRequeued", version: 2, payload: JSON.stringify(left) }))).toEqual(left)
    // A version beyond the current one is refused as newer, not guessed at.
    const newer = decodeEvent(4, { type: "MessageRequeued", version: 4, payload: JSON.stringify(requeued) })
    expect(Either.isLeft(newer) && newer.left.reason).toMatch(/version 4 is newer/)
  })

  it("refuses values that are no event as Schema does", () => {
    for (const value of [null, 7, "MessageAccepted", {}, { _tag: "MessageAccepted" }, { _tag: "Nope" }]) {
      const stored = encodeEvent(value as never)
      expect(Either.isLeft(stored)).toBe(true)
      expect(Either.isLeft(schemaEncode(value as never))).toBe(true)
    }
  })
})
