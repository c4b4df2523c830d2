/**
 * Worktree bindings, one agent a row (`GET /worktrees`, a page at a time,
 * agents in the order first bound, more as it scrolls, by state): its
 * state, where it works and where home is, a pending switch with the time
 * left to answer it, the TTL of a stay away from home counting down, bind
 * failures; for the operator, approve (with a TTL) or reject a pending
 * switch, and revoke a stay away (`POST .../approve`, `/reject`, `/revoke`).
 *
 * Any agent can be looked up by its id (`GET /agents/{id}/worktree`). An
 * agent's key lists its own agent's binding only, as the route answers it,
 * and, never bound, sees its status (UNBOUND) all the same.
 */
import { useMemo, useState } from "preact/hooks"
import { seg } from "../api.js"
import type { LogRecord, Worktree, Worktrees } from "../types.js"
import { Badge, Confirm, Done, duration, ErrorNote, Field, isOperator, Page, useAction, useLoad, useNow, usePages, useSession, VirtualList } from "../ui.js"
import type { ViewProps } from "./registry.js"

const worktreeEvent = (record: LogRecord) => record.event._tag.startsWith("Worktree")

const states = ["UNBOUND", "BOUND_HOME", "SWITCH_PENDING", "BOUND_NON_HOME", "BIND_FAILED"]

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
  const [lookup, setLookup] = useState("")
  const [state, setState] = useState("")
  const named = params.get("agent") ?? undefined
  const refresh = operator ? { when: worktreeEvent, every: 10_000 } : { every: 3000 }
  const listed = usePages(
    async (after) => {
      const page = await api.get<Worktrees>("/worktrees", { after, limit: 500, state })
      // An agent never bound has no binding to list; its key still sees where it stands.
      const own = !operator && state === "" && page.bindings.length === 0 && caller.agent_id !== undefined
        ? [await api.get<Worktree>(`/agents/${seg(caller.agent_id)}/worktree`)]
        : []
      return { items: [...page.bindings, ...own], next: page.next }
    },
    [api, caller, state],
    refresh
  )
  const rows = listed.items
  const listedNamed = rows.find((row) => row.agent_id === named)
  // An agent not on the pages read (or not bound at all) is read on its own.
  const lookedUp = useLoad(
    async () => (named === undefined || listedNamed !== undefined ? undefined : api.get<Worktree>(`/agents/${seg(named)}/worktree`)),
    [api, named, listedNamed === undefined],
    refresh
  )
  const selected = listedNamed ?? lookedUp.data
  const pending = useMemo(() => rows.filter((row) => row.state === "SWITCH_PENDING").length, [rows])
  return (
    <Page
      title="Worktrees"
      actions={
        <span class="muted" aria-live="polite">
          {rows.length}{listed.more ? "+" : ""} agents, {pending} {pending === 1 ? "switch" : "switches"} waiting
        </span>
      }
    >
      <ErrorNote error={listed.error ?? lookedUp.error} />
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault()
          if (lookup.trim() !== "") go(`worktrees?agent=${seg(lookup.trim())}`)
        }}
      >
        <Field label="State">
          <select value={state} onChange={(event) => setState(event.currentTarget.value)}>
            <option value="">any</option>
            {states.map((value) => <option key={value} value={value}>{value}</option>)}
          </select>
        </Field>
        <Field label="Agent">
          <input value={lookup} placeholder="an agent's id" onInput={(event) => setLookup(event.currentTarget.value)} />
        </Field>
        <button type="submit">Show</button>
      </form>
      <div class="split">
        <VirtualList
          label="Worktree bindings"
          items={rows}
          rowHeight={34}
          keyOf={(row) => row.agent_id}
          selected={named}
          onActivate={(row) => go(`worktrees?agent=${seg(row.agent_id)}`)}
          onEnd={listed.loadMore}
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
        {selected !== undefined && <Detail row={selected} onChanged={() => { listed.reload(); lookedUp.reload() }} />}
      </div>
      {!listed.loading && rows.length === 0 && <p class="muted">No agent has a worktree binding{state === "" ? "" : ` in ${state}`} yet.</p>}
    </Page>
  )
}
