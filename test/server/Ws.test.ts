import { it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import * as Net from "node:net"
import WebSocket from "ws"
import { newEnvelope } from "../../src/layers/Envelopes.js"
import { request, start } from "./harness.js"

it.scoped("a consumer receives and acknowledges over a WebSocket", () =>
  Effect.gen(function*() {
    const { router, url } = yield* start()
    yield* request(`${url}/agents`, { body: { agent_id: "p", name: "P" } })
    yield* request(`${url}/agents`, { body: { agent_id: "c", name: "C" } })
    const envelope = yield* newEnvelope({ producer_id: "p", payload: { n: 1 }, ttl_ms: 60_000 })
    const receipt = yield* router.send({ to: "c", envelope })
    const frames = yield* Effect.promise(() =>
      new Promise<Array<any>>((resolve, reject) => {
        const socket = new WebSocket(`${url.replace("http", "ws")}/agents/c/stream`)
        const seen: Array<any> = []
        socket.on("message", (data) => {
          const frame = JSON.parse(String(data))
          seen.push(frame)
          if (frame.type === "delivery") {
            socket.send(JSON.stringify({ type: "ack", ref: "r1", message_id: frame.envelope.message_id, stage: "FULFILLED", delivery_seq: frame.delivery_seq }))
            socket.send("{junk")
          }
          if (seen.length === 3) {
            socket.close()
            resolve(seen)
          }
        })
        socket.on("error", reject)
      })
    )
    expect(frames[0]).toMatchObject({ type: "delivery", delivery_seq: 1, envelope: { message_id: receipt.message_id } })
    expect(frames.slice(1).map((f) => f.type).sort()).toEqual(["acked", "error"])
    const status = yield* request(`${url}/messages/${receipt.message_id}`)
    expect(status.body.stage).toBe("FULFILLED")
  }))

/** The first `count` frames a fresh WebSocket consumer of `agent` receives, then it closes without acknowledging. */
const take = (url: string, agent: string, count: number) =>
  Effect.promise(() =>
    new Promise<Array<any>>((resolve, reject) => {
      const socket = new WebSocket(`${url.replace("http", "ws")}/agents/${agent}/stream`)
      const seen: Array<any> = []
      socket.on("message", (data) => {
        seen.push(JSON.parse(String(data)))
        if (seen.length === count) {
          socket.close()
          socket.once("close", () => resolve(seen))
        }
      })
      socket.on("error", reject)
    })
  )

it.scoped("a consumer that reconnects receives again, at once, what it had not acknowledged", () =>
  Effect.gen(function*() {
    const { router, url } = yield* start({ runtime: { ackWaitMs: 600_000 } })
    yield* request(`${url}/agents`, { body: { agent_id: "p", name: "P" } })
    yield* request(`${url}/agents`, { body: { agent_id: "c", name: "C" } })
    const envelope = yield* newEnvelope({ producer_id: "p", payload: { n: 1 }, ttl_ms: 600_000 })
    const receipt = yield* router.send({ to: "c", envelope })
    const first = yield* take(url, "c", 1)
    expect(first[0]).toMatchObject({ type: "delivery", delivery_seq: 1, attempt: 1 })
    // No ack wait passes: the message comes back because the socket closed.
    const again = yield* take(url, "c", 1)
    expect(again[0]).toMatchObject({ type: "delivery", delivery_seq: 2, envelope: { message_id: receipt.message_id } })
  }))

it.scoped("a frame larger than the stream takes closes that socket with 1009 as it arrives; other consumers and the server go on", () =>
  Effect.gen(function*() {
    const { url } = yield* start()
    for (const id of ["big", "other"]) yield* request(`${url}/agents`, { body: { agent_id: id, name: id } })
    const open = (agent: string) =>
      Effect.promise(() =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`${url.replace("http", "ws")}/agents/${agent}/stream`)
          socket.once("open", () => resolve(socket))
          socket.once("error", reject)
        })
      )
    const other = yield* open("other")
    const big = yield* open("big")
    const closed = yield* Effect.promise(() =>
      new Promise<number>((resolve) => {
        big.once("close", (code) => resolve(code))
        big.send("x".repeat(4 * 1024 * 1024))
      })
    )
    expect(closed).toBe(1009)
    const answer = yield* Effect.promise(() =>
      new Promise<any>((resolve) => {
        other.once("message", (data) => resolve(JSON.parse(String(data))))
        other.send(JSON.stringify({ type: "ack", ref: "still", message_id: "nope", stage: "READ" }))
      })
    )
    expect(answer).toMatchObject({ type: "error", ref: "still" })
    other.close()
    expect((yield* request(`${url}/health`)).status).toBe(200)
  }))

/** The status line and body the server answers to a hand-written upgrade request. */
const rawUpgrade = (url: string, headers: string) =>
  Effect.promise(() =>
    new Promise<string>((resolve, reject) => {
      const { hostname, port } = new URL(url)
      const socket = Net.connect(Number(port), hostname, () =>
        socket.write(`GET /agents/h/stream HTTP/1.1\r\nHost: x\r\n${headers}\r\n`))
      let answer = ""
      socket.on("data", (chunk) => {
        answer += String(chunk)
        if (answer.includes("}")) socket.destroy()
      })
      socket.on("close", () => resolve(answer))
      socket.on("error", reject)
    })
  )

it.scoped("a handshake the WebSocket server would drop is a 400 naming the header, and costs the agent nothing", () =>
  Effect.gen(function*() {
    const { router, url } = yield* start()
    for (const id of ["p", "h"]) yield* request(`${url}/agents`, { body: { agent_id: id, name: id } })
    const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    const cases = [
      [`Upgrade: websocket\r\nConnection: Upgrade\r\n${key}Sec-WebSocket-Version: 99\r\n`, "sec-websocket-version"],
      [`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n`, "sec-websocket-key"],
      [`Upgrade: websocket\r\n${key}Sec-WebSocket-Version: 13\r\n`, "connection"],
      [`Upgrade: websocket\r\nConnection: Upgrade\r\n${key}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a b\r\n`, "sec-websocket-protocol"]
    ] as const
    for (const [headers, field] of cases) {
      const answer = yield* rawUpgrade(url, headers)
      expect({ field, status: answer.split("\r\n")[0] }).toEqual({ field, status: "HTTP/1.1 400 Bad Request" })
      expect(answer).toContain(`"path":"${field}"`)
    }
    // The agent's messages still reach a consumer that connects properly.
    const envelope = yield* newEnvelope({ producer_id: "p", payload: { n: 1 }, ttl_ms: 60_000 })
    const receipt = yield* router.send({ to: "h", envelope })
    const frame = yield* Effect.promise(() =>
      new Promise<any>((resolve, reject) => {
        const socket = new WebSocket(`${url.replace("http", "ws")}/agents/h/stream`)
        socket.once("message", (data) => {
          socket.close()
          resolve(JSON.parse(String(data)))
        })
        socket.once("error", reject)
      })
    )
    expect(frame).toMatchObject({ type: "delivery", delivery_seq: 1, envelope: { message_id: receipt.message_id } })
  }))

it.scoped("an agent's deliveries go to the least loaded of its sockets: one that stopped reading does not take them all", () =>
  Effect.gen(function*() {
    const { router, url } = yield* start()
    for (const id of ["p", "h"]) yield* request(`${url}/agents`, { body: { agent_id: id, name: id } })
    const open = () =>
      Effect.promise(() =>
        new Promise<{ socket: WebSocket; frames: Array<any> }>((resolve, reject) => {
          const socket = new WebSocket(`${url.replace("http", "ws")}/agents/h/stream`)
          const frames: Array<any> = []
          socket.on("message", (data) => frames.push(JSON.parse(String(data))))
          socket.once("open", () => resolve({ socket, frames }))
          socket.once("error", reject)
        })
      )
    const stalled = yield* open()
    const reading = yield* open()
    for (let i = 0; i < 10; i++) yield* router.send({ to: "h", envelope: yield* newEnvelope({ producer_id: "p", payload: { i }, ttl_ms: 60_000 }) })
    yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 500)))
    expect(stalled.frames.length + reading.frames.length).toBe(10)
    expect(reading.frames.length).toBeGreaterThanOrEqual(5)
    stalled.socket.close()
    reading.socket.close()
  }))

it.scoped("a consumer that does not read is closed (1008) once its socket holds too much, and what it held goes back", () =>
  Effect.gen(function*() {
    const { router, url } = yield* start({ runtime: { payloadLimit: 1024 * 1024 } })
    for (const id of ["p", "h"]) yield* request(`${url}/agents`, { body: { agent_id: id, name: id } })
    const socket = yield* Effect.promise(() =>
      new Promise<WebSocket>((resolve, reject) => {
        const opened = new WebSocket(`${url.replace("http", "ws")}/agents/h/stream`)
        opened.once("open", () => resolve(opened))
        opened.once("error", reject)
      })
    )
    // It stops reading: what the server sends piles up in its socket.
    ;(socket as unknown as { _socket: Net.Socket })._socket.pause()
    const payload = "x".repeat(512 * 1024)
    const sent: Array<string> = []
    for (let i = 0; i < 80; i++) {
      sent.push((yield* router.send({ to: "h", envelope: yield* newEnvelope({ producer_id: "p", payload, ttl_ms: 600_000 }) })).message_id)
    }
    const code = yield* Effect.promise(() =>
      new Promise<number>((resolve) => {
        socket.once("close", (closed) => resolve(closed))
        ;(socket as unknown as { _socket: Net.Socket })._socket.resume()
      })
    )
    expect(code).toBe(1008)
    // Released: each is queued again, none lost.
    const statuses = yield* Effect.forEach(sent, (id) => router.status(id))
    expect(statuses.every((status) => status._tag === "Some" && status.value.stage === "RECEIVED")).toBe(true)
  }), 60_000)
