/**
 * Approvals and the human in the loop: the calls a policy held for a human
 * (`GET /approvals?status=open`), each with its action, rule and reason
 * and its deadline counting down; approve or reject with a note, through
 * `POST /approvals/{id}/approve` and `/reject`. A caller waiting on one
 * (`Gateway.awaitApproval`) goes on once it is answered. Below, the ones
 * answered recently. The HITL queue's own invocations (a room deadlocked, a
 * task that cannot wait, a worktree switch, a question an agent asked)
 * follow, answered the same way (`Hitl.tsx`).
 */
import { useState } from "preact/hooks"
import { seg } from "../api.js"
import type { Approval, LogRecord } from "../types.js"
import { Badge, Done, duration, ErrorNote, Field, Page, time, useAction, useLoad, useNow, useSession } from "../ui.js"
import { HitlQueue } from "./Hitl.js"
import type { ViewProps } from "./registry.js"

const approvalEvent = (record: LogRecord) => record.event._tag.startsWith("Approval")

const actionText = (approval: Approval) => {
  const action = approval.action as { kind: string; tool?: string; host?: string; model?: string; args?: unknown }
  const target = action.tool ?? action.host ?? action.model ?? ""
  return `${action.kind} ${target}`
}

const Pending = ({ approval, onAnswered }: { readonly approval: Approval; readonly onAnswered: () => void }) => {
  const { api } = useSession()
  const now = useNow()
  const [note, setNote] = useState("")
  const action = useAction()
  const left = approval.expires_at - now
  const answer = (verdict: "approve" | "reject") =>
    action.run(async () => {
      if (verdict === "reject" && note.trim() === "") throw new Error("a rejection needs a reason")
      await api.post(`/approvals/${seg(approval.approval_id)}/${verdict}`, { by: "console", ...(note.trim() === "" ? {} : { note: note.trim() }) })
      onAnswered()
      return `${approval.approval_id}: ${verdict === "approve" ? "approved" : "rejected"}`
    })
  const args = (approval.action as { args?: unknown }).args
  return (
    <li class="card approval" aria-label={`Approval ${approval.approval_id}`}>
      <div class="row spread">
        <strong class="mono">{approval.action.agent_id}</strong>
        <span>{actionText(approval)}</span>
        <span class={left < 30_000 ? "countdown urgent" : "countdown"} role="timer" aria-label="time left">
          {left > 0 ? `${duration(left)} left` : "expired"}
        </span>
      </div>
      <p class="muted">Rule <span class="mono">{approval.rule}</span>: {approval.reason} · opened {time(approval.opened_at)} · id <span class="mono">{approval.approval_id}</span></p>
      {args !== undefined && <pre class="args">{JSON.stringify(args, null, 2)}</pre>}
      <div class="row">
        <Field label="Note (required to reject)">
          <input value={note} maxLength={1000} onInput={(event) => setNote(event.currentTarget.value)} />
        </Field>
        <button type="button" class="primary" disabled={action.busy || left <= 0} onClick={() => answer("approve")}>Approve</button>
        <button type="button" class="danger" disabled={action.busy || left <= 0} onClick={() => answer("reject")}>Reject</button>
      </div>
      <ErrorNote error={action.error} />
      <Done text={action.done} />
    </li>
  )
}

export const ApprovalsView = (_: ViewProps) => {
  const { api } = useSession()
  const pending = useLoad(() => api.get<Array<Approval>>("/approvals", { status: "open" }), [api], { when: approvalEvent, every: 5000 })
  const all = useLoad(() => api.get<Array<Approval>>("/approvals"), [api], { when: approvalEvent })
  const queue = [...(pending.data ?? [])].sort((a, b) => a.expires_at - b.expires_at)
  const answered = (all.data ?? []).filter((approval) => approval.status !== "open").sort((a, b) => (b.resolved_at ?? 0) - (a.resolved_at ?? 0)).slice(0, 50)
  const reload = () => {
    pending.reload()
    all.reload()
  }
  return (
    <Page title="Approvals" actions={<span class="muted" aria-live="polite">{queue.length} {queue.length === 1 ? "approval" : "approvals"} waiting</span>}>
      <ErrorNote error={pending.error} />
      {queue.length === 0 && !pending.loading && <p class="muted">Nothing waits for a human.</p>}
      <ul class="plain approvals">
        {queue.map((approval) => <Pending key={approval.approval_id} approval={approval} onAnswered={reload} />)}
      </ul>
      <HitlQueue />
      <h2>Approvals answered recently</h2>
      <table>
        <thead><tr><th>Approval</th><th>Agent</th><th>Action</th><th>Status</th><th>By</th><th>Note</th><th>When</th></tr></thead>
        <tbody>
          {answered.map((approval) => (
            <tr key={approval.approval_id}>
              <td class="mono">{approval.approval_id}</td>
              <td class="mono">{approval.action.agent_id}</td>
              <td>{actionText(approval)}</td>
              <td><Badge tone={approval.status === "approved" || approval.status === "used" ? "ok" : "bad"}>{approval.status}</Badge></td>
              <td>{approval.by ?? ""}</td>
              <td>{approval.note ?? ""}</td>
              <td>{time(approval.resolved_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  )
}
