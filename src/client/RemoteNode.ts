/**
 * `Remote` as `switchboard/node` offers it: everything of `./Remote.ts`, and
 * `layerNode`, which brings Node's HTTP and WebSocket clients.
 */
import { Layer } from "effect"
import type { Registry } from "../services/Registry.js"
import type { Router } from "../services/Router.js"
import * as NodeTransport from "./NodeTransport.js"
import { layer, type RemoteOptions } from "./Remote.js"
import type { SwitchboardClient } from "./SwitchboardClient.js"

export * from "./Remote.js"

/** The `Router` and `Registry` of the server at `baseUrl` (and its `SwitchboardClient`), on Node. */
export const layerNode = (options: RemoteOptions): Layer.Layer<Router | Registry | SwitchboardClient> =>
  layer(options).pipe(Layer.provide(NodeTransport.layer))
