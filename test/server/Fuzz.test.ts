/**
 * Bad input at the server, generated: request bodies from each route's own
 * payload Schema (`Arbitrary.make`), then spoiled (wrong types, missing
 * fields, huge strings, 10,000 levels of nesting, `__proto__` and
 * `constructor` keys, cut short, sent as another content type, bytes that
 * are not UTF-8); junk paths, methods and queries; junk WebSocket frames.
 * Every answer is a success or a typed 4xx problem (problem+json with a
 * `code`), never a 5xx, and afterwards the server still answers: its health,
 * and a real message sent, delivered and acknowledged.
 */
import { it } from "@effect/vitest"
import { Arbitrary, Effect, FastCheck as fc, Option, Schema } from "effect"
import { expect } from "vitest"
import { type Answer, request, start } from "./harness.js"
import { envelope, fillPath, openStream, rawRequest, type Route, routes } from "./wire.js"

/** A new seed each run, printed with any counterexample; `FUZZ_SEED=n` replays one. */
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
const runs = (count: number) => ({ numRuns: count, seed, endOnFailure: true })

// ---------------------------------------------------------------------------
// What an answer to bad input may be

/** A 4xx problem: problem+json, its status in the body, a wire code and a retry class. */
const isTypedRefusal = (answer: Answer) =>
  answer.status >= 400 && answer.status < 500 &&
  answer.type === "application/problem+json" &&
  answer.body?.status === answer.status &&
  typeof answer.body?.code === "string" && /^[A-Z_]+$/.test(answer.body.code) &&
  typeof answer.body?.retryable === "boolean"

const isSuccess = (answer: Answer) => answer.status >= 200 && answer.status < 300

/** Shown when an expectation fails: enough of the request and answer to replay it. */
const shown = (what: string, answer: Answer) =>
  `${what.slice(0, 300)} → ${answer.status} ${answer.type} ${JSON.stringify(answer.body)?.slice(0, 300)}`

// ---------------------------------------------------------------------------
// Bodies from the Schemas, spoiled

/** JSON text `levels` arrays deep. */
const deep = (levels: number) => "[".repeat(levels) + "]".repeat(levels)
const deepMark = "\u0000deep\u0000"

/** Every path to a value inside `value` (the root is `[]`). */
const pathsOf = (value: unknown, prefix: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> => {
  if (typeof value !== "object" || value === null || prefix.length > 6) return [prefix]
  const entries = Array.isArray(value) ? value.map((item, index) => [index, item] as const) : Object.entries(value)
  return [prefix, ...entries.flatMap(([key, item]) => pathsOf(item, [...prefix, key]))]
}

/** `value` with the value at `path` replaced by `replace(old)`, or removed when `replace` answers `undefined`. */
const changed = (value: unknown, path: ReadonlyArray<string | number>, replace: (old: unknown) => unknown): unknown => {
  if (path.length === 0) return replace(value)
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) }
  const [head, ...rest] = path
  const next = changed(copy[head], rest, replace)
  if (next === undefined) {
    if (Array.isArray(copy)) copy.splice(head as number, 1)
    else delete copy[head]
  } else copy[head] = next
  return copy
}

/** A value of another JSON type than `old`'s. */
const otherType = (old: unknown, pick: number): unknown => {
  const candidates: Array<unknown> = [42, -1.5, "text", "", true, null, [], {}, [1, "a"], { x: 1 }, 1e308, -0]
  const others = candidates.filter((candidate) => typeof candidate !== typeof old || Array.isArray(candidate) !== Array.isArray(old))
  return others[pick % others.length]
}

interface Spoiled {
  readonly how: string
  readonly body: string | Uint8Array
  readonly contentType?: string
  /** Whether no route may take it: then only a typed 4xx will do. */
  readonly alwaysBad: boolean
}

const nonJsonTypes = [
  "text/plain",
  "text/plain;charset=UTF-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/octet-stream",
  "application/xml",
  "application/jsonp",
  "json",
  ""
]

/** Sequences no UTF-8 decoder may accept. */
const notUtf8 = [[0xff], [0xfe, 0xff], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]

const spoil = (encoded: unknown): fc.Arbitrary<Spoiled> => {
  const text = JSON.stringify(encoded)
  const paths = pathsOf(encoded)
  const path = fc.constantFrom(...paths)
  return fc.oneof(
    fc.tuple(path, fc.nat()).map(([at, pick]) => ({
      how: `wrong type at ${at.join(".")}`,
      body: JSON.stringify(changed(encoded, at, (old) => otherType(old, pick)) ?? null),
      alwaysBad: false
    })),
    // (Of `{}` nothing can go missing: the root itself is left out then.)
    fc.constantFrom(...(paths.length > 1 ? paths.slice(1) : paths)).map((at) => ({
      how: `missing ${at.join(".")}`,
      body: JSON.stringify(at.length === 0 ? encoded : changed(encoded, at, () => undefined)),
      alwaysBad: false
    })),
    fc.tuple(path, fc.integer({ min: 10_000, max: 300_000 })).map(([at, length]) => ({
      how: `a string of ${length} at ${at.join(".")}`,
      body: JSON.stringify(changed(encoded, at, () => "x".repeat(length))),
      alwaysBad: false
    })),
    path.map((at) => ({
      how: `10,000 levels deep at ${at.join(".")}`,
      // Put in as text: JSON.stringify itself recurses once per level.
      body: JSON.stringify(changed(encoded, at, () => deepMark)).replace(JSON.stringify(deepMark), deep(10_000)),
      alwaysBad: true
    })),
    fc.tuple(path, fc.constantFrom("__proto__", "constructor", "prototype")).map(([at, key]) => ({
      how: `${key} at ${at.join(".")}`,
      // Written as text: an object literal's `__proto__` would set the prototype, not a key.
      body: JSON.stringify(changed(encoded, at, (old) =>
        typeof old === "object" && old !== null && !Array.isArray(old)
          ? JSON.parse(`{"${key}":{"polluted":true,"prototype":{"polluted":true}},${JSON.stringify(old).slice(1)}`.replace(/,}$/, "}"))
          : old)),
      alwaysBad: false
    })),
    fc.integer({ min: 1, max: Math.max(1, text.length - 1) }).map((cut) => ({
      how: `cut at ${cut} of ${text.length}`,
      body: text.slice(0, cut),
      alwaysBad: true
    })),
    fc.constantFrom(...nonJsonTypes).map((contentType) => ({
      how: `sent as ${JSON.stringify(contentType)}`,
      body: text,
      contentType,
      alwaysBad: true
    })),
    fc.tuple(fc.integer({ min: 0, max: text.length }), fc.constantFrom(...notUtf8)).map(([at, bytes]) => {
      const utf8 = Buffer.from(text, "utf8")
      return {
        how: `bytes ${bytes.map((b) => b.toString(16)).join(" ")} at ${at}`,
        body: new Uint8Array(Buffer.concat([utf8.subarray(0, at), Buffer.from(bytes), utf8.subarray(at)])),
        alwaysBad: true
      }
    })
  )
}

/** A value of `schema` (an arbitrary one), in its JSON form. */
const sampleOf = (schema: Schema.Schema<any, any>) => {
  const encode = Schema.encodeSync(schema)
  return Arbitrary.make(schema).map((value) => encode(value) as unknown)
}

/** A route's path, its parameters drawn from its path Schema. */
const pathOf = (route: Route) =>
  Option.match(route.pathParams, {
    onNone: () => fc.constant(route.path),
    onSome: (schema) => sampleOf(schema).map((params) => fillPath(route.path, params as Record<string, string>))
  })

const withPayload = routes.filter((route) => Option.isSome(route.payload))

const spoiledRequest = fc.constantFrom(...withPayload).chain((route) =>
  fc.tuple(fc.constant(route), pathOf(route), sampleOf(Option.getOrThrow(route.payload)).chain(spoil))
)

// ---------------------------------------------------------------------------
// Junk paths and queries

/** A path segment with something a router or a decoder may choke on. */
const junkSegment = fc.oneof(
  fc.constantFrom("%", "%f", "%zz", "%ff%fe", "%00", "%2e%2e", "..", ".", "", "%2F", "~", "%C0%AF", "%E2%28%A1", "%uD800", "a%20b", ";x=1"),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.integer({ min: 1000, max: 9000 }).map((length) => "x".repeat(length))
)

/** A real route's path, with segments put in, changed or repeated. */
const junkPath = fc.tuple(fc.constantFrom(...routes), fc.array(junkSegment, { minLength: 1, maxLength: 4 }), fc.nat()).map(
  ([route, junk, at]) => {
    const segments = route.path.split("/").slice(1).map((segment) => segment.startsWith(":") ? junk[0] : segment)
    segments.splice(at % (segments.length + 1), 0, ...junk.slice(1))
    return `/${segments.join("/")}`
  }
)

const junkQuery = fc.array(
  fc.tuple(
    fc.oneof(fc.constantFrom("limit", "from", "at", "stage", "wait_ms", "capability", "team_id", "status", "agent_id", "decision", "access_token"), junkSegment),
    fc.oneof(junkSegment, fc.constantFrom("-1", "0", "1e309", "NaN", "0x10", "1.5", "99999999999999999999", "FULFILLED", "open"))
  ),
  { maxLength: 4 }
).map((pairs) => pairs.map(([key, value]) => `${key}=${value}`).join("&"))

const junkRequest = fc.tuple(
  fc.constantFrom("GET", "GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"),
  fc.oneof(junkPath, fc.constantFrom(...routes).map((route) => route.path)),
  junkQuery
)

// ---------------------------------------------------------------------------

const send = (url: string, route: Route, path: string, spoiled: Spoiled) =>
  rawRequest(url, {
    path,
    method: route.method,
    headers: spoiled.contentType === undefined ? { "content-type": "application/json" } : { "content-type": spoiled.contentType },
    body: spoiled.body
  })

/** The server answers, and still moves a message end to end: sent over HTTP, delivered and acknowledged over a WebSocket. */
const stillServes = (url: string) =>
  Effect.gen(function*() {
    expect(yield* request(`${url}/health`)).toMatchObject({ status: 200, body: { status: "ok" } })
    // Whatever the fuzzing left: the kill switch off, no policy in force.
    yield* request(`${url}/unhalt`, { body: {} })
    for (const policy of (yield* request(`${url}/policies`)).body) {
      yield* request(`${url}/policies/${encodeURIComponent(policy.policy_id)}`, { method: "DELETE" })
    }
    const producer = "after-fuzz-producer"
    const consumer = "after-fuzz-consumer"
    expect((yield* request(`${url}/agents`, { body: { agent_id: producer, name: "P" } })).status).toBe(200)
    expect((yield* request(`${url}/agents`, { body: { agent_id: consumer, name: "C" } })).status).toBe(200)
    const stream = yield* openStream(url, consumer)
    const sent = yield* request(`${url}/messages`, { body: { to: consumer, envelope: envelope(producer, { payload: { after: "fuzz" } }) } })
    expect(sent).toMatchObject({ status: 200, body: { stage: "RECEIVED" } })
    const [delivery] = yield* stream.next(1)
    expect(delivery).toMatchObject({ type: "delivery", envelope: { message_id: sent.body.message_id } })
    stream.socket.send(JSON.stringify({ type: "ack", ref: "final", message_id: sent.body.message_id, stage: "FULFILLED" }))
    const [, acked] = yield* stream.next(2)
    expect(acked).toMatchObject({ type: "acked", ref: "final", receipt: { stage: "FULFILLED" } })
    expect(yield* request(`${url}/messages/${sent.body.message_id}`)).toMatchObject({ status: 200, body: { stage: "FULFILLED" } })
  })

const started = start({
  // No agent goes unavailable on its own during the run: a 503 would then be right, and this suite allows none.
  runtime: { livenessTimeoutMs: undefined },
  secrets: { API_KEY: "fuzz-secret" }
})

it.scoped("spoiled bodies of every route's Schema: a success or a typed 4xx, never a 5xx", () =>
  Effect.gen(function*() {
    const { url } = yield* started
    yield* Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(spoiledRequest, async ([route, path, spoiled]) => {
          const answer = await Effect.runPromise(send(url, route, path, spoiled))
          const what = `${route.method} ${path} (${route.id}), ${spoiled.how}`
          if (spoiled.alwaysBad) expect(isTypedRefusal(answer), shown(what, answer)).toBe(true)
          else expect(isSuccess(answer) || isTypedRefusal(answer), shown(what, answer)).toBe(true)
        }),
        runs(400)
      )
    )
    // Keys named __proto__ and constructor stayed keys.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined()
    yield* stillServes(url)
  }))

it.scoped("junk paths, methods and queries: a success or a typed 4xx, never a 5xx", () =>
  Effect.gen(function*() {
    const { url } = yield* started
    yield* request(`${url}/agents`, { body: { agent_id: "a", name: "A" } })
    yield* Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(junkRequest, async ([method, path, query]) => {
          const target = query === "" ? path : `${path}?${query}`
          const answer = await Effect.runPromise(rawRequest(url, { path: target, method }))
          expect(isSuccess(answer) || isTypedRefusal(answer), shown(`${method} ${target}`, answer)).toBe(true)
        }),
        runs(300)
      )
    )
    yield* stillServes(url)
  }))

it.scoped("every route's own query parameters, spoiled: a success or a typed 4xx", () =>
  Effect.gen(function*() {
    const { url } = yield* started
    const withQuery = routes.filter((route) => Option.isSome(route.urlParams) && route.method === "GET")
    expect(withQuery.length).toBeGreaterThan(0)
    const spoiledQuery = fc.constantFrom(...withQuery).chain((route) =>
      fc.tuple(
        fc.constant(route),
        pathOf(route),
        sampleOf(Option.getOrThrow(route.urlParams)).chain((params) =>
          fc.tuple(fc.constant(params as Record<string, string>), junkQuery)
        )
      )
    )
    yield* Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(spoiledQuery, async ([route, path, [params, junk]]) => {
          // Bounded waits: a long poll on a message that exists would only be slow, not wrong.
          const given = Object.entries(params).flatMap(([key, value]): Array<[string, string]> =>
            value === undefined ? [] : [[key, key === "wait_ms" ? "0" : String(value)]]
          )
          const query = new URLSearchParams(given).toString()
          const target = `${path}?${[query, junk].filter((part) => part !== "").join("&")}`
          const answer = await Effect.runPromise(rawRequest(url, { path: target }))
          expect(isSuccess(answer) || isTypedRefusal(answer), shown(`GET ${target} (${route.id})`, answer)).toBe(true)
        }),
        runs(200)
      )
    )
    yield* stillServes(url)
  }))

it.scoped("junk WebSocket frames are each answered with a typed error frame, and the stream goes on", () =>
  Effect.gen(function*() {
    const { url } = yield* started
    yield* request(`${url}/agents`, { body: { agent_id: "ws-consumer", name: "C" } })
    const stream = yield* openStream(url, "ws-consumer")
    const frames = fc.sample(
      fc.oneof(
        fc.string().map((text) => ({ how: "junk text", data: text as string | Uint8Array })),
        fc.jsonValue().map((value) => ({ how: "some JSON", data: JSON.stringify(value) })),
        fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ how: "binary", data: bytes })),
        // Up to the limit of a stream's frame (64 KiB); a larger one closes the socket (Ws.test.ts).
        fc.constantFrom(60_000, 65_000).map((length) => ({ how: `${length} characters`, data: "[".repeat(length) })),
        fc.constantFrom(60_000).map((length) => ({ how: `${length} bytes`, data: new Uint8Array(length).fill(0xff) })),
        fc.record({
          message_id: fc.string({ minLength: 1, maxLength: 40 }),
          stage: fc.constantFrom("RECEIVED", "READ", "FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"),
          delivery_seq: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined })
        }).map((ack) => ({ how: "an ACK of an unknown message", data: JSON.stringify({ type: "ack", ref: "unknown", ...ack }) })),
        fc.record({ type: fc.constantFrom("ack", "ACK", "nack", ""), message_id: fc.jsonValue(), stage: fc.jsonValue() }).map((frame) => ({
          how: "an ACK of the wrong shape",
          data: JSON.stringify(frame)
        })),
        fc.constantFrom('{"type":"ack","__proto__":{"message_id":"x"},"stage":"READ"}', '{"type":"ack","constructor":{"prototype":{}}}').map((data) => ({
          how: "__proto__ keys",
          data
        }))
      ),
      { numRuns: 120, seed: runs(0).seed }
    )
    for (const frame of frames) stream.socket.send(frame.data)
    const answers = yield* stream.next(frames.length)
    answers.forEach((answer, index) => {
      const what = `frame ${index} (${frames[index].how}): ${JSON.stringify(answer).slice(0, 300)}`
      expect(answer.type, what).toBe("error")
      expect(answer.error, what).toMatchObject({ status: expect.any(Number), code: expect.stringMatching(/^[A-Z_]+$/), retryable: expect.any(Boolean) })
      expect(answer.error.status >= 400 && answer.error.status < 500, what).toBe(true)
    })
    // The same socket still takes a delivery and its ACK.
    yield* request(`${url}/agents`, { body: { agent_id: "ws-producer", name: "P" } })
    const sent = yield* request(`${url}/messages`, { body: { to: "ws-consumer", envelope: envelope("ws-producer") } })
    const [delivery] = (yield* stream.next(frames.length + 1)).slice(frames.length)
    expect(delivery).toMatchObject({ type: "delivery", envelope: { message_id: sent.body.message_id } })
    stream.socket.send(JSON.stringify({ type: "ack", ref: "real", message_id: sent.body.message_id, stage: "FULFILLED", delivery_seq: delivery.delivery_seq }))
    const [acked] = (yield* stream.next(frames.length + 2)).slice(frames.length + 1)
    expect(acked).toMatchObject({ type: "acked", ref: "real", receipt: { stage: "FULFILLED" } })
    yield* stillServes(url)
  }))
