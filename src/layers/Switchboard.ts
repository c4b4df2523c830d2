/**
 * The composition root: the whole runtime (registry, router, gateway) on
 * the EventLog in context, from one set of options.
 *
 * On start it folds the log back into state and reconciles: deliveries that
 * were in flight are delivered again, and what expired meanwhile times out.
 */
import { Context, Effect, Layer } from "effect"
import type { RouterConfig } from "../model/Router.js"
import type { PersistenceError, UndecodableRecord, ValidationError } from "../schema/Errors.js"
import type { EventLog } from "../services/EventLog.js"
import { Gateway } from "../services/Gateway.js"
import { Registry } from "../services/Registry.js"
import { Router } from "../services/Router.js"
import * as GatewayLive from "./GatewayLive.js"
import * as RouterLive from "./RouterLive.js"

export const layer = (
  options: Partial<RouterConfig> = {}
): Layer.Layer<Registry | Router | Gateway, PersistenceError | UndecodableRecord | ValidationError, EventLog> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const { registry, router, runtime } = yield* RouterLive.make(options)
      const gateway = yield* GatewayLive.make(runtime)
      return Context.make(Registry, registry).pipe(Context.add(Router, router), Context.add(Gateway, gateway))
    })
  )
