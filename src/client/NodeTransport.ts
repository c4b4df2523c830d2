/**
 * The network clients of Node for the remote client: undici for HTTP, and the
 * `ws` package for WebSockets where there is no global `WebSocket` (Node 20).
 * Kept out of the main entry, which must load where Node does not.
 */
import type { HttpClient, Socket } from "@effect/platform"
import { NodeHttpClient, NodeSocket } from "@effect/platform-node"
import { Layer } from "effect"

/** What `SwitchboardClient.layer`, `Consumer.connect` and `Remote.layer` need, on Node. */
export const layer: Layer.Layer<HttpClient.HttpClient | Socket.WebSocketConstructor> = Layer.mergeAll(
  NodeHttpClient.layerUndici,
  NodeSocket.layerWebSocketConstructor
)
