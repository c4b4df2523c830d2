import { Layer } from "effect"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { Ids } from "../../src/services/Ids.js"
import { SecretStore } from "../../src/services/SecretStore.js"

export const SECRET = "sk-live-4242-do-not-leak"

/** The whole runtime on a memory log, with one secret in the store. */
export const gatewayLayer = (config: RuntimeOptions = {}) =>
  Switchboard.layer(config).pipe(
    Layer.provideMerge(EventLogMemory.layer()),
    Layer.provideMerge(Ids.layerSequential("m")),
    Layer.provideMerge(SecretStore.layerMemory({ API_KEY: SECRET }))
  )

export const toolsPolicy = `
id: tools
scope: { kind: global }
tools:
  "*": { allow: false }
  web.search: { allow: true, limit_per_hour: 2 }
  payments.send: { allow: true, requires_approval_if: "args.amount > 1000" }
  email.send: { allow: true, redact: ["args.body"] }
  http.get: { allow: true }
budgets:
  - { currency: USD, limit: 10, per: agent }
  - { currency: USD, limit: 15, per: team }
approval_timeout_s: 60
`
