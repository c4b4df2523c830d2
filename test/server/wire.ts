/**
 * What the server's tests share beside the harness: a keys file with two
 * agents and an operator, envelopes in their JSON wire form, the check that
 * an answer is a typed problem, and raw sockets for what `fetch` will not
 * send (junk paths, bytes that are not UTF-8, WebSockets).
 */
import { HttpApi, HttpApiMiddleware } from "@effect/platform"
import { Effect, Option, Schema } from "effect"
import * as Http from "node:http"
import { expect } from "vitest"
import WebSocket from "ws"
import { buildEnvelope, type EnvelopeInput } from "../../src/model/Envelopes.js"
import { hashKey, keyIdOf } from "../../src/model/Keys.js"
import { Envelope } from "../../src/schema/Envelope.js"
import { KeysFile } from "../../src/schema/Keys.js"
import { SwitchboardApi } from "../../src/server/Api.js"
import type { Answer } from "./harness.js"

// ---------------------------------------------------------------------------
// The API, as its definition lists it

export interface Route {
  /** `group.endpoint`, e.g. `messages.send`. */
  readonly id: string
  readonly method: string
  /** As declared, with `:param` segments. */
  readonly path: string
  readonly payload: Option.Option<Schema.Schema<any, any>>
  readonly pathParams: Option.Option<Schema.Schema<any, any>>
  readonly urlParams: Option.Option<Schema.Schema<any, any>>
  /** The statuses it documents: successes, and failures (its own, its group's and the API's). */
  readonly successes: ReadonlyArray<number>
  readonly failures: ReadonlyArray<number>
  /** Whether it needs a key (has the `Authorization` middleware) on a server with keys. */
  readonly authenticated: boolean
}

/** Every route of `SwitchboardApi`, read from its definition (never listed by hand). */
export const routes: ReadonlyArray<Route> = (() => {
  const found: Array<Route> = []
  HttpApi.reflect(SwitchboardApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, errors, group, middleware, successes }) => {
      found.push({
        id: `${group.identifier}.${endpoint.name}`,
        method: endpoint.method,
        path: endpoint.path,
        payload: endpoint.payloadSchema as unknown as Option.Option<Schema.Schema<any, any>>,
        pathParams: endpoint.pathSchema as unknown as Option.Option<Schema.Schema<any, any>>,
        urlParams: endpoint.urlParamsSchema as unknown as Option.Option<Schema.Schema<any, any>>,
        successes: [...successes.keys()],
        failures: [...errors.keys()],
        authenticated: [...middleware].some((tag) => HttpApiMiddleware.isSecurity(tag))
      })
    }
  })
  return found
})()

/** `path` with each `:param` put in from `params`, URL-encoded. */
export const fillPath = (path: string, params: Readonly<Record<string, string>>) =>
  path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name] ?? name))

// ---------------------------------------------------------------------------
// Keys

/** A well-formed key (`sb_` and 43 base64url characters) made of one repeated character. */
export const keyOf = (character: string) => `sb_${character.repeat(43)}`

/** The keys of `keysFile`: agent `a`'s, agent `b`'s and the operator's. */
export const keys = { a: keyOf("A"), b: keyOf("B"), operator: keyOf("O") } as const
/** A key of the right shape that no keys file holds. */
export const strangerKey = keyOf("Z")

const entry = (key: string, fields: { readonly role: "agent"; readonly agent_id: string } | { readonly role: "operator" }) => {
  const hash = hashKey(key)
  return { id: keyIdOf(hash), hash, created_at: "2025-01-01T00:00:00.000Z", ...fields }
}

export const keysFile: KeysFile = Schema.decodeUnknownSync(KeysFile)({
  version: 1,
  keys: [
    entry(keys.a, { role: "agent", agent_id: "a" }),
    entry(keys.b, { role: "agent", agent_id: "b" }),
    entry(keys.operator, { role: "operator" })
  ]
})

// ---------------------------------------------------------------------------
// Envelopes

let sent = 0
const encodeEnvelope = Schema.encodeSync(Envelope)

/** An envelope as JSON on the wire, with a fresh message id unless one is given; the payload defaults to `{"n":1}`. */
export const envelope = (
  producer_id: string,
  fields: Partial<EnvelopeInput> & { readonly message_id?: string; readonly timestamp?: number } = {}
) =>
  encodeEnvelope(
    buildEnvelope({ payload: { n: 1 }, ...fields, producer_id }, fields.message_id ?? `msg-${++sent}`, fields.timestamp ?? Date.now())
  )

// ---------------------------------------------------------------------------
// Answers

/** The answer is the problem+json of a typed error: `status`, its wire `code` and retry class. */
export const expectProblem = (answer: Answer, status: number, code?: string) => {
  expect({ status: answer.status, type: answer.type }).toEqual({ status, type: "application/problem+json" })
  expect(answer.body).toMatchObject({
    type: expect.stringMatching(/^urn:switchboard:error:/),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code: code ?? expect.stringMatching(/^[A-Z_]+$/),
    retryable: expect.any(Boolean)
  })
}

/** The answer is a 400 whose issues name `path` (a dotted field path, "" for the whole input). */
export const expectInvalid = (answer: Answer, path: string) => {
  expectProblem(answer, 400, "VALIDATION_ERROR")
  expect((answer.body.issues ?? answer.body.problems ?? []).map((issue: { path: string }) => issue.path)).toContain(path)
}

// ---------------------------------------------------------------------------
// Raw sockets

/** A request sent as given, byte for byte (`fetch` would normalise the path and refuse some bodies). */
export const rawRequest = (
  url: string,
  options: {
    readonly path: string
    readonly method?: string
    readonly headers?: Record<string, string>
    readonly body?: Uint8Array | string
    /** Sent in chunks, its length not declared (POST, PUT and PATCH only). */
    readonly chunked?: boolean
  }
): Effect.Effect<Answer> =>
  Effect.async((resume) => {
    const target = new URL(url)
    const request = Http.request({
      host: target.hostname,
      port: target.port,
      path: options.path,
      method: options.method ?? (options.body === undefined ? "GET" : "POST"),
      // Declared, whatever the method: Node sends a GET's or a DELETE's body with neither a length nor chunks.
      headers: options.body === undefined || options.chunked === true
        ? options.headers
        : { "content-length": String(Buffer.byteLength(options.body)), ...options.headers },
      agent: false
    }, (response) => {
      const type = response.headers["content-type"] ?? ""
      if (type.startsWith("text/event-stream")) {
        // A stream never ends: its status and type are the answer.
        request.destroy()
        return resume(Effect.succeed({ status: response.statusCode ?? 0, type, headers: new Headers(), body: undefined }))
      }
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        let body: unknown = text
        try {
          body = text === "" ? undefined : JSON.parse(text)
        } catch {
          // not JSON: kept as text
        }
        const headers = new Headers()
        for (const [name, value] of Object.entries(response.headers)) {
          if (typeof value === "string") headers.set(name, value)
        }
        resume(Effect.succeed({ status: response.statusCode ?? 0, type: response.headers["content-type"] ?? "", headers, body }))
      })
    })
    // A refused or reset connection is an answer too: status 0, which no expectation accepts.
    request.on("error", (error) => resume(Effect.succeed({ status: 0, type: "", headers: new Headers(), body: String(error) })))
    request.end(options.body)
  })

/** How a WebSocket upgrade went: opened (101), or refused with the status and body it was answered. */
export const upgrade = (url: string, path: string, key?: string): Effect.Effect<Answer> =>
  Effect.async((resume) => {
    const socket = new WebSocket(`${url.replace("http", "ws")}${path}`, {
      headers: key === undefined ? {} : { authorization: `Bearer ${key}` }
    })
    socket.on("unexpected-response", (_request, response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        socket.terminate()
        resume(Effect.succeed({
          status: response.statusCode ?? 0,
          type: response.headers["content-type"] ?? "",
          headers: new Headers(),
          body: text === "" ? undefined : JSON.parse(text)
        }))
      })
    })
    socket.on("open", () => {
      socket.close()
      resume(Effect.succeed({ status: 101, type: "", headers: new Headers(), body: undefined }))
    })
    socket.on("error", (error) => resume(Effect.succeed({ status: 0, type: "", headers: new Headers(), body: String(error) })))
  })

/**
 * A WebSocket to an agent's stream, open, inside the scope: `frames` are the
 * JSON frames received so far, `next(n)` waits until there are `n`.
 */
export const openStream = (url: string, agent_id: string, key?: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly socket: WebSocket; readonly frames: Array<any>; readonly next: (count: number) => Effect.Effect<Array<any>> }>((resume) => {
      const socket = new WebSocket(`${url.replace("http", "ws")}/agents/${agent_id}/stream`, {
        headers: key === undefined ? {} : { authorization: `Bearer ${key}` }
      })
      const frames: Array<any> = []
      const waiting: Array<{ count: number; done: () => void }> = []
      socket.on("message", (data) => {
        frames.push(JSON.parse(String(data)))
        for (const waiter of [...waiting]) {
          if (frames.length >= waiter.count) {
            waiting.splice(waiting.indexOf(waiter), 1)
            waiter.done()
          }
        }
      })
      const next = (count: number) =>
        Effect.async<Array<any>>((done) => {
          if (frames.length >= count) return done(Effect.succeed(frames.slice(0, count)))
          waiting.push({ count, done: () => done(Effect.succeed(frames.slice(0, count))) })
        })
      socket.on("open", () => resume(Effect.succeed({ socket, frames, next })))
      socket.on("error", (error) => resume(Effect.die(error)))
    }),
    ({ socket }) => Effect.sync(() => socket.terminate())
  )
