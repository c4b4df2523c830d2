import { it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
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
