/**
 * The human in the loop's own invocations, for the Approvals view: what the
 * HITL queue (`GET /hitl`) holds beside the gateway's approvals (those the
 * view shows already), each with its reason, subject, context, proposed
 * actions, what happens if nobody answers, and its deadline counting down;
 * approve, deny or defer with a rationale (`POST /hitl/{id}/decide`). Below,
 * the ones answered or withdrawn lately.
 */
import { useState } from "preact/hooks"
import { seg } from "../api.js"
import type { HitlItem, Invocation, LogRecord } from "../types.js"
import { Badge, Done, duration, ErrorNote, Field, time, useAction, useLoad, useNow, useSession } from "../ui.js"

export const hitlEvent = (record: LogRecord) => record.event._tag.startsWith("Hitl")

const Pending = ({ item, onAnswered }: { readonly item: HitlItem; readonly onAnswered: () => void }) => {
  const { api } = useSession()
  const now = useNow()
  const [rationale, setRationale] = useState("")
  const action = useAction()
  // Its proposed actions and fallback are the invocation's, not the queue item's.
  const details = useLoad(() => api.get<Invocation>(`/hitl/${seg(item.id)}`), [api, item.id])
  const left = item.deadline - now
  const answer = (verdict: "approve" | "deny" | "defer") =>
    action.run(async () => {
      if (verdict !== "approve" && rationale.trim() === "") throw new Error(`to ${verdict} needs a rationale`)
      await api.post(`/hitl/${seg(item.id)}/decide`, { action: verdict, rationale: rationale.trim(), by: "console" })
      onAnswered()
      return `${item.id}: ${verdict === "approve" ? "approved" : verdict === "deny" ? "denied" : "deferred"}`
    })
  const invocation = details.data
  return (
    <li class="card approval" aria-label={`Invocation ${item.id}`}>
      <div class="row spread">
        <Badge tone="warn">{item.reason}</Badge>
        <span>{item.summary}</span>
        <span class={left < 30_000 ? "countdown urgent" : "countdown"} role="timer" aria-label="time left">
          {left > 0 ? `${duration(left)} left` : "expired"}
        </span>
      </div>
      <p class="muted">
        {item.agent_id !== undefined && <>For <span class="mono">{item.agent_id}</span> · </>}
        priority {item.priority} · opened {time(item.opened_at)} · id <span class="mono">{item.id}</span>
        {invocation !== undefined && <> · unanswered: {invocation.fallback}{invocation.extensions > 0 && `, extended ${invocation.extensions} times`}</>}
      </p>
      {invocation !== undefined && invocation.proposed_actions.length > 0 && (
        <ul aria-label="Proposed actions">{invocation.proposed_actions.map((proposed, i) => <li key={i}>{proposed}</li>)}</ul>
      )}
      {item.context !== null && item.context !== undefined && <pre class="args">{JSON.stringify(item.context, null, 2)}</pre>}
      <div class="row">
        <Field label="Rationale (required to deny or defer)">
          <input value={rationale} maxLength={4096} onInput={(event) => setRationale(event.currentTarget.value)} />
        </Field>
        <button type="button" class="primary" disabled={action.busy || left <= 0} onClick={() => answer("approve")}>Approve</button>
        <button type="button" class="danger" disabled={action.busy || left <= 0} onClick={() => answer("deny")}>Deny</button>
        <button type="button" disabled={action.busy || left <= 0} onClick={() => answer("defer")}>Defer</button>
      </div>
      <ErrorNote error={action.error} />
      <Done text={action.done} />
    </li>
  )
}

/** The open invocations, most pressing deadline first, and the ones closed lately. */
export const HitlQueue = () => {
  const { api } = useSession()
  const open = useLoad(() => api.get<Array<HitlItem>>("/hitl", { status: "open" }), [api], { when: hitlEvent, every: 5000 })
  const closed = useLoad(() => api.get<Array<HitlItem>>("/hitl", { status: "closed" }), [api], { when: hitlEvent })
  const queue = (open.data ?? []).filter((item) => item.source === "hitl").sort((a, b) => a.deadline - b.deadline)
  const answered = (closed.data ?? []).filter((item) => item.source === "hitl").sort((a, b) => b.opened_at - a.opened_at).slice(0, 50)
  const reload = () => {
    open.reload()
    closed.reload()
  }
  return (
    <section aria-labelledby="hitl-title">
      <h2 id="hitl-title">Human in the loop <span class="muted" aria-live="polite">({queue.length} waiting)</span></h2>
      <ErrorNote error={open.error} />
      {queue.length === 0 && !open.loading && <p class="muted">No invocation waits for an answer.</p>}
      <ul class="plain approvals">
        {queue.map((item) => <Pending key={item.id} item={item} onAnswered={reload} />)}
      </ul>
      <h3>Closed lately</h3>
      <table aria-label="Invocations closed lately">
        <thead><tr><th>Invocation</th><th>Reason</th><th>What</th><th>Status</th><th>Opened</th></tr></thead>
        <tbody>
          {answered.map((item) => (
            <tr key={item.id}>
              <td class="mono">{item.id}</td>
              <td>{item.reason}</td>
              <td>{item.summary}</td>
              <td><Badge tone={item.status === "decided" ? "ok" : undefined}>{item.status}</Badge></td>
              <td>{time(item.opened_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
