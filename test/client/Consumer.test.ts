import { NodeHttpClient, NodeSocket } from "@effect/platform-node"
import { it } from "@effect/vitest"
import { Duration, Effect, Layer, Queue, Schedule, Stream } from "effect"
import * as Http from "node:http"
import { expect } from "vitest"
import { WebSocketServer } from "ws"
import * as Consumer from "../../src/client/Consumer.js"
import { newEnvelope } from "../../src/layers/Envelopes.js"
import { encodeEnvelope } from "../../src/schema/Envelope.js"
import type { Delivery, Inbound } from "../../src/services/Router.js"
import { makeKeys, restartable } from "./support.js"

const ClientLive = Layer.mergeAll(NodeHttpClient.layerUndici, NodeSocket.layerWebSocketConstructor)
const quick = Schedule.spaced("50 millis")

/** The consumer's items, one at a time, failing the test when none comes in time. */
const reader = (inbound: Stream.Stream<Inbound, unknown>) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Inbound>()
    yield* Effect.forkScoped(Stream.runForEach(inbound, (item) => Queue.offer(queue, item)))
    return {
      next: Queue.take(queue).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("nothing came") })),
      size: Queue.size(queue)
    }
  })

const delivery = (item: Inbound): Delivery => {
  if (item._tag !== "Delivery") throw new Error(`expected a delivery, got ${item._tag}`)
  return item
}

it.scopedLive("a consumer receives, acknowledges, and after a server restart gets its unacknowledged deliveries again", () =>
  Effect.gen(function*() {
    const server = yield* restartable({ runtime: { ackWaitMs: 1_000 } })
    yield* server.registry.register({ agent_id: "p", name: "P" })
    yield* server.registry.register({ agent_id: "c", name: "C" })
    const send = (n: number) =>
      Effect.flatMap(
        newEnvelope({ producer_id: "p", payload: { n }, ttl_ms: 60_000 }),
        (envelope) => server.router.send({ to: "c", envelope })
      )
    const consumer = yield* Consumer.connect({ baseUrl: server.url, agent_id: "c", reconnect: quick })
    const items = yield* reader(consumer.inbound)

    // Received and acknowledged on the socket.
    const m1 = yield* send(1)
    const d1 = delivery(yield* items.next)
    expect(d1).toMatchObject({ delivery_seq: 1, attempt: 1, envelope: { message_id: m1.message_id, producer_id: "p" } })
    const fulfilled = yield* consumer.ack({ message_id: m1.message_id, stage: "FULFILLED", delivery_seq: d1.delivery_seq })
    expect(fulfilled).toMatchObject({ message_id: m1.message_id, stage: "FULFILLED", late: false })

    // A refusal of the runtime comes back as its own typed error.
    const refused = yield* Effect.flip(consumer.ack({ message_id: "no-such-message", stage: "READ" }))
    expect(refused).toMatchObject({ _tag: "MessageNotFound", message_id: "no-such-message" })

    // m2 is left unread, m3 read: then the server goes away under the consumer.
    const m2 = yield* send(2)
    const m3 = yield* send(3)
    const d2 = delivery(yield* items.next)
    const d3 = delivery(yield* items.next)
    expect([d2.envelope.message_id, d3.envelope.message_id]).toEqual([m2.message_id, m3.message_id])
    yield* consumer.ack({ message_id: m3.message_id, stage: "READ", delivery_seq: d3.delivery_seq })
    yield* server.stop
    yield* Effect.repeat(consumer.connected, { until: (open) => !open, schedule: quick })

    // An ACK made while no server answers waits for one, and lands once it is back.
    const late = yield* Effect.fork(consumer.ack({ message_id: m3.message_id, stage: "FULFILLED", delivery_seq: d3.delivery_seq }))
    yield* Effect.sleep("300 millis")
    yield* server.restart
    expect(yield* late.await.pipe(Effect.flatten)).toMatchObject({ message_id: m3.message_id, stage: "FULFILLED" })

    // The unread m2 comes again on the new socket, and is acknowledged there.
    // m3, given back when the socket closed, may come again too before its
    // late ACK lands: at least once, and its ACK then counts as late.
    let again = delivery(yield* items.next)
    while (again.envelope.message_id === m3.message_id) again = delivery(yield* items.next)
    expect(again.envelope.message_id).toBe(m2.message_id)
    expect(again.delivery_seq).toBeGreaterThan(d3.delivery_seq)
    yield* consumer.ack({ message_id: m2.message_id, stage: "FULFILLED", delivery_seq: again.delivery_seq })
    const statuses = yield* Effect.forEach([m1, m2, m3], (m) => server.router.status(m.message_id))
    expect(statuses.map((status) => status._tag === "Some" ? status.value.stage : "none")).toEqual(["FULFILLED", "FULFILLED", "FULFILLED"])
    expect(yield* consumer.connected).toBe(true)
    // Nothing else came but, perhaps, m3 again.
    for (let left = yield* items.size; left > 0; left--) {
      expect(delivery(yield* items.next).envelope.message_id).toBe(m3.message_id)
    }
  }).pipe(Effect.provide(ClientLive)))

it.scopedLive("a delivery taken and never acknowledged comes again on the socket after its ack wait", () =>
  Effect.gen(function*() {
    const server = yield* restartable({ runtime: { ackWaitMs: 500 } })
    yield* server.registry.register({ agent_id: "p", name: "P" })
    yield* server.registry.register({ agent_id: "c", name: "C" })
    const consumer = yield* Consumer.connect({ baseUrl: server.url, agent_id: "c", reconnect: quick })
    const items = yield* reader(consumer.inbound)
    const envelope = yield* newEnvelope({ producer_id: "p", payload: "x", ttl_ms: 60_000 })
    const sent = yield* server.router.send({ to: "c", envelope })
    const first = delivery(yield* items.next)
    yield* consumer.ack({ message_id: sent.message_id, stage: "READ", delivery_seq: first.delivery_seq })
    const second = delivery(yield* items.next)
    expect(second).toMatchObject({ attempt: 2, envelope: { message_id: sent.message_id, retry_count: 1 } })
  }).pipe(Effect.provide(ClientLive)))

it.scopedLive("refusals that reconnecting cannot change fail the connection with the runtime's errors", () =>
  Effect.gen(function*() {
    const keys = makeKeys(["c", "d"])
    const server = yield* restartable({ keys: keys.file })
    yield* server.registry.register({ agent_id: "c", name: "C" })
    yield* server.registry.register({ agent_id: "d", name: "D" })
    const connect = (agent_id: string, apiKey?: string) =>
      Effect.flip(Consumer.connect({ baseUrl: server.url, agent_id, apiKey, reconnect: quick }))
    expect((yield* connect("nobody", keys.operator))._tag).toBe("NoRoute")
    expect((yield* connect("c"))._tag).toBe("Unauthorized")
    expect((yield* connect("c", "sb_not-a-key"))._tag).toBe("Unauthorized")
    expect((yield* connect("c", keys.agents.d))._tag).toBe("PermissionDenied")
    expect((yield* connect(""))._tag).toBe("ValidationError")
    // The agent's own key, and the operator's, open it.
    const own = yield* Consumer.connect({ baseUrl: server.url, agent_id: "c", apiKey: keys.agents.c })
    expect(yield* own.connected).toBe(true)
    const operator = yield* Consumer.connect({ baseUrl: server.url, agent_id: "d", apiKey: keys.operator })
    expect(yield* operator.connected).toBe(true)
  }).pipe(Effect.provide(ClientLive)))

it.scopedLive("a consumer started before its server waits for it, and gives up when its schedule does", () =>
  Effect.gen(function*() {
    const server = yield* restartable()
    yield* server.registry.register({ agent_id: "c", name: "C" })
    yield* server.stop
    const waiting = yield* Effect.fork(Consumer.connect({ baseUrl: server.url, agent_id: "c", reconnect: quick }))
    yield* Effect.sleep(Duration.millis(300))
    yield* server.restart
    const consumer = yield* waiting.await.pipe(Effect.flatten)
    expect(yield* consumer.connected).toBe(true)
    yield* server.stop
    const gaveUp = yield* Effect.flip(
      Consumer.connect({ baseUrl: server.url, agent_id: "c", reconnect: Schedule.recurs(2) })
    )
    expect(gaveUp).toMatchObject({ _tag: "InternalError", retryable: true })
  }).pipe(Effect.provide(ClientLive)))

/** A stand-in server: its socket sends what it is given and never answers an ACK; its HTTP answers every request with `receipt`. */
const standIn = (frames: ReadonlyArray<string>, receipt: unknown) =>
  Effect.acquireRelease(
    Effect.async<{
      readonly url: string
      readonly upgrades: Array<string>
      readonly received: Array<string>
      readonly close: () => void
    }>((resume) => {
      const received: Array<string> = []
      const upgrades: Array<string> = []
      const server = Http.createServer((request, response) => {
        let body = ""
        request.on("data", (chunk) => (body += String(chunk)))
        request.on("end", () => {
          received.push(`${request.method} ${request.url} ${body}`)
          response.writeHead(200, { "content-type": "application/json" })
          response.end(JSON.stringify(receipt))
        })
      })
      const sockets = new WebSocketServer({ server })
      sockets.on("connection", (socket, request) => {
        upgrades.push(request.url ?? "")
        for (const frame of frames) socket.send(frame)
        socket.on("message", (data) => received.push(`socket ${String(data)}`))
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { readonly port: number }).port
        resume(Effect.succeed({
          url: `http://127.0.0.1:${port}`,
          upgrades,
          received,
          close: () => {
            sockets.close()
            server.closeAllConnections()
            server.close()
          }
        }))
      })
    }),
    ({ close }) => Effect.sync(close)
  )

it.scopedLive("a frame that does not decode is skipped; an ACK the socket leaves unanswered goes over HTTP", () =>
  Effect.gen(function*() {
    const envelope = yield* newEnvelope({ producer_id: "p", payload: { n: 1 }, ttl_ms: 60_000 })
    const frame = { type: "delivery", envelope: yield* encodeEnvelope(envelope), attempt: 1, delivery_seq: 1, lane: "STANDARD" }
    const receipt = { message_id: envelope.message_id, stage: "FULFILLED", late: false, offset: 7 }
    const fake = yield* standIn(["{junk", JSON.stringify({ type: "delivery" }), JSON.stringify(frame)], receipt)
    const consumer = yield* Consumer.connect({ baseUrl: fake.url, agent_id: "c", apiKey: "sb_key", ackTimeout: "200 millis" })
    const items = yield* reader(consumer.inbound)
    expect(delivery(yield* items.next)).toMatchObject({ delivery_seq: 1, envelope: { message_id: envelope.message_id } })
    expect(yield* consumer.ack({ message_id: envelope.message_id, stage: "FULFILLED", delivery_seq: 1 })).toEqual(receipt)
    // The key travels in the upgrade request's query, and as a bearer token on HTTP.
    expect(fake.upgrades).toEqual(["/agents/c/stream?access_token=sb_key"])
    expect(fake.received).toHaveLength(2)
    expect(JSON.parse(fake.received[0].slice("socket ".length))).toEqual({
      type: "ack",
      ref: "a1",
      message_id: envelope.message_id,
      stage: "FULFILLED",
      delivery_seq: 1
    })
    expect(fake.received[1]).toMatch(/^POST \/acks /)
    expect(JSON.parse(fake.received[1].replace(/^POST \/acks /, ""))).toMatchObject({ agent_id: "c", message_id: envelope.message_id })
  }).pipe(Effect.provide(ClientLive)))
