/**
 * ARCP: the sessions (`GET /arcp/sessions`: attached or detached and until
 * when resumable, event_seq given and acknowledged, jobs running) and the
 * jobs, a page at a time in the order accepted (`GET /arcp/jobs`), filtered
 * by status or session. An agent's key sees its own key's.
 */
import { useState } from "preact/hooks"
import type { ArcpJobs, ArcpSession, LogRecord } from "../types.js"
import { Badge, ErrorNote, Field, Page, time, useLoad, useSession } from "../ui.js"
import type { ViewProps } from "./registry.js"

const arcpEvent = (record: LogRecord) => record.event._tag.startsWith("Arcp") && record.event._tag !== "ArcpJobEvent"

const statuses = ["pending", "running", "success", "error", "cancelled", "timed_out"]

export const ArcpView = ({ params }: ViewProps) => {
  const { api, go } = useSession()
  const [after, setAfter] = useState<ReadonlyArray<number>>([0])
  const status = params.get("status") ?? ""
  const session = params.get("session") ?? ""
  const cursor = after[after.length - 1]
  const sessions = useLoad(() => api.get<Array<ArcpSession>>("/arcp/sessions"), [api], { when: arcpEvent, every: 10_000 })
  const jobs = useLoad(
    () => api.get<ArcpJobs>("/arcp/jobs", { after: cursor, limit: 100, status, session_id: session }),
    [api, cursor, status, session],
    { when: arcpEvent, every: 10_000 }
  )
  const filter = (name: string, value: string) => {
    setAfter([0])
    const next = new URLSearchParams(params)
    if (value === "") next.delete(name)
    else next.set(name, value)
    go(`arcp?${next}`)
  }
  return (
    <Page title="ARCP sessions and jobs">
      <ErrorNote error={sessions.error ?? jobs.error} />
      <section class="card" aria-labelledby="sessions-title">
        <h2 id="sessions-title">Sessions ({sessions.data?.length ?? 0})</h2>
        <table>
          <thead>
            <tr><th>Session</th><th>Key</th><th>Role</th><th>Transport</th><th>event_seq (acked)</th><th>Running jobs</th><th>Subscriptions</th><th></th></tr>
          </thead>
          <tbody>
            {(sessions.data ?? []).slice(0, 1000).map((row) => (
              <tr key={row.session_id}>
                <td class="mono">{row.session_id}</td>
                <td class="mono">{row.key_id}</td>
                <td>{row.role}</td>
                <td>
                  {row.attached
                    ? <Badge tone="ok">attached</Badge>
                    : <><Badge tone="warn">detached</Badge> {time(row.detached_at)}{row.expires_at !== undefined && <span class="muted">, resumable until {time(row.expires_at)}</span>}</>}
                </td>
                <td class="num">{row.event_seq} ({row.acked_seq})</td>
                <td class="num">{row.running_jobs}</td>
                <td class="num">{row.subscriptions}</td>
                <td><button type="button" onClick={() => filter("session", row.session_id)}>Its jobs</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section class="card" aria-labelledby="jobs-title">
        <h2 id="jobs-title">Jobs</h2>
        <div class="toolbar">
          <Field label="Status">
            <select value={status} onChange={(event) => filter("status", event.currentTarget.value)}>
              <option value="">any</option>
              {statuses.map((value) => <option key={value} value={value}>{value}</option>)}
            </select>
          </Field>
          <Field label="Session">
            <input value={session} onChange={(event) => filter("session", event.currentTarget.value.trim())} placeholder="any" />
          </Field>
        </div>
        <table>
          <thead>
            <tr><th>Job</th><th>Agent</th><th>Status</th><th>Session</th><th>Created</th><th>Parent</th><th>Last event_seq</th></tr>
          </thead>
          <tbody>
            {(jobs.data?.jobs ?? []).map((job) => (
              <tr key={job.job_id}>
                <td class="mono">{job.job_id}</td>
                <td>{job.agent}@{job.version}</td>
                <td>
                  <Badge tone={job.status === "success" ? "ok" : job.status === "running" || job.status === "pending" ? "info" : "bad"}>{job.status}</Badge>
                  {job.error_code !== undefined && ` ${job.error_code}`}
                  {job.cancel_requested && " (cancel requested)"}
                </td>
                <td class="mono">{job.session_id}</td>
                <td>{time(job.created_at)}</td>
                <td class="mono">{job.parent_job_id ?? ""}</td>
                <td class="num">{job.last_event_seq}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <div class="row">
          <button type="button" disabled={after.length <= 1} onClick={() => setAfter(after.slice(0, -1))}>Previous page</button>
          <button type="button" disabled={jobs.data?.next === undefined} onClick={() => setAfter([...after, jobs.data!.next!])}>Next page</button>
        </div>
      </section>
    </Page>
  )
}
