/**
 * Coordination's part of the state as plain, comparable data: what a replay
 * must reproduce, beside the runtime's snapshot (which the HTTP API serves
 * with its own shape and so leaves coordination out).
 */
import { hitlSnapshot } from "./Hitl.js"
import { negotiationSnapshot } from "./Negotiation.js"
import { schedulerSnapshot } from "./Scheduler.js"
import type { RuntimeState } from "./State.js"
import { worktreesSnapshot } from "./Worktrees.js"

export const coordinationSnapshot = (state: RuntimeState) => ({
  ...schedulerSnapshot(state),
  ...worktreesSnapshot(state),
  ...negotiationSnapshot(state),
  ...hitlSnapshot(state)
})
