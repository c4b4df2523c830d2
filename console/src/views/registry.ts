/**
 * Every view of the console, in the order the navigation lists them. A view
 * is a component of the location's query (`params`), that reads and acts
 * through the session's API only.
 *
 * The scheduler, worktrees and negotiation rooms get a view each here once
 * their services and routes land: one module under `views/`, one line
 * below (with `operatorOnly` as their routes' access rules say).
 */
import type { ComponentType } from "preact"
import { AgentsView } from "./Agents.js"
import { ApprovalsView } from "./Approvals.js"
import { ArcpView } from "./Arcp.js"
import { AuditView } from "./Audit.js"
import { DeadLettersView } from "./DeadLetters.js"
import { KillSwitchView } from "./KillSwitch.js"
import { MessagesView } from "./Messages.js"
import { ReplayView } from "./Replay.js"
import { TopologyView } from "./Topology.js"

export interface ViewProps {
  readonly params: URLSearchParams
}

export interface View {
  /** Its path: `#/id`. */
  readonly id: string
  readonly title: string
  /** Shown to the operator only: its routes are the operator's. */
  readonly operatorOnly: boolean
  readonly component: ComponentType<ViewProps>
}

export const views: ReadonlyArray<View> = [
  { id: "agents", title: "Agents", operatorOnly: false, component: AgentsView },
  { id: "topology", title: "Topology", operatorOnly: false, component: TopologyView },
  { id: "messages", title: "Messages", operatorOnly: false, component: MessagesView },
  { id: "dead-letters", title: "Dead letters", operatorOnly: false, component: DeadLettersView },
  { id: "approvals", title: "Approvals", operatorOnly: true, component: ApprovalsView },
  { id: "kill-switch", title: "Kill switch", operatorOnly: true, component: KillSwitchView },
  { id: "audit", title: "Audit", operatorOnly: true, component: AuditView },
  { id: "replay", title: "Replay", operatorOnly: true, component: ReplayView },
  { id: "arcp", title: "ARCP", operatorOnly: false, component: ArcpView }
]
