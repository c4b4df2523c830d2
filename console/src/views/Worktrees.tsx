/**
 * Worktree bindings, one agent a row (`GET /agents/{id}/worktree`): its
 * state, where it works and where home is, a pending switch with the time
 * left to answer it, the TTL of a stay away from home counting down, bind
 * failures; for the operator, approve (with a TTL) or reject a pending
 * switch, and revoke a stay away (`POST .../approve`, `/reject`, `/revoke`).
 *
 * There is no route that lists bindings, so the operator's rows are the
 * agents the log's worktree records name, newest first (`GET /log?type=`),
 * a page of records at a time; any agent can be looked up by its id. An
 * agent's key sees its own agent's binding, as the route allows.
 */
import { useMemo, useState } from "preact/hooks"
import { scanLog, seg } from "../api.js"
import type { LogRecord, Worktree } from "../types.js"
import { Badge, Confirm, Done, duration, ErrorNote, Field, isOperator, Page, useAction, useLoad, useNow, useSession, VirtualList } from "../ui.js"
import type { ViewProps } from "./registry.js"

const worktreeTypes = [
  "WorktreeBound",
  "WorktreeUnbound",
  "WorktreeSwitchRequested",
  "WorktreeSwitchApproved",
  "WorktreeReturnedHome",
  "WorktreeBindFailed",
  "WorktreeBindRetried"
]
const worktreeEvent = (record: LogRecord) => record.event._tag.startsWith("Worktree")

const tone = (state: Worktree["state"]) =>
  state === "BOUND_HOME" ? "ok" : state === "BIND_FAILED" ? "bad" : state === "UNBOUND" ? undefined : state === "SWITCH_PENDING" ? "warn" : "info"

const place = (repo: string, worktree: string) => (repo === "" && worktree === "" ? "—" : `${repo}/${worktree}`)

/** What runs out next for a binding, counting down: the switch's answer, the TTL away, the next retry or escalation. */
const Left = ({ row }: { readonly row: Worktree }) => {
  const now = useNow()
  const [until, what] = row.pending !== undefined
    ? [row.pending.deadline, "to answer"]
    : row.ttl_deadline !== undefined
    ? [row.ttl_deadline, "away"]
    : row.retry_at !== undefined
    ? [row.retry_at, "to retry"]
    : row.escalate_at !== undefined
    ? [row.escalate_at, "to a human"]
    : [undefined, ""]
  if (until === undefined) return <span />
  const left = until - now
  return (
    <span class={left < 30_000 ? "countdown urgent" : "countdown"} role="timer" aria-label={`time left ${what}`}>
      {left > 0 ? `${duration(left)} ${what}` : "now"}
    </span>
  )
}

const Actions = ({ row, onDone }: { readonly row: Worktree; readonly onDone: () => void }) => {
  const { api } = useSession()
  const [ttl, setTtl] = useState("60")
  const [asking, setAsking] = useState<"reject" | "revoke" | undefined>(undefined)
  const action = useAction()
  const path = `/agents/${seg(row.agent_id)}/worktree`
  const post = (verb: string, body: Record<string, unknown>, said: string) =>
    action.run(async () => {
      const status = await api.post<Worktree>(`${path}/${verb}`, { by: "console", ...body })
      onDone()
      return `${row.agent_id}: ${said}, now ${status.state}`
    })
  return (
    <div class="card">
      {row.state === "SWITCH_PENDING" && row.pending !== undefined && (
        <div class="row">
          <Field label="Stay away (minutes)">
            <input type="number" min={1} step={1} value={ttl} onInput={(event) => setTtl(event.currentTarget.value)} />
          </Field>
          <button
            type="button"
            class="primary"
            disabled={action.busy}
            onClick={() => post("approve", { target_worktree_id: row.pending!.worktree_id, ttl_ms: Math.round(Number(ttl) * 60_000) }, "switch approved")}
          >
            Approve the switch
          </button>
          <button type="button" class="danger" disabled={action.busy} onClick={() => setAsking("reject")}>Reject the switch</button>
        </div>
      )}
      {row.state === "BOUND_NON_HOME" && <button type="button" class="danger" disabled={action.busy} onClick={() => setAsking("revoke")}>Send it home</button>}
      {asking !== undefined && (
        <Confirm
          title={asking === "reject" ? `Reject ${row.agent_id}'s switch?` : `Send ${row.agent_id} home?`}
          text={asking === "reject" ? "It stays at home." : "Its stay away ends now."}
          confirm={asking === "reject" ? "Reject" : "Send home"}
          reason
          reasonRequired
          danger
          onConfirm={(reason) => post(asking, { reason }, asking === "reject" ? "switch rejected" : "sent home")}
          onClose={() => setAsking(undefined)}
        />
      )}
      <ErrorNote error={action.error} />
      <Done text={action.done} />
    </div>
  )
}

const Detail = ({ row, onChanged }: { readonly row: Worktree; readonly onChanged: () => void }) => {
  const { caller } = useSession()
  return (
    <aside class="detail" aria-label={`Worktree of ${row.agent_id}`}>
      <h2>Worktree of <span class="mono">{row.agent_id}</span></h2>
      <dl>
        <dt>State</dt><dd><Badge tone={tone(row.state)}>{row.state}</Badge> <Left row={row} /></dd>
        <dt>Works in</dt><dd class="mono">{place(row.repo_id, row.worktree_id)}</dd>
        <dt>Home</dt><dd class="mono">{row.home === undefined ? "—" : place(row.home.repo_id, row.home.worktree_id)}</dd>
        {row.pending !== undefined && (
          <>
            <dt>Asks to switch to</dt>
            <dd><span class="mono">{place(row.pending.repo_id, row.pending.worktree_id)}</span>{row.pending.hitl_id !== undefined && <> · a human answers: <a href="#/approvals">{row.pending.hitl_id}</a></>}</dd>
          </>
        )}
        {row.failures > 0 && (<><dt>Bind failures</dt><dd>{row.failures}{row.last_error !== undefined && `: ${row.last_error}`}</dd></>)}
        {row.hitl_id !== undefined && (<><dt>Human</dt><dd>asked: <a href="#/approvals">{row.hitl_id}</a></dd></>)}
      </dl>
      {isOperator(caller) && (row.state === "SWITCH_PENDING" || row.state === "BOUND_NON_HOME") && <Actions row={row} onDone={onChanged} />}
    </aside>
  )
}

export const WorktreesView = ({ params }: ViewProps) => {
  const { api, caller, go } = useSession()
  const operator = isOperator(caller)
  /** How many of the log's worktree records to read for the agents they name. */
  const [depth, setDepth] = useState(2000)
  const [lookup, setLookup] = useState("")
  const named = params.get("agent") ?? undefined
  const loaded = useLoad(async () => {
    let ids: Array<string>
    let more = false
    if (operator) {
      const { records, next } = await scanLog(api, worktreeTypes, { want: depth })
      ids = [...new Set(records.map((record) => (record.event as { agent_id: string }).agent_id))]
      more = next !== undefined
    } else ids = caller.agent_id === undefined ? [] : [caller.agent_id]
    if (named !== undefined && !ids.includes(named)) ids.unshift(named)
    // A few at a time: the operator's rows may be hundreds of requests.
    const rows: Array<Worktree> = []
    for (let i = 0; i < ids.length; i += 8) {
      rows.push(...await Promise.all(ids.slice(i, i + 8).map((id) => api.get<Worktree>(`/agents/${seg(id)}/worktree`))))
    }
    return { rows, more }
  }, [api, caller, depth, named], { when: worktreeEvent, every: operator ? 10_000 : 3000 })
  const rows = loaded.data?.rows ?? []
  const selected = rows.find((row) => row.agent_id === named)
  const pending = useMemo(() => rows.filter((row) => row.state === "SWITCH_PENDING").length, [rows])
  return (
    <Page title="Worktrees" actions={<span class="muted" aria-live="polite">{rows.length} agents, {pending} {pending === 1 ? "switch" : "switches"} waiting</span>}>
      <ErrorNote error={loaded.error} />
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault()
          if (lookup.trim() !== "") go(`worktrees?agent=${seg(lookup.trim())}`)
        }}
      >
        <Field label="Agent">
          <input value={lookup} placeholder="an agent's id" onInput={(event) => setLookup(event.currentTarget.value)} />
        </Field>
        <button type="submit">Show</button>
        {operator && loaded.data?.more === true && <button type="button" onClick={() => setDepth(depth * 2)}>Read older records</button>}
      </form>
      {operator && <p class="hint">The agents named by the last {depth.toLocaleString()} worktree records of the log, most recent first.</p>}
      <div class="split">
        <VirtualList
          label="Worktree bindings"
          items={rows}
          rowHeight={34}
          keyOf={(row) => row.agent_id}
          selected={named}
          onActivate={(row) => go(`worktrees?agent=${seg(row.agent_id)}`)}
          header={
            <div class="cols worktree-cols">
              <span>Agent</span><span>State</span><span>Works in</span><span>Home</span><span>Switch to</span><span>Time left</span>
            </div>
          }
          row={(row) => (
            <div class="cols worktree-cols">
              <span class="mono">{row.agent_id}</span>
              <span><Badge tone={tone(row.state)}>{row.state}</Badge></span>
              <span class="mono">{place(row.repo_id, row.worktree_id)}</span>
              <span class="mono">{row.home === undefined ? "" : place(row.home.repo_id, row.home.worktree_id)}</span>
              <span class="mono">{row.pending === undefined ? "" : place(row.pending.repo_id, row.pending.worktree_id)}</span>
              <Left row={row} />
            </div>
          )}
        />
        {selected !== undefined && <Detail row={selected} onChanged={loaded.reload} />}
      </div>
      {!loaded.loading && rows.length === 0 && <p class="muted">No agent has a worktree binding yet.</p>}
    </Page>
  )
}
