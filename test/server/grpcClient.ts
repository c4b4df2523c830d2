/**
 * A SW4RM client for the tests, built only from the project's `.proto`
 * files (`proto/`) with grpc-js and proto-loader, as any SW4RM client
 * would be: it knows nothing of Switchboard but the address, a key and the
 * `sw4rm-to` metadata. Envelopes are built as SW4RM's own clients build
 * them (a fresh UUID per message, sequence number 1, the JSON payload's
 * enums by number).
 */
import * as Grpc from "@grpc/grpc-js"
import * as ProtoLoader from "@grpc/proto-loader"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url))

const definition = ProtoLoader.loadSync([
  "router.proto",
  "registry.proto",
  "scheduler.proto",
  "worktree.proto",
  "negotiation_room.proto",
  "hitl.proto"
], {
  includeDirs: [protoDir],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true
})
const sw4rm = Grpc.loadPackageDefinition(definition).sw4rm as any

/** The raw request/response types of a method, for sending bytes the .proto does not describe. */
export const methods = {
  send: definition["sw4rm.router.RouterService"] as any
}

export interface Envelope {
  readonly message_id: string
  readonly idempotency_token?: string
  readonly producer_id: string
  readonly correlation_id?: string
  readonly sequence_number?: number
  readonly message_type: string | number
  readonly content_type: string
  readonly content_length: number
  readonly ttl_ms?: number
  readonly timestamp: { readonly seconds: number; readonly nanos: number } | null
  readonly payload: Buffer
  readonly state?: string | number
  readonly [field: string]: unknown
}

export const envelope = (producer_id: string, payload: unknown, extra: Partial<Envelope> = {}): Envelope => {
  const bytes = Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload))
  const now = Date.now()
  return {
    message_id: randomUUID(),
    producer_id,
    correlation_id: randomUUID(),
    sequence_number: 1,
    message_type: "DATA",
    content_type: "application/json",
    content_length: bytes.length,
    timestamp: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1_000_000 },
    payload: bytes,
    state: "ENVELOPE_STATE_SENT",
    ...extra
  }
}

/** An ACKNOWLEDGEMENT envelope as SW4RM's clients write one. */
export const ackEnvelope = (producer_id: string, ack_for_message_id: string, ack_stage: number, extra: Record<string, unknown> = {}) =>
  envelope(producer_id, { ack_for_message_id, ack_stage, ...extra }, {
    message_type: "ACKNOWLEDGEMENT",
    content_type: "application/vnd.sw4rm.ack+json;v=1"
  })

export interface CallError extends Error {
  readonly code: number
  readonly details: string
  readonly metadata: Grpc.Metadata
}

/** What a failed call's trailers say. */
export const trailers = (error: CallError) => ({
  code: error.code,
  sw4rm: error.metadata.get("sw4rm-error-code")[0],
  retryable: error.metadata.get("sw4rm-retryable")[0]
})

/** `options`: grpc-js channel options (reconnect backoff, ...). */
export const connect = (port: number, key?: string, options: Grpc.ChannelOptions = {}) => {
  const address = `127.0.0.1:${port}`
  const credentials = Grpc.credentials.createInsecure()
  const router = new sw4rm.router.RouterService(address, credentials, options)
  const registry = new sw4rm.registry.RegistryService(address, credentials, options)
  const coordination = {
    scheduler: new sw4rm.scheduler.SchedulerService(address, credentials, options),
    worktree: new sw4rm.worktree.WorktreeService(address, credentials, options),
    negotiation: new sw4rm.negotiation_room.NegotiationRoomService(address, credentials, options),
    hitl: new sw4rm.hitl.HitlService(address, credentials, options)
  }
  const metadataOf = (extra: Record<string, string | ReadonlyArray<string>> = {}) => {
    const metadata = new Grpc.Metadata()
    if (key !== undefined) metadata.set("authorization", `Bearer ${key}`)
    for (const [name, values] of Object.entries(extra)) {
      for (const value of typeof values === "string" ? [values] : values) metadata.add(name, value)
    }
    return metadata
  }
  const call = <A>(client: any, method: string, request: unknown, extra?: Record<string, string | ReadonlyArray<string>>) =>
    new Promise<A>((resolve, reject) =>
      client[method](request, metadataOf(extra), (error: CallError | null, response: A) =>
        error === null ? resolve(response) : reject(error)))
  /**
   * A unary call of a coordination service, bounded by `deadlineMs` when
   * given: its answer, and the response headers the server sent (the first
   * value of each).
   */
  const rpc = <A = any>(service: keyof typeof coordination, method: string, request: unknown, deadlineMs?: number) =>
    new Promise<{ readonly answer: A; readonly headers: Record<string, string> }>((resolve, reject) => {
      const headers: Record<string, string> = {}
      const callOptions: Grpc.CallOptions = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs }
      const call = coordination[service][method](request, metadataOf(), callOptions, (error: CallError | null, answer: A) =>
        error === null ? resolve({ answer, headers }) : reject(error))
      call.on("metadata", (metadata: Grpc.Metadata) => {
        for (const [name, value] of Object.entries(metadata.getMap())) headers[name] = String(value)
      })
    })
  return {
    rpc,
    register: (agent_id: string, extra: Record<string, unknown> = {}) =>
      call<{ accepted: boolean; reason: string }>(registry, "RegisterAgent", { agent: { agent_id, name: agent_id, ...extra } }),
    heartbeat: (agent_id: string, state?: string, health: Record<string, string> = {}) =>
      call<{ ok: boolean }>(registry, "Heartbeat", { agent_id, state, health }),
    deregister: (agent_id: string, reason = "done") => call<{ ok: boolean }>(registry, "DeregisterAgent", { agent_id, reason }),
    /** `to`: the `sw4rm-to` metadata; none for a broadcast. */
    send: (msg: unknown, to?: string) =>
      call<{ accepted: boolean; reason: string }>(router, "SendMessage", { msg }, to === undefined ? {} : { "sw4rm-to": to }),
    /** A send that can be cancelled while in flight. */
    sendCancellable: (msg: unknown, to: string) => {
      let call: { cancel(): void } | undefined
      const answer = new Promise<{ accepted: boolean; reason: string }>((resolve, reject) => {
        call = router.SendMessage({ msg }, metadataOf({ "sw4rm-to": to }), (error: CallError | null, response: any) =>
          error === null ? resolve(response) : reject(error))
      })
      return { answer, cancel: () => call!.cancel() }
    },
    /** A raw request, for what the typed client would not send. */
    sendRaw: (request: unknown, extra?: Record<string, string | ReadonlyArray<string>>) => call<any>(router, "SendMessage", request, extra),
    ack: (agent_id: string, seq: number, message_id = "", outcome = "DELIVERY_ACK_OUTCOME_DELIVERED") =>
      call<{ recorded: boolean }>(router, "AckDelivery", { agent_id, seq, message_id, outcome }),
    /** The agent's stream: what it received, in order, and a way to wait for more; `on` hears each item and the end. */
    stream: (agent_id: string, on: {
      readonly item?: (item: { msg: Envelope; seq: number }) => void
      readonly end?: (error: CallError | undefined) => void
    } = {}) => {
      const items: Array<{ msg: Envelope; seq: number }> = []
      let waiting: Array<() => void> = []
      let ended: CallError | undefined
      let finished = false
      const stream = router.StreamIncoming({ agent_id }, metadataOf())
      // Each waiter checks again, and waits again if it must: on a fresh list.
      const wakeAll = () => {
        const woken = waiting
        waiting = []
        for (const wake of woken) wake()
      }
      stream.on("data", (item: { msg: Envelope; seq: number }) => {
        items.push(item)
        on.item?.(item)
        wakeAll()
      })
      stream.on("error", (error: CallError) => {
        ended = error
        on.end?.(error)
        wakeAll()
      })
      stream.on("end", () => {
        finished = true
        on.end?.(undefined)
        wakeAll()
      })
      /** Waits until `n` items have come, the stream failed, or `timeoutMs` passed. */
      const until = (n: number, timeoutMs = 5_000) =>
        new Promise<ReadonlyArray<{ msg: Envelope; seq: number }>>((resolve, reject) => {
          const deadline = setTimeout(() => reject(new Error(`only ${items.length} of ${n} stream items within ${timeoutMs} ms`)), timeoutMs)
          const check = () => {
            if (items.length >= n) {
              clearTimeout(deadline)
              resolve(items.slice(0, n))
            } else if (ended !== undefined || finished) {
              clearTimeout(deadline)
              reject(ended ?? new Error("the stream ended"))
            } else {
              waiting.push(check)
            }
          }
          check()
        })
      return { items, until, error: () => ended, cancel: () => stream.cancel() }
    },
    close: () => {
      router.close()
      registry.close()
      for (const client of Object.values(coordination)) client.close()
    }
  }
}

export type Client = ReturnType<typeof connect>
