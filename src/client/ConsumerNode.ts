/**
 * `Consumer` as `switchboard/node` offers it: everything of `./Consumer.ts`,
 * and `layerNode`, the HTTP and WebSocket clients `connect` needs on Node
 * (Node 20 has no global WebSocket).
 */
export * from "./Consumer.js"
export { layer as layerNode } from "./NodeTransport.js"
