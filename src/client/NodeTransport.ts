/**
 * The network clients of Node for the remote client: undici for HTTP, and the
 * `ws` package for WebSockets where there is no global `WebSocket` (Node 20).
 * Kept out of the main entry, which must load where Node does not.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Socket from "@effect/platform/Socket"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Layer } from "effect"

/** What `SwitchboardClient.layer`, `Consumer.connect` and `Remote.layer` need, on Node. */
export const layer: Layer.Layer<HttpClient.HttpClient | Socket.WebSocketConstructor> = Layer.mergeAll(
  NodeHttpClient.layerUndici,
  NodeSocket.layerWebSocketConstructor
)
