/**
 * The root of the model: the runtime's state as the slices of its concerns,
 * and `evolve`, which hands each event to the slices that fold its tag, in
 * the order below (a later slice sees what the earlier ones made of the same
 * event). A new concern is one module with its `Slice`, one line here and
 * its part of `RuntimeState` (`State.ts`).
 *
 * The state is large and hot (every message of every mailbox), so `evolve`
 * updates it in place and returns it; decisions never change it. Folding the
 * same events over `initialState()` always yields the same state: the live
 * runtime and replay run the very same functions.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type { AgentState, CommunicationClass, EnvelopeState, ErrorCode } from "../schema/Envelope.js"
import type { Event } from "../schema/Event.js"
import { agentsSlice, type Edge } from "./Agents.js"
import { arcpJobsSlice } from "./ArcpJobs.js"
import { arcpSessionsSlice } from "./ArcpSessions.js"
import { dedupSlice } from "./Dedup.js"
import { type ApprovalStatus, governanceSlice } from "./Governance.js"
import { hitlSlice } from "./Hitl.js"
import { mailboxesSlice } from "./Mailboxes.js"
import { type Location, messagesSlice } from "./Messages.js"
import { negotiationSlice } from "./Negotiation.js"
import { schedulerSlice } from "./Scheduler.js"
import type { RuntimeState, Slice } from "./State.js"
import { timersSlice } from "./Timers.js"
import { worktreesSlice } from "./Worktrees.js"

export type { RuntimeState } from "./State.js"

const slices: ReadonlyArray<Slice<object>> = [
  agentsSlice,
  governanceSlice,
  messagesSlice,
  dedupSlice,
  mailboxesSlice,
  // Coordination reads the router's state as its events left it, and the timers its own.
  hitlSlice,
  worktreesSlice,
  negotiationSlice,
  schedulerSlice,
  timersSlice,
  arcpSessionsSlice,
  arcpJobsSlice
]

export const initialState = (): RuntimeState => Object.assign({}, ...slices.map((slice) => slice.initial())) as RuntimeState

type Step = (state: RuntimeState, event: Event, config: RuntimeConfig) => void

/** Each tag's handlers run in slice order, composed once: applying an event is one lookup and one call. */
const steps: Partial<Record<Event["_tag"], Step>> = {}
for (const slice of slices) {
  for (const [tag, handler] of Object.entries(slice.evolve) as Array<[Event["_tag"], Step]>) {
    const before = steps[tag]
    steps[tag] = before === undefined ? handler : (state, event, config) => {
      before(state, event, config)
      handler(state, event, config)
    }
  }
}
const afterEach = slices.flatMap((slice) => slice.after === undefined ? [] : [slice.after])

/** Applies one event to the state, in place, and returns it. */
export const evolve = (config: RuntimeConfig) => (state: RuntimeState, event: Event): RuntimeState => {
  steps[event._tag]?.(state, event, config)
  for (let i = 0; i < afterEach.length; i++) afterEach[i](state, event, config)
  return state
}

/** The state as plain, comparable data: what a replay must reproduce. */
export interface RuntimeSnapshot {
  readonly agents: Readonly<Record<string, {
    readonly registered: boolean
    readonly live: boolean
    readonly state: AgentState
    readonly capabilities: ReadonlyArray<string>
    readonly liveness_deadline: number | undefined
  }>>
  readonly messages: Readonly<Record<string, {
    readonly to: string
    readonly producer_id: string
    readonly stage: EnvelopeState
    readonly location: Location
    readonly lane: CommunicationClass
    readonly attempts: number
    readonly delivery_seq: number | undefined
    readonly ack_deadline: number | undefined
    readonly expires_at: number | undefined
    readonly error_code: ErrorCode | undefined
    readonly dead_letter: boolean
    readonly recipients: ReadonlyArray<string>
    readonly late_acks: number
  }>>
  readonly mailboxes: Readonly<Record<string, {
    /** Queued message ids per lane, in delivery order. */
    readonly queued: Readonly<Record<CommunicationClass, ReadonlyArray<string>>>
    readonly in_flight: number
    readonly next_delivery_seq: number
    readonly dead_letters: ReadonlyArray<string>
  }>>
  readonly dedup: Readonly<Record<string, string>>
  readonly edges: ReadonlyArray<Edge>
  readonly gateway: {
    readonly policies: Readonly<Record<string, number>>
    readonly approvals: Readonly<Record<string, { readonly status: ApprovalStatus }>>
    readonly suspended: Readonly<Record<string, string>>
    readonly killed: ReadonlyArray<string>
    readonly halted: string | undefined
    readonly spent: Readonly<Record<string, number>>
    readonly leases: ReadonlyArray<string>
    readonly audit_head: string
    readonly audits: number
  }
}

export const snapshot = (state: RuntimeState): RuntimeSnapshot =>
  Object.assign({}, ...slices.map((slice) => slice.snapshot(state))) as RuntimeSnapshot
