/**
 * A lean gRPC client for the gRPC bench: gRPC over HTTP/2 as the spec
 * writes it (`PROTOCOL-HTTP2.md`: a POST per call to `/package.Service/Method`,
 * `content-type: application/grpc`, `te: trailers`, each message framed as a
 * compressed flag, a 4-byte big-endian length and the protobuf bytes, the
 * status in the `grpc-status` trailer), over `node:http2`, with the messages
 * encoded and decoded by protobufjs from the project's own `.proto` files.
 *
 * Why: grpc-js's client spends about 250 µs of CPU a unary call (channels,
 * interceptors, filters, its own metadata objects), and in the bench the
 * client shares the machine's cores with the server under test; a message
 * is two unary calls. This client does only what the wire needs, so that the
 * bench measures the server rather than grpc-js's client. It is a real gRPC
 * client (the server sees the same frames as from any other), not a
 * shortcut: the bench also runs grpc-js's own client, for its figure.
 *
 * No deadlines, compression, retries or reconnection: the bench needs none.
 */
import { type ClientHttp2Session, connect, constants } from "node:http2"
import { join } from "node:path"
import protobuf from "protobufjs"
import { protoDir, protoFiles } from "../src/server/GrpcProto.js"

/** The project's `.proto` files as protobufjs types, field names as on the wire (snake_case). */
const loadRoot = (): protobuf.Root => {
  const dir = protoDir()
  const root = new protobuf.Root()
  // google/protobuf/*.proto are protobufjs's own bundled copies; the rest are beside the services.
  root.resolvePath = (_origin, target) => target.startsWith("google/protobuf/") ? target : join(dir, target)
  return root.loadSync([...protoFiles], { keepCase: true })
}

const root = loadRoot()
export const types = {
  SendMessageRequest: root.lookupType("sw4rm.router.SendMessageRequest"),
  SendMessageResponse: root.lookupType("sw4rm.router.SendMessageResponse"),
  StreamRequest: root.lookupType("sw4rm.router.StreamRequest"),
  StreamItem: root.lookupType("sw4rm.router.StreamItem"),
  DeliveryAckRequest: root.lookupType("sw4rm.router.DeliveryAckRequest"),
  DeliveryAckResponse: root.lookupType("sw4rm.router.DeliveryAckResponse"),
  RegisterAgentRequest: root.lookupType("sw4rm.registry.RegisterAgentRequest"),
  RegisterAgentResponse: root.lookupType("sw4rm.registry.RegisterAgentResponse")
} as const

/** A call that did not end with status OK. */
export class CallError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(`gRPC status ${code}: ${details}`)
  }
}

/** One message as gRPC frames it: uncompressed, its length, its bytes. */
export const frame = (type: protobuf.Type, message: object): Buffer => {
  const body = type.encode(message).finish()
  const framed = Buffer.allocUnsafe(5 + body.length)
  framed[0] = 0
  framed.writeUInt32BE(body.length, 1)
  framed.set(body, 5)
  return framed
}

/** Takes the length-prefixed messages out of the bytes of a response as they arrive. */
class Deframer {
  private buffered: Buffer | undefined
  constructor(private readonly onMessage: (bytes: Uint8Array) => void) {}
  push(chunk: Buffer) {
    let data = this.buffered === undefined ? chunk : Buffer.concat([this.buffered, chunk])
    this.buffered = undefined
    while (data.length >= 5) {
      const length = data.readUInt32BE(1)
      if (data.length < 5 + length) break
      this.onMessage(data.subarray(5, 5 + length))
      data = data.subarray(5 + length)
    }
    if (data.length > 0) this.buffered = data
  }
}

const statusOf = (headers: Record<string, unknown>): CallError | undefined => {
  const status = headers["grpc-status"]
  if (status === undefined || status === "0") return undefined
  const message = headers["grpc-message"]
  return new CallError(Number(status), typeof message === "string" ? decodeURIComponent(message) : "")
}

export interface WireClient {
  /** A unary call: `done` gets the decoded answer, or the call's error. */
  readonly unary: <A>(
    path: string,
    request: Buffer,
    response: protobuf.Type,
    done: (error: CallError | undefined, answer: A | undefined) => void,
    metadata?: Record<string, string>
  ) => void
  /** A server-streaming call: each item decoded to `onItem`; `onEnd` once it ends (an error unless status OK). */
  readonly serverStream: <A>(
    path: string,
    request: Buffer,
    response: protobuf.Type,
    onItem: (item: A) => void,
    onEnd: (error: CallError | undefined) => void
  ) => { readonly cancel: () => void }
  readonly close: () => void
}

const { HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_TE } = constants

/** A client on one HTTP/2 connection to `127.0.0.1:port`. */
export const connectWire = (port: number): WireClient => {
  const session: ClientHttp2Session = connect(`http://127.0.0.1:${port}`)
  session.on("error", () => undefined)
  const request = (path: string, body: Buffer, metadata: Record<string, string> | undefined) => {
    const stream = session.request({
      [HTTP2_HEADER_METHOD]: "POST",
      [HTTP2_HEADER_PATH]: path,
      [HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
      [HTTP2_HEADER_TE]: "trailers",
      ...metadata
    })
    stream.end(body)
    return stream
  }
  return {
    unary: <A>(
      path: string,
      body: Buffer,
      response: protobuf.Type,
      done: (error: CallError | undefined, answer: A | undefined) => void,
      metadata?: Record<string, string>
    ) => {
      const stream = request(path, body, metadata)
      let answer: A | undefined
      let error: CallError | undefined
      const deframer = new Deframer((bytes) => {
        answer = response.decode(bytes) as unknown as A
      })
      stream.on("response", (headers) => {
        error = statusOf(headers)
      })
      stream.on("trailers", (trailers) => {
        error = statusOf(trailers)
      })
      stream.on("data", (chunk: Buffer) => deframer.push(chunk))
      stream.on("close", () => {
        if (error === undefined && answer === undefined) error = new CallError(2, `no answer (HTTP/2 code ${stream.rstCode})`)
        done(error, error === undefined ? answer : undefined)
      })
    },
    serverStream: <A>(
      path: string,
      body: Buffer,
      response: protobuf.Type,
      onItem: (item: A) => void,
      onEnd: (error: CallError | undefined) => void
    ) => {
      const stream = request(path, body, undefined)
      let error: CallError | undefined
      let cancelled = false
      const deframer = new Deframer((bytes) => onItem(response.decode(bytes) as unknown as A))
      stream.on("response", (headers) => {
        error = statusOf(headers)
      })
      stream.on("trailers", (trailers) => {
        error = statusOf(trailers)
      })
      stream.on("data", (chunk: Buffer) => deframer.push(chunk))
      stream.on("close", () => onEnd(cancelled ? undefined : error))
      return {
        cancel: () => {
          cancelled = true
          stream.close(constants.NGHTTP2_CANCEL)
        }
      }
    },
    close: () => session.close()
  }
}
