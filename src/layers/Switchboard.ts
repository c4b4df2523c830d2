/**
 * The composition root: the whole runtime (registry, router, gateway,
 * ARCP, and coordination: scheduler, worktrees, negotiation rooms, HITL;
 * each a thin layer over one command loop) on the EventLog in context, from one
 * set of options. `Ids` needs no layer: random UUIDs unless one is provided.
 *
 * On start it folds the log back into state and reconciles: deliveries that
 * were in flight are delivered again, and what expired meanwhile times out.
 */
import { Layer } from "effect"
import type { RuntimeOptions } from "../schema/Config.js"
import type { PersistenceError, UndecodableRecord, ValidationError } from "../schema/Errors.js"
import type { EventLog } from "../services/EventLog.js"
import type { Gateway } from "../services/Gateway.js"
import type { Registry } from "../services/Registry.js"
import type { Router } from "../services/Router.js"
import type { Runtime } from "../services/Runtime.js"
import type { Arcp, ArcpOptions } from "../services/Arcp.js"
import type { Hitl } from "../services/Hitl.js"
import type { Negotiation } from "../services/Negotiation.js"
import type { Scheduler } from "../services/Scheduler.js"
import type { Worktrees } from "../services/Worktrees.js"
import * as ArcpLive from "./ArcpLive.js"
import * as GatewayLive from "./GatewayLive.js"
import * as HitlLive from "./HitlLive.js"
import * as NegotiationLive from "./NegotiationLive.js"
import * as RegistryLive from "./RegistryLive.js"
import * as RouterLive from "./RouterLive.js"
import * as RuntimeLoop from "./RuntimeLoop.js"
import * as SchedulerLive from "./SchedulerLive.js"
import * as WorktreesLive from "./WorktreesLive.js"

/** Coordination (PROTOCOLS.md §1): the scheduler, worktree bindings, negotiation rooms and the HITL queue. */
export type Coordination = Scheduler | Worktrees | Negotiation | Hitl

export const layer = (
  options: RuntimeOptions = {},
  /** The ARCP endpoint's sessions (PROTOCOLS.md §3). */
  arcp: ArcpOptions = {}
): Layer.Layer<
  Registry | Router | Gateway | Runtime | Arcp | Coordination,
  PersistenceError | UndecodableRecord | ValidationError,
  EventLog
> =>
  ArcpLive.layer(arcp).pipe(
    // ARCP sends remote agents their jobs through the router.
    Layer.provideMerge(Layer.mergeAll(
      RegistryLive.layer,
      RouterLive.layer,
      GatewayLive.layer,
      SchedulerLive.layer,
      WorktreesLive.layer,
      NegotiationLive.layer,
      HitlLive.layer
    )),
    Layer.provideMerge(RuntimeLoop.layer(options))
  )
