/**
 * Every view of the console, in the order the navigation lists them. A view
 * is a component of the location's query (`params`), that reads and acts
 * through the session's API only.
 *
 * A new view is one module under `views/` and one line below (with
 * `operatorOnly` as its routes' access rules say). The coordination views
 * are open to an agent's key: their routes answer it with its own agent's
 * tasks, binding and rooms, and keep the operator's actions to the operator.
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
import { RoomsView } from "./Rooms.js"
import { SchedulerView } from "./Scheduler.js"
import { TopologyView } from "./Topology.js"
import { WorktreesView } from "./Worktrees.js"

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
  { id: "arcp", title: "ARCP", operatorOnly: false, component: ArcpView },
  { id: "scheduler", title: "Scheduler", operatorOnly: false, component: SchedulerView },
  { id: "worktrees", title: "Worktrees", operatorOnly: false, component: WorktreesView },
  { id: "rooms", title: "Rooms", operatorOnly: false, component: RoomsView }
]
