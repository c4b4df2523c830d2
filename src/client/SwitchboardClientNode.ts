/**
 * `SwitchboardClient` as `switchboard/node` offers it: everything of
 * `./SwitchboardClient.ts`, and `layerNode`, which brings Node's HTTP client.
 */
import { Layer } from "effect"
import * as NodeTransport from "./NodeTransport.js"
import { type ClientOptions, layer, type SwitchboardClient } from "./SwitchboardClient.js"

export * from "./SwitchboardClient.js"

/** The client of the server at `baseUrl`, over undici. */
export const layerNode = (options: ClientOptions): Layer.Layer<SwitchboardClient> =>
  layer(options).pipe(Layer.provide(NodeTransport.layer))
