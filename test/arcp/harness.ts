/**
 * A real server with the ARCP endpoint for tests: `Server.layer` on
 * 127.0.0.1, port 0, over a runtime on the log a test gives (memory by
 * default), with the agents a test registers; and a bare WebSocket client
 * that speaks the wire as PROTOCOLS.md §3 writes it, frame by frame.
 */
import { HttpServer } from "@effect/platform"
import { Context, DateTime, Effect, Layer, type Scope } from "effect"
import WebSocket from "ws"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import * as KeysLive from "../../src/layers/KeysLive.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import type { KeyEntry, KeysFile } from "../../src/schema/Keys.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { encodeKey, hashKey, keyIdOf } from "../../src/model/Keys.js"
import { Arcp, type ArcpOptions } from "../../src/services/Arcp.js"
import type { EventLog } from "../../src/services/EventLog.js"
import { Gateway } from "../../src/services/Gateway.js"
import { Keys } from "../../src/services/Keys.js"
import { SecretStore } from "../../src/services/SecretStore.js"
import * as Server from "../../src/server/Server.js"

export interface Started {
  /** `ws://127.0.0.1:PORT/arcp` */
  readonly url: string
  /** `http://127.0.0.1:PORT` */
  readonly baseUrl: string
  readonly gateway: Gateway["Type"]
  readonly arcp: Arcp["Type"]
}

export const start = (options: {
  readonly log?: Layer.Layer<EventLog, unknown>
  readonly arcp?: ArcpOptions
  readonly agents?: Layer.Layer<never, never, Arcp>
  readonly keys?: KeysFile
  readonly runtime?: RuntimeOptions
} = {}): Effect.Effect<Started, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = Switchboard.layer(options.runtime ?? {}, options.arcp ?? {}).pipe(Layer.provideMerge(options.log ?? EventLogMemory.layer()))
    const withAgents = options.agents === undefined ? runtime : Layer.provideMerge(options.agents, runtime)
    const layer = Server.layer({ port: 0 }).pipe(
      Layer.provideMerge(withAgents),
      Layer.provide(options.keys === undefined ? KeysLive.layerOpen : Layer.succeed(Keys, KeysLive.make(options.keys))),
      Layer.provide(SecretStore.layerMemory({}))
    )
    const context = yield* Layer.build(layer)
    const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    return { url: `ws://127.0.0.1:${address.port}/arcp`, baseUrl: `http://127.0.0.1:${address.port}`, gateway: Context.get(context, Gateway), arcp: Context.get(context, Arcp) }
  })

/** A raw client: sends objects or text, and takes the frames it got in order, waiting for each as needed. */
export interface Wire {
  readonly send: (frame: unknown) => void
  readonly sendRaw: (data: string | Buffer) => void
  /** The next frame, parsed (waits for it). */
  readonly next: () => Promise<any>
  /** The next frame of a type, skipping others (kept in `skipped`). */
  readonly nextOf: (type: string) => Promise<any>
  readonly skipped: Array<any>
  readonly closed: Promise<{ readonly code: number }>
  readonly close: () => void
}

export const connect = (url: string): Effect.Effect<Wire, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Wire>((resolve, reject) => {
        const ws = new WebSocket(url)
        const frames: Array<any> = []
        const waiting: Array<(frame: any) => void> = []
        let onClose: (value: { code: number }) => void = () => {}
        const closed = new Promise<{ code: number }>((r) => (onClose = r))
        ws.on("message", (data, isBinary) => {
          const frame = JSON.parse(isBinary ? String(data) : data.toString())
          const waiter = waiting.shift()
          if (waiter !== undefined) waiter(frame)
          else frames.push(frame)
        })
        ws.on("close", (code) => onClose({ code }))
        ws.on("error", reject)
        const next = () => frames.length > 0 ? Promise.resolve(frames.shift()) : new Promise<any>((r) => waiting.push(r))
        const skipped: Array<any> = []
        ws.on("open", () =>
          resolve({
            send: (frame) => ws.send(JSON.stringify(frame)),
            sendRaw: (data) => ws.send(data),
            next,
            nextOf: async (type) => {
              while (true) {
                const frame = await next()
                if (frame.type === type) return frame
                skipped.push(frame)
              }
            },
            skipped,
            closed,
            close: () => ws.close()
          }))
      })
    ),
    (wire) => Effect.sync(() => wire.close())
  )

let counter = 0
/** An envelope as a client sends it. */
export const envelope = (type: string, payload: unknown, extra: Record<string, unknown> = {}) => ({
  arcp: "1.1",
  id: `msg_test${++counter}`,
  type,
  payload,
  ...extra
})

export const allFeatures = ["heartbeat", "ack", "list_jobs", "subscribe", "lease_expires_at", "cost.budget", "progress", "result_chunk", "agent_versions"]

export const hello = (token = "", features: ReadonlyArray<string> = allFeatures, resume?: unknown) =>
  envelope("session.hello", {
    client: { name: "test", version: "1.0.0" },
    auth: { scheme: "bearer", token },
    capabilities: { encodings: ["json"], features },
    ...(resume === undefined ? {} : { resume })
  })

/** An operator key (or one acting as an agent) and its keys-file entry, for a server run with keys. */
export const makeKey = (seed: number, agent_id?: string) => {
  const key = encodeKey(new Uint8Array(32).fill(seed))
  const hash = hashKey(key)
  const created_at = DateTime.unsafeMake(0)
  const entry: KeyEntry = agent_id === undefined
    ? { id: keyIdOf(hash), hash, role: "operator", created_at }
    : { id: keyIdOf(hash), hash, role: "agent", agent_id, created_at }
  return { key, entry }
}
