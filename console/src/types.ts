/**
 * The API's bodies as the console receives them: the wire (encoded) form of
 * the server's own Schemas, imported as types only, so a field renamed on
 * the server fails the console's typecheck rather than its users.
 */
import type { InvocationView, QueueItem } from "../../src/schema/Hitl.js"
import type { RoomPage, RoomView } from "../../src/schema/Negotiation.js"
import type { PreemptAnswer, TaskView } from "../../src/schema/Scheduler.js"
import type { BindingPage, WorktreeStatus } from "../../src/schema/Worktree.js"
import type {
  AgentView,
  ApprovalView,
  AuditEntryView,
  ChainVerificationView,
  EdgeView,
  MessageStatusView,
  StateView
} from "../../src/schema/Views.js"
import type {
  ArcpJobPage,
  ArcpSessionView,
  CallerView,
  KillSwitchView,
  LogPage,
  LogRecordView,
  MailboxView,
  MessageTimeline,
  StateSummary
} from "../../src/server/ApiInspect.js"

export type Agent = typeof AgentView.Encoded
export type Approval = typeof ApprovalView.Encoded
export type AuditEntry = typeof AuditEntryView.Encoded
export type ChainVerification = typeof ChainVerificationView.Encoded
export type Edge = typeof EdgeView.Encoded
export type MessageStatus = typeof MessageStatusView.Encoded
export type StateAt = typeof StateView.Encoded
export type Caller = typeof CallerView.Encoded
export type Mailbox = typeof MailboxView.Encoded
export type KillSwitch = typeof KillSwitchView.Encoded
export type LogRecord = typeof LogRecordView.Encoded
export type LogPageBody = typeof LogPage.Encoded
export type Timeline = typeof MessageTimeline.Encoded
export type ArcpSession = typeof ArcpSessionView.Encoded
export type Summary = typeof StateSummary.Encoded
export type ArcpJobs = typeof ArcpJobPage.Encoded
export type AuditPage = { readonly entries: ReadonlyArray<AuditEntry>; readonly next?: number }
export type LogEvent = LogRecord["event"]

// Coordination: the scheduler, worktree bindings, negotiation rooms, the human's queue.

export type Task = typeof TaskView.Encoded
export type Preempted = typeof PreemptAnswer.Encoded
export type Worktree = typeof WorktreeStatus.Encoded
export type Room = typeof RoomView.Encoded
export type Rooms = typeof RoomPage.Encoded
export type Worktrees = typeof BindingPage.Encoded
export type HitlItem = typeof QueueItem.Encoded
export type Invocation = typeof InvocationView.Encoded
